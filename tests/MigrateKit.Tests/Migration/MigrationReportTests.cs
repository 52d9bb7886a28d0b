using System;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Migration;

/// <summary>MigrationReport: source-generated, camelCase, indented JSON that reads back.</summary>
[TestClass]
public sealed class MigrationReportTests
{
    private static MigrationReport Failed() => new()
    {
        Status = MigrationStatus.Failed,
        Reason = "the destination closed the connection",
        FailedPhase = MigrationPhase.Switchover,
        Error = new InvalidOperationException("not serialized"),
        MemoryBytes = 1UL << 30,
        Rounds = 2,
        BytesSent = 123_456_789,
        PagesSent = 30_000,
        TotalMs = 1234.5,
        MaxThrottlePercent = 40,
        HotPagesDeferred = 17,
        RoundsDetail =
        [
            new RoundReport { Round = 0, BytesSent = 100, PagesSent = 1, PredictedDowntimeMs = 900.25, PredictedTotalMs = null, Verdict = ConvergenceVerdict.Unknown, Action = RoundAction.Throttle, ThrottlePercent = 0 },
            new RoundReport { Round = 1, BytesSent = 200, PagesSent = 2, PredictedDowntimeMs = 450.5, PredictedTotalMs = 2500, Verdict = ConvergenceVerdict.Converging, Action = RoundAction.Continue, ThrottlePercent = 40 },
        ],
    };

    [TestMethod]
    public void ToJson_IsCamelCase_WithEnumsAsNames_AndNullsLeftOut()
    {
        string json = Failed().ToJson();
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement root = doc.RootElement;
        Assert.AreEqual("failed", root.GetProperty("status").GetString());
        Assert.AreEqual("switchover", root.GetProperty("failedPhase").GetString());
        Assert.AreEqual("the destination closed the connection", root.GetProperty("reason").GetString());
        Assert.AreEqual(123_456_789UL, root.GetProperty("bytesSent").GetUInt64());
        Assert.AreEqual(40, root.GetProperty("maxThrottlePercent").GetInt32());
        Assert.IsFalse(root.TryGetProperty("error", out _));
        Assert.IsFalse(root.TryGetProperty("downtimeMs", out _), "null downtime is left out");
        Assert.IsFalse(root.TryGetProperty("predictedDowntimeMs", out _));

        JsonElement rounds = root.GetProperty("roundsDetail");
        Assert.AreEqual(2, rounds.GetArrayLength());
        Assert.AreEqual(900.25, rounds[0].GetProperty("predictedDowntimeMs").GetDouble());
        Assert.IsFalse(rounds[0].TryGetProperty("predictedTotalMs", out _));
        Assert.AreEqual(2500d, rounds[1].GetProperty("predictedTotalMs").GetDouble());
        Assert.AreEqual("throttle", rounds[0].GetProperty("action").GetString());
    }

    [TestMethod]
    public void FromJson_ReadsReportsWrittenWithPascalCaseEnums()
    {
        string json = Failed().ToJson().Replace("\"failed\"", "\"Failed\"", StringComparison.Ordinal).Replace("\"switchover\",", "\"Switchover\",", StringComparison.Ordinal);
        StringAssert.Contains(json, "\"Failed\"");
        StringAssert.Contains(json, "\"Switchover\"");
        MigrationReport back = MigrationReport.FromJson(json);
        Assert.AreEqual(MigrationStatus.Failed, back.Status);
        Assert.AreEqual(MigrationPhase.Switchover, back.FailedPhase);
    }

    [TestMethod]
    public void FromJson_ReadsBackWhatToJsonWrote()
    {
        MigrationReport original = Failed();
        MigrationReport back = MigrationReport.FromJson(original.ToJson());
        Assert.AreEqual(original.Status, back.Status);
        Assert.AreEqual(original.Reason, back.Reason);
        Assert.AreEqual(original.FailedPhase, back.FailedPhase);
        Assert.AreEqual(original.MemoryBytes, back.MemoryBytes);
        Assert.AreEqual(original.Rounds, back.Rounds);
        Assert.AreEqual(original.TotalMs, back.TotalMs);
        Assert.AreEqual(original.HotPagesDeferred, back.HotPagesDeferred);
        Assert.IsNull(back.Error);
        Assert.IsNull(back.DowntimeMs);
        Assert.HasCount(2, back.RoundsDetail);
        Assert.AreEqual(450.5, back.RoundsDetail[1].PredictedDowntimeMs);
        Assert.IsNull(back.RoundsDetail[0].PredictedTotalMs);
        Assert.AreEqual(ConvergenceVerdict.Converging, back.RoundsDetail[1].Verdict);
        Assert.AreEqual(40, back.RoundsDetail[1].ThrottlePercent);
    }

    [TestMethod]
    public void FromJson_Null_Throws() =>
        Assert.ThrowsExactly<JsonException>(() => MigrationReport.FromJson("null"));

    [TestMethod]
    public void FromJson_UnknownStatus_Throws() =>
        Assert.ThrowsExactly<JsonException>(() => MigrationReport.FromJson("{\"status\":\"Exploded\"}"));
}
