using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary>
/// <c>bench vs-qemu</c> without QEMU or KVM: its medians, ratios and targets on made-up runs
/// summarized with <c>--summarize</c>, and its usage errors.
/// </summary>
[TestClass]
public sealed class VsQemuBenchTests
{
    [TestMethod]
    public void Summarize_MediansOverConvergedRuns_RatiosOfTheMedians_AndTheAutoconvergeTargets()
    {
        JsonObject scenario = Scenario("anchor-100mib-autoconverge",
            qemu: [Run(1, "completed", 25_600, 24, 2_600, expected: 30), Run(2, "completed", 25_800, 26, 2_700, expected: 31), Run(3, "failed", null, null, null)],
            migrateKit: [Run(1, "completed", 4_000, 250, 400, expected: 240), Run(2, "completed", 4_200, 280, 420, expected: 270), Run(3, "notConverged", 60_000, null, 6_000)]);

        (int exit, string stdout, string stderr, JsonElement result) = Summarize(scenario);

        Assert.AreEqual(4, exit, $"a failed run makes exit code 4: {stderr}");
        JsonElement s = result.GetProperty("scenarios")[0];
        Assert.AreEqual(2, s.GetProperty("qemu").GetProperty("converged").GetInt32());
        Assert.AreEqual(25_700, s.GetProperty("qemu").GetProperty("totalMs").GetDouble(), 1e-9, "the median of the two completed runs; the failed one is left out");
        Assert.AreEqual(4_100, s.GetProperty("migratekit").GetProperty("totalMs").GetDouble(), 1e-9, "the run cut off is not among the converged medians");
        Assert.AreEqual(4_100 / 25_700.0, s.GetProperty("totalRatio").GetDouble(), 1e-9);
        Assert.AreEqual(410.0 / 2_650, s.GetProperty("bytesRatio").GetDouble(), 1e-9);

        // Errors: MigrateKit 10/250 = 4 % and 10/280 = 3.6 %; QEMU 6/24 = 25 % and 5/26 = 19 %.
        Assert.AreEqual((4.0 + 10.0 / 280 * 100) / 2, s.GetProperty("migratekit").GetProperty("predictionErrorPct").GetDouble(), 1e-9);
        string[] met = [.. s.GetProperty("targets").EnumerateArray().Where(t => t.GetProperty("met").GetBoolean()).Select(t => t.GetProperty("what").GetString()!)];
        CollectionAssert.AreEquivalent(
            new[] { "total time ≤ 0.25× QEMU's", "bytes ≤ 0.2× QEMU's", "downtime ≤ 300 ms", "forecast error ≤ 10 % (under 20 ms: within 5 ms)", "forecast error below QEMU's expected-downtime error" },
            met, stdout);
    }

    [TestMethod]
    public void Summarize_ASideThatNeverConverged_IsReportedAtTheCutoff_AndMissesItsTargets()
    {
        JsonObject scenario = Scenario("unlimited",
            qemu: [Run(1, "completed", 700, 60, 270, expected: 20)],
            migrateKit: [Run(1, "notConverged", 60_000, null, 6_000)]);

        (int exit, string stdout, _, JsonElement result) = Summarize(scenario, json: false);

        Assert.AreEqual(0, exit, "no run failed");
        Assert.IsFalse(result.GetProperty("scenarios")[0].GetProperty("migratekit").GetProperty("mediansOfConverged").GetBoolean());
        Assert.AreEqual(60_000, result.GetProperty("scenarios")[0].GetProperty("migratekit").GetProperty("totalMs").GetDouble(), 1e-9, "the figures at the cut-off, never dropped");
        StringAssert.Contains(stdout, "0/1 (cut off)");
        StringAssert.Contains(stdout, "MISSED total time ≤ 1.0× QEMU's");
        StringAssert.Contains(stdout, "MISSED downtime ≤ QEMU's");
        StringAssert.Contains(stdout, "missed in at least one scenario");
    }

    [TestMethod]
    public void Summarize_ADowntimeUnder20msPredictedWithin5ms_ScoresZero_AndTheRawErrorIsStillShown()
    {
        JsonObject scenario = Scenario("idle-4gib",
            qemu: [Run(1, "completed", 220, 4, 9, expected: 300)],
            migrateKit: [Run(1, "completed", 50, 2.6, 0.1, expected: 0.5)]);

        (_, _, _, JsonElement result) = Summarize(scenario);

        JsonElement m = result.GetProperty("scenarios")[0].GetProperty("migratekit");
        Assert.AreEqual(2.1 / 2.6 * 100, m.GetProperty("predictionErrorPct").GetDouble(), 1e-9, "raw: 2.1 ms of 2.6 ms");
        Assert.AreEqual(0, m.GetProperty("scoredErrorPct").GetDouble(), "2.1 ms off a 2.6 ms downtime is within the 5 ms allowance");
        JsonElement q = result.GetProperty("scenarios")[0].GetProperty("qemu");
        Assert.AreEqual(7400, q.GetProperty("scoredErrorPct").GetDouble(), 1e-9, "QEMU's 296 ms off is outside any allowance");
        Assert.IsTrue(result.GetProperty("scenarios")[0].GetProperty("targets").EnumerateArray().All(t => t.GetProperty("met").GetBoolean()));
    }

    [TestMethod]
    [DataRow(new[] { "--repeat", "0" }, "--repeat 0")]
    [DataRow(new[] { "--scenario", "nope" }, "--scenario nope: unknown")]
    [DataRow(new[] { "--cutoff", "0s" }, "--cutoff 0s")]
    [DataRow(new[] { "--side", "neither" }, "--side neither")]
    public void BadOptions_AreUsageErrorsThatNameTheOption(string[] args, string message)
    {
        (int exit, _, string stderr) = CliProcess.Run(["bench", "vs-qemu", .. args]);

        Assert.AreEqual(2, exit, stderr);
        StringAssert.Contains(stderr, message);
    }

    internal static (int Exit, string Stdout, string Stderr, JsonElement Result) Summarize(JsonObject scenario, bool json = true)
    {
        var bench = new JsonObject { ["date"] = "2026-12-03", ["repeat"] = 3, ["cutoffSeconds"] = 60, ["scenarios"] = new JsonArray(scenario) };
        string file = Path.Combine(Path.GetTempPath(), $"mk-vs-qemu-{Guid.NewGuid():N}.json");
        string saved = file + ".out";
        File.WriteAllText(file, bench.ToJsonString());
        try
        {
            (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "vs-qemu", "--summarize", file, "--out", saved, .. json ? ["--json"] : Array.Empty<string>()]);
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(saved));
            return (exit, stdout, stderr, doc.RootElement.Clone());
        }
        finally
        {
            File.Delete(file);
            File.Delete(saved);
        }
    }

    internal static JsonObject Scenario(string name, JsonObject[] qemu, JsonObject[] migrateKit) => new()
    {
        ["name"] = name,
        ["description"] = "made up",
        ["qemu"] = new JsonObject { ["runs"] = new JsonArray([.. qemu]) },
        ["migratekit"] = new JsonObject { ["runs"] = new JsonArray([.. migrateKit]) },
        ["targets"] = new JsonArray(),
    };

    internal static JsonObject Run(int run, string status, double? totalMs, double? downtimeMs, double? mib, double? expected = null) => new()
    {
        ["run"] = run,
        ["status"] = status,
        ["totalMs"] = totalMs,
        ["downtimeMs"] = downtimeMs,
        ["bytesSent"] = mib is double m ? (ulong)(m * 1048576) : null,
        ["predictedDowntimeMs"] = expected,
        ["verified"] = status == "completed",
    };
}
