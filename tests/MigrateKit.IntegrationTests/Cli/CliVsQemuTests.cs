using System;
using System.Linq;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// <c>bench vs-qemu</c> as a process at its smallest: one run of each side of the unlimited scenario,
/// QEMU→QEMU on KVM and MicroVm→MicroVm booting the same image. Skips only without /dev/kvm or QEMU.
/// </summary>
[TestClass]
[TestCategory("Qemu")]
public sealed class CliVsQemuTests
{
    [TestMethod]
    public void BenchVsQemu_OneUnlimitedRun_BothSidesMigrateTheSameGuest_AndTheJsonHasTheirFigures()
    {
        KvmRequirement.Require("both sides of the bench run on KVM");
        QemuRequirement.Require();

        (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "vs-qemu", "--scenario", "unlimited", "--repeat", "1", "--cutoff", "30s", "--json"], TimeSpan.FromMinutes(4));

        Assert.AreEqual(0, exit, $"{stderr}\n{stdout}");
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement scenario = doc.RootElement.GetProperty("scenarios").EnumerateArray().Single();
        Assert.AreEqual("unlimited", scenario.GetProperty("name").GetString());
        foreach (string side in (string[])["qemu", "migratekit"])
        {
            JsonElement s = scenario.GetProperty(side);
            JsonElement run = s.GetProperty("runs").EnumerateArray().Single();
            Assert.AreEqual("completed", run.GetProperty("status").GetString(), $"{side}: {run}");
            Assert.IsTrue(run.GetProperty("verified").GetBoolean(), $"{side}: the guest runs on at the destination: {run}");
            Assert.IsGreaterThan(0.0, s.GetProperty("totalMs").GetDouble(), side);
            Assert.IsGreaterThan(0.0, s.GetProperty("downtimeMs").GetDouble(), side);

            // The 99 MiB working set (25,344 pages) is non-zero on both sides and must cross the wire
            // at least once: whole from QEMU; from MigrateKit in whatever form its encodings chose,
            // each page first sent without a copy to delta against (a cache miss).
            if (side == "qemu")
            {
                Assert.IsGreaterThan(99.0 * 1048576, s.GetProperty("bytesSent").GetDouble(), side);
            }
            else
            {
                Assert.IsGreaterThanOrEqualTo(25_344.0, s.GetProperty("deltas").GetProperty("cacheMisses").GetDouble(), s.ToString());
            }
        }

        Assert.AreEqual(JsonValueKind.Number, scenario.GetProperty("migratekit").GetProperty("predictionErrorPct").ValueKind, scenario.ToString());
        Assert.AreEqual(JsonValueKind.Number, scenario.GetProperty("totalRatio").ValueKind);
        Assert.IsNotEmpty(scenario.GetProperty("targets").EnumerateArray().ToArray());
        StringAssert.Contains(stderr, "unlimited 1/1 qemu: completed");
        StringAssert.Contains(stderr, "unlimited 1/1 migratekit: completed");
    }

    [TestMethod]
    public void BenchVsQemu_XbzrleScenario_QemuSideOnly_ReadsQemusXbzrleFigures()
    {
        KvmRequirement.Require("QEMU runs on KVM");
        QemuRequirement.Require();

        (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "vs-qemu", "--scenario", "anchor-100mib-xbzrle", "--side", "qemu", "--repeat", "1", "--cutoff", "20s", "--json"], TimeSpan.FromMinutes(3));

        Assert.AreEqual(0, exit, $"{stderr}\n{stdout}");
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement scenario = doc.RootElement.GetProperty("scenarios").EnumerateArray().Single();
        Assert.IsEmpty(scenario.GetProperty("migratekit").GetProperty("runs").EnumerateArray().ToArray(), "--side qemu runs QEMU only");
        JsonElement run = scenario.GetProperty("qemu").GetProperty("runs").EnumerateArray().Single();
        Assert.AreNotEqual("failed", run.GetProperty("status").GetString(), run.ToString());

        // The 99 MiB set goes whole once (25,344 pages, each a cache miss), then its pages as deltas.
        JsonElement xbzrle = run.GetProperty("xbzrle");
        Assert.IsGreaterThanOrEqualTo(25_344.0, xbzrle.GetProperty("cacheMisses").GetDouble(), run.ToString());
        Assert.IsGreaterThan(0.0, xbzrle.GetProperty("pages").GetDouble(), run.ToString());
        Assert.IsGreaterThan(0.0, xbzrle.GetProperty("bytes").GetDouble(), run.ToString());
        StringAssert.Contains(stderr, "anchor-100mib-xbzrle 1/1 qemu: ");
        StringAssert.Contains(stderr, "cache misses");
    }
}
