using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary>
/// The CLI's conventions, run as a process: every command's help names the tool and gives an
/// example; a bad value is a usage error (exit 2) that names the option and the fix, before
/// anything starts, with nothing on stdout.
/// </summary>
[TestClass]
public sealed class CliConventionTests
{
    [TestMethod]
    [DataRow("")]
    [DataRow("version")]
    [DataRow("doctor")]
    [DataRow("completion")]
    [DataRow("demo")]
    [DataRow("send")]
    [DataRow("receive")]
    [DataRow("recover")]
    [DataRow("report")]
    [DataRow("libvirt")]
    [DataRow("libvirt migrate")]
    [DataRow("libvirt demo")]
    [DataRow("libvirt dirtyrate")]
    [DataRow("certs")]
    [DataRow("certs create")]
    [DataRow("bench")]
    [DataRow("bench soak")]
    public void Help_NamesTheToolAndGivesAnExample(string command)
    {
        string[] args = [.. command.Split(' ', StringSplitOptions.RemoveEmptyEntries), "--help"];
        (int exit, string stdout, string stderr) = CliProcess.Run(args);
        Assert.AreEqual(0, exit, stderr);
        StringAssert.Contains(stdout, $"Usage:\n  migratekit {command}".TrimEnd());
        StringAssert.Contains(stdout, $"Example: migratekit {command}".TrimEnd());
    }

    [TestMethod]
    [DataRow("demo --bandwidth 1GB/sec", "--bandwidth: '1GB/sec' is not a rate", "'1GiB/s'")]
    [DataRow("demo --memory 1GB", "--memory: '1GB': use binary units (GiB)", "1GiB")]
    [DataRow("demo --hot lots", "--hot: 'lots' is not a size", "1GiB")]
    [DataRow("demo --max-downtime 300", "--max-downtime: '300' is not a duration", "300ms")]
    [DataRow("demo --max-downtime 0ms", "--max-downtime must be positive", "")]
    [DataRow("demo --bandwidth 2KiB/s", "--bandwidth must be at least 4096", "")]
    [DataRow("send --to tcp:127.0.0.1:9 --insecure --bandwidth 100Mbit/s", "--bandwidth: ", "not a size")]
    [DataRow("send --to tcp:127.0.0.1:7000", "give --tls-cert, --tls-key and --tls-ca", "--insecure")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --max-memory 32GB", "--max-memory: '32GB': use binary units (GiB)", "1GiB")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --max-memory 0", "--max-memory must be a positive multiple of the 4096-byte page size", "")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --max-memory 8GiB --expect-memory 16GiB", "--expect-memory must be a positive multiple of the 4096-byte page size and at most --max-memory (8 GiB) (got 16 GiB)", "")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --expect-memory lots", "--expect-memory: 'lots' is not a size", "1GiB")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --expect-vcpus 0", "--expect-vcpus 0: use a vCPU count of at least 1", "")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --vm qemu", "--vm 'qemu': use auto, microvm or hostvm", "")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --max-regions 0", "--max-regions must be 1 to 1024 (got 0)", "")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --max-vcpus 0", "--max-vcpus must be at least 1 (got 0)", "")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --max-vcpus 2 --expect-vcpus 4", "--expect-vcpus must be 1 to --max-vcpus (2) (got 4)", "")]
    [DataRow("recover --to tcp:127.0.0.1:9 --insecure --session nope", "--session: 'nope' is not a session id", "32 hex digits")]
    [DataRow("recover --to tcp:127.0.0.1:9 --insecure --session 0123456789abcdef0123456789abcdef --commit --abort", "--commit and --abort exclude each other", "")]
    [DataRow("libvirt migrate d --from test:///default --to test:///default?second --deadline soon", "--deadline: 'soon' is not a duration", "")]
    [DataRow("libvirt migrate d --from test:///default --to test:///default?second --downtime-budget 100ms", "--downtime-budget (100 ms) must not be below --max-downtime", "")]
    [DataRow("libvirt demo --from test:///default --to test:///default?second --memory 1GB", "--memory: '1GB': use binary units (GiB)", "")]
    [DataRow("libvirt migrate d --from test:///default --to test:///default", "--from and --to are the same URI ('test:///default')", "")]
    [DataRow("libvirt dirtyrate d --period 1.5s", "--period 1.5s: use whole seconds from 1s to 60s", "")]
    [DataRow("libvirt dirtyrate d --period 2", "--period: '2' is not a duration", "")]
    [DataRow("receive --listen tcp:0.0.0.0:7000 --insecure", "--insecure listens only on a loopback address (got tcp:0.0.0.0:7000)", "--listen tcp:127.0.0.1:PORT")]
    [DataRow("receive --listen tcp:127.0.0.1:7000", "give --tls-cert, --tls-key and --tls-ca", "migratekit certs create DIR")]
    [DataRow("send --to tcp:192.0.2.1:7000", "give --tls-cert, --tls-key and --tls-ca", "--insecure")]
    [DataRow("send --to tcp:192.0.2.1:7000 --tls-cert c.pem --tls-ca ca.pem", "--tls-key is missing", "")]
    [DataRow("receive --listen tcp:127.0.0.1:0 --tls-cert c.pem --tls-key k.pem --tls-ca ca.pem --insecure", "--insecure and --tls-cert/--tls-key/--tls-ca exclude each other", "")]
    [DataRow("bench soak --count 0", "--count 0: use 1 to 100000", "")]
    [DataRow("bench soak --vm qemu", "--vm 'qemu': use host or micro", "")]
    [DataRow("bench soak --memory 1GB", "--memory: '1GB': use binary units (GiB)", "")]
    [DataRow("bench soak --memory 2MiB", "--memory 2MiB: the VM has 4 MiB to 3 GiB of memory", "")]
    [DataRow("bench soak --warm-up -1", "--warm-up -1: use 0 to 100", "")]
    [DataRow("demo --vm hostvm --memory 8MiB --hot 8MiB", "--hot 8.0 MiB must be a non-zero multiple of 4 KiB that fits in --memory 8.0 MiB", "")]
    public void BadValue_IsAUsageError_NamingTheOption(string command, string message, string hint)
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(command.Split(' '));
        Assert.AreEqual(2, exit, stderr);
        Assert.AreEqual("", stdout);
        StringAssert.Contains(stderr, message);
        StringAssert.Contains(stderr, hint);
    }

    [TestMethod]
    public void APolicyAbort_ExitsWith3_WithNothingToVerify_AndItsReasonOnce()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["demo", "--vm", "hostvm", "--memory", "16MiB", "--max-downtime", "10us", "--no-calibration-store"]);

        Assert.AreEqual(3, exit, stderr + stdout);
        StringAssert.Contains(stdout, "verified: -");
        StringAssert.Matches(stdout, new Regex(@"reason: fixed costs and deferred pages alone take \d+(\.\d+)? ms, over the limit of 0\.01 ms"));
        Assert.AreEqual(1, Regex.Count(stdout, "alone take"), "the reason once, not again as a verify detail: " + stdout);
    }

    [TestMethod]
    [DataRow(null, 160)]
    [DataRow("100", 100)]
    public void RedirectedOutput_IsAsWideAsColumnsSays_Else160_SoTablesDoNotBreakWords(string? columns, int width)
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["plan", "--vm", "hostvm", "--memory", "64MiB", "--workload", "random", "--bandwidth", "10MiB/s", "--max-downtime", "30ms", "--observe", "0.5s", "--no-calibration-store"],
            environment: new Dictionary<string, string?> { ["COLUMNS"] = columns });

        string[] lines = stdout.Split('\n');
        Assert.IsTrue(exit is 0 or 3, stderr);
        Assert.IsTrue(lines.All(l => l.Length <= width), $"a line wider than {width}: {stdout}");
        Assert.IsTrue(lines.Any(l => l.Length > 80), "tables use the width they are given: " + stdout);
        Assert.IsFalse(lines.Any(l => l.Trim() is "e" or "ge" or "er"), "a word broken over two lines: " + stdout);
    }

    [TestMethod]
    public void ASmallVmWithoutHot_GetsAHotSetThatLeavesRoomForAColdOne()
    {
        // The default 64 MiB would not fit: an error about --hot would name an option nobody gave.
        (int exit, string stdout, string stderr) = CliProcess.Run(["demo", "--vm", "hostvm", "--memory", "8MiB", "--workload", "hotcold", "--json", "--no-calibration-store"]);

        Assert.AreEqual(0, exit, stderr);
        using JsonDocument report = JsonDocument.Parse(stdout);
        Assert.AreEqual("completed", report.RootElement.GetProperty("status").GetString());
    }
}
