using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
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
public sealed class LibvirtMigrator
{
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
        _logger.LogInformation("Migrating {Domain} from {Source} to {Destination}: {Plan}", domain, sourceUri, destinationUri, plan.Reason);

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
                _logger.LogDebug(ex, "Iteration events unavailable on {Uri}; polling only", sourceUri);
            }

            Task migrate = Task.Factory.StartNew(() => controlSrc.Migrate(domain, controlDst, parameters, flags),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            var run = new RunState { QemuLimit = options.InitialQemuDowntimeLimit ?? plan.MaxDowntime };
            await FollowAsync(migrate, monitorSrc, domain, options, forecaster, policy, estimator, rounds, run, start, memory, progress, wake, ct).ConfigureAwait(false);

            Exception? failure = null;
            try
            {
                await migrate.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is LibvirtException or ArgumentException or InvalidOperationException)
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
        host.Run(h => h.Resume(domain), ct);
        TimeSpan resume = Stopwatch.GetElapsedTime(t1);
        estimator.ObservePause(pause);
        estimator.ObserveResume(resume);
        _logger.LogDebug("Pause costs {Pause} ms, resume {Resume} ms", pause.TotalMilliseconds, resume.TotalMilliseconds);
    }

    private async Task<double?> MeasureDirtyRateAsync(ResilientHost host, string domain, LibvirtMigrationOptions options, CancellationToken ct)
    {
        try
        {
            host.Run(h => h.StartDirtyRateCalc(domain, options.DirtyRatePeriod, options.DirtyRateMode), ct);
            DateTime give = DateTime.UtcNow + options.DirtyRatePeriod + TimeSpan.FromSeconds(10);
            await Task.Delay(options.DirtyRatePeriod, options.TimeProvider, ct).ConfigureAwait(false);
            while (DateTime.UtcNow < give)
            {
                DirtyRateInfo info = host.Run(h => h.GetDirtyRate(domain), ct);
                if (info.Status == DirtyRateCalcStatus.Measured && info.MegabytesPerSecond is { } mbps)
                {
                    // QEMU's "MB" here is MiB: sampled pages x page size / 2^20.
                    double rate = mbps * (double)(1 << 20);
                    _logger.LogInformation("Dirty rate of {Domain}: {Rate} MiB/s ({Mode})", domain, mbps, options.DirtyRateMode);
                    return rate;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), options.TimeProvider, ct).ConfigureAwait(false);
            }

            _logger.LogWarning("The dirty-rate calculation of {Domain} did not finish; starting without it", domain);
        }
        catch (LibvirtException ex)
        {
            _logger.LogWarning(ex, "The dirty-rate calculation of {Domain} failed; starting without it", domain);
        }

        return null;
    }

    private async Task FollowAsync(Task migrate, ResilientHost monitor, string domain, LibvirtMigrationOptions options, JobForecaster forecaster,
        LibvirtPolicy policy, DowntimeEstimator estimator, List<RoundReport> rounds, RunState run, long start, ulong memory,
        IProgress<MigrationProgress>? progress, SemaphoreSlim wake, CancellationToken ct)
    {
        TimeProvider time = options.TimeProvider;
        bool limitSet = false;
        while (!migrate.IsCompleted)
        {
            if (ct.IsCancellationRequested && run.AbortReason is null)
            {
                run.AbortReason = "cancelled by the caller";
                TryAbort(monitor, domain, ct: CancellationToken.None);
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
            catch (LibvirtException ex) when (ex.IsNoDomain)
            {
                // The source already let go of the domain: the migrate call is about to return.
                continue;
            }
            catch (LibvirtException ex) when (ex.IsConnectionFault)
            {
                _logger.LogError(ex, "Lost the source host while polling {Domain}", domain);
                run.PollingLost = true;
                break;
            }

            if (stats.Type is not (DomainJobType.Bounded or DomainJobType.Unbounded))
            {
                continue;
            }

            if (!limitSet)
            {
                // QEMU takes the limit once the job exists.
                limitSet = true;
                TrySetDowntime(monitor, domain, run.QemuLimit, ct);
            }

            if (stats.MemoryRemaining == 0 && stats.MemoryIteration >= 2)
            {
                // Nothing left to send: QEMU has stopped the guest for the stop-and-copy (or is done).
                // The forecast that counts is the one made before; nothing is decided from here on.
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
            LibvirtDecision decision = policy.Decide(forecast, new LibvirtPolicyState(forecaster.Iteration, elapsed, run.QemuLimit,
                forecaster.QemuExpectedDowntime, stats.AutoConvergeThrottle ?? 0, run.PostcopyStarted));
            Apply(decision, monitor, domain, run, ct);

            if (forecaster.Iteration != previous)
            {
                ulong processed = stats.DataProcessed ?? stats.MemoryProcessed ?? 0;
                var row = new RoundReport
                {
                    Round = forecaster.Iteration,
                    BytesSent = processed - run.ProcessedAtLastRound,
                    PagesSent = stats.MemoryNormal ?? 0,
                    ZeroPages = stats.MemoryConstant ?? 0,
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
                run.ProcessedAtLastRound = processed;
                run.LastRoundAt = elapsed;
                progress?.Report(new MigrationProgress(forecaster.Iteration, elapsed, processed, forecaster.PendingBytes,
                    forecaster.PendingBytes / 4096, 0, 0, forecaster.DirtyRate / 4096, forecaster.Bandwidth, stats.AutoConvergeThrottle ?? 0,
                    forecast, ToMigrationAction(decision.Action)));
            }
        }
    }

    private void Apply(LibvirtDecision decision, ResilientHost monitor, string domain, RunState run, CancellationToken ct)
    {
        switch (decision.Action)
        {
            case LibvirtAction.Abort when run.AbortReason is null:
                run.AbortReason = decision.Reason;
                _logger.LogWarning("Aborting the migration of {Domain}: {Reason}", domain, decision.Reason);
                TryAbort(monitor, domain, ct);
                break;
            case LibvirtAction.RaiseDowntimeLimit when decision.DowntimeLimit is { } limit:
                _logger.LogInformation("Raising QEMU's downtime limit of {Domain} to {Limit} ms: {Reason}", domain, limit.TotalMilliseconds, decision.Reason);
                if (TrySetDowntime(monitor, domain, limit, ct))
                {
                    run.QemuLimit = limit;
                    run.LimitRaised = true;
                }

                break;
            case LibvirtAction.StartPostcopy when !run.PostcopyStarted:
                _logger.LogInformation("Switching {Domain} to postcopy: {Reason}", domain, decision.Reason);
                try
                {
                    monitor.Run(h => h.StartPostCopy(domain), ct);
                    run.PostcopyStarted = true;
                }
                catch (LibvirtException ex)
                {
                    _logger.LogWarning(ex, "Postcopy could not start for {Domain}", domain);
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
            _logger.LogDebug(ex, "Could not set the downtime limit of {Domain}", domain);
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
            _logger.LogWarning(ex, "Could not abort the migration of {Domain}", domain);
        }
    }

    private MigrationReport Conclude(string domain, ResilientHost src, ResilientHost dst, (string Source, string Destination) pair,
        HostPairCalibration? calibration, RunState run, List<RoundReport> rounds, ulong memory, double totalMs, Exception? failure)
    {
        // The domain's state on both hosts says what happened, whatever the migrate call returned.
        DomainStateInfo? onSource = Query(src, domain);
        DomainStateInfo? onDestination = Query(dst, domain);
        bool destinationRuns = onDestination is { State: DomainState.Running or DomainState.Paused };
        bool sourceActive = onSource is { State: DomainState.Running or DomainState.Paused or DomainState.Blocked };
        bool completed = destinationRuns && (failure is null || !sourceActive);

        JobStats? final = null;
        if (completed)
        {
            try
            {
                final = dst.Run(h => h.GetJobStats(domain, completed: true), CancellationToken.None);
            }
            catch (LibvirtException ex)
            {
                _logger.LogWarning(ex, "No completed job statistics for {Domain} on the destination", domain);
            }
        }
        else if (onSource is { State: DomainState.Paused } && !run.PostcopyStarted)
        {
            // A failed pre-copy migration must leave the guest running where it was.
            try
            {
                src.Run(h => h.Resume(domain), CancellationToken.None);
            }
            catch (LibvirtException ex)
            {
                _logger.LogError(ex, "Could not resume {Domain} on the source after the failed migration", domain);
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
        bool unknown = !completed && !sourceActive;
        if (unknown)
        {
            reason += $" (the domain is {Describe(onSource)} on the source and {Describe(onDestination)} on the destination)";
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

    private static DomainStateInfo? Query(ResilientHost host, string domain)
    {
        try
        {
            return host.Run(h => h.GetState(domain), CancellationToken.None);
        }
        catch (LibvirtException)
        {
            // Unreachable even after reconnecting: reported as such.
            return null;
        }
    }

    private static string Describe(DomainStateInfo? state) => state is { } s ? s.State.ToString().ToLowerInvariant() : "absent or unreachable";

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
        internal TimeSpan LastRoundAt;
    }
}
