using System;
using System.Collections.Generic;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MigrateKit.Diagnostics;
using MigrateKit.Estimation;
using MigrateKit.Tracking;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>Where a migration stands, read whenever the recorder counts or builds a report.</summary>
internal readonly record struct EngineTotals
{
    public ulong BytesSent { get; init; }

    public ulong PagesSent { get; init; }

    /// <summary>Since the migration started.</summary>
    public TimeSpan Elapsed { get; init; }

    public ulong HotPages { get; init; }

    public ulong DeferredPages { get; init; }

    public int ThrottlePercent { get; init; }

    public int MaxThrottlePercent { get; init; }

    /// <summary>The bandwidth the engine plans with now.</summary>
    public double BandwidthBytesPerSecond { get; init; }

    /// <summary>The guest's dirtying rate over the last harvest interval.</summary>
    public double DirtyPagesPerSecond { get; init; }
}

/// <summary>What one pre-copy round put on the wire and found dirty.</summary>
internal readonly record struct RoundTraffic
{
    public int Round { get; init; }

    public ulong BytesSent { get; init; }

    public ulong PagesSent { get; init; }

    public ulong ZeroPages { get; init; }

    /// <summary>From the round's start to its decision.</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>Sending the round's pages.</summary>
    public TimeSpan SendTime { get; init; }

    /// <summary>The harvest after the round.</summary>
    public TimeSpan HarvestTime { get; init; }

    public ulong DirtyPages { get; init; }

    /// <summary>The forms the round's data pages went in.</summary>
    public EncodingTally Encoding { get; init; }
}

/// <summary>
/// All of the engine's telemetry and reports in one place: the <c>migratekit.migrate</c>,
/// <c>migratekit.round</c> and <c>migratekit.switchover</c> spans and their tags, the round and
/// outcome measurements, the counters of bytes and pages sent, the log lines that carry a
/// report's figures, and every <see cref="RoundReport"/> and <see cref="MigrationReport"/>.
/// </summary>
internal sealed class EngineRecorder
{
    private readonly string _sourceName;
    private readonly MigrationOptions _options;
    private readonly ulong _memoryBytes;
    private readonly ILogger _logger;
    private readonly Func<EngineTotals> _totals;
    private readonly MigrationTelemetry _telemetry;

    /// <param name="source">The VM migrated (its name and kind tag everything).</param>
    /// <param name="tracker">Its tracker (its kind tags everything).</param>
    /// <param name="options">The limits the migration runs under.</param>
    /// <param name="logger">Gets the start, round and completion lines.</param>
    /// <param name="totals">Reads where the migration stands.</param>
    internal EngineRecorder(IMigrationSource source, IDirtyPageTracker tracker, MigrationOptions options, ILogger logger, Func<EngineTotals> totals)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tracker);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(totals);
        _sourceName = source.Name;
        _options = options;
        _memoryBytes = source.Memory.TotalSize;
        _logger = logger;
        _totals = totals;
        TrackerKind = MigrationTelemetry.TrackerKind(tracker);
        _telemetry = new MigrationTelemetry(
            "engine",
            new(MigrateKitTelemetry.Tags.VmKind, source.GetType().Name.ToLowerInvariant()),
            new(MigrateKitTelemetry.Tags.Tracker, TrackerKind));
    }

    /// <summary>The tracker's tag value.</summary>
    internal string TrackerKind { get; }

    /// <summary>Rows recorded so far.</summary>
    internal int RoundCount => _telemetry.Rows.Count;

    /// <summary>Starts the migration's span and logs the start.</summary>
    internal Activity? StartMigration()
    {
        Activity? activity = _telemetry.StartMigration(_sourceName, _options.MaxDowntime, _options.BandwidthLimit);
        _telemetry.MemoryKnown(_memoryBytes, activity);

        MigrationLog.MigrationStarting(_logger, _sourceName, _memoryBytes, TrackerKind, _options.MaxDowntime.TotalMilliseconds,
            _options.BandwidthLimit is long bandwidth ? Units.FormatRate(bandwidth) : "none");
        return activity;
    }

    /// <summary>Counts what the report says: the last bytes and pages, the downtime, the outcome; tags the migration's span.</summary>
    internal void Finish(MigrationReport report, Activity? activity)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.Status == MigrationStatus.Completed && report.DowntimeMs is double downtime)
        {
            MigrationLog.MigrationCompleted(_logger, _sourceName, report.TotalMs, downtime, report.PredictedDowntimeMs ?? 0, report.BytesSent, report.Rounds);
        }

        _telemetry.Finish(report, activity);
    }

    /// <summary>Counts a migration that ended by throwing (cancelled, or an unexpected failure) and ends its span.</summary>
    internal void Thrown(Exception ex, Activity? activity)
    {
        ArgumentNullException.ThrowIfNull(ex);
        CountSent(_totals());
        _telemetry.Thrown(ex, activity);
    }

    /// <summary>Starts a round's span.</summary>
    internal static Activity? StartRound(int round) => MigrationTelemetry.StartRound(round);

    /// <summary>Starts the switchover's span and logs the decision.</summary>
    internal Activity? StartSwitchover(int rounds, Forecast forecast)
    {
        ArgumentNullException.ThrowIfNull(forecast);
        Activity? span = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Switchover);
        MigrationLog.SwitchingOver(_logger, _sourceName, rounds, forecast.PredictedDowntime.TotalMilliseconds);
        return span;
    }

    /// <summary>Tags a completed switchover's span.</summary>
    internal static void SwitchoverCompleted(Activity? span, MigrationReport report)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)report.SwitchoverPages);
        span.SetTag(MigrateKitTelemetry.Tags.PredictedDowntimeMs, report.PredictedDowntimeMs);
        span.SetTag(MigrateKitTelemetry.Tags.DowntimeMs, report.DowntimeMs);
        span.SetStatus(ActivityStatusCode.Ok);
    }

    /// <summary>Marks a round's or the switchover's span as failed.</summary>
    internal static void SpanFailed(Activity? span, Exception ex) => span?.SetStatus(ActivityStatusCode.Error, ex.Message);

    /// <summary>Records a harvest's duration.</summary>
    internal void RecordHarvest(TimeSpan duration) => MigrateKitTelemetry.HarvestDuration.Record(duration.TotalMilliseconds, _telemetry.Tags);

    /// <summary>Adds a pre-copy round's row to the report; counts, logs and tags it on <paramref name="span"/>.</summary>
    internal RoundReport RecordRound(Activity? span, RoundTraffic traffic, Forecast forecast, PolicyDecision decision)
    {
        ArgumentNullException.ThrowIfNull(forecast);
        EngineTotals totals = _totals();
        var row = new RoundReport
        {
            Round = traffic.Round,
            BytesSent = traffic.BytesSent,
            PagesSent = traffic.PagesSent,
            ZeroPages = traffic.ZeroPages,
            DurationMs = traffic.Duration.TotalMilliseconds,
            SendMs = traffic.SendTime.TotalMilliseconds,
            HarvestMs = traffic.HarvestTime.TotalMilliseconds,
            DirtyPages = traffic.DirtyPages,
            Encoding = traffic.Encoding,
            HotPages = totals.HotPages,
            DeferredPages = totals.DeferredPages,
            DirtyRate = totals.DirtyPagesPerSecond,
            Bandwidth = forecast.BandwidthBytesPerSecond,
            ThrottlePercent = totals.ThrottlePercent,
            PredictedDowntimeMs = forecast.PredictedDowntime.TotalMilliseconds,
            PredictedDowntimeLowMs = forecast.DowntimeLow.TotalMilliseconds,
            PredictedDowntimeHighMs = forecast.DowntimeHigh.TotalMilliseconds,
            PredictedTotalMs = forecast.PredictedTotalTime?.TotalMilliseconds,
            Verdict = forecast.Verdict,
            Action = ToRoundAction(decision.Action),
        };
        _telemetry.RoundEnded(row, span);
        CountSent(totals);
        _telemetry.RecordForecast(forecast, row.DirtyRate, row.ThrottlePercent);
        MigrationLog.RoundFinished(_logger, _sourceName, row);
        return row;
    }

    /// <summary>The report of a completed migration, with the switchover's row added.</summary>
    /// <param name="rounds">Pre-copy rounds run.</param>
    /// <param name="forecast">The forecast the switchover was decided on.</param>
    /// <param name="switchover">What the switchover measured.</param>
    /// <param name="duration">The switchover's duration, the source's cleanup included.</param>
    /// <param name="sourceVerified">Whether the source's memory matched what was sent (null: not checked).</param>
    internal MigrationReport Completed(int rounds, Forecast forecast, SwitchoverResult switchover, TimeSpan duration, bool? sourceVerified)
    {
        ArgumentNullException.ThrowIfNull(forecast);
        ArgumentNullException.ThrowIfNull(switchover);
        EngineTotals totals = _totals();
        double predicted = forecast.PredictedDowntime.TotalMilliseconds;
        double actual = switchover.Downtime.TotalMilliseconds;
        ulong switchoverPages = totals.PagesSent - switchover.PagesBefore;
        _telemetry.SwitchoverEnded(new RoundReport
        {
            Round = rounds,
            BytesSent = totals.BytesSent - switchover.BytesBefore,
            PagesSent = switchoverPages,
            ZeroPages = switchover.ZeroPages,
            Encoding = switchover.Encoding,
            DurationMs = duration.TotalMilliseconds,
            HarvestMs = switchover.ActualParts.HarvestMs,
            DirtyPages = switchover.DirtyPages,
            HotPages = totals.HotPages,
            DeferredPages = switchover.DeferredPages,
            Bandwidth = totals.BandwidthBytesPerSecond,
            ThrottlePercent = switchover.ThrottlePercent,
            PredictedDowntimeMs = predicted,
            PredictedDowntimeLowMs = forecast.DowntimeLow.TotalMilliseconds,
            PredictedDowntimeHighMs = forecast.DowntimeHigh.TotalMilliseconds,
            Verdict = ConvergenceVerdict.Converging,
            Action = RoundAction.Switchover,
        });
        DowntimeBreakdown b = forecast.Breakdown;
        return new MigrationReport
        {
            Status = MigrationStatus.Completed,
            MemoryBytes = _memoryBytes,
            Rounds = rounds,
            BytesSent = totals.BytesSent,
            PagesSent = totals.PagesSent,
            TotalMs = totals.Elapsed.TotalMilliseconds,
            DowntimeMs = actual,
            PredictedDowntimeMs = predicted,
            PredictedDowntimeLowMs = forecast.DowntimeLow.TotalMilliseconds,
            PredictedDowntimeHighMs = forecast.DowntimeHigh.TotalMilliseconds,
            DowntimeLimitMs = _options.MaxDowntime.TotalMilliseconds,
            PredictionErrorPercent = actual > 0 ? Math.Abs(predicted - actual) / actual * 100 : null,
            PredictedDowntimeParts = new DowntimeParts(b.Pause.TotalMilliseconds, b.FinalHarvest.TotalMilliseconds,
                (b.Transfer + b.DeviceState).TotalMilliseconds, b.Resume.TotalMilliseconds),
            PredictedCorrectionMs = forecast.FixedCorrection.TotalMilliseconds,
            ActualDowntimeParts = switchover.ActualParts,
            ResumeMs = switchover.ResumeDuration.TotalMilliseconds,
            CommitMs = switchover.CommitDuration.TotalMilliseconds,
            MaxThrottlePercent = totals.MaxThrottlePercent,
            HotPagesDeferred = switchover.DeferredPages,
            SwitchoverPages = switchoverPages,
            DigestsMatched = true,
            SourceMemoryVerified = sourceVerified,
            RoundsDetail = [.. _telemetry.Rows],
        };
    }

    /// <summary>The report of a migration that did not complete.</summary>
    /// <param name="status">Aborted or Failed.</param>
    /// <param name="rounds">Rounds run.</param>
    /// <param name="reason">Why, in words.</param>
    /// <param name="error">The typed failure (null for an abort).</param>
    /// <param name="phase">Where it failed (null for an abort).</param>
    internal MigrationReport Ended(MigrationStatus status, int rounds, string reason, Exception? error, MigrationPhase? phase)
    {
        EngineTotals totals = _totals();
        return new MigrationReport
        {
            Status = status,
            Reason = reason,
            FailedPhase = phase,
            Error = error,
            MemoryBytes = _memoryBytes,
            Rounds = rounds,
            BytesSent = totals.BytesSent,
            PagesSent = totals.PagesSent,
            TotalMs = totals.Elapsed.TotalMilliseconds,
            DowntimeLimitMs = _options.MaxDowntime.TotalMilliseconds,
            MaxThrottlePercent = totals.MaxThrottlePercent,
            HotPagesDeferred = totals.DeferredPages,
            RoundsDetail = [.. _telemetry.Rows],
        };
    }

    /// <summary>A report row's action for the policy's decision.</summary>
    internal static RoundAction ToRoundAction(MigrationAction action) => action switch
    {
        MigrationAction.Continue => RoundAction.Continue,
        MigrationAction.Defer => RoundAction.Defer,
        MigrationAction.Throttle => RoundAction.Throttle,
        MigrationAction.SwitchOver => RoundAction.Switchover,
        _ => RoundAction.Abort,
    };

    // Brings the byte and page counters up to what was sent so far.
    private void CountSent(EngineTotals totals) => _telemetry.CountSent(totals.BytesSent, totals.PagesSent);
}
