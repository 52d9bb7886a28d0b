using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary>
/// <c>bench forecast</c>'s summary statistics, on made-up runs summarized with <c>--from</c> (no
/// migration runs), and its usage errors.
/// </summary>
[TestClass]
public sealed class ForecastBenchTests
{
    [TestMethod]
    public void Summary_RanksScoredErrors_AppliesTheFiveMsRuleUnder20Ms_AndCountsTheLimitOnCompletedRunsOnly()
    {
        JsonElement summary = Summarize(
            Completed(actual: 100, predicted: 110, limit: 300),   // 10 %, 10 ms, kept
            Completed(actual: 200, predicted: 150, limit: 100),   // 25 %, 50 ms, broken 2.0x
            Completed(actual: 10, predicted: 14, limit: 30),      // 40 % but 4 ms under 20 ms: scores 0 %
            Completed(actual: 10, predicted: 17, limit: 30),      // 70 %, 7 ms: over the allowance
            Completed(actual: 50, predicted: 55, limit: 30),      // 10 %, 5 ms, but 50 ms is not small: scores 10 %; broken 1.67x
            """{"run":1,"vm":"hostvm","tracker":"write-protect","workload":"sweep","memoryBytes":67108864,"hotBytes":4194304,"limitMs":30,"status":"aborted","reason":"the dirty rate outran the link"}""",
            """{"run":1,"vm":"hostvm","tracker":"write-protect","workload":"sweep","memoryBytes":67108864,"hotBytes":4194304,"limitMs":30,"status":"failed","reason":"no memory"}""");

        Assert.AreEqual(7, summary.GetProperty("runs").GetInt32());
        Assert.AreEqual(5, summary.GetProperty("completed").GetInt32());
        Assert.AreEqual(1, summary.GetProperty("aborted").GetInt32());
        Assert.AreEqual(1, summary.GetProperty("failed").GetInt32());

        // Scored: 0, 10, 10, 25, 70; raw: 10, 10, 25, 40, 70; in ms: 4, 5, 7, 10, 50.
        Assert.AreEqual(10, summary.GetProperty("medianErrorPct").GetDouble(), 1e-9);
        Assert.AreEqual(70, summary.GetProperty("p90ErrorPct").GetDouble(), 1e-9);
        Assert.AreEqual(70, summary.GetProperty("worstErrorPct").GetDouble(), 1e-9);
        Assert.AreEqual(25, summary.GetProperty("rawMedianErrorPct").GetDouble(), 1e-9);
        Assert.AreEqual(7, summary.GetProperty("medianErrorMs").GetDouble(), 1e-9);
        Assert.AreEqual(50, summary.GetProperty("worstErrorMs").GetDouble(), 1e-9);

        // Accurate: 10 % and 25 % (within the 25 % target), 4 ms under 20 ms, 10 %; not 7 ms at 10 ms.
        Assert.AreEqual(80, summary.GetProperty("accuratePct").GetDouble(), 1e-9);

        // Within the limit: 3 of the 5 completed runs; the aborted one is neither kept nor broken.
        Assert.AreEqual(60, summary.GetProperty("withinLimitPct").GetDouble(), 1e-9);
        Assert.AreEqual(2, summary.GetProperty("limitsBroken").GetInt32());
        Assert.AreEqual(2.0, summary.GetProperty("worstOvershootRatio").GetDouble(), 1e-9);

        // Each interval spans 0.9 to 1.1 times its point. At or below the top: all but 200 ms
        // against 150 (top 165). Inside: 100 in [99, 121] and 50 in [49.5, 60.5]; both 10 ms runs
        // fell below their interval's bottom (12.6 and 15.3).
        Assert.AreEqual(80, summary.GetProperty("belowHighPct").GetDouble(), 1e-9);
        Assert.AreEqual(40, summary.GetProperty("insideIntervalPct").GetDouble(), 1e-9);
    }

    [TestMethod]
    public void Summary_MedianOfAnEvenCountIsTheMeanOfTheMiddleTwo_AndP90IsTheNearestRank()
    {
        JsonElement summary = Summarize(
            Completed(actual: 100, predicted: 140, limit: 300),
            Completed(actual: 100, predicted: 110, limit: 300),
            Completed(actual: 100, predicted: 80, limit: 300),
            Completed(actual: 100, predicted: 130, limit: 300));

        Assert.AreEqual(25, summary.GetProperty("medianErrorPct").GetDouble(), 1e-9);
        Assert.AreEqual(40, summary.GetProperty("p90ErrorPct").GetDouble(), 1e-9);
        Assert.AreEqual(100, summary.GetProperty("withinLimitPct").GetDouble(), 1e-9);
        Assert.AreEqual(100.0 / 300, summary.GetProperty("worstOvershootRatio").GetDouble(), 1e-9);
    }

    [TestMethod]
    public void Summary_WithoutCompletedRuns_HasNoErrorFigures()
    {
        JsonElement summary = Summarize(
            """{"run":1,"vm":"hostvm","tracker":"write-protect","workload":"sweep","memoryBytes":67108864,"hotBytes":4194304,"limitMs":30,"status":"aborted","reason":"policy"}""");

        Assert.AreEqual(JsonValueKind.Null, summary.GetProperty("medianErrorPct").ValueKind);
        Assert.AreEqual(JsonValueKind.Null, summary.GetProperty("withinLimitPct").ValueKind);
        Assert.AreEqual(JsonValueKind.Null, summary.GetProperty("worstOvershootRatio").ValueKind);
        Assert.AreEqual(JsonValueKind.Null, summary.GetProperty("belowHighPct").ValueKind);
        Assert.AreEqual(JsonValueKind.Null, summary.GetProperty("insideIntervalPct").ValueKind);
    }

    [TestMethod]
    [DataRow("--memories", "5GiB", "--memories")]
    [DataRow("--limits", "1x", "--limits")]
    [DataRow("--bandwidths", "1GB/sec", "--bandwidths")]
    [DataRow("--workloads", "fill", "--workloads")]
    [DataRow("--trackers", "dirty", "--trackers")]
    [DataRow("--runs", "0", "--runs")]
    [DataRow("--vm", "qemu", "--vm")]
    public void BadValue_IsAUsageErrorNamingTheOption(string option, string value, string named)
    {
        (int exit, _, string stderr) = CliProcess.Run(["bench", "forecast", option, value, "--vm", option == "--vm" ? value : "host"]);

        Assert.AreEqual(2, exit, stderr);
        StringAssert.Contains(stderr, named);
    }

    private static JsonElement Summarize(params string[] runs)
    {
        string file = Path.Combine(Path.GetTempPath(), $"mk-forecast-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(file, $$"""{"runs":[{{string.Join(",", runs)}}]}""");
            (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "forecast", "--from", file, "--json"]);
            Assert.AreEqual(runs.Any(r => r.Contains("\"failed\"", StringComparison.Ordinal)) ? 4 : 0, exit, stderr);
            using JsonDocument doc = JsonDocument.Parse(stdout);
            Assert.AreEqual(runs.Length, doc.RootElement.GetProperty("runs").GetArrayLength());
            return doc.RootElement.GetProperty("summary").Clone();
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string Completed(double actual, double predicted, double limit)
    {
        double errorMs = Math.Abs(predicted - actual);
        return string.Create(CultureInfo.InvariantCulture,
            $$"""{"run":1,"vm":"microvm","tracker":"bitmap","workload":"random","memoryBytes":134217728,"hotBytes":33554432,"limitMs":{{limit}},"status":"completed","verified":true,"predictedDowntimeMs":{{predicted}},"predictedDowntimeLowMs":{{predicted * 0.9}},"predictedDowntimeHighMs":{{predicted * 1.1}},"actualDowntimeMs":{{actual}},"errorPct":{{errorMs / actual * 100}},"errorMs":{{errorMs}},"limitKept":{{(actual <= limit ? "true" : "false")}},"overshootRatio":{{actual / limit}}}""");
    }
}
