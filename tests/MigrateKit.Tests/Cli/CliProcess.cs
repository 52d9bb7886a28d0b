using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary>Runs the <c>migratekit</c> CLI built by the same solution build as the calling test assembly.</summary>
internal static class CliProcess
{
    /// <summary>Runs the CLI with <paramref name="args"/> and returns its exit code and both streams; fails the test after <paramref name="timeout"/> (default one minute).</summary>
    public static (int Exit, string Stdout, string Stderr) Run(string[] args, TimeSpan? timeout = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        using Process process = Start(args, environment: environment);
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        TimeSpan limit = timeout ?? TimeSpan.FromMinutes(1);
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"migratekit {string.Join(' ', args)} did not finish within {limit.TotalSeconds:F0} s");
        }

        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Starts the CLI with <paramref name="args"/> and its streams redirected, for a test that talks to it while it runs; the caller stops it.</summary>
    /// <param name="args">The CLI's arguments.</param>
    /// <param name="defaultSignals">
    /// Starts it with SIGINT and SIGTERM at their defaults, for a test that signals it: a process
    /// started in the background by a shell inherits SIGINT ignored, and so would the CLI.
    /// </param>
    /// <param name="environment">Variables to set (a null value removes one) on top of the test's.</param>
    public static Process Start(string[] args, bool defaultSignals = false, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo(defaultSignals ? "env" : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The CLI keeps what it learns in the user's state directory by default: the tests' runs
        // share one of their own, so they neither read nor change the user's.
        start.Environment["XDG_STATE_HOME"] = StateHome.Value;
        foreach ((string name, string? value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[name] = value;
        }
        if (defaultSignals)
        {
            // env execs dotnet in its own process: the PID stays the CLI's.
            start.ArgumentList.Add("--default-signal=INT,TERM");
            start.ArgumentList.Add("dotnet");
        }

        start.ArgumentList.Add(CliPath());
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        return Process.Start(start)!;
    }

    private static readonly Lazy<string> StateHome = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("mk-cli-state-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // A CLI process a failed test left running still writes there: the directory stays in /tmp.
            }
        };
        return dir;
    });

    private static string CliPath()
    {
        // bin/<configuration>/<framework>/ of the test project.
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string framework = here.Name;
        string configuration = here.Parent!.Name;
        string cli = Path.Combine(RepositoryRoot.Path, "samples", "MigrateKit.Cli", "bin", configuration, framework, "MigrateKit.Cli.dll");
        Assert.IsTrue(File.Exists(cli), $"{cli} is missing: build the solution (dotnet build MigrateKit.sln -c {configuration}) first");
        return cli;
    }
}
