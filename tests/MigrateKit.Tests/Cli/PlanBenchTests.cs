using System;
using System.Globalization;
using System.IO;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary>
/// <c>bench plan</c>'s summary on made-up runs summarized with <c>--from</c> (nothing migrates):
/// the share of right verdicts over the judged runs, the medians over the runs both planned and
/// completed; and its usage errors.
/// </summary>
[TestClass]
public sealed class PlanBenchTests
{
    [TestMethod]
    public void Summary_CountsRightVerdictsOverJudgedRuns_AndTakesMediansOverTheRunsBothPlannedAndCompleted()
    {
        (int exit, JsonElement summary) = Summarize(
            Run("completed", planned: true, right: true, totalError: 10, bytesError: 4),
            Run("completed", planned: true, right: true, totalError: 30, bytesError: 6),
            Run("completed", planned: true, right: true, totalError: 2, bytesError: 50),
            Run("aborted", planned: false, right: true, totalError: null, bytesError: null),
            Run("aborted", planned: true, right: false, totalError: null, bytesError: null),
            """{"run":1,"vm":"hostvm","tracker":"write-protect","workload":"sweep","memoryBytes":134217728,"hotBytes":4194304,"bandwidthBytesPerSecond":104857600,"limitMs":30,"status":"failed","reason":"no memory"}""");

        Assert.AreEqual(4, exit, "4 of 5 right verdicts is under the 95 % target");
        Assert.AreEqual(6, summary.GetProperty("runs").GetInt32());
        Assert.AreEqual(5, summary.GetProperty("judged").GetInt32());
        Assert.AreEqual(1, summary.GetProperty("failed").GetInt32());
        Assert.AreEqual(4, summary.GetProperty("verdictsRight").GetInt32());
        Assert.AreEqual(80, summary.GetProperty("rightVerdictPct").GetDouble(), 1e-9);
        Assert.AreEqual(3, summary.GetProperty("compared").GetInt32());
        Assert.AreEqual(10, summary.GetProperty("medianTotalErrorPct").GetDouble(), 1e-9);
        Assert.AreEqual(30, summary.GetProperty("p90TotalErrorPct").GetDouble(), 1e-9);
        Assert.AreEqual(6, summary.GetProperty("medianBytesErrorPct").GetDouble(), 1e-9);
        Assert.IsFalse(summary.GetProperty("targetsMet").GetBoolean());
    }

    [TestMethod]
    public void Summary_AllVerdictsRightAndMediansWithin20Pct_MeetsTheTargets()
    {
        (int exit, JsonElement summary) = Summarize(
            Run("completed", planned: true, right: true, totalError: 19, bytesError: 20),
            Run("aborted", planned: false, right: true, totalError: null, bytesError: null));

        Assert.AreEqual(0, exit);
        Assert.AreEqual(100, summary.GetProperty("rightVerdictPct").GetDouble(), 1e-9);
        Assert.IsTrue(summary.GetProperty("targetsMet").GetBoolean());
    }

    [TestMethod]
    [DataRow("--limits", "1x", "--limits")]
    [DataRow("--workloads", "fill", "--workloads")]
    [DataRow("--runs", "0", "--runs")]
    [DataRow("--vm", "qemu", "--vm")]
    [DataRow("--observe", "soon", "--observe")]
    public void BadValue_IsAUsageErrorNamingTheOption(string option, string value, string named)
    {
        (int exit, _, string stderr) = CliProcess.Run(["bench", "plan", option, value, "--vm", option == "--vm" ? value : "host"]);

        Assert.AreEqual(2, exit, stderr);
        StringAssert.Contains(stderr, named);
    }

    private static (int Exit, JsonElement Summary) Summarize(params string[] runs)
    {
        string file = Path.Combine(Path.GetTempPath(), $"mk-plan-bench-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(file, $$"""{"runs":[{{string.Join(",", runs)}}]}""");
            (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "plan", "--from", file, "--json"]);
            Assert.IsTrue(exit is 0 or 4, stderr);
            using JsonDocument doc = JsonDocument.Parse(stdout);
            Assert.AreEqual(runs.Length, doc.RootElement.GetProperty("runs").GetArrayLength());
            return (exit, doc.RootElement.GetProperty("summary").Clone());
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string Run(string status, bool planned, bool right, double? totalError, double? bytesError)
    {
        static string N(double? v) => v is double d ? d.ToString(CultureInfo.InvariantCulture) : "null";
        return $$"""{"run":1,"vm":"microvm","tracker":"bitmap","workload":"random","memoryBytes":134217728,"hotBytes":33554432,"bandwidthBytesPerSecond":104857600,"limitMs":30,"status":"{{status}}","plannedVerdict":"{{(planned ? "converges" : "doesNotConverge")}}","plannedConverges":{{(planned ? "true" : "false")}},"verdictRight":{{(right ? "true" : "false")}},"totalErrorPct":{{N(totalError)}},"bytesErrorPct":{{N(bytesError)}},"slowdownPct":0.5}""";
    }
}
