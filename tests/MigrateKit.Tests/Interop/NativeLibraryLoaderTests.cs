using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Interop;

namespace MigrateKit.Tests.Interop;

/// <summary>
/// Where <see cref="MigrateKitNative"/> looks for <c>libmigratekit.so</c>, and what it says when
/// an explicitly named file is not there. (The NuGet layout itself is exercised by
/// tests/consumer/run.sh, which installs the packages into a project of its own.)
/// </summary>
[TestClass]
public sealed class NativeLibraryLoaderTests
{
    [TestMethod]
    public void SearchPaths_FlatFilesFirst_ThenTheNuGetRuntimesFolders()
    {
        List<string> paths = MigrateKitNative.SearchPaths("/app/lib", "/app", Architecture.X64);

        CollectionAssert.AreEqual(
            new[]
            {
                "/app/lib/libmigratekit.so",
                "/app/libmigratekit.so",
                "/app/lib/runtimes/linux-x64/native/libmigratekit.so",
                "/app/runtimes/linux-x64/native/libmigratekit.so",
            },
            paths);
    }

    [TestMethod]
    public void SearchPaths_AssemblyInTheBaseDirectory_ListsEachPlaceOnce()
    {
        List<string> paths = MigrateKitNative.SearchPaths("/app/bin", "/app/bin/", Architecture.X64);

        CollectionAssert.AreEqual(
            new[] { "/app/bin/libmigratekit.so", "/app/bin/runtimes/linux-x64/native/libmigratekit.so" },
            paths);
    }

    [TestMethod]
    public void SearchPaths_SingleFileApp_WithoutAssemblyLocation_UsesTheBaseDirectory()
    {
        List<string> paths = MigrateKitNative.SearchPaths(null, "/app", Architecture.X64);

        CollectionAssert.AreEqual(
            new[] { "/app/libmigratekit.so", "/app/runtimes/linux-x64/native/libmigratekit.so" },
            paths);
    }

    [TestMethod]
    public void SearchPaths_Arm64Process_LooksInTheArm64Folder() =>
        Assert.AreEqual(
            "/app/runtimes/linux-arm64/native/libmigratekit.so",
            MigrateKitNative.SearchPaths("/app", "/app", Architecture.Arm64)[1]);

    [TestMethod]
    public void ExplicitPath_PropertyWinsOverTheEnvironmentVariable()
    {
        Assert.AreEqual("/a/libmigratekit.so", MigrateKitNative.ExplicitPath("/a/libmigratekit.so", "/b/libmigratekit.so", out string? source));
        Assert.AreEqual("MigrateKitNative.LibraryPath", source);

        Assert.AreEqual("/b/libmigratekit.so", MigrateKitNative.ExplicitPath(null, "/b/libmigratekit.so", out source));
        Assert.AreEqual("MIGRATEKIT_NATIVE_LIBRARY", source);

        Assert.IsNull(MigrateKitNative.ExplicitPath("", "", out source));
        Assert.IsNull(source);
    }

    [TestMethod]
    public void LoadExplicit_MissingFile_NamesThePathAndWhereItCameFrom()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"migratekit-{Guid.NewGuid():N}", "libmigratekit.so");

        DllNotFoundException e = Assert.ThrowsExactly<DllNotFoundException>(
            () => MigrateKitNative.LoadExplicit(missing, MigrateKitNative.EnvironmentVariable));

        Assert.Contains(missing, e.Message);
        Assert.Contains("MIGRATEKIT_NATIVE_LIBRARY", e.Message);
        Assert.Contains("no file exists", e.Message);
    }

    [TestMethod]
    public void LoadExplicit_RelativePath_NamesTheFullPathToo()
    {
        string relative = $"migratekit-{Guid.NewGuid():N}/libmigratekit.so";

        DllNotFoundException e = Assert.ThrowsExactly<DllNotFoundException>(
            () => MigrateKitNative.LoadExplicit(relative, "MigrateKitNative.LibraryPath"));

        Assert.Contains(relative, e.Message);
        Assert.Contains(Path.GetFullPath(relative), e.Message);
    }

    [TestMethod]
    public void LoadExplicit_FileThatIsNotALibrary_SaysItCouldNotBeLoaded()
    {
        string path = Path.Combine(Path.GetTempPath(), $"migratekit-{Guid.NewGuid():N}.so");
        File.WriteAllText(path, "not an ELF file");
        try
        {
            DllNotFoundException e = Assert.ThrowsExactly<DllNotFoundException>(
                () => MigrateKitNative.LoadExplicit(path, "MigrateKitNative.LibraryPath"));

            Assert.Contains(path, e.Message);
            Assert.Contains("could not be loaded", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void LoadExplicit_TheBuiltShim_Loads()
    {
        string shim = Path.Combine(AppContext.BaseDirectory, "libmigratekit.so");

        IntPtr handle = MigrateKitNative.LoadExplicit(shim, "MigrateKitNative.LibraryPath");

        Assert.AreNotEqual(IntPtr.Zero, handle);
        Assert.IsTrue(NativeLibrary.TryGetExport(handle, "mk_abi_query", out _));
        NativeLibrary.Free(handle);
    }

    [TestMethod]
    public void InRepoBuild_LoadsTheShimNextToTheAssembly_AndThenRefusesANewPath()
    {
        Assert.IsGreaterThan(0L, NativeMethods.AbiQuery((int)AbiQuery.SizeofRegs));

        string expected = Path.Combine(Path.GetDirectoryName(typeof(MigrateKitNative).Assembly.Location)!, "libmigratekit.so");
        Assert.AreEqual(expected, MigrateKitNative.LoadedPath);

        InvalidOperationException e = Assert.ThrowsExactly<InvalidOperationException>(
            () => MigrateKitNative.LibraryPath = "/elsewhere/libmigratekit.so");
        Assert.Contains(expected, e.Message);
        Assert.IsNull(MigrateKitNative.LibraryPath);
    }
}
