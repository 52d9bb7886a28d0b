using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.Versioning;
using System.Text;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests.Cli;
using static MigrateKit.IntegrationTests.TestSupport.CliSignals;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM as an operator sends them: the first cancels the command, which
/// ends what it started (a migration before its commit, a listener's socket file, a soak's
/// temporary certificates) and exits with 130 or 143 within seconds.
/// </summary>
[TestClass]
[SupportedOSPlatform("linux")]
public sealed class CliSignalTests
{
    [TestInitialize]
    public void RequireWriteTracking() => WriteTrackingRequirement.Require();

    [TestMethod]
    public void Send_InterruptedDuringPreCopy_Exits130_AndTheDestinationDiscardsItsCopy()
    {
        string dir = Directory.CreateTempSubdirectory("mk-cli-signal-").FullName;
        string socket = Path.Combine(dir, "receive.sock");
        using Process receive = CliProcess.Start(["receive", "--listen", "unix:" + socket, "--vm", "hostvm", "--once", "--verbose"]);
        StringBuilder receiveErr = Collect(receive);
        Process? send = null;
        try
        {
            WaitFor(() => File.Exists(socket), receive, receiveErr, "receive to listen");

            // 200 MiB of hot pages at 1 MiB/s: pre-copy is still under way when the signal comes.
            send = CliProcess.Start(["send", "--to", "unix:" + socket, "--vm", "hostvm", "--memory", "256MiB", "--workload", "sweep", "--hot", "200MiB", "--bandwidth", "1MiB/s", "--verbose"], defaultSignals: true);
            StringBuilder sendErr = Collect(send);
            WaitFor(() => Text(receiveErr).Contains("fresh", StringComparison.Ordinal), receive, receiveErr, "the destination to allocate the VM");

            AssertStopsOn(send, Sigint, TimeSpan.FromSeconds(20), sendErr);

            // The source said it gave up before its commit: the destination discards the VM it never ran and, with --once, ends.
            Assert.IsTrue(receive.WaitForExit(WaitLimit), $"receive did not end after the source gave up: {Text(receiveErr)}");
            receive.WaitForExit();
            StringAssert.Contains(Text(receiveErr), "the source gave up: migration cancelled");
            StringAssert.Contains(Text(receiveErr), "its VM never ran here");
            Assert.AreEqual(3, receive.ExitCode, Text(receiveErr));
        }
        finally
        {
            KillIfRunning(send);
            KillIfRunning(receive);

            send?.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void Receive_InterruptedWhileItWaits_Exits130_AndRemovesItsSocket()
    {
        string dir = Directory.CreateTempSubdirectory("mk-cli-signal-").FullName;
        string socket = Path.Combine(dir, "receive.sock");
        using Process receive = CliProcess.Start(["receive", "--listen", "unix:" + socket, "--vm", "hostvm", "--verbose"], defaultSignals: true);
        StringBuilder stderr = Collect(receive);
        try
        {
            WaitFor(() => File.Exists(socket), receive, stderr, "receive to listen");
            AssertStopsOn(receive, Sigint, TimeSpan.FromSeconds(10), stderr);
            Assert.IsFalse(File.Exists(socket), "the listener was closed and its socket file removed");
        }
        finally
        {
            KillIfRunning(receive);

            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void BenchSoak_TerminatedWhileItSettles_Exits143_AndRemovesItsCertificates()
    {
        string[] before = SoakDirectories();
        using Process soak = CliProcess.Start(["bench", "soak", "--count", "1", "--warm-up", "1"], defaultSignals: true);
        StringBuilder stdout = new();
        soak.OutputDataReceived += (_, e) => Append(stdout, e.Data);
        soak.BeginOutputReadLine();
        StringBuilder stderr = new();
        soak.ErrorDataReceived += (_, e) => Append(stderr, e.Data);
        soak.BeginErrorReadLine();
        try
        {
            // After its warm-up the soak waits, 3 s at least, for the process to be quiet.
            WaitFor(() => Text(stdout).Contains("warm-up 1/1", StringComparison.Ordinal), soak, stderr, "the warm-up migration");
            Assert.HasCount(before.Length + 1, SoakDirectories(), "the soak's certificate directory exists while it runs");
            Thread.Sleep(200);

            AssertStopsOn(soak, Sigterm, TimeSpan.FromSeconds(10), stderr);
            Assert.IsFalse(Text(stdout).Split('\n').Any(l => l.StartsWith("start", StringComparison.Ordinal)), $"the wait was cut short, no start figures: {Text(stdout)}");
            CollectionAssert.AreEquivalent(before, SoakDirectories(), "the soak removed its certificate directory");
        }
        finally
        {
            KillIfRunning(soak);
        }
    }

    [TestMethod]
    public void Demo_TerminatedDuringASlowWarmUp_Exits143_WithinSeconds()
    {
        // At 10 page writes per second the warm-up pass takes minutes; the signal was heeded only
        // when the warm-up gave up, two minutes later.
        using Process demo = CliProcess.Start(["demo", "--vm", "hostvm", "--memory", "16MiB", "--pace", "10", "--verbose"], defaultSignals: true);
        StringBuilder stderr = Collect(demo);
        try
        {
            WaitFor(() => Text(stderr).Contains("running one pass", StringComparison.Ordinal) || demo.HasExited, demo, stderr, "the warm-up");
            Thread.Sleep(1000);
            AssertStopsOn(demo, Sigterm, TimeSpan.FromSeconds(10), stderr);
        }
        finally
        {
            KillIfRunning(demo);
        }
    }

    private static string[] SoakDirectories() => Directory.GetDirectories(Path.GetTempPath(), "migratekit-soak-*");
}
