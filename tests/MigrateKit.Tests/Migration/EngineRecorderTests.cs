using System;
using System.Diagnostics;
using System.Linq;
using Microsoft.Extensions.Logging;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using Moq;

namespace MigrateKit.Tests.Migration;

/// <summary>The engine's telemetry and report building, on made-up figures. Not parallel: the meter is static.</summary>
[TestClass]
[DoNotParallelize]
public sealed class EngineRecorderTests : IDisposable
{
    private static readonly Forecast Forecast = new Forecast
    {
        Round = 2,
        PredictedDowntime = TimeSpan.FromMilliseconds(80),
        Breakdown = new DowntimeBreakdown(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(70), TimeSpan.FromMilliseconds(3), TimeSpan.FromMilliseconds(4)),
        PredictedTotalTime = TimeSpan.FromSeconds(2),
        Verdict = ConvergenceVerdict.Converging,
        BandwidthBytesPerSecond = 1e6,
        DirtyBytesPerSecond = 5e5,
        PendingBytes = 70_000,
        NextRoundBytes = 60_000,
        DeferredBytes = 10_000,
        ConvergenceRatio = 0.5,
        FixedCorrection = TimeSpan.FromMilliseconds(1.5),
    };

    private readonly GuestMemoryLayout _memory = new([new GuestMemoryRegionSpec(0, 16 * GuestMemoryLayout.PageSize)]);
    private readonly ListLogger<PreCopyEngine> _logger = new();
    private readonly TelemetryCapture _capture = new();
    private readonly EngineRecorder _recorder;
    private EngineTotals _totals = new() { BytesSent = 9000, PagesSent = 3, Elapsed = TimeSpan.FromSeconds(1), HotPages = 3, DeferredPages = 2, ThrottlePercent = 10, MaxThrottlePercent = 20, BandwidthBytesPerSecond = 2e6, DirtyPagesPerSecond = 123 };

    public EngineRecorderTests()
    {
        var source = new Mock<IMigrationSource>();
        source.SetupGet(s => s.Name).Returns("vm");
        source.SetupGet(s => s.Memory).Returns(_memory);
        var tracker = new ScriptedTracker(_memory, _ => [], () => false, _ => { });
        var options = new MigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(100), BandwidthLimit = 1L << 20 };
        _recorder = new EngineRecorder(source.Object, tracker, options, _logger, () => _totals);
    }

    public void Dispose()
    {
        _capture.Dispose();
        _memory.Dispose();
    }

    private static RoundTraffic Traffic(int round) => new()
    {
        Round = round,
        BytesSent = 5000,
        PagesSent = 1,
        ZeroPages = 2,
        Duration = TimeSpan.FromMilliseconds(30),
        SendTime = TimeSpan.FromMilliseconds(20),
        DirtyPages = 7,
    };

    private static SwitchoverResult Switchover => new()
    {
        BytesBefore = 9000,
        PagesBefore = 3,
        ZeroPages = 1,
        DirtyPages = 4,
        DeferredPages = 2,
        PauseLatency = TimeSpan.FromMilliseconds(1),
        Downtime = TimeSpan.FromMilliseconds(100),
        ActualParts = new DowntimeParts(1, 2, 90, 7),
        ResumeDuration = TimeSpan.FromMilliseconds(6),
    };

    [TestMethod]
    public void RecordRound_BuildsTheRowFromTheTrafficTheForecastAndTheTotals()
    {
        RoundReport row;
        using (Activity? span = EngineRecorder.StartRound(2))
        {
            row = _recorder.RecordRound(span, Traffic(2), Forecast, new PolicyDecision(MigrationAction.SwitchOver, 10, null));
        }

        Assert.AreEqual(2, row.Round);
        Assert.AreEqual(5000UL, row.BytesSent);
        Assert.AreEqual(1UL, row.PagesSent);
        Assert.AreEqual(2UL, row.ZeroPages);
        Assert.AreEqual(30, row.DurationMs);
        Assert.AreEqual(20, row.SendMs);
        Assert.AreEqual(7UL, row.DirtyPages);
        Assert.AreEqual(3UL, row.HotPages);
        Assert.AreEqual(2UL, row.DeferredPages);
        Assert.AreEqual(123, row.DirtyRate);
        Assert.AreEqual(1e6, row.Bandwidth, "the forecast's bandwidth");
        Assert.AreEqual(10, row.ThrottlePercent);
        Assert.AreEqual(80, row.PredictedDowntimeMs);
        Assert.AreEqual(2000, row.PredictedTotalMs);
        Assert.AreEqual(ConvergenceVerdict.Converging, row.Verdict);
        Assert.AreEqual(RoundAction.Switchover, row.Action);
        Assert.AreEqual(1, _recorder.RoundCount);

        Assert.AreEqual(1, _capture.Sum("migratekit.rounds"));
        Assert.AreEqual(123, _capture.Measurements("migratekit.dirty_rate").Single().Value);
        Assert.AreEqual(80, _capture.Measurements("migratekit.downtime.predicted").Single().Value);
        Assert.AreEqual(10, _capture.Measurements("migratekit.throttle").Single().Value);
        Assert.AreEqual(9000, _capture.Sum("migratekit.bytes.sent"));
        Assert.AreEqual(3, _capture.Sum("migratekit.pages.sent"));

        Activity span2 = _capture.Spans("migratekit.round").Single();
        Assert.AreEqual(2, span2.GetTagItem("migratekit.round"));
        Assert.AreEqual(1L, span2.GetTagItem("migratekit.pages.sent"));
        Assert.AreEqual(2L, span2.GetTagItem("migratekit.pages.zero"));
        Assert.AreEqual(5000L, span2.GetTagItem("migratekit.bytes.sent"));
        Assert.AreEqual(7L, span2.GetTagItem("migratekit.pages.dirty"));
        Assert.AreEqual("switchover", span2.GetTagItem("migratekit.action"));

        Logged log = _logger.Entries.Single();
        Assert.AreEqual(LogLevel.Debug, log.Level);
        Assert.AreEqual(3, log.EventId.Id);
    }

    [TestMethod]
    public void EveryMeasurement_SaysWhereItComesFrom()
    {
        _recorder.RecordHarvest(TimeSpan.FromMilliseconds(2));
        _recorder.RecordRound(null, Traffic(0), Forecast, new PolicyDecision(MigrationAction.Continue, 0, null));

        Assert.AreEqual(2, _capture.Measurements("migratekit.harvest.duration").Single().Value);
        foreach (Measured m in _capture.All)
        {
            Assert.AreEqual("engine", m.Tags["migratekit.source"], m.Instrument);
            Assert.AreEqual(nameof(ScriptedTracker), m.Tags["migratekit.tracker"], m.Instrument);
            Assert.IsTrue(m.Tags.ContainsKey("migratekit.vm.kind"), m.Instrument);
        }

        Assert.AreEqual(nameof(ScriptedTracker), _recorder.TrackerKind);
    }

    [TestMethod]
    public void Counters_AddOnlyWhatWasSentSinceTheLastCount()
    {
        _recorder.RecordRound(null, Traffic(0), Forecast, new PolicyDecision(MigrationAction.Continue, 0, null));
        _totals = _totals with { BytesSent = 12_000, PagesSent = 5 };

        _recorder.Finish(_recorder.Ended(MigrationStatus.Aborted, 1, "enough", null, null), null);

        Assert.AreEqual(12_000, _capture.Sum("migratekit.bytes.sent"));
        Assert.AreEqual(5, _capture.Sum("migratekit.pages.sent"));
        Assert.HasCount(2, _capture.Measurements("migratekit.bytes.sent"));
    }

    [TestMethod]
    public void Completed_AddsTheSwitchoverRow_AndReportsThePredictionNextToTheActualDowntime()
    {
        _recorder.RecordRound(null, Traffic(0), Forecast, new PolicyDecision(MigrationAction.SwitchOver, 0, null));
        _totals = _totals with { BytesSent = 20_000, PagesSent = 8, ThrottlePercent = 0, Elapsed = TimeSpan.FromSeconds(3) };

        MigrationReport report = _recorder.Completed(1, Forecast, Switchover, TimeSpan.FromMilliseconds(120), sourceVerified: true);

        Assert.AreEqual(MigrationStatus.Completed, report.Status);
        Assert.AreEqual(_memory.TotalSize, report.MemoryBytes);
        Assert.AreEqual(1, report.Rounds);
        Assert.AreEqual(20_000UL, report.BytesSent);
        Assert.AreEqual(8UL, report.PagesSent);
        Assert.AreEqual(3000, report.TotalMs);
        Assert.AreEqual(100, report.DowntimeMs);
        Assert.AreEqual(80, report.PredictedDowntimeMs);
        Assert.AreEqual(100, report.DowntimeLimitMs);
        Assert.AreEqual(20, report.PredictionErrorPercent!.Value, 1e-9);
        Assert.AreEqual(new DowntimeParts(1, 2, 73, 4), report.PredictedDowntimeParts);
        Assert.AreEqual(1.5, report.PredictedCorrectionMs);
        Assert.AreEqual(Switchover.ActualParts, report.ActualDowntimeParts);
        Assert.AreEqual(6, report.ResumeMs);
        Assert.AreEqual(20, report.MaxThrottlePercent);
        Assert.AreEqual(2UL, report.HotPagesDeferred);
        Assert.AreEqual(5UL, report.SwitchoverPages);
        Assert.IsTrue(report.DigestsMatched);
        Assert.IsTrue(report.SourceMemoryVerified);

        Assert.HasCount(2, report.RoundsDetail);
        RoundReport row = report.RoundsDetail[1];
        Assert.AreEqual(1, row.Round);
        Assert.AreEqual(11_000UL, row.BytesSent);
        Assert.AreEqual(5UL, row.PagesSent);
        Assert.AreEqual(1UL, row.ZeroPages);
        Assert.AreEqual(120, row.DurationMs);
        Assert.AreEqual(4UL, row.DirtyPages);
        Assert.AreEqual(3UL, row.HotPages);
        Assert.AreEqual(2UL, row.DeferredPages);
        Assert.AreEqual(2e6, row.Bandwidth, "the bandwidth planned with at the end");
        Assert.AreEqual(0, row.ThrottlePercent);
        Assert.AreEqual(80, row.PredictedDowntimeMs);
        Assert.AreEqual(ConvergenceVerdict.Converging, row.Verdict);
        Assert.AreEqual(RoundAction.Switchover, row.Action);
    }

    [TestMethod]
    public void Ended_ReportsWhereTheMigrationStood()
    {
        var error = new MigrationException(MigrationPhase.Send, "gone");

        MigrationReport report = _recorder.Ended(MigrationStatus.Failed, 4, "gone", error, MigrationPhase.Send);

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual("gone", report.Reason);
        Assert.AreSame(error, report.Error);
        Assert.AreEqual(MigrationPhase.Send, report.FailedPhase);
        Assert.AreEqual(4, report.Rounds);
        Assert.AreEqual(9000UL, report.BytesSent);
        Assert.AreEqual(3UL, report.PagesSent);
        Assert.AreEqual(1000, report.TotalMs);
        Assert.AreEqual(100, report.DowntimeLimitMs);
        Assert.AreEqual(20, report.MaxThrottlePercent);
        Assert.AreEqual(2UL, report.HotPagesDeferred);
        Assert.IsNull(report.DowntimeMs);
        Assert.IsEmpty(report.RoundsDetail);
    }

    [TestMethod]
    public void Finish_CountsTheOutcome_TheActualDowntime_AndTagsTheMigrationsSpan()
    {
        MigrationReport report;
        using (Activity? activity = _recorder.StartMigration())
        {
            report = _recorder.Completed(0, Forecast, Switchover, TimeSpan.FromMilliseconds(120), null);
            _recorder.Finish(report, activity);
        }

        Assert.AreEqual("completed", _capture.Measurements("migratekit.migrations").Single().Tags["migratekit.status"]);
        Assert.AreEqual(100, _capture.Measurements("migratekit.downtime.actual").Single().Value);
        Activity migration = _capture.Spans("migratekit.migrate").Single();
        Assert.AreEqual(ActivityStatusCode.Ok, migration.Status);
        Assert.AreEqual("vm", migration.GetTagItem("migratekit.vm.name"));
        Assert.AreEqual((long)_memory.TotalSize, migration.GetTagItem("migratekit.memory.bytes"));
        Assert.AreEqual(1L << 20, migration.GetTagItem("migratekit.bandwidth.limit"));
        Assert.AreEqual(100.0, migration.GetTagItem("migratekit.downtime.max_ms"));
        Assert.AreEqual(100.0, migration.GetTagItem("migratekit.downtime.actual_ms"));
        Assert.AreEqual(80.0, migration.GetTagItem("migratekit.downtime.predicted_ms"));
        Assert.AreEqual(9000L, migration.GetTagItem("migratekit.bytes.sent"));
        Assert.AreEqual(LogLevel.Information, _logger.Entries.First().Level);
        Assert.AreEqual(6, _logger.Entries.Last().EventId.Id, "the completion line");
    }

    [TestMethod]
    public void Thrown_CountsACancelledMigration_AndEndsTheSpan()
    {
        using (Activity? activity = _recorder.StartMigration())
        {
            _recorder.Thrown(new OperationCanceledException("stop"), activity);
        }

        Assert.AreEqual("cancelled", _capture.Measurements("migratekit.migrations").Single().Tags["migratekit.status"]);
        Activity migration = _capture.Spans("migratekit.migrate").Single();
        Assert.AreEqual(ActivityStatusCode.Error, migration.Status);
        Assert.AreEqual("cancelled", migration.GetTagItem("migratekit.status"));
        Assert.AreEqual(0, migration.GetTagItem("migratekit.rounds"));
        Assert.IsEmpty(migration.Events, "a cancellation is not recorded as an exception");
    }

    [TestMethod]
    public void SwitchoverSpan_CarriesThePagesAndDowntimes_OrTheFailure()
    {
        _totals = _totals with { PagesSent = 8 };
        MigrationReport report = _recorder.Completed(2, Forecast, Switchover, TimeSpan.FromMilliseconds(120), null);
        using (Activity? span = _recorder.StartSwitchover(2, Forecast))
        {
            EngineRecorder.SwitchoverCompleted(span, report);
        }

        using (Activity? span = _recorder.StartSwitchover(2, Forecast))
        {
            EngineRecorder.SpanFailed(span, new InvalidOperationException("device busy"));
        }

        Activity[] spans = _capture.Spans("migratekit.switchover");
        Assert.HasCount(2, spans);
        Assert.AreEqual(ActivityStatusCode.Ok, spans[0].Status);
        Assert.AreEqual(5L, spans[0].GetTagItem("migratekit.pages.sent"));
        Assert.AreEqual(100.0, spans[0].GetTagItem("migratekit.downtime.actual_ms"));
        Assert.AreEqual(ActivityStatusCode.Error, spans[1].Status);
        Assert.AreEqual("device busy", spans[1].StatusDescription);
        Assert.IsTrue(_logger.Entries.All(e => e.EventId.Id == 5), "the switchover is logged");
    }
}
