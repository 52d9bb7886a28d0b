using System;
using System.Linq;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// <c>bench forecast</c> as a process on a tiny matrix: one JSON object with a summary and one row
/// per run, interleaved, each completed run with its forecast (point and interval) and its actual downtime.
/// </summary>
[TestClass]
public sealed class CliForecastBenchTests
{
    [TestInitialize]
    public void RequireWriteTracking() => WriteTrackingRequirement.Require();

    [TestMethod]
    public void BenchForecast_TinyHostMatrix_PrintsASummaryAndEveryRunWithItsForecastIntervalAndActual()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["bench", "forecast", "--vm", "host", "--workloads", "sweep", "--memories", "64MiB", "--bandwidths", "unlimited,100MiB/s", "--limits", "100ms", "--runs", "2", "--json"],
            TimeSpan.FromMinutes(2));

        Assert.AreEqual(0, exit, stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement summary = doc.RootElement.GetProperty("summary");
        JsonElement[] runs = [.. doc.RootElement.GetProperty("runs").EnumerateArray()];
        string figures = $"{summary}; stderr: {stderr}";
        Assert.AreEqual(4, summary.GetProperty("runs").GetInt32(), figures);
        Assert.HasCount(4, runs);
        foreach (string field in (string[])["medianErrorPct", "p90ErrorPct", "worstErrorPct", "withinLimitPct", "worstOvershootRatio", "belowHighPct", "insideIntervalPct"])
        {
            Assert.IsTrue(summary.TryGetProperty(field, out _), field);
        }

        if (summary.GetProperty("completed").GetInt32() > 0)
        {
            // Every completed run carries its interval, so the share it held is a figure.
            Assert.IsTrue(summary.GetProperty("belowHighPct").GetDouble() is >= 0 and <= 100, figures);
            Assert.IsTrue(summary.GetProperty("insideIntervalPct").GetDouble() <= summary.GetProperty("belowHighPct").GetDouble(), figures);
        }

        // Interleaved: every cell once, then every cell again.
        CollectionAssert.AreEqual(new[] { 1, 1, 2, 2 }, runs.Select(r => r.GetProperty("run").GetInt32()).ToArray());
        CollectionAssert.AreEqual(new[] { false, true, false, true }, runs.Select(r => r.GetProperty("bandwidthBytesPerSecond").ValueKind == JsonValueKind.Number).ToArray());
        foreach (JsonElement run in runs)
        {
            Assert.AreEqual("hostvm", run.GetProperty("vm").GetString());
            Assert.AreEqual("write-protect", run.GetProperty("tracker").GetString());
            Assert.AreEqual(100, run.GetProperty("limitMs").GetDouble());
            Assert.IsTrue(run.GetProperty("totalMs").GetDouble() > 0, run.ToString());
            Assert.IsTrue(run.GetProperty("bytesSent").GetUInt64() > 0, run.ToString());
            string status = run.GetProperty("status").GetString()!;
            if (status == "aborted")
            {
                Assert.IsFalse(string.IsNullOrEmpty(run.GetProperty("reason").GetString()), run.ToString());
                continue;
            }

            Assert.AreEqual("completed", status, run.ToString());
            Assert.IsTrue(run.GetProperty("verified").GetBoolean(), run.ToString());
            double low = run.GetProperty("predictedDowntimeLowMs").GetDouble();
            double point = run.GetProperty("predictedDowntimeMs").GetDouble();
            double high = run.GetProperty("predictedDowntimeHighMs").GetDouble();
            Assert.IsTrue(low <= point && point <= high, run.ToString());
            Assert.IsTrue(run.GetProperty("actualDowntimeMs").GetDouble() > 0, run.ToString());
            Assert.IsTrue(run.GetProperty("errorPct").GetDouble() >= 0, run.ToString());
            Assert.IsTrue(run.GetProperty("limitKept").ValueKind is JsonValueKind.True or JsonValueKind.False, run.ToString());
        }
    }
}
