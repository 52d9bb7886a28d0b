using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using MigrateKit.Diagnostics;
using MigrateKit.Estimation;
using MigrateKit.Migration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MigrateKit.Libvirt;

/// <summary>
/// Live-migrates libvirt domains with MigrateKit's forecasts and policy. It measures the dirty rate,
/// sizes auto-converge from it, starts <c>virDomainMigrate3</c>, follows job statistics and iteration
/// events, forecasts the real downtime after every poll and acts on it (QEMU's downtime limit, postcopy,
/// abort at the deadline). Connection faults while polling are retried with reconnects; the migrate call
/// itself is never retried: after a fault, the domain's state on both hosts decides what happened.
/// </summary>
/// <remarks>
/// Diagnostics: the logger gets Information at the start, the switchover and the end, Debug per
/// iteration and Warning on an abort or a failure; the <c>MigrateKit</c> meter gets the bytes, pages,
/// dirty rate, throttle and forecast of every poll and the downtime and outcome at the end (tag
/// <c>migratekit.source</c> = <c>libvirt</c>); the <c>MigrateKit</c> activity source gets a
/// <c>migratekit.migrate</c> span with a <c>migratekit.round</c> child per iteration seen by polling.
/// </remarks>
public sealed class LibvirtMigrator
{
    private static readonly KeyValuePair<string, object?>[] Tags = [new(MigrateKitTelemetry.Tags.Source, "libvirt")];

    /// <summary>How often an abort is sent again while the migrate call has not returned.</summary>
    private static readonly TimeSpan AbortRetryInterval = TimeSpan.FromSeconds(2);

    private readonly ILibvirtHostFactory _factory;
    private readonly ILogger _logger;

    /// <summary>Creates a migrator.</summary>
    /// <param name="logger">Where diagnostics go; null for none.</param>
    public LibvirtMigrator(ILogger<LibvirtMigrator>? logger = null)
        : this(LibvirtHost.Factory, logger)
    {
    }

    internal LibvirtMigrator(ILibvirtHostFactory factory, ILogger? logger)
    {
        _factory = factory;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// Migrates <paramref name="domain"/> from <paramref name="sourceUri"/> to <paramref name="destinationUri"/>.
    /// </summary>
    /// <param name="sourceUri">The source host's libvirt URI.</param>
    /// <param name="domain">The running domain's name.</param>
    /// <param name="destinationUri">The destination host's libvirt URI.</param>
    /// <param name="options">How to migrate; null for the defaults.</param>
    /// <param name="progress">Receives a <see cref="MigrationProgress"/> at every dirty sync.</param>
    /// <param name="cancellationToken">Cancels: the job is aborted and the source keeps running.</param>
    /// <returns>
    /// The report: <see cref="MigrationReport.DowntimeMs"/> is the downtime libvirt reports,
    /// <see cref="MigrationReport.PredictedDowntimeMs"/> MigrateKit's forecast at the last poll before the switchover.
    /// A failed or aborted migration returns a report too, with the source running.
    /// </returns>
    /// <exception cref="LibvirtException">The domain does not exist (<see cref="LibvirtException.IsNoDomain"/>), or libvirt refused a call.</exception>
    /// <exception cref="LibvirtException">A host could not be reached within <see cref="LibvirtMigrationOptions.ConnectTimeout"/>: the last connection error.</exception>
    /// <exception cref="InvalidOperationException">The domain is not running, or the destination already has one of that name.</exception>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    public Task<MigrationReport> MigrateAsync(
        string sourceUri,
        string domain,
        string destinationUri,
        LibvirtMigrationOptions? options = null,
        IProgress<MigrationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sourceUri);
        ArgumentException.ThrowIfNullOrEmpty(domain);
        ArgumentException.ThrowIfNullOrEmpty(destinationUri);
        options ??= new LibvirtMigrationOptions();
        options.Validate();
        if (sourceUri == destinationUri)
        {
            throw new ArgumentException($"The source and destination are the same URI ('{sourceUri}').", nameof(destinationUri));
        }

        return Task.Run(() => Run(sourceUri, domain, destinationUri, options, progress, cancellationToken), CancellationToken.None);
    }

    private async Task<MigrationReport> Run(string sourceUri, string domain, string destinationUri, LibvirtMigrationOptions options,
        IProgress<MigrationProgress>? progress, CancellationToken ct)
    {
        using Activity? activity = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Migrate);
        if (activity is not null)
        {
            activity.SetTag(MigrateKitTelemetry.Tags.Source, "libvirt");
            activity.SetTag(MigrateKitTelemetry.Tags.VmName, domain);
            activity.SetTag("migratekit.libvirt.source_uri", sourceUri);
            activity.SetTag("migratekit.libvirt.destination_uri", destinationUri);
            activity.SetTag(MigrateKitTelemetry.Tags.MaxDowntimeMs, options.MaxDowntime.TotalMilliseconds);
            if (options.BandwidthLimit is long limit)
            {
                activity.SetTag(MigrateKitTelemetry.Tags.BandwidthLimit, limit);
            }
        }

        var run = new RunState();
        MigrationReport report;
        try
        {
            report = await RunCore(sourceUri, domain, destinationUri, options, progress, run, activity, ct).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            string status = ex is OperationCanceledException ? "cancelled" : "failed";
            MigrateKitTelemetry.Migrations.Add(1, MigrateKitTelemetry.With(Tags, MigrateKitTelemetry.Tags.Status, status));
            MigrateKitTelemetry.SetOutcome(activity, status, ex.Message, ex is OperationCanceledException ? null : ex);
            throw;
        }

        Finish(domain, report, run, activity);
        return report;
    }

    /// <summary>Counts what the report says that the polls did not see, the downtime and the outcome; logs the end and tags the span.</summary>
    private void Finish(string domain, MigrationReport report, RunState run, Activity? activity)
    {
        MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.BytesSent, report.BytesSent, ref run.BytesCounted, Tags);
        MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.PagesSent, report.PagesSent, ref run.PagesCounted, Tags);
        MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.Rounds, (ulong)Math.Max(report.Rounds, 0), ref run.RoundsCounted, Tags);
        string status = MigrationTelemetry.StatusName(report.Status);
        if (report.Status == MigrationStatus.Completed && report.DowntimeMs is double downtime)
        {
            MigrateKitTelemetry.ActualDowntime.Record(downtime, Tags);
        }

        MigrateKitTelemetry.Migrations.Add(1, MigrateKitTelemetry.With(Tags, MigrateKitTelemetry.Tags.Status, status));
        switch (report.Status)
        {
            case MigrationStatus.Completed:
                LibvirtLog.MigrationCompleted(_logger, domain, report.TotalMs, report.DowntimeMs, report.PredictedDowntimeMs, report.BytesSent, report.Rounds);
                break;
            case MigrationStatus.Aborted:
                LibvirtLog.MigrationAborted(_logger, domain, report.Reason);
                break;
            default:
                LibvirtLog.MigrationFailed(_logger, domain, report.Reason);
                break;
        }

        if (activity is not null)
        {
            activity.SetTag(MigrateKitTelemetry.Tags.MemoryBytes, (long)report.MemoryBytes);
            activity.SetTag(MigrateKitTelemetry.Tags.Rounds, report.Rounds);
            activity.SetTag(MigrateKitTelemetry.Tags.BytesSent, (long)report.BytesSent);
            activity.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)report.PagesSent);
            if (report.DowntimeMs is double actual)
            {
                activity.SetTag(MigrateKitTelemetry.Tags.DowntimeMs, actual);
            }

            if (report.PredictedDowntimeMs is double predicted)
            {
                activity.SetTag(MigrateKitTelemetry.Tags.PredictedDowntimeMs, predicted);
            }

            MigrateKitTelemetry.SetOutcome(activity, status, report.Reason, report.Status == MigrationStatus.Completed ? null : report.Error);
        }
    }

    private async Task<MigrationReport> RunCore(string sourceUri, string domain, string destinationUri, LibvirtMigrationOptions options,
        IProgress<MigrationProgress>? progress, RunState run, Activity? activity, CancellationToken ct)
    {
        TimeProvider time = options.TimeProvider;
        // Both hosts answer and the domain runs before anything changes. An unknown domain is
        // libvirt's own "no domain" error, with libvirt's message; an unreachable host is given
        // the (shorter) connect timeout, not the reconnect timeout of a running migration.
        ulong memory;
        using (var firstSrc = new ResilientHost(_factory, sourceUri, options.ConnectTimeout, time, _logger))
        using (var firstDst = new ResilientHost(_factory, destinationUri, options.ConnectTimeout, time, _logger))
        {
            memory = firstSrc.Run(h => h.GetMemoryBytes(domain), ct);
            DomainStateInfo state = firstSrc.Run(h => h.GetState(domain), ct)
                ?? throw new InvalidOperationException($"The domain '{domain}' disappeared from '{sourceUri}'.");
            if (state.State != DomainState.Running)
            {
                throw new InvalidOperationException($"The domain '{domain}' on '{sourceUri}' is {state.State.ToString().ToLowerInvariant()}, not running.");
            }

            if (firstDst.Run(h => h.GetState(domain), ct) is { } existing)
            {
                throw new InvalidOperationException($"The destination '{destinationUri}' already has a domain '{domain}' ({existing.State.ToString().ToLowerInvariant()}).");
            }
        }

        using var monitorSrc = new ResilientHost(_factory, sourceUri, options.ReconnectTimeout, time, _logger);
        using var monitorDst = new ResilientHost(_factory, destinationUri, options.ReconnectTimeout, time, _logger);

        var estimator = new DowntimeEstimator();
        HostPairCalibration? calibration = options.Calibration ?? HostPairCalibration.For(sourceUri, destinationUri);
        if (calibration is null && options.CalibrateHostPair)
        {
            calibration = await CalibrateAsync(sourceUri, destinationUri, new LibvirtCalibrationOptions { MigrationUri = options.MigrationUri }, ct).ConfigureAwait(false);
        }

        if (calibration is { IsMeasured: true })
        {
            // The probes measured every fixed cost of a switchover between these hosts at once.
            estimator.ObserveResume(calibration.FixedDowntime);
        }
        else if (options.CalibratePause)
        {
            Calibrate(monitorSrc, domain, estimator, ct);
        }

        double? switchover = options.SwitchoverBandwidth ?? (calibration is { IsMeasured: true } ? calibration.StopAndCopyBytesPerSecond : (double?)null);
        double? dirty = options.MeasureDirtyRate ? await MeasureDirtyRateAsync(monitorSrc, domain, options, ct).ConfigureAwait(false) : null;
        StartPlan plan = StartPlan.Choose(options, dirty);
        LibvirtLog.MigrationStarting(_logger, domain, sourceUri, destinationUri, plan.Reason);
        if (activity is not null)
        {
            activity.SetTag(MigrateKitTelemetry.Tags.MemoryBytes, (long)memory);
            activity.SetTag("migratekit.libvirt.plan", plan.Reason);
        }


        var forecaster = new JobForecaster(estimator, options.MaxDowntime, options.BandwidthLimit, switchover);
        var policy = new LibvirtPolicy(options);
        var rounds = new List<RoundReport>();
        long start = time.GetTimestamp();
        var parameters = new DomainMigrationParameters
        {
            MigrationUri = options.MigrationUri,
            BandwidthMiBps = plan.BandwidthMiBps,
            AutoConvergeInitial = plan.ThrottleInitial,
            AutoConvergeIncrement = plan.ThrottleIncrement,
        };
        MigrationFlags flags = MigrationFlags.Live
            | (plan.AutoConverge ? MigrationFlags.AutoConverge : 0)
            | (plan.Postcopy ? MigrationFlags.Postcopy : 0)
            | (options.Unsafe ? MigrationFlags.Unsafe : 0)
            | (options.PersistOnDestination ? MigrationFlags.PersistDestination : 0)
            | (options.UndefineSource ? MigrationFlags.UndefineSource : 0);

        // The migrate call gets connections of its own: a fault on the polling ones must not touch it.
        ILibvirtHost controlSrc = monitorSrc.Run(_ => _factory.Open(sourceUri), ct);
        ILibvirtHost controlDst;
        try
        {
            controlDst = monitorDst.Run(_ => _factory.Open(destinationUri), ct);
        }
        catch
        {
            controlSrc.Dispose();
            throw;
        }

        using var wake = new SemaphoreSlim(0);
        IDisposable? iterations = null;
        try
        {
            try
            {
                iterations = controlSrc.WatchIterations(domain, _ => wake.Release());
            }
            catch (LibvirtException ex)
            {
                LibvirtLog.IterationEventsUnavailable(_logger, ex, sourceUri);
            }

            Task migrate = Task.Factory.StartNew(() => controlSrc.Migrate(domain, controlDst, parameters, flags),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            run.QemuLimit = options.InitialQemuDowntimeLimit ?? plan.MaxDowntime;
            run.LastRoundWall = DateTimeOffset.UtcNow;
            await FollowAsync(migrate, monitorSrc, domain, options, forecaster, policy, estimator, rounds, run, start, memory, progress, wake, ct).ConfigureAwait(false);

            Exception? failure = null;
            try
            {
                await migrate.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is LibvirtException or ArgumentException or InvalidOperationException or ObjectDisposedException)
            {
                failure = ex;
            }

            double totalMs = time.GetElapsedTime(start).TotalMilliseconds;
            return Conclude(domain, monitorSrc, monitorDst, (sourceUri, destinationUri), calibration, run, rounds, memory, totalMs, failure) with { DowntimeLimitMs = options.MaxDowntime.TotalMilliseconds };
        }
        finally
        {
            iterations?.Dispose();
            controlSrc.Dispose();
            controlDst.Dispose();
        }
    }

    /// <summary>
    /// Measures what any migration between two hosts costs: a small probe guest that fills memory and
    /// halts is created on the source, migrated unlimited, and destroyed. Its pre-copy speed is the
    /// speed of a stop-and-copy (the guest is idle), its downtime the fixed part of every downtime.
    /// The result is remembered for the pair in this process and refined by each later migration.
    /// </summary>
    /// <param name="sourceUri">The source host's libvirt URI.</param>
    /// <param name="destinationUri">The destination host's libvirt URI.</param>
    /// <param name="options">Where the probe's image goes and how big it is; null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the probe (it is destroyed).</param>
    /// <exception cref="LibvirtException">A host refused the probe.</exception>
    /// <exception cref="TimeoutException">The probe did not boot in time.</exception>
    public async Task<HostPairCalibration> CalibrateAsync(string sourceUri, string destinationUri, LibvirtCalibrationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sourceUri);
        ArgumentException.ThrowIfNullOrEmpty(destinationUri);
        HostPairCalibration calibration = await HostPairProbe.RunAsync(this, sourceUri, destinationUri, options ?? new LibvirtCalibrationOptions(), _logger, cancellationToken).ConfigureAwait(false);
        HostPairCalibration.Remember(sourceUri, destinationUri, calibration);
        return calibration;
    }

    private void Calibrate(ResilientHost host, string domain, DowntimeEstimator estimator, CancellationToken ct)
    {
        // What stopping and starting the guest costs through libvirt: part of every downtime.
        long t0 = Stopwatch.GetTimestamp();
        host.Run(h => h.Suspend(domain), ct);
        TimeSpan pause = Stopwatch.GetElapsedTime(t0);
        long t1 = Stopwatch.GetTimestamp();
        // Whatever happens to the caller's token, the guest does not stay paused.
        host.Run(h => h.Resume(domain), CancellationToken.None);

        TimeSpan resume = Stopwatch.GetElapsedTime(t1);
        estimator.ObservePause(pause);
        estimator.ObserveResume(resume);
        LibvirtLog.PauseCalibrated(_logger, pause.TotalMilliseconds, resume.TotalMilliseconds);
    }

    private async Task<double?> MeasureDirtyRateAsync(ResilientHost host, string domain, LibvirtMigrationOptions options, CancellationToken ct)
    {
        try
        {
            host.Run(h => h.StartDirtyRateCalc(domain, options.DirtyRatePeriod, options.DirtyRateMode), ct);
            long started = options.TimeProvider.GetTimestamp();
            TimeSpan give = options.DirtyRatePeriod + TimeSpan.FromSeconds(10);
            await Task.Delay(options.DirtyRatePeriod, options.TimeProvider, ct).ConfigureAwait(false);
            while (options.TimeProvider.GetElapsedTime(started) < give)
            {
                DirtyRateInfo info = host.Run(h => h.GetDirtyRate(domain), ct);
                if (info.Status == DirtyRateCalcStatus.Measured && info.MegabytesPerSecond is { } mbps)
                {
                    // QEMU's "MB" here is MiB: sampled pages x page size / 2^20.
                    double rate = mbps * (double)(1 << 20);
                    LibvirtLog.DirtyRateMeasured(_logger, domain, mbps, options.DirtyRateMode);
                    return rate;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), options.TimeProvider, ct).ConfigureAwait(false);
            }

            LibvirtLog.DirtyRateUnfinished(_logger, domain);
        }
        catch (LibvirtException ex)
        {
            LibvirtLog.DirtyRateFailed(_logger, ex, domain);
        }

        return null;
    }

    private async Task FollowAsync(Task migrate, ResilientHost monitor, string domain, LibvirtMigrationOptions options, JobForecaster forecaster,
        LibvirtPolicy policy, DowntimeEstimator estimator, List<RoundReport> rounds, RunState run, long start, ulong memory,
        IProgress<MigrationProgress>? progress, SemaphoreSlim wake, CancellationToken ct)
    {
        // The caller's token only asks for an abort: every call below runs to its end, so the
        // outcome is always concluded from both hosts, never left to an exception.
        TimeProvider time = options.TimeProvider;
        bool limitSet = false;
        long lastAbortAttempt = 0;
        while (!migrate.IsCompleted)
        {
            TimeSpan now = time.GetElapsedTime(start);
            if (run.AbortReason is null && !run.PostcopyStarted)
            {
                if (ct.IsCancellationRequested)
                {
                    run.AbortReason = "cancelled by the caller";
                }
                else if (options.Deadline is { } deadline && now - deadline >= options.PollInterval + options.PollInterval)
                {
                    // The policy aborts at the deadline with a forecast; this catches a job that never gave one.
                    run.AbortReason = FormattableString.Invariant($"deadline of {deadline.TotalSeconds:F1} s reached");
                }
            }

            if (run.AbortReason is not null && !run.PostcopyStarted && time.GetElapsedTime(lastAbortAttempt) >= AbortRetryInterval)
            {
                // Re-issued until the call returns: an abort sent before the job existed is lost.
                lastAbortAttempt = time.GetTimestamp();
                TryAbort(monitor, domain, CancellationToken.None);
            }

            // An iteration event wakes the loop early; otherwise poll at the interval.
            Task woken = wake.WaitAsync(options.PollInterval, CancellationToken.None);
            await Task.WhenAny(migrate, woken).ConfigureAwait(false);
            if (migrate.IsCompleted)
            {
                break;
            }

            JobStats stats;
            try
            {
                stats = monitor.Run(h => h.GetJobStats(domain, completed: false), CancellationToken.None);
            }
            catch (LibvirtException ex)
            {
                // No domain: the source let go of it and the call is about to return. A connection
                // that stayed down past the reconnect timeout: nothing more to learn by polling.
                // Anything else (a job in a state that has no statistics): skip this poll.
                if (ex.IsConnectionFault && !run.PollingLost)
                {
                    LibvirtLog.PollingLost(_logger, ex, domain);
                    run.PollingLost = true;
                }

                continue;
            }

            if (stats.Type is not (DomainJobType.Bounded or DomainJobType.Unbounded))
            {
                continue;
            }

            if (!limitSet)
            {
                // QEMU takes the limit once the job exists.
                limitSet = true;
                TrySetDowntime(monitor, domain, run.QemuLimit, CancellationToken.None);
            }

            // The byte and page counters follow QEMU's running totals poll by poll.
            MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.BytesSent, stats.DataProcessed ?? stats.MemoryProcessed ?? 0, ref run.BytesCounted, Tags);
            MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.PagesSent, stats.MemoryNormal ?? 0, ref run.PagesCounted, Tags);
            if (stats.MemoryRemaining == 0 && stats.MemoryIteration >= 2)
            {
                // Nothing left to send: QEMU has stopped the guest for the stop-and-copy (or is done).
                // The forecast that counts is the one made before; nothing is decided from here on.
                if (!run.SwitchoverSeen)
                {
                    LibvirtLog.SwitchoverSeen(_logger, domain, forecaster.Iteration, run.LastForecast?.PredictedDowntime.TotalMilliseconds);
                    Activity.Current?.AddEvent(new ActivityEvent("migratekit.switchover"));
                }

                run.SwitchoverSeen = true;
                continue;
            }

            TimeSpan elapsed = time.GetElapsedTime(start);
            int previous = forecaster.Iteration;
            Forecast? forecast = forecaster.Observe(stats, elapsed);
            run.LastStats = stats;
            if (forecast is null)
            {
                continue;
            }

            run.LastForecast = forecast;
            run.QemuExpectedDowntime = forecaster.QemuExpectedDowntime;
            run.MaxThrottle = Math.Max(run.MaxThrottle, stats.AutoConvergeThrottle ?? 0);
            MigrateKitTelemetry.DirtyRate.Record(forecaster.DirtyRate / 4096, Tags);
            MigrateKitTelemetry.PredictedDowntime.Record(forecast.PredictedDowntime.TotalMilliseconds, Tags);
            MigrateKitTelemetry.Throttle.Record(stats.AutoConvergeThrottle ?? 0, Tags);
            LibvirtDecision decision = policy.Decide(forecast, new LibvirtPolicyState(forecaster.Iteration, elapsed, run.QemuLimit,
                forecaster.QemuExpectedDowntime, stats.AutoConvergeThrottle ?? 0, run.PostcopyStarted));
            Apply(decision, monitor, domain, run, CancellationToken.None);

            // A new dirty sync ends the previous iteration: its row, like the engine's, holds what that
            // round sent and the forecast made after its harvest (the sync just seen).
            if (forecaster.Iteration != previous && previous > 0)
            {
                ulong processed = stats.DataProcessed ?? stats.MemoryProcessed ?? 0;
                ulong normalNow = stats.MemoryNormal ?? 0;
                var row = new RoundReport
                {
                    Round = previous,
                    BytesSent = processed - run.ProcessedAtLastRound,
                    PagesSent = normalNow > run.PagesAtLastRound ? normalNow - run.PagesAtLastRound : 0,
                    ZeroPages = (stats.MemoryConstant ?? 0) > run.ZeroAtLastRound ? (stats.MemoryConstant ?? 0) - run.ZeroAtLastRound : 0,
                    DurationMs = (elapsed - run.LastRoundAt).TotalMilliseconds,
                    DirtyPages = forecaster.PendingBytes / 4096,
                    DirtyRate = forecaster.DirtyRate / 4096,
                    Bandwidth = forecaster.Bandwidth,
                    ThrottlePercent = stats.AutoConvergeThrottle ?? 0,
                    PredictedDowntimeMs = forecast.PredictedDowntime.TotalMilliseconds,
                    PredictedTotalMs = forecast.PredictedTotalTime?.TotalMilliseconds,
                    Verdict = forecast.Verdict.ToString().ToLowerInvariant(),
                    Action = ActionName(decision.Action),
                };
                rounds.Add(row);
                MigrateKitTelemetry.Rounds.Add(1, Tags);
                run.RoundsCounted++;
                ulong normal = stats.MemoryNormal ?? 0;
                TraceRound(row, normal > run.PagesAtLastRound ? normal - run.PagesAtLastRound : 0, run.LastRoundWall);
                run.PagesAtLastRound = normal;
                LibvirtLog.Iteration(_logger, row.Round, domain, row.BytesSent, row.DurationMs, forecaster.PendingBytes, row.DirtyRate,
                    row.ThrottlePercent, row.PredictedDowntimeMs, row.Verdict, row.Action);
                run.ProcessedAtLastRound = processed;
                run.ZeroAtLastRound = stats.MemoryConstant ?? 0;
                run.LastRoundAt = elapsed;
                run.LastRoundWall = DateTimeOffset.UtcNow;
                progress?.Report(new MigrationProgress(previous, elapsed, processed, forecaster.PendingBytes,
                    forecaster.PendingBytes / 4096, 0, 0, forecaster.DirtyRate / 4096, forecaster.Bandwidth, stats.AutoConvergeThrottle ?? 0,
                    forecast, ToMigrationAction(decision.Action)));
            }
        }
    }

    /// <summary>
    /// A <c>migratekit.round</c> span for an iteration, from the poll that saw the previous one to now, with
    /// the pages sent in it (the row's <see cref="RoundReport.PagesSent"/> is QEMU's running total).
    /// </summary>
    private static void TraceRound(RoundReport row, ulong pages, DateTimeOffset start)
    {
        using Activity? span = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Round, ActivityKind.Internal, parentContext: default, startTime: start);
        if (span is null)
        {
            return;
        }

        span.SetTag(MigrateKitTelemetry.Tags.Round, row.Round);
        span.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)pages);
        span.SetTag(MigrateKitTelemetry.Tags.BytesSent, (long)row.BytesSent);
        span.SetTag(MigrateKitTelemetry.Tags.DirtyPages, (long)row.DirtyPages);
        span.SetTag(MigrateKitTelemetry.Tags.PredictedDowntimeMs, row.PredictedDowntimeMs);
        span.SetTag(MigrateKitTelemetry.Tags.Action, row.Action);
    }

    private void Apply(LibvirtDecision decision, ResilientHost monitor, string domain, RunState run, CancellationToken ct)
    {
        switch (decision.Action)
        {
            case LibvirtAction.Abort when run.AbortReason is null:
                run.AbortReason = decision.Reason;
                LibvirtLog.Aborting(_logger, domain, decision.Reason);
                TryAbort(monitor, domain, ct);
                break;
            case LibvirtAction.RaiseDowntimeLimit when decision.DowntimeLimit is { } limit:
                LibvirtLog.RaisingLimit(_logger, domain, limit.TotalMilliseconds, decision.Reason);
                if (TrySetDowntime(monitor, domain, limit, ct))
                {
                    run.QemuLimit = limit;
                    run.LimitRaised = true;
                }

                break;
            case LibvirtAction.StartPostcopy when !run.PostcopyStarted:
                LibvirtLog.StartingPostcopy(_logger, domain, decision.Reason);
                try
                {
                    monitor.Run(h => h.StartPostCopy(domain), ct);
                    run.PostcopyStarted = true;
                }
                catch (LibvirtException ex)
                {
                    LibvirtLog.PostcopyFailed(_logger, ex, domain);
                }

                break;
        }
    }

    private bool TrySetDowntime(ResilientHost monitor, string domain, TimeSpan limit, CancellationToken ct)
    {
        try
        {
            monitor.Run(h => h.SetMaxDowntime(domain, limit), ct);
            return true;
        }
        catch (LibvirtException ex)
        {
            // The job may have ended between the poll and this call.
            LibvirtLog.SetDowntimeFailed(_logger, ex, domain);
            return false;
        }
    }

    private void TryAbort(ResilientHost monitor, string domain, CancellationToken ct)
    {
        try
        {
            monitor.Run(h => h.AbortJob(domain), ct);
        }
        catch (LibvirtException ex)
        {
            // Too late to abort (the switchover is under way) or the job is gone: the outcome decides.
            LibvirtLog.AbortFailed(_logger, ex, domain);
        }
    }

    private MigrationReport Conclude(string domain, ResilientHost src, ResilientHost dst, (string Source, string Destination) pair,
        HostPairCalibration? calibration, RunState run, List<RoundReport> rounds, ulong memory, double totalMs, Exception? failure)
    {
        // The domain's state on both hosts says what happened, whatever the migrate call returned.
        HostView onSource = Query(src, domain);
        HostView onDestination = Query(dst, domain);
        bool destinationActive = onDestination.Active;
        bool sourceActive = onSource.Active;

        // libvirt's success means the destination runs it; after a failed call only the states count.
        bool completed = failure is null || (destinationActive && onSource.Reachable && !sourceActive);

        JobStats? final = null;
        if (completed)
        {
            try
            {
                final = dst.Run(h => h.GetJobStats(domain, completed: true), CancellationToken.None);
            }
            catch (LibvirtException ex)
            {
                LibvirtLog.NoCompletedStats(_logger, ex, domain);
            }
        }
        else if (onSource.State is { State: DomainState.Paused } && !run.PostcopyStarted && onDestination.Reachable && !destinationActive)
        {
            // Only when the destination certainly does not run it: resuming a guest that runs
            // elsewhere too would have two copies writing to the same disks.
            // A failed pre-copy migration must leave the guest running where it was.
            try
            {
                src.Run(h => h.Resume(domain), CancellationToken.None);
            }
            catch (LibvirtException ex)
            {
                LibvirtLog.ResumeFailed(_logger, ex, domain);
            }
        }

        // A forecast of a pre-copy switchover says nothing about a postcopy one.
        Forecast? last = run.PostcopyStarted ? null : run.LastForecast;
        double? predicted = last?.PredictedDowntime.TotalMilliseconds;
        double? actual = final?.DowntimeMs is { } d ? d : null;
        double? error = predicted is { } p && actual is > 0 ? Math.Abs(p - actual.Value) / actual.Value * 100 : null;
        if (completed && actual is { } a && last is not null && !run.PostcopyStarted && calibration is { IsMeasured: true })
        {
            // Each completed migration sharpens the fixed part for the next one between these hosts.
            HostPairCalibration.Remember(pair.Source, pair.Destination, calibration.Refine(last.PendingBytes, TimeSpan.FromMilliseconds(a)));
        }

        MigrationStatus status = completed ? MigrationStatus.Completed : run.AbortReason is not null ? MigrationStatus.Aborted : MigrationStatus.Failed;
        string? reason = status switch
        {
            MigrationStatus.Completed when failure is not null => $"the migrate call failed ({failure.Message}) but the domain runs on the destination",
            MigrationStatus.Completed => run.PostcopyStarted ? "completed in postcopy" : null,
            MigrationStatus.Aborted => run.AbortReason,
            _ => failure?.Message ?? (run.PollingLost ? "lost the source host" : "the domain runs on neither host"),
        };
        // Not completed, yet not cleanly back on the source: a host could not be asked, the guest is
        // active on both or on neither, or postcopy had moved its state (recover with libvirt's
        // postcopy-resume, not by resuming the source).
        bool unknown = !completed && (!onSource.Reachable || !onDestination.Reachable || !sourceActive || destinationActive || run.PostcopyStarted);
        if (unknown)
        {
            reason += $" (the domain is {onSource.Describe()} on the source and {onDestination.Describe()} on the destination)";
        }

        DowntimeBreakdown? parts = last?.Breakdown;
        ulong sent = final?.DataProcessed ?? final?.MemoryProcessed ?? run.LastStats?.DataProcessed ?? 0;
        if (completed && last is not null)
        {
            // The last row is the switchover, as in the engine's reports: what the forecast said then.
            rounds.Add(new RoundReport
            {
                Round = (int)(final?.MemoryIteration ?? (ulong)rounds.Count),
                BytesSent = sent > run.ProcessedAtLastRound ? sent - run.ProcessedAtLastRound : 0,
                DurationMs = actual ?? 0,
                DirtyPages = last.PendingBytes / 4096,
                DirtyRate = last.DirtyBytesPerSecond / 4096,
                Bandwidth = last.BandwidthBytesPerSecond,
                ThrottlePercent = run.LastStats?.AutoConvergeThrottle ?? 0,
                PredictedDowntimeMs = last.PredictedDowntime.TotalMilliseconds,
                Verdict = last.Verdict.ToString().ToLowerInvariant(),
                Action = "switchover",
            });
        }

        return new MigrationReport
        {
            Status = status,
            Reason = reason,
            FailedPhase = status == MigrationStatus.Failed ? MigrationPhase.Send : null,
            MemoryBytes = memory,
            Rounds = (int)(final?.MemoryIteration ?? (ulong)rounds.Count),
            BytesSent = sent,
            PagesSent = final?.MemoryNormal ?? run.LastStats?.MemoryNormal ?? 0,
            TotalMs = final?.TimeElapsedMs is { } elapsedMs ? elapsedMs : totalMs,
            DowntimeMs = actual,
            PredictedDowntimeMs = completed ? predicted : null,
            PredictedDowntimeParts = completed && parts is { } b
                ? new DowntimeParts(b.Pause.TotalMilliseconds, b.FinalHarvest.TotalMilliseconds, (b.Transfer + b.DeviceState).TotalMilliseconds, b.Resume.TotalMilliseconds)
                : null,
            PredictionErrorPercent = completed ? error : null,
            MaxThrottlePercent = run.MaxThrottle,
            OutcomeUnknown = unknown,
            RoundsDetail = rounds,
            Error = failure is not null && !completed ? failure : null,
        };
    }

    private static HostView Query(ResilientHost host, string domain)
    {
        try
        {
            return new HostView(true, host.Run(h => h.GetState(domain), CancellationToken.None));
        }
        catch (LibvirtException)
        {
            // Unreachable even after reconnecting (or refusing to say): not the same as absent.
            return new HostView(false, null);
        }
    }


    private static string ActionName(LibvirtAction action) => action switch
    {
        LibvirtAction.RaiseDowntimeLimit => "raise-limit",
        LibvirtAction.StartPostcopy => "postcopy",
        LibvirtAction.Abort => "abort",
        _ => "continue",
    };

    private static MigrationAction ToMigrationAction(LibvirtAction action) => action switch
    {
        LibvirtAction.RaiseDowntimeLimit => MigrationAction.SwitchOver,
        LibvirtAction.StartPostcopy => MigrationAction.SwitchOver,
        LibvirtAction.Abort => MigrationAction.Abort,
        _ => MigrationAction.Continue,
    };

    /// <summary>What one host said about the domain: unreachable, absent (null state) or a state.</summary>
    private readonly record struct HostView(bool Reachable, DomainStateInfo? State)
    {
        internal bool Active => State is { State: DomainState.Running or DomainState.Paused or DomainState.Blocked or DomainState.PmSuspended };

        internal string Describe() => !Reachable ? "unknown (host unreachable)" : State is { } s ? s.State.ToString().ToLowerInvariant() : "absent";
    }

    private sealed class RunState
    {
        internal TimeSpan QemuLimit;
        internal TimeSpan QemuExpectedDowntime;
        internal bool LimitRaised;
        internal bool PostcopyStarted;
        internal bool PollingLost;
        internal bool SwitchoverSeen;
        internal string? AbortReason;
        internal Forecast? LastForecast;
        internal JobStats? LastStats;
        internal int MaxThrottle;
        internal ulong ProcessedAtLastRound;
        internal ulong ZeroAtLastRound;
        internal ulong PagesAtLastRound;
        internal TimeSpan LastRoundAt;
        internal DateTimeOffset LastRoundWall;

        // What the telemetry counters already hold of this migration.
        internal ulong BytesCounted;
        internal ulong PagesCounted;
        internal ulong RoundsCounted;
    }
}
