using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.Migration;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests.Cli;
using MigrateKit.Tests.Transport;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// <c>migratekit receive</c> as a service on a Unix socket: its socket file is 0600, a hostile
/// Hello gets the limit's Error and the receiver keeps listening for the next source, and
/// <c>--once</c> stops after the first.
/// </summary>
[TestClass]
[SupportedOSPlatform("linux")]
public sealed class CliReceiveTests
{
    private const string Refusal = "Hello announces 8 TiB; this destination accepts at most 1 GiB";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private string _dir = "";

    [TestInitialize]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("mk-cli-receive-").FullName;

    [TestCleanup]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [TestMethod]
    public async Task Receive_RefusesAHostileHello_AndKeepsListeningForTheNextSource()
    {
        string path = Path.Combine(_dir, "receive.sock");
        using Process receive = CliProcess.Start(["receive", "--listen", "unix:" + path, "--vm", "hostvm", "--max-memory", "1GiB", "--verbose"]);
        StringBuilder stderr = Collect(receive);
        try
        {
            await WaitForSocketAsync(path, receive, stderr);
            Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));

            for (int attempt = 0; attempt < 2; attempt++)
            {
                ErrorFrame error = Assert.IsInstanceOfType<ErrorFrame>((await SendHostileHelloAsync(path)).Single());
                Assert.AreEqual(Refusal, error.Error.Message);
            }

            Assert.IsFalse(receive.HasExited, $"receive stopped after a refused source: {Text(stderr)}");

            // stderr is read on another thread: the line may trail the Error frame a little.
            var waited = Stopwatch.StartNew();
            while (!Text(stderr).Contains("still listening on unix:" + path, StringComparison.Ordinal) && waited.Elapsed < Timeout)
            {
                await Task.Delay(50);
            }

            StringAssert.Contains(Text(stderr), "still listening on unix:" + path);
            StringAssert.Contains(Text(stderr), Refusal);
        }
        finally
        {
            receive.Kill();
            await receive.WaitForExitAsync();
        }
    }

    [TestMethod]
    public async Task Recover_AsksARunningReceive_AboutASessionItNeverSaw_AndSaysTheOutcomeIsStillOpen()
    {
        string path = Path.Combine(_dir, "recover.sock");
        using Process receive = CliProcess.Start(["receive", "--listen", "unix:" + path, "--vm", "hostvm", "--reconnect-timeout", "30s", "--verbose"]);
        StringBuilder stderr = Collect(receive);
        try
        {
            await WaitForSocketAsync(path, receive, stderr);
            const string session = "0123456789abcdef0123456789abcdef";

            (int exit, string stdout, string error) = CliProcess.Run(["recover", "--to", "unix:" + path, "--session", session, "--json"]);

            Assert.AreEqual(5, exit, error);
            using JsonDocument answer = JsonDocument.Parse(stdout);
            Assert.AreEqual(session, answer.RootElement.GetProperty("sessionId").GetString());
            Assert.AreEqual("unknown", answer.RootElement.GetProperty("state").GetString());
            StringAssert.Contains(answer.RootElement.GetProperty("message").GetString(), "proves nothing");
            Assert.IsFalse(receive.HasExited, $"a query does not end receive: {Text(stderr)}");
        }
        finally
        {
            receive.Kill();
            await receive.WaitForExitAsync();
        }
    }

    [TestMethod]
    public async Task ReceiveOnce_StopsAfterARefusedSource_WithTheLimitInItsMessage()
    {
        string path = Path.Combine(_dir, "once.sock");
        using Process receive = CliProcess.Start(["receive", "--listen", "unix:" + path, "--vm", "hostvm", "--max-memory", "1GiB", "--once", "--verbose"]);
        StringBuilder stderr = Collect(receive);
        await WaitForSocketAsync(path, receive, stderr);

        await SendHostileHelloAsync(path);

        await receive.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
        Assert.AreEqual(4, receive.ExitCode, Text(stderr));
        StringAssert.Contains(Text(stderr), Refusal);
        Assert.IsFalse(File.Exists(path), "the socket file outlived the receiver");
    }

    [TestMethod]
    [DataRow(false, DisplayName = "default: huge pages")]
    [DataRow(true, DisplayName = "--no-huge-pages")]
    public async Task Receive_AdvisesHugePagesForFreshMemory_UnlessTold(bool noHugePages)
    {
        WriteTrackingRequirement.Require();
        string path = Path.Combine(_dir, "huge.sock");
        string[] receiveArgs = ["receive", "--listen", "unix:" + path, "--vm", "hostvm", "--once", "--verbose", "--verify-passes", "1"];
        Task<(int Exit, string Stdout, string Stderr)> receiving = Task.Run(() => CliProcess.Run(noHugePages ? [.. receiveArgs, "--no-huge-pages"] : receiveArgs, TimeSpan.FromMinutes(2)));
        await WaitForSocketAsync(path, receiving);

        (int exit, _, string sendErr) = CliProcess.Run(["send", "--to", "unix:" + path, "--vm", "hostvm", "--memory", "32MiB", "--workload", "verify", "--hot", "4MiB", "--json"], TimeSpan.FromMinutes(2));
        Assert.AreEqual(0, exit, sendErr);
        (int receiveExit, _, string receiveErr) = await receiving.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.AreEqual(0, receiveExit, receiveErr);

        // 32 MiB of fresh memory: advised whole by default, not at all when told.
        StringAssert.Contains(receiveErr, $"33554432 bytes fresh, {(noHugePages ? 0 : 33554432)} of them advised to use huge pages");
    }

    /// <summary>
    /// A whole migration between two processes, the receiver with its status line (no --verbose) on a
    /// path that reads as markup, and a workload with passes to check or one that ends.
    /// </summary>
    [TestMethod]
    [DataRow("verify")]
    [DataRow("fill")]
    public async Task ReceiveOnce_CompletesAMigration_OnAPathWithBrackets(string workload)
    {
        WriteTrackingRequirement.Require();
        string path = Path.Combine(_dir, "a[b].sock");
        Task<(int Exit, string Stdout, string Stderr)> receiving = Task.Run(() =>
            CliProcess.Run(["receive", "--listen", "unix:" + path, "--vm", "hostvm", "--once", "--verify-passes", "1"], TimeSpan.FromMinutes(2)));
        await WaitForSocketAsync(path, receiving);

        (int exit, string sendOut, string sendErr) = CliProcess.Run(["send", "--to", "unix:" + path, "--vm", "hostvm", "--memory", "32MiB", "--workload", workload, "--json"], TimeSpan.FromMinutes(2));
        Assert.AreEqual(0, exit, sendErr);
        using (JsonDocument report = JsonDocument.Parse(sendOut))
        {
            Assert.IsTrue(report.RootElement.GetProperty("verified").GetBoolean(), sendOut);
        }

        (int receiveExit, string receiveOut, string receiveErr) = await receiving.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.AreEqual(0, receiveExit, $"{receiveOut}\n{receiveErr}");
        StringAssert.Contains(receiveOut, workload == "fill" ? "where its workload had ended (halted)" : "self-checking passes after resuming");
    }

    private static Task<List<ReceivedFrame>> SendHostileHelloAsync(string path) =>
        HostileHelloTests.SendAndReadReplyAsync("unix:" + path, HostileHelloTests.Hello(8, 1, HostileHelloTests.TiB));

    private static Task WaitForSocketAsync(string path, Process receive, StringBuilder stderr) =>
        WaitForSocketAsync(path, () => receive.HasExited ? $"receive exited: {Text(stderr)}" : null);

    private static Task WaitForSocketAsync(string path, Task<(int Exit, string Stdout, string Stderr)> receiving) =>
        WaitForSocketAsync(path, () => receiving.IsCompleted ? $"receive ended before it listened: {receiving.Result.Stderr}" : null);

    // Until the receiver's socket file appears; fails when it has ended (why, from ended) or after the timeout.
    private static async Task WaitForSocketAsync(string path, Func<string?> ended)
    {
        var waited = Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            string? why = ended();
            Assert.IsNull(why, why);
            Assert.IsLessThan(Timeout, waited.Elapsed, "receive did not listen");
            await Task.Delay(50);
        }
    }

    private static StringBuilder Collect(Process process)
    {
        var text = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            lock (text)
            {
                text.AppendLine(e.Data);
            }
        };
        process.BeginErrorReadLine();
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        return text;
    }

    private static string Text(StringBuilder text)
    {
        lock (text)
        {
            return text.ToString();
        }
    }
}
