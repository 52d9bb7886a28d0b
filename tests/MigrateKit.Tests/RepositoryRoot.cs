using System;
using System.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests;

/// <summary>
/// The checkout this test assembly was built from, found by walking up from the output directory.
/// Source paths baked in at compile time ([CallerFilePath]) cannot be used: CI builds map them to
/// <c>/_/</c> (ContinuousIntegrationBuild), which exists nowhere on disk.
/// </summary>
internal static class RepositoryRoot
{
    public static string Path { get; } = Find();

    public static string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    private static string Find()
    {
        DirectoryInfo? dir = new(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "MigrateKit.sln")))
        {
            dir = dir.Parent;
        }

        Assert.IsNotNull(dir, $"no MigrateKit.sln above {AppContext.BaseDirectory}");
        return dir.FullName;
    }
}
