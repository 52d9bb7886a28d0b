using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>Signals a running CLI as an operator would, and reads what it wrote meanwhile.</summary>
[SupportedOSPlatform("linux")]
internal static class CliSignals
{
    internal const int Sigint = 2;
    internal const int Sigterm = 15;

    /// <summary>The CLI's last line after it was cancelled where it had no report of its own to print.</summary>
    internal const string StoppedBeforeCompleting = "migratekit: stopped before the command completed";

    /// <summary>How long a test waits for the CLI to reach the point it signals at.</summary>
    internal static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Sends <paramref name="signal"/> and checks the CLI says so, ends within
    /// <paramref name="within"/> with 128 + the signal's number, and wrote <paramref name="ending"/>.
    /// </summary>
    internal static void AssertStopsOn(Process cli, int signal, TimeSpan within, StringBuilder output, string ending = StoppedBeforeCompleting)
    {
        Assert.IsFalse(cli.HasExited, $"the CLI ended (exit {(cli.HasExited ? cli.ExitCode : 0)}) before the signal: {Text(output)}");
        var signalled = Stopwatch.StartNew();
        Assert.AreEqual(0, Kill(cli.Id, signal), $"kill({cli.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        Assert.IsTrue(cli.WaitForExit(within), $"the CLI did not end within {within.TotalSeconds:F0} s of signal {signal}: {Text(output)}");
        cli.WaitForExit();
        Assert.AreEqual(128 + signal, cli.ExitCode, Text(output));
        Assert.IsLessThan(within, signalled.Elapsed);
        StringAssert.Contains(Text(output), signal == Sigint ? "migratekit: interrupted; stopping" : "migratekit: terminated; stopping");
        StringAssert.Contains(Text(output), ending);
    }

    /// <summary>Polls <paramref name="condition"/>; fails when <paramref name="process"/> ends or <see cref="WaitLimit"/> passes first.</summary>
    internal static void WaitFor(Func<bool> condition, Process process, StringBuilder output, string what)
    {
        var waited = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.IsFalse(process.HasExited, $"the process ended while waiting for {what}: {Text(output)}");
            Assert.IsLessThan(WaitLimit, waited.Elapsed, $"waited {WaitLimit.TotalSeconds:F0} s for {what}: {Text(output)}");
            Thread.Sleep(50);
        }
    }

    /// <summary>Collects both of <paramref name="process"/>'s streams, line by line, into one text.</summary>
    internal static StringBuilder Collect(Process process)
    {
        var text = new StringBuilder();
        process.ErrorDataReceived += (_, e) => Append(text, e.Data);
        process.BeginErrorReadLine();
        process.OutputDataReceived += (_, e) => Append(text, e.Data);
        process.BeginOutputReadLine();
        return text;
    }

    internal static void Append(StringBuilder text, string? line)
    {
        if (line is not null)
        {
            lock (text)
            {
                text.AppendLine(line);
            }
        }
    }

    internal static string Text(StringBuilder text)
    {
        lock (text)
        {
            return text.ToString();
        }
    }

    /// <summary>Kills <paramref name="process"/> and its children if it is still running, after a test failed.</summary>
    internal static void KillIfRunning(Process? process)
    {
        if (process is { HasExited: false })
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
