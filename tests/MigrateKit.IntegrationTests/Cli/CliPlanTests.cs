using System;
using System.Linq;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Migration;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary><c>plan --json</c> as a process on a HostVm: one object with the verdict, the predictions, the recommendation, the curve and the observation's cost.</summary>
[TestClass]
public sealed class CliPlanTests
{
    [TestInitialize]
    public void RequireWriteTracking() => WriteTrackingRequirement.Require();

    [TestMethod]
    public void PlanJson_OnAHostVm_PrintsOneObjectWithThePredictionsTheCurveAndTheObservationCost()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["plan", "--vm", "hostvm", "--memory", "64MiB", "--workload", "sweep", "--hot", "8MiB", "--bandwidth", "100MiB/s", "--max-downtime", "300ms", "--observe", "1s", "--json"],
            TimeSpan.FromSeconds(30));

        // 8 MiB rewritten at 25000 pages/s (the HostVm's pace) fits 300 ms at 100 MiB/s.
        Assert.AreEqual(0, exit, stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement plan = doc.RootElement;
        Assert.IsTrue(plan.GetProperty("converges").GetBoolean(), stdout);
        Assert.IsTrue(plan.GetProperty("predictedTotalMs").GetDouble() > 0, stdout);
        Assert.IsTrue(plan.GetProperty("predictedBytes").GetUInt64() >= 8UL << 20, "round 0 sends the populated hot set at least");
        Assert.IsTrue(plan.GetProperty("predictedDowntimeMs").GetDouble() is > 0 and <= 300, stdout);
        Assert.IsTrue(plan.GetProperty("predictedRounds").GetInt32() >= 2, stdout);
        Assert.AreEqual(plan.GetProperty("predictedRounds").GetInt32(), plan.GetProperty("rounds").GetArrayLength());
        JsonElement recommended = plan.GetProperty("recommended");
        Assert.IsTrue(recommended.GetProperty("bandwidthBytesPerSecond").GetDouble() > 0);
        Assert.IsFalse(recommended.GetProperty("postcopy").GetBoolean());
        Assert.IsFalse(string.IsNullOrEmpty(recommended.GetProperty("reason").GetString()));

        // Marks up to --observe 1s; the sweep saturates at the 2048-page hot set.
        JsonElement[] curve = [.. plan.GetProperty("curve").EnumerateArray()];
        CollectionAssert.AreEqual(new[] { 100.0, 200, 500, 1000 }, curve.Select(p => Math.Round(p.GetProperty("elapsedMs").GetDouble() / 100) * 100).ToArray());
        long[] pages = [.. curve.Select(p => p.GetProperty("distinctPages").GetInt64())];
        Assert.IsTrue(pages.Zip(pages.Skip(1)).All(p => p.First <= p.Second), stdout);
        Assert.IsTrue(pages[^1] is >= 2048 and <= 2100, stdout);

        JsonElement observation = plan.GetProperty("observation");
        Assert.AreEqual("write-protect", observation.GetProperty("tracker").GetString());
        Assert.IsTrue(observation.GetProperty("unobservedPagesPerSecond").GetDouble() > 0, stdout);
        Assert.IsTrue(observation.GetProperty("observedPagesPerSecond").GetDouble() > 0, stdout);
        Assert.AreEqual(JsonValueKind.Number, observation.GetProperty("slowdownPct").ValueKind);
    }

    [TestMethod]
    public void PlanDestination_IsCorrectedByTheSwitchoversToThatHost()
    {
        // A store in which switchovers to one host took a second more than forecast.
        string store = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"mk-plan-store-{Guid.NewGuid():N}.json");
        try
        {
            // A host name is keyed by the address a connection to it tries first, as the engine keys the connection.
            string local = MigrationPlanner.ResolveDestinationAsync("localhost:7000").GetAwaiter().GetResult();
            var history = new MigrateKit.Estimation.DowntimeHistory(new MigrateKit.Estimation.FileCalibrationStore(store));
            for (int i = 0; i < 3; i++)
            {
                history.Record("engine/write-protect/limited@tcp:10.0.0.9", TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1002));
                history.Record($"engine/write-protect/limited@{local[..local.LastIndexOf(':')]}", TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(2002));
            }

            double Planned(params string[] extra)
            {
                (int exit, string stdout, string stderr) = CliProcess.Run(
                    ["plan", "--vm", "hostvm", "--memory", "64MiB", "--workload", "sweep", "--hot", "8MiB", "--bandwidth", "100MiB/s", "--max-downtime", "5s", "--observe", "0.5s", "--calibration-store", store, "--json", .. extra],
                    TimeSpan.FromSeconds(30));
                Assert.AreEqual(0, exit, stderr);
                using JsonDocument doc = JsonDocument.Parse(stdout);
                return doc.RootElement.GetProperty("predictedDowntimeMs").GetDouble();
            }

            double there = Planned("--destination", "tcp:10.0.0.9:7000");
            double elsewhere = Planned("--destination", "tcp:10.0.0.10:7000");
            Assert.IsGreaterThan(1000.0, there, "the host's own switchovers: a second more");
            Assert.IsLessThan(500.0, elsewhere, "a host without switchovers: every destination's, of which the store has none");
            Assert.IsGreaterThan(2000.0, Planned("--destination", "localhost:7000"), $"localhost's switchovers, kept under {local}");
        }
        finally
        {
            System.IO.File.Delete(store);
            System.IO.File.Delete(store + ".lock");
        }
    }

    [TestMethod]
    [DataRow("7000", "'7000' is not an address")]
    [DataRow("tcp:10.0.0.9:70000", "has an invalid port '70000' (0 to 65535)")]
    [DataRow("tcp:no-such-host.invalid:7000", "cannot resolve the host")]
    public void PlanDestination_ThatIsNoAddress_IsRejectedBeforeTheGuestStarts(string destination, string why)
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["plan", "--vm", "hostvm", "--memory", "64MiB", "--workload", "sweep", "--hot", "8MiB", "--bandwidth", "100MiB/s", "--observe", "5s", "--destination", destination, "--json", "--verbose"],
            TimeSpan.FromSeconds(30));

        Assert.AreEqual(2, exit, stderr);
        Assert.AreEqual("", stdout);
        StringAssert.StartsWith(stderr, "migratekit plan: --destination ", "the error names the option");
        StringAssert.Contains(stderr, why);
        Assert.DoesNotContain("observing", stderr, "rejected before the observation (--verbose prints each phase)");
    }
}
