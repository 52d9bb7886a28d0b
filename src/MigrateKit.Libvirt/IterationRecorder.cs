using System;
using System.Collections.Generic;
using System.Diagnostics;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Libvirt;

/// <summary>
/// Everything a libvirt migration reports, in one place: the <c>migratekit.migrate</c> span and its tags,
/// a <c>migratekit.round</c> span, a <see cref="RoundReport"/>, a log line and a progress report per
/// iteration seen by polling, the <c>MigrateKit</c> meter's counters and histograms (tag
/// <c>migratekit.source</c> = <c>libvirt</c>), and the final <see cref="MigrationReport"/> with its
/// switchover row.
/// </summary>
/// <remarks>Not thread-safe: the migrator and its job follower call it from one flow at a time.</remarks>
internal sealed class IterationRecorder : IDisposable
{
    // QEMU counts pages of the host's page size; libvirt's figures here are in those pages.
    private const ulong PageSize = GuestMemoryLayout.PageSize;

    private readonly string _domain;
    private readonly TimeProvider _time;
    private readonly IProgress<MigrationProgress>? _progress;
    private readonly ILogger _logger;
    private readonly Activity? _activity;
    private readonly MigrationTelemetry _telemetry = new("libvirt");
    private readonly List<MigrationDecision> _decisions = [];
    private readonly List<MigrationDecision> _unreported = [];
    private ulong _memory;
    private string? _strategy;
    private ulong _deltaPagesAtLastRound;
    private ulong _deltaBytesAtLastRound;
    private ulong _missesAtLastRound;
    private ulong _overflowsAtLastRound;

    // QEMU's running totals and the time when the last recorded iteration ended.
    private ulong _processedAtLastRound;
    private ulong _zeroAtLastRound;
    private ulong _pagesAtLastRound;
    private TimeSpan _lastRoundAt;
    private DateTimeOffset _lastRoundWall;

    /// <summary>Starts the migration's span (current from here on in the caller's flow).</summary>
    internal IterationRecorder(MigrationRoute route, LibvirtMigrationOptions options, IProgress<MigrationProgress>? progress, ILogger logger)
    {
        _domain = route.Domain;
        _time = options.TimeProvider;
        _progress = progress;
        _logger = logger;
        _activity = _telemetry.StartMigration(route.Domain, options.MaxDowntime, options.BandwidthLimit);
        _activity?.SetTag("migratekit.libvirt.source_uri", route.SourceUri);
        _activity?.SetTag("migratekit.libvirt.destination_uri", route.DestinationUri);
    }

    /// <summary>The last forecast made.</summary>
    internal Forecast? LastForecast { get; private set; }

    /// <summary>The last statistics polled before the stop-and-copy.</summary>
    internal JobStats? LastStats { get; private set; }

    /// <summary>The rows recorded so far.</summary>
    internal IReadOnlyList<RoundReport> Rounds => _telemetry.Rows;

    /// <summary>The migration is about to start with <paramref name="plan"/>.</summary>
    internal void Starting(MigrationRoute route, ulong memory, StartPlan plan)
    {
        _memory = memory;
        _strategy = StartPlan.Name(plan.Strategy);
        Decided(0, TimeSpan.Zero, "strategy", plan.Reason);
        LibvirtLog.MigrationStarting(_logger, route.Domain, route.SourceUri, route.DestinationUri, plan.Reason);
        _telemetry.MemoryKnown(memory, _activity);
        _activity?.SetTag("migratekit.libvirt.plan", plan.Reason);
    }

    /// <summary>A decision was taken (a strategy, a raised limit, a resized cache, postcopy, an abort): kept for the report and the next progress report.</summary>
    internal void Decided(int round, TimeSpan at, string action, string reason)
    {
        var decision = new MigrationDecision(at.TotalMilliseconds, round, action, reason);
        _decisions.Add(decision);
        _unreported.Add(decision);
        _activity?.AddEvent(new ActivityEvent("migratekit.decision", tags: new ActivityTagsCollection { ["action"] = action, ["reason"] = reason }));
    }

    /// <summary>The name a decision goes by in reports.</summary>
    internal static string DecisionName(LibvirtAction action) => action switch
    {
        LibvirtAction.RaiseDowntimeLimit => "raise-limit",
        LibvirtAction.StartPostcopy => "postcopy",
        LibvirtAction.Abort => "abort",
        _ => "continue",
    };

    /// <summary>The migrate call starts: the first iteration's span starts now.</summary>
    internal void CallStarted() => _lastRoundWall = _time.GetUtcNow();

    /// <summary>Counts what QEMU sent up to a poll: the byte and page counters follow its running totals.</summary>
    internal void CountTransfer(JobStats stats)
    {
        _telemetry.CountSent(stats.DataProcessed ?? stats.MemoryProcessed ?? 0, stats.MemoryNormal ?? 0);
    }

    /// <summary>QEMU stopped the guest for the stop-and-copy after <paramref name="iterations"/> iterations.</summary>
    internal void SwitchoverSeen(int iterations)
    {
        LibvirtLog.SwitchoverSeen(_logger, _domain, iterations, LastForecast?.PredictedDowntime.TotalMilliseconds);
        _activity?.AddEvent(new ActivityEvent("migratekit.switchover"));
    }

    /// <summary>A poll of the pre-copy, with or without a forecast.</summary>
    internal void Polled(JobStats stats) => LastStats = stats;

    /// <summary>A forecast made from a poll: recorded with the poll's dirty rate and throttle.</summary>
    internal void Forecasted(JobStats stats, Forecast forecast, double dirtyBytesPerSecond)
    {
        LastForecast = forecast;
        MaxThrottle = Math.Max(MaxThrottle, stats.AutoConvergeThrottle ?? 0);
        _telemetry.RecordForecast(forecast, dirtyBytesPerSecond / PageSize, stats.AutoConvergeThrottle ?? 0);
    }

    /// <summary>The strongest throttle seen, percent.</summary>
    internal int MaxThrottle { get; private set; }

    /// <summary>
    /// A new dirty sync ended iteration <paramref name="iteration"/>: its row, like the engine's, holds what
    /// that round sent and the forecast made after its harvest (the sync just seen).
    /// </summary>
    internal void IterationEnded(int iteration, JobStats stats, TimeSpan elapsed, Forecast forecast, JobForecaster forecaster, LibvirtDecision decision)
    {
        ulong processed = stats.DataProcessed ?? stats.MemoryProcessed ?? 0;
        ulong normal = stats.MemoryNormal ?? 0;
        ulong zero = stats.MemoryConstant ?? 0;
        var row = new RoundReport
        {
            Round = iteration,
            BytesSent = processed - _processedAtLastRound,
            PagesSent = Delta(normal, _pagesAtLastRound),
            ZeroPages = Delta(zero, _zeroAtLastRound),
            DeltaPages = Delta(stats.CompressionPages ?? 0, _deltaPagesAtLastRound),
            DeltaBytes = Delta(stats.CompressionBytes ?? 0, _deltaBytesAtLastRound),
            DeltaCacheMisses = Delta(stats.CompressionCacheMisses ?? 0, _missesAtLastRound),
            DeltaOverflows = Delta(stats.CompressionOverflow ?? 0, _overflowsAtLastRound),
            DurationMs = (elapsed - _lastRoundAt).TotalMilliseconds,
            DirtyPages = forecaster.PendingBytes / PageSize,
            DirtyRate = forecaster.DirtyRate / PageSize,
            Bandwidth = forecaster.Bandwidth,
            ThrottlePercent = stats.AutoConvergeThrottle ?? 0,
            PredictedDowntimeMs = forecast.PredictedDowntime.TotalMilliseconds,
            PredictedDowntimeLowMs = forecast.DowntimeLow.TotalMilliseconds,
            PredictedDowntimeHighMs = forecast.DowntimeHigh.TotalMilliseconds,
            PredictedTotalMs = forecast.PredictedTotalTime?.TotalMilliseconds,
            Verdict = forecast.Verdict,
            Action = ToRoundAction(decision.Action),
        };
        using (Activity? span = MigrationTelemetry.StartRound(iteration, _lastRoundWall))
        {
            _telemetry.RoundEnded(row, span);
        }

        LibvirtLog.Iteration(_logger, _domain, row, forecaster.PendingBytes);
        _pagesAtLastRound = normal;
        _processedAtLastRound = processed;
        _zeroAtLastRound = zero;
        _deltaPagesAtLastRound = stats.CompressionPages ?? 0;
        _deltaBytesAtLastRound = stats.CompressionBytes ?? 0;
        _missesAtLastRound = stats.CompressionCacheMisses ?? 0;
        _overflowsAtLastRound = stats.CompressionOverflow ?? 0;
        _lastRoundAt = elapsed;
        _lastRoundWall = _time.GetUtcNow();
        _progress?.Report(new MigrationProgress
        {
            Round = iteration,
            Elapsed = elapsed,
            BytesSent = processed,
            RemainingBytes = forecaster.PendingBytes,
            DirtyPages = forecaster.PendingBytes / PageSize,
            HotPages = 0,
            DeferredPages = 0,
            DirtyRatePagesPerSecond = forecaster.DirtyRate / PageSize,
            BandwidthBytesPerSecond = forecaster.Bandwidth,
            ThrottlePercent = stats.AutoConvergeThrottle ?? 0,
            Forecast = forecast,
            Action = ToMigrationAction(decision.Action),
            Decisions = TakeUnreported(),
        });
    }

    /// <summary>
    /// The report of a migration that came to <paramref name="outcome"/>: libvirt's completed statistics
    /// where there are any, the polls' figures otherwise, and for a completed pre-copy the switchover row.
    /// </summary>
    /// <param name="outcome">What the migration came to.</param>
    /// <param name="postcopy">Whether the job switched to postcopy (a pre-copy forecast says nothing about that switchover).</param>
    /// <param name="total">How long the migration took, as the migrator measured it.</param>
    /// <param name="maxDowntime">The caller's downtime limit.</param>
    internal MigrationReport Report(MigrationOutcome outcome, bool postcopy, TimeSpan total, TimeSpan maxDowntime)
    {
        bool completed = outcome.Status == MigrationStatus.Completed;
        JobStats? final = outcome.Final;
        Forecast? last = postcopy ? null : LastForecast;
        double? predicted = last?.PredictedDowntime.TotalMilliseconds;
        double? actual = final?.DowntimeMs is { } d ? d : null;
        double? error = predicted is { } p && actual is > 0 ? Math.Abs(p - actual.Value) / actual.Value * 100 : null;
        ulong sent = final?.DataProcessed ?? final?.MemoryProcessed ?? LastStats?.DataProcessed ?? 0;
        if (completed && last is not null)
        {
            // The last row is the switchover, as in the engine's reports: what the forecast said then.
            _telemetry.SwitchoverEnded(new RoundReport
            {
                Round = (int)(final?.MemoryIteration ?? (ulong)_telemetry.Rows.Count),
                BytesSent = Delta(sent, _processedAtLastRound),
                DurationMs = actual ?? 0,
                DirtyPages = last.PendingBytes / PageSize,
                DirtyRate = last.DirtyBytesPerSecond / PageSize,
                Bandwidth = last.BandwidthBytesPerSecond,
                ThrottlePercent = LastStats?.AutoConvergeThrottle ?? 0,
                PredictedDowntimeMs = last.PredictedDowntime.TotalMilliseconds,
                PredictedDowntimeLowMs = last.DowntimeLow.TotalMilliseconds,
                PredictedDowntimeHighMs = last.DowntimeHigh.TotalMilliseconds,
                Verdict = last.Verdict,
                Action = RoundAction.Switchover,
            });
        }

        DowntimeBreakdown? parts = last?.Breakdown;
        return new MigrationReport
        {
            Status = outcome.Status,
            Reason = outcome.Reason,
            FailedPhase = outcome.FailedPhase,
            MemoryBytes = _memory,
            Rounds = (int)(final?.MemoryIteration ?? (ulong)_telemetry.Rows.Count),
            BytesSent = sent,
            PagesSent = final?.MemoryNormal ?? LastStats?.MemoryNormal ?? 0,
            TotalMs = final?.TimeElapsedMs is { } elapsedMs ? elapsedMs : total.TotalMilliseconds,
            DowntimeMs = actual,
            PredictedDowntimeMs = completed ? predicted : null,
            PredictedDowntimeLowMs = completed ? last?.DowntimeLow.TotalMilliseconds : null,
            PredictedDowntimeHighMs = completed ? last?.DowntimeHigh.TotalMilliseconds : null,
            PredictedDowntimeParts = completed && parts is { } b
                ? new DowntimeParts(b.Pause.TotalMilliseconds, b.FinalHarvest.TotalMilliseconds, (b.Transfer + b.DeviceState).TotalMilliseconds, b.Resume.TotalMilliseconds)
                : null,
            PredictedCorrectionMs = completed ? last?.FixedCorrection.TotalMilliseconds : null,
            PredictionErrorPercent = completed ? error : null,
            MaxThrottlePercent = MaxThrottle,
            OutcomeUnknown = outcome.Unknown,
            RoundsDetail = [.. _telemetry.Rows],
            Error = outcome.Error,
            DowntimeLimitMs = maxDowntime.TotalMilliseconds,
            Strategy = _strategy,
            Decisions = [.. _decisions],
        };
    }

    /// <summary>Counts what the report says that the polls did not see, the downtime and the outcome; logs the end and tags the span.</summary>
    internal void Finish(MigrationReport report)
    {
        switch (report.Status)
        {
            case MigrationStatus.Completed:
                LibvirtLog.MigrationCompleted(_logger, _domain, report.TotalMs, report.DowntimeMs, report.PredictedDowntimeMs, report.BytesSent, report.Rounds);
                break;
            case MigrationStatus.Aborted:
                LibvirtLog.MigrationAborted(_logger, _domain, report.Reason);
                break;
            default:
                LibvirtLog.MigrationFailed(_logger, _domain, report.Reason);
                break;
        }

        _telemetry.Finish(report, _activity);
    }

    /// <summary>The migration ended with an exception instead of a report (a failed check, or cancelled before it started).</summary>
    internal void Fail(Exception exception)
    {
        _telemetry.Thrown(exception, _activity);
    }

    /// <summary>Ends the migration's span.</summary>
    public void Dispose() => _activity?.Dispose();

    /// <summary>A report row's action for a policy action.</summary>
    internal static RoundAction ToRoundAction(LibvirtAction action) => action switch
    {
        LibvirtAction.RaiseDowntimeLimit => RoundAction.RaiseLimit,
        LibvirtAction.StartPostcopy => RoundAction.Postcopy,
        LibvirtAction.Abort => RoundAction.Abort,
        _ => RoundAction.Continue,
    };

    /// <summary>The progress report's action of a policy action: QEMU's switchover is what a raised limit or postcopy brings.</summary>
    internal static MigrationAction ToMigrationAction(LibvirtAction action) => action switch
    {
        LibvirtAction.RaiseDowntimeLimit => MigrationAction.SwitchOver,
        LibvirtAction.StartPostcopy => MigrationAction.SwitchOver,
        LibvirtAction.Abort => MigrationAction.Abort,
        _ => MigrationAction.Continue,
    };

    private MigrationDecision[] TakeUnreported()
    {
        MigrationDecision[] taken = [.. _unreported];
        _unreported.Clear();
        return taken;
    }

    private static ulong Delta(ulong now, ulong before) => now > before ? now - before : 0;
}
