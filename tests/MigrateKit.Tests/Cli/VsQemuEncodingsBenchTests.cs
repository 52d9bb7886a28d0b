using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static MigrateKit.Tests.Cli.VsQemuBenchTests;

namespace MigrateKit.Tests.Cli;

/// <summary>
/// <c>bench vs-qemu</c>'s scenarios against QEMU's best configurations (issue 17): their names,
/// the xbzrle and random-content targets on made-up runs summarized with <c>--summarize</c>, and
/// QEMU's xbzrle figures carried through.
/// </summary>
[TestClass]
public sealed class VsQemuEncodingsBenchTests
{
    [TestMethod]
    public void Scenarios_IncludeQemusBestConfigurations_AndTheRandomContentOne()
    {
        (int exit, _, string stderr) = CliProcess.Run(["bench", "vs-qemu", "--scenario", "nope"]);

        Assert.AreEqual(2, exit, stderr);
        foreach (string name in (string[])["anchor-100mib-xbzrle", "anchor-100mib-multifd-zstd", "random-100mib"])
        {
            StringAssert.Contains(stderr, name, "an unknown name lists every scenario");
        }
    }

    [TestMethod]
    public void Summarize_Xbzrle_MetWithin0_8OfQemuXbzrlesTimeAndBytes_AndADowntimeOfAtMost10ms()
    {
        JsonObject scenario = Scenario("anchor-100mib-xbzrle",
            qemu: [Xbzrle(Run(1, "completed", 2_100, 7, 202, expected: 300), misses: 25_344), Xbzrle(Run(2, "completed", 2_300, 8, 210, expected: 300), misses: 25_400)],
            migrateKit: [Deltas(Run(1, "completed", 1_600, 9, 150, expected: 9), misses: 25_000), Deltas(Run(2, "completed", 1_700, 9.5, 160, expected: 9), misses: 25_100)]);

        (int exit, _, string stderr, JsonElement result) = Summarize(scenario);

        Assert.AreEqual(0, exit, stderr);
        JsonElement s = result.GetProperty("scenarios")[0];
        Assert.AreEqual((25_344 + 25_400) / 2.0, s.GetProperty("qemu").GetProperty("xbzrle").GetProperty("cacheMisses").GetDouble(), 1e-9, "the median of QEMU's cache misses");
        Assert.AreEqual(JsonValueKind.Null, s.GetProperty("migratekit").GetProperty("xbzrle").ValueKind, "xbzrle is QEMU's");
        Assert.AreEqual(25_050, s.GetProperty("migratekit").GetProperty("deltas").GetProperty("cacheMisses").GetDouble(), 1e-9, "MigrateKit's own delta figures, the counterpart");
        Assert.AreEqual(300, s.GetProperty("migratekit").GetProperty("compressedPages").GetDouble(), 1e-9);
        Assert.IsNull(s.GetProperty("migratekitNoEncodings").GetString(), "only random-100mib runs MigrateKit without encodings");
        string[] met = [.. Met(s)];
        CollectionAssert.IsSubsetOf(new[] { "total time ≤ 0.8× QEMU-xbzrle's", "bytes ≤ 0.8× QEMU-xbzrle's", "downtime ≤ QEMU-xbzrle's or ≤ 10 ms" }, met,
            "1650/2200 = 0.75×, 155/206 = 0.75×, 9.25 ms is above QEMU's 7.5 ms but within 10 ms");
    }

    [TestMethod]
    public void Summarize_Xbzrle_MissedAbove0_8_OrWithADowntimeAboveBothQemusAnd10ms()
    {
        JsonObject scenario = Scenario("anchor-100mib-xbzrle",
            qemu: [Run(1, "completed", 2_100, 7, 202, expected: 300)],
            migrateKit: [Run(1, "completed", 1_800, 12, 150, expected: 12)]);

        (_, string stdout, _, _) = Summarize(scenario, json: false);

        StringAssert.Contains(stdout, "MISSED total time ≤ 0.8× QEMU-xbzrle's: 0.86×");
        StringAssert.Contains(stdout, "met    bytes ≤ 0.8× QEMU-xbzrle's: 0.74×");
        StringAssert.Contains(stdout, "MISSED downtime ≤ QEMU-xbzrle's or ≤ 10 ms: MigrateKit 12.0 ms, QEMU 7.0 ms");
    }

    [TestMethod]
    public void Summarize_Random_EncodingsOnAreComparedWithOff_Within10PercentOr5msOfDowntime()
    {
        JsonObject scenario = Scenario("random-100mib",
            qemu: [Xbzrle(Run(1, "completed", 30_000, 40, 3_000, expected: 300), misses: 760_000)],
            migrateKit: [Run(1, "completed", 5_400, 14, 600, expected: 14)]);
        scenario["migratekitNoEncodings"] = new JsonObject { ["runs"] = new JsonArray(Run(1, "completed", 5_000, 10, 500, expected: 10)) };

        (int exit, string stdout, string stderr, JsonElement result) = Summarize(scenario, json: false);

        Assert.AreEqual(0, exit, stderr);
        JsonElement s = result.GetProperty("scenarios")[0];
        Assert.AreEqual(5_000, s.GetProperty("migratekitNoEncodings").GetProperty("totalMs").GetDouble(), 1e-9);
        StringAssert.Contains(stdout, "MK off", "the table has a column for the runs without encodings");
        StringAssert.Contains(stdout, "met    total time with encodings ≤ 1.1× without: 1.08×");
        StringAssert.Contains(stdout, "MISSED bytes with encodings ≤ 1.1× without: 1.20×: 600 MiB with, 500 MiB without");
        StringAssert.Contains(stdout, "met    downtime with encodings ≤ 1.1× without (or within 5 ms): 1.40×", "14 ms against 10 ms is within the 5 ms of noise");
        StringAssert.Contains(stdout, "760000 cache misses", "QEMU's xbzrle medians are printed under the table");
    }

    [TestMethod]
    public void Summarize_Random_ConvergingWhereTheRunsWithoutEncodingsDidNot_IsNoWorse_AndTheReverseIsWorse()
    {
        JsonObject better = Scenario("random-100mib", qemu: [Run(1, "notConverged", 60_000, null, 6_000)], migrateKit: [Run(1, "completed", 9_000, 200, 900, expected: 210)]);
        better["migratekitNoEncodings"] = new JsonObject { ["runs"] = new JsonArray(Run(1, "notConverged", 4_000, null, 400)) };
        JsonObject worse = Scenario("random-100mib", qemu: [Run(1, "notConverged", 60_000, null, 6_000)], migrateKit: [Run(1, "notConverged", 4_000, null, 400)]);
        worse["migratekitNoEncodings"] = new JsonObject { ["runs"] = new JsonArray(Run(1, "completed", 9_000, 200, 900, expected: 210)) };

        string[] metBetter = [.. Met(Summarize(better).Result.GetProperty("scenarios")[0])];
        string[] metWorse = [.. Met(Summarize(worse).Result.GetProperty("scenarios")[0])];

        Assert.HasCount(3, metBetter.Where(t => t.Contains("with encodings")).ToArray(), string.Join(" | ", metBetter));
        Assert.IsEmpty(metWorse.Where(t => t.Contains("with encodings")).ToArray(), string.Join(" | ", metWorse));
    }

    private static JsonObject Xbzrle(JsonObject run, double misses) => WithDeltas(run, "xbzrle", misses);

    private static JsonObject Deltas(JsonObject run, double misses)
    {
        run["compressedPages"] = 300;
        return WithDeltas(run, "deltas", misses);
    }

    private static JsonObject WithDeltas(JsonObject run, string name, double misses)
    {
        run[name] = new JsonObject { ["cacheMisses"] = misses, ["pages"] = 100_000, ["bytes"] = 1_000_000, ["overflows"] = 0 };
        return run;
    }

    private static string[] Met(JsonElement scenario) =>
        [.. scenario.GetProperty("targets").EnumerateArray().Where(t => t.GetProperty("met").GetBoolean()).Select(t => t.GetProperty("what").GetString()!)];
}
