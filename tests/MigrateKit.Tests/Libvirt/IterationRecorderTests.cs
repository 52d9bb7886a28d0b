using System;
using System.Diagnostics;
using System.Linq;
using LibvirtSharp;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Libvirt;

/// <summary>Not run in parallel with other tests: the meter is static.</summary>
[TestClass]
[DoNotParallelize]
public sealed class IterationRecorderTests
{
    private const ulong MiB = 1UL << 20;
    private static readonly MigrationRoute Route = new(FakeHosts.Source, "web1", FakeHosts.Destination);
    private static readonly LibvirtDecision Continue = default;

    private readonly FakeTimeProvider _time = new();
    private readonly JobForecaster _forecaster = new(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), null, null);

    private IterationRecorder NewRecorder()
    {
        var recorder = new IterationRecorder(Route, new LibvirtMigrationOptions { TimeProvider = _time }, null, NullLogger.Instance);
        recorder.Starting(Route, 1024 * MiB, new StartPlan { MaxDowntime = TimeSpan.FromMilliseconds(300), Reason = "test" });
        recorder.CallStarted();
        return recorder;
    }

    /// <summary>One poll as the follower hands it over: polled, forecast, and for a new sync the ended iteration.</summary>
    private Forecast Poll(IterationRecorder recorder, JobStats stats, TimeSpan elapsed, int? ended = null)
    {
        Forecast forecast = _forecaster.Observe(stats, elapsed) ?? throw new AssertFailedException("no forecast");
        recorder.Polled(stats);
        recorder.Forecasted(stats, forecast, _forecaster.DirtyRate);
        if (ended is { } iteration)
        {
            recorder.IterationEnded(iteration, stats, elapsed, forecast, _forecaster, Continue);
        }

        return forecast;
    }

    private static MigrationOutcome Completed(JobStats? final) => new() { Status = MigrationStatus.Completed, Final = final };

    [TestMethod]
    public void IterationEnded_EachRowHoldsWhatItsIterationSent()
    {
        using IterationRecorder recorder = NewRecorder();
        Poll(recorder, ScriptedLibvirt.Poll(1, 900, 124), TimeSpan.FromSeconds(1));
        Poll(recorder, ScriptedLibvirt.Poll(2, 20, 1030) with { MemoryConstant = 100 }, TimeSpan.FromSeconds(2), ended: 1);
        Poll(recorder, ScriptedLibvirt.Poll(3, 5, 1050) with { MemoryConstant = 150 }, TimeSpan.FromSeconds(2.5), ended: 2);

        Assert.HasCount(2, recorder.Rounds);
        RoundReport second = recorder.Rounds[1];
        Assert.AreEqual(2, second.Round);
        Assert.AreEqual(20 * MiB, second.BytesSent);
        Assert.AreEqual(20UL * 256, second.PagesSent);
        Assert.AreEqual(50UL, second.ZeroPages);
        Assert.AreEqual(500.0, second.DurationMs, 1e-9);
        Assert.AreEqual(RoundAction.Continue, second.Action);
    }

    [TestMethod]
    public void Report_CompletedPreCopy_EndsWithTheSwitchoverRowOfTheLastForecast()
    {
        using IterationRecorder recorder = NewRecorder();
        Poll(recorder, ScriptedLibvirt.Poll(1, 900, 124), TimeSpan.FromSeconds(1));
        Forecast last = Poll(recorder, ScriptedLibvirt.Poll(2, 20, 1030), TimeSpan.FromSeconds(2), ended: 1);
        var final = new JobStats { Type = DomainJobType.Completed, MemoryIteration = 3, DataProcessed = 1060 * MiB, MemoryNormal = 1060 * 256, DowntimeMs = 40, TimeElapsedMs = 2100 };

        MigrationReport report = recorder.Report(Completed(final), postcopy: false, TimeSpan.FromSeconds(9), TimeSpan.FromMilliseconds(300));

        RoundReport switchover = report.RoundsDetail[^1];
        Assert.AreEqual(RoundAction.Switchover, switchover.Action);
        Assert.AreEqual(3, switchover.Round, "libvirt's iteration count");
        Assert.AreEqual(30 * MiB, switchover.BytesSent);
        Assert.AreEqual(last.PredictedDowntime.TotalMilliseconds, switchover.PredictedDowntimeMs);
        Assert.AreEqual(3, report.Rounds);
        Assert.AreEqual(1060 * MiB, report.BytesSent);
        Assert.AreEqual(2100.0, report.TotalMs, "libvirt's own figure before the migrator's");
        Assert.AreEqual(40.0, report.DowntimeMs);
        Assert.AreEqual(last.PredictedDowntime.TotalMilliseconds, report.PredictedDowntimeMs);
        Assert.AreEqual(Math.Abs(last.PredictedDowntime.TotalMilliseconds - 40) / 40 * 100, report.PredictionErrorPercent!.Value, 1e-9);
        Assert.IsNotNull(report.PredictedDowntimeParts);
        Assert.AreEqual(300.0, report.DowntimeLimitMs);
        Assert.AreEqual(1024 * MiB, report.MemoryBytes);
    }

    [TestMethod]
    public void Report_WithoutCompletedStatistics_TakesThePollsFigures()
    {
        using IterationRecorder recorder = NewRecorder();
        Poll(recorder, ScriptedLibvirt.Poll(1, 900, 124), TimeSpan.FromSeconds(1));

        MigrationReport report = recorder.Report(Completed(null), postcopy: false, TimeSpan.FromSeconds(9), TimeSpan.FromMilliseconds(300));

        Assert.AreEqual(124 * MiB, report.BytesSent);
        Assert.AreEqual(124UL * 256, report.PagesSent);
        Assert.AreEqual(9000.0, report.TotalMs);
        Assert.IsNull(report.DowntimeMs);
        Assert.IsNull(report.PredictionErrorPercent);
    }

    [TestMethod]
    public void Report_Postcopy_PredictsNothingAndAddsNoSwitchoverRow()
    {
        using IterationRecorder recorder = NewRecorder();
        Poll(recorder, ScriptedLibvirt.Poll(1, 900, 124), TimeSpan.FromSeconds(1));

        MigrationReport report = recorder.Report(Completed(new JobStats { DowntimeMs = 5 }), postcopy: true, TimeSpan.FromSeconds(9), TimeSpan.FromMilliseconds(300));

        Assert.IsNull(report.PredictedDowntimeMs);
        Assert.IsNull(report.PredictedDowntimeParts);
        Assert.IsEmpty(report.RoundsDetail);
    }

    [TestMethod]
    public void Report_Failed_CarriesTheOutcomeAndNoPrediction()
    {
        using IterationRecorder recorder = NewRecorder();
        Poll(recorder, ScriptedLibvirt.Poll(1, 900, 124) with { AutoConvergeThrottle = 40 }, TimeSpan.FromSeconds(1));
        var error = new LibvirtException("virDomainMigrate3", LibvirtErrorCodes.OperationFailed, 10, "failed");
        var outcome = new MigrationOutcome { Status = MigrationStatus.Failed, Reason = "failed", FailedPhase = MigrationPhase.Send, Unknown = true, Error = error };

        MigrationReport report = recorder.Report(outcome, postcopy: false, TimeSpan.FromSeconds(9), TimeSpan.FromMilliseconds(300));

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual(MigrationPhase.Send, report.FailedPhase);
        Assert.IsTrue(report.OutcomeUnknown);
        Assert.AreSame(error, report.Error);
        Assert.IsNull(report.PredictedDowntimeMs);
        Assert.AreEqual(40, report.MaxThrottlePercent);
        Assert.IsEmpty(report.RoundsDetail);
    }

    [TestMethod]
    public void IterationEnded_TracesTheRoundFromTheEndOfThePreviousOne_OnTheInjectedClock()
    {
        using var capture = new TelemetryCapture();
        DateTimeOffset callStarted = _time.GetUtcNow();
        using (IterationRecorder recorder = NewRecorder())
        {
            Poll(recorder, ScriptedLibvirt.Poll(1, 900, 124), TimeSpan.FromSeconds(1));
            _time.Advance(TimeSpan.FromSeconds(2));
            DateTimeOffset firstEnded = _time.GetUtcNow();
            Poll(recorder, ScriptedLibvirt.Poll(2, 20, 1030), TimeSpan.FromSeconds(2), ended: 1);
            _time.Advance(TimeSpan.FromSeconds(1));
            Poll(recorder, ScriptedLibvirt.Poll(3, 5, 1050), TimeSpan.FromSeconds(3), ended: 2);

            Activity[] rounds = capture.Spans("migratekit.round");
            Assert.AreEqual(callStarted.UtcDateTime, rounds[0].StartTimeUtc);
            Assert.AreEqual(firstEnded.UtcDateTime, rounds[1].StartTimeUtc);
        }

        Assert.AreEqual("libvirt", capture.Spans("migratekit.migrate").Single().GetTagItem("migratekit.source"));
    }

    [TestMethod]
    public void Finish_CountsOnlyWhatThePollsHaveNotCounted()
    {
        using var capture = new TelemetryCapture();
        using (IterationRecorder recorder = NewRecorder())
        {
            recorder.CountTransfer(ScriptedLibvirt.Poll(1, 900, 100));
            recorder.CountTransfer(ScriptedLibvirt.Poll(1, 800, 80));
            MigrationReport report = recorder.Report(Completed(new JobStats { DataProcessed = 150 * MiB, MemoryNormal = 150 * 256, MemoryIteration = 2, DowntimeMs = 7 }),
                postcopy: false, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(300));

            recorder.Finish(report);
        }

        Assert.AreEqual(150.0 * MiB, capture.Sum("migratekit.bytes.sent"));
        Assert.AreEqual(150.0 * 256, capture.Sum("migratekit.pages.sent"));
        Assert.AreEqual(2.0, capture.Sum("migratekit.rounds"));
        Assert.AreEqual(7.0, capture.Measurements("migratekit.downtime.actual").Single().Value);
        Assert.AreEqual(ActivityStatusCode.Ok, capture.Spans("migratekit.migrate").Single().Status);
    }

    [TestMethod]
    public void Fail_CountsTheMigrationAndEndsTheSpanWithTheError()
    {
        using var capture = new TelemetryCapture();
        using (IterationRecorder recorder = NewRecorder())
        {
            recorder.Fail(new InvalidOperationException("not running"));
        }

        Assert.AreEqual("failed", capture.Measurements("migratekit.migrations").Single().Tags["migratekit.status"]);
        Activity span = capture.Spans("migratekit.migrate").Single();
        Assert.AreEqual(ActivityStatusCode.Error, span.Status);
    }

    [TestMethod]
    public void PolicyActions_AreTheReportsActions()
    {
        Assert.AreEqual(RoundAction.RaiseLimit, IterationRecorder.ToRoundAction(LibvirtAction.RaiseDowntimeLimit));
        Assert.AreEqual(RoundAction.Postcopy, IterationRecorder.ToRoundAction(LibvirtAction.StartPostcopy));
        Assert.AreEqual(RoundAction.Abort, IterationRecorder.ToRoundAction(LibvirtAction.Abort));
        Assert.AreEqual(MigrationAction.SwitchOver, IterationRecorder.ToMigrationAction(LibvirtAction.StartPostcopy));
        Assert.AreEqual(MigrationAction.Continue, IterationRecorder.ToMigrationAction(LibvirtAction.Continue));
    }
}
