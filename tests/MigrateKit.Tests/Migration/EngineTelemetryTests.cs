using System;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.Migration;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// The engine's and the receiver's metrics, spans and logs, on the scripted migrations of
/// <see cref="EngineHarness"/>. Not run in parallel with other tests: the meter is static.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class EngineTelemetryTests
{
    [TestMethod]
    public async Task Completed_CountersAddUpToTheReport()
    {
        using var capture = new TelemetryCapture();
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        Assert.AreEqual((double)report.BytesSent, capture.Sum("migratekit.bytes.sent"));
        Assert.AreEqual((double)report.PagesSent, capture.Sum("migratekit.pages.sent"));
        Assert.AreEqual(report.Rounds, capture.Sum("migratekit.rounds"));
        Assert.AreEqual("By", capture.Measurements("migratekit.bytes.sent")[0].Unit);

        Measured outcome = capture.Measurements("migratekit.migrations").Single();
        Assert.AreEqual(1, outcome.Value);
        Assert.AreEqual("completed", outcome.Tags["migratekit.status"]);

        // Every measurement says where it comes from: the engine's, and the receiver's of the same migration.
        foreach (Measured m in capture.All.Where(m => !Equals(m.Tags["migratekit.source"], "receiver")))
        {
            Assert.AreEqual("engine", m.Tags["migratekit.source"], m.Instrument);
            Assert.AreEqual(nameof(ScriptedTracker), m.Tags["migratekit.tracker"], m.Instrument);
            Assert.IsTrue(m.Tags.ContainsKey("migratekit.vm.kind"), m.Instrument);
        }
    }

    [TestMethod]
    public async Task Completed_RecordsEveryRoundsForecastAndTheActualDowntime()
    {
        using var capture = new TelemetryCapture();
        (MigrationReport report, RoundReport[] rounds) = await CompletedAsync();

        Measured[] predicted = capture.Measurements("migratekit.downtime.predicted");
        Assert.AreSequenceEqual(rounds.Select(r => r.PredictedDowntimeMs).ToArray(), predicted.Select(m => m.Value).ToArray());
        Assert.IsTrue(predicted.All(m => m.Value > 0), "predicted downtimes are positive");
        Assert.AreEqual("ms", predicted[0].Unit);

        Measured actual = capture.Measurements("migratekit.downtime.actual").Single();
        Assert.AreEqual(report.DowntimeMs!.Value, actual.Value);
        Assert.IsGreaterThan(0, actual.Value);

        Assert.AreSequenceEqual(rounds.Select(r => r.DirtyRate).ToArray(), capture.Measurements("migratekit.dirty_rate").Select(m => m.Value).ToArray());
        Assert.AreSequenceEqual(rounds.Select(r => (double)r.ThrottlePercent).ToArray(), capture.Measurements("migratekit.throttle").Select(m => m.Value).ToArray());

        // One harvest after each round and the final one during the switchover; the script's harvests take 1 ms.
        Measured[] harvests = capture.Measurements("migratekit.harvest.duration");
        Assert.HasCount(report.Rounds + 1, harvests);
        Assert.IsTrue(harvests.All(m => m.Value == 1.0));
    }

    [TestMethod]
    public async Task Completed_GaugesFollowTheRoundsAndEndAtTheReportsFigures()
    {
        using var capture = new TelemetryCapture();
        (MigrationReport report, RoundReport[] rounds) = await CompletedAsync();

        Assert.AreEqual((double)report.MemoryBytes, capture.Measurements("migratekit.migration.data.total").Single().Value);
        Measured[] processed = capture.Measurements("migratekit.migration.data.processed");
        Assert.AreEqual(0.0, processed[0].Value, "nothing sent when the migration starts");
        Assert.AreEqual((double)report.BytesSent, processed[^1].Value);
        Assert.IsTrue(processed.Zip(processed.Skip(1)).All(p => p.First.Value <= p.Second.Value), "processed never goes back");

        // Everything at the start, one forecast's remainder per round, nothing at the end.
        Measured[] remaining = capture.Measurements("migratekit.migration.data.remaining");
        Assert.HasCount(report.Rounds + 2, remaining);
        Assert.AreEqual((double)report.MemoryBytes, remaining[0].Value);
        Assert.AreEqual(0.0, remaining[^1].Value);
        Assert.IsLessThan((double)report.MemoryBytes, remaining[^2].Value);

        Assert.AreSequenceEqual(rounds.Select(r => r.DirtyRate * 4096).ToArray(), capture.Measurements("migratekit.migration.dirty_memory_rate").Select(m => m.Value).ToArray());
        Assert.AreSequenceEqual(rounds.Select(r => r.Bandwidth).ToArray(), capture.Measurements("migratekit.migration.memory_transfer_rate").Select(m => m.Value).ToArray());
        Assert.AreEqual("By/s", capture.Measurements("migratekit.migration.memory_transfer_rate")[0].Unit);
        Assert.AreEqual(report.PredictedDowntimeMs!.Value, capture.Measurements("migratekit.migration.downtime.predicted").Last().Value);
        Assert.AreEqual(report.DowntimeMs!.Value, capture.Measurements("migratekit.migration.downtime.actual").Single().Value);
    }

    [TestMethod]
    public async Task Completed_TracesOneMigrationWithARoundSpanPerRound()
    {
        using var capture = new TelemetryCapture();
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        Activity migration = capture.Spans("migratekit.migrate").Single();
        Assert.AreEqual(ActivityStatusCode.Ok, migration.Status);
        Assert.AreEqual(capture.Root.SpanId, migration.ParentSpanId);
        Assert.AreEqual("completed", migration.GetTagItem("migratekit.status"));
        Assert.AreEqual((long)h.Memory.TotalSize, migration.GetTagItem("migratekit.memory.bytes"));
        Assert.AreEqual(1L << 20, migration.GetTagItem("migratekit.bandwidth.limit"));
        Assert.AreEqual(100.0, migration.GetTagItem("migratekit.downtime.max_ms"));
        Assert.AreEqual(report.Rounds, migration.GetTagItem("migratekit.rounds"));
        Assert.AreEqual(report.DowntimeMs, migration.GetTagItem("migratekit.downtime.actual_ms"));
        Assert.AreEqual(report.PredictedDowntimeMs, migration.GetTagItem("migratekit.downtime.predicted_ms"));

        Activity[] rounds = capture.Spans("migratekit.round");
        Assert.HasCount(report.Rounds, rounds);
        Assert.IsTrue(rounds.All(r => r.ParentSpanId == migration.SpanId), "round spans are children of the migration's");
        Assert.IsTrue(rounds.All(r => r.Status == ActivityStatusCode.Unset));
        Assert.AreSequenceEqual(Enumerable.Range(0, report.Rounds).Cast<object?>().ToArray(), rounds.Select(r => r.GetTagItem("migratekit.round")).ToArray());
        RoundReport[] rows = report.RoundsDetail.Take(report.Rounds).ToArray();
        Assert.AreSequenceEqual(rows.Select(r => (object?)(long)r.PagesSent).ToArray(), rounds.Select(r => r.GetTagItem("migratekit.pages.sent")).ToArray());
        Assert.AreSequenceEqual(rows.Select(r => (object?)(long)r.BytesSent).ToArray(), rounds.Select(r => r.GetTagItem("migratekit.bytes.sent")).ToArray());
        Assert.AreSequenceEqual(rows.Select(r => (object?)(long)r.DirtyPages).ToArray(), rounds.Select(r => r.GetTagItem("migratekit.pages.dirty")).ToArray());
        Assert.AreSequenceEqual(rows.Select(r => (object?)r.PredictedDowntimeMs).ToArray(), rounds.Select(r => r.GetTagItem("migratekit.downtime.predicted_ms")).ToArray());
        Assert.AreSequenceEqual(rows.Select(r => (object?)ReportNames.Of(r.Action)).ToArray(), rounds.Select(r => r.GetTagItem("migratekit.action")).ToArray());

        Activity switchover = capture.Spans("migratekit.switchover").Single();
        Assert.AreEqual(migration.SpanId, switchover.ParentSpanId);
        Assert.AreEqual(ActivityStatusCode.Ok, switchover.Status);
        Assert.IsGreaterThanOrEqualTo(rounds.Max(r => r.StartTimeUtc + r.Duration), switchover.StartTimeUtc);

        Activity receive = capture.Spans("migratekit.receive").Single();
        Assert.AreEqual(ActivityStatusCode.Ok, receive.Status);
        Assert.AreEqual("vm-under-test", receive.GetTagItem("migratekit.vm.name"));
        Assert.AreEqual(received.Rounds, receive.GetTagItem("migratekit.rounds"));
        Assert.AreEqual((long)received.PagesReceived, receive.GetTagItem("migratekit.pages.sent"));
    }

    [TestMethod]
    public async Task PolicyAbort_SetsTheSpanStatusToErrorWithTheReason()
    {
        using var capture = new TelemetryCapture();

        // A one-second pause alone overruns the 100 ms limit: the policy gives up after round 0.
        await using var h = new EngineHarness(EngineHarness.Converging) { PauseLatency = _ => TimeSpan.FromSeconds(1) };
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Aborted, report.Status);

        Activity migration = capture.Spans("migratekit.migrate").Single();
        Assert.AreEqual(ActivityStatusCode.Error, migration.Status);
        Assert.AreEqual(report.Reason, migration.StatusDescription);
        Assert.AreEqual("aborted", migration.GetTagItem("migratekit.status"));
        Assert.AreEqual("aborted", migration.GetTagItem("error.type"));
        Assert.AreEqual("abort", capture.Spans("migratekit.round").Single().GetTagItem("migratekit.action"));
        Assert.IsEmpty(capture.Spans("migratekit.switchover"));

        Assert.AreEqual("aborted", capture.Measurements("migratekit.migrations").Single().Tags["migratekit.status"]);
        Assert.IsEmpty(capture.Measurements("migratekit.downtime.actual"));
        Assert.AreEqual((double)report.BytesSent, capture.Sum("migratekit.bytes.sent"));

        Assert.AreEqual(MigrationStatus.Aborted, received.Status);
        Activity receive = capture.Spans("migratekit.receive").Single();
        Assert.AreEqual(ActivityStatusCode.Error, receive.Status);
        Assert.Contains("fixed costs", receive.StatusDescription!);
    }

    [TestMethod]
    public async Task DestinationFailure_CountsAFailedMigration_AndRecordsTheException()
    {
        using var capture = new TelemetryCapture();
        await using var h = new EngineHarness(EngineHarness.Converging)
        {
            ConfigureTarget = t => t.RestoreFailure = new InvalidOperationException("no vCPU for you"),
        };
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Failed, report.Status);

        Activity migration = capture.Spans("migratekit.migrate").Single();
        Assert.AreEqual(ActivityStatusCode.Error, migration.Status);
        Assert.Contains("no vCPU for you", migration.StatusDescription!);
        Assert.AreEqual(typeof(MigrationException).FullName, migration.GetTagItem("error.type"));
        Assert.AreEqual("exception", migration.Events.Single().Name);
        Assert.AreEqual(ActivityStatusCode.Error, capture.Spans("migratekit.switchover").Single().Status);
        Assert.AreEqual("failed", capture.Measurements("migratekit.migrations").Single().Tags["migratekit.status"]);
        Assert.AreEqual(ActivityStatusCode.Error, capture.Spans("migratekit.receive").Single().Status);
    }

    [TestMethod]
    public async Task Logs_InformationAtStartSwitchoverAndEnd_DebugPerRound()
    {
        var engineLog = new ListLogger<PreCopyEngine>();
        var receiverLog = new ListLogger<MigrationReceiver>();
        await using var h = new EngineHarness(EngineHarness.Converging) { EngineLogger = engineLog, ReceiverLogger = receiverLog };
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        Logged[] engine = engineLog.Entries;
        Assert.AreSequenceEqual(
            new[] { "MigrationStarting", "HandshakeDone", "RoundFinished", "RoundFinished", "RoundFinished", "SwitchingOver", "MigrationCompleted" },
            engine.Select(e => e.EventId.Name).ToArray());
        Assert.IsTrue(engine.Where(e => e.EventId.Name == "RoundFinished").All(e => e.Level == LogLevel.Debug));
        Assert.IsTrue(engine.Where(e => e.EventId.Name != "RoundFinished").All(e => e.Level == LogLevel.Information));

        // Structured: the values, not only the text.
        Assert.AreSequenceEqual(new object?[] { 0, 1, 2 }, engine.Where(e => e.EventId.Name == "RoundFinished").Select(e => e.State["Round"]).ToArray());
        Logged end = engine[^1];
        Assert.AreEqual("vm-under-test", end.State["Source"]);
        Assert.AreEqual(report.DowntimeMs, end.State["DowntimeMs"]);
        Assert.AreEqual(report.BytesSent, end.State["BytesSent"]);
        Assert.Contains("{DowntimeMs:F1}", (string)end.State["{OriginalFormat}"]!);

        Logged[] receiver = receiverLog.Entries;
        Assert.AreSequenceEqual(
            new[] { "ReceiveStarting", "ReceiveMemory", "RoundReceived", "RoundReceived", "RoundReceived", "SwitchoverReceived", "Received" },
            receiver.Select(e => e.EventId.Name).ToArray());
        Assert.AreEqual("vm-under-test", receiver[0].State["Source"]);
    }

    [TestMethod]
    public async Task Logs_WarningWhenAborted()
    {
        var engineLog = new ListLogger<PreCopyEngine>();
        var receiverLog = new ListLogger<MigrationReceiver>();
        await using var h = new EngineHarness(EngineHarness.Converging)
        {
            PauseLatency = _ => TimeSpan.FromSeconds(1),
            EngineLogger = engineLog,
            ReceiverLogger = receiverLog,
        };
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Aborted, report.Status);

        Logged aborted = engineLog.Entries.Single(e => e.Level >= LogLevel.Warning);
        Assert.AreEqual("MigrationAborted", aborted.EventId.Name);
        Assert.AreEqual(LogLevel.Warning, aborted.Level);
        Assert.AreEqual(report.Reason, aborted.State["Reason"]);
        Assert.AreEqual(LogLevel.Warning, receiverLog.Entries.Single(e => e.EventId.Name == "SourceGaveUp").Level);
    }

    // A converging migration that completes, and its pre-copy rounds' rows.
    private static async Task<(MigrationReport Report, RoundReport[] Rounds)> CompletedAsync()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        return (report, report.RoundsDetail.Take(report.Rounds).ToArray());
    }
}
