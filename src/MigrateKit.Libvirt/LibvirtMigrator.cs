using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MigrateKit.Estimation;
using MigrateKit.Migration;

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

        var route = new MigrationRoute(sourceUri, domain, destinationUri);
        return Task.Run(() => Run(route, options, progress, cancellationToken), CancellationToken.None);
    }

    private async Task<MigrationReport> Run(MigrationRoute route, LibvirtMigrationOptions options, IProgress<MigrationProgress>? progress, CancellationToken ct)
    {
        using var recorder = new IterationRecorder(route, options, progress, _logger);
        MigrationReport report;
        try
        {
            report = await RunCore(route, options, recorder, ct).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            recorder.Fail(ex);
            throw;
        }

        recorder.Finish(report);
        return report;
    }

    private async Task<MigrationReport> RunCore(MigrationRoute route, LibvirtMigrationOptions options, IterationRecorder recorder, CancellationToken ct)
    {
        // Both hosts answer and the domain runs before anything changes.
        long started = options.TimeProvider.GetTimestamp();
        ulong memory = LibvirtPreflight.Check(_factory, route, options, _logger, ct);
        using var monitorSrc = new ResilientHost(_factory, route.SourceUri, options.ReconnectTimeout, options.TimeProvider, _logger);
        using var monitorDst = new ResilientHost(_factory, route.DestinationUri, options.ReconnectTimeout, options.TimeProvider, _logger);

        (HostPairCalibration? calibration, CostSource known, int samples) = await KnownCostsAsync(route, options, ct).ConfigureAwait(false);
        var estimator = new DowntimeEstimator();
        var probes = new DomainProbes(options.TimeProvider, _logger);
        CostSource fixedSource = CostSource.Assumed;
        if (calibration is { IsMeasured: true })
        {
            // Measured (or stored) for these hosts: every fixed cost of a switchover between them at once.
            estimator.ObserveResume(calibration.FixedDowntime);
            fixedSource = known;
        }
        else if (options.CalibratePause)
        {
            probes.MeasurePause(monitorSrc, route.Domain, estimator, ct);
            fixedSource = CostSource.PauseProbe;
        }

        double? switchover = options.SwitchoverBandwidth ?? (calibration is { IsMeasured: true } ? calibration.StopAndCopyBytesPerSecond : (double?)null);
        double? dirty = options.MeasuresDirtyRate ? await probes.MeasureDirtyRateAsync(monitorSrc, route.Domain, options, ct).ConfigureAwait(false) : null;
        double? stream = calibration is { IsMeasured: true } ? calibration.StopAndCopyBytesPerSecond : null;
        StartPlan plan = StartPlan.Choose(options, dirty, memory, stream, VersionsOf(monitorSrc, ct));
        recorder.Starting(route, memory, plan);

        var forecaster = new JobForecaster(estimator, options.MaxDowntime, options.BandwidthLimit, switchover, deltas: plan.XbzrleCacheBytes is not null);
        var run = new LibvirtRunState(options.TimeProvider, options.InitialQemuDowntimeLimit ?? plan.MaxDowntime)
        {
            XbzrleCache = plan.XbzrleCacheBytes,
            MemoryBytes = memory,
        };
        // Declared first, disposed last: an iteration event may still arrive until the call's connections close.
        using var wake = new SemaphoreSlim(0);
        using MigrateCall call = MigrateCall.Open(_factory, monitorSrc, monitorDst, ct);
        call.WatchIterations(route.Domain, () =>
        {
            run.MarkJobSeen();
            wake.Release();
        }, _logger);

        LibvirtLog.Prepared(_logger, route.Domain, options.TimeProvider.GetElapsedTime(started).TotalMilliseconds);
        Task migrate = call.Start(route.Domain, plan.Parameters(options.MigrationUri), plan.Flags(options));
        recorder.CallStarted();
        var follower = new JobFollower(monitorSrc, route.Domain, options, forecaster, recorder, run, _logger);
        await follower.FollowAsync(migrate, wake, ct).ConfigureAwait(false);
        Exception? failure = await MigrateCall.FailureOf(migrate).ConfigureAwait(false);
        TimeSpan total = run.Elapsed;

        long returned = options.TimeProvider.GetTimestamp();
        MigrationOutcome outcome = new OutcomeResolver(_logger).Resolve(monitorSrc, monitorDst, route.Domain, run, failure);
        LibvirtLog.Resolved(_logger, route.Domain, options.TimeProvider.GetElapsedTime(returned).TotalMilliseconds);
        Forecast? atSwitchover = run.PostcopyStarted ? null : recorder.LastForecast;
        if (outcome.Status == MigrationStatus.Completed && outcome.Final?.DowntimeMs is { } actual && atSwitchover is not null)
        {
            if (calibration is { IsMeasured: true } && known == CostSource.Calibration)
            {
                // Each completed migration sharpens the fixed part for the next one between these hosts.
                HostPairCalibration.Remember(route.SourceUri, route.DestinationUri, calibration.Refine(atSwitchover.PendingBytes, TimeSpan.FromMilliseconds(actual)));
            }

            // The store describes stop-and-copies of whole pages: one of deltas (xbzrle) would skew its fixed part.
            double? speed = forecaster.MeasuredSpeed ?? (calibration is { IsMeasured: true } ? calibration.StopAndCopyBytesPerSecond : null);
            if (options.CalibrationStore is { } store && speed is { } s && forecaster.Deltas?.Last is null)
            {
                LearnCosts(store, route, options, new PairCalibrationStore.SwitchoverSeen(s, atSwitchover.PendingBytes, actual));
            }
        }

        CostSource speedSource = options.SwitchoverBandwidth is not null ? CostSource.Options
            : calibration is { IsMeasured: true } ? known
            : forecaster.SpeedLearnedInRun || (options.BandwidthLimit is null && forecaster.MeasuredSpeed is not null) ? CostSource.LearnedInRun
            : CostSource.Assumed;
        var costs = new CostOrigins(fixedSource, speedSource, fixedSource == CostSource.Store || speedSource == CostSource.Store ? samples : 0);
        return recorder.Report(outcome, run.PostcopyStarted, total, options.MaxDowntime) with { Costs = costs };
    }

    /// <summary>What the source host runs; null when it cannot tell (the plan then names no missing tool).</summary>
    private HostVersions? VersionsOf(ResilientHost source, CancellationToken ct)
    {
        try
        {
            return source.Run(h => h.Versions(), ct);
        }
        catch (LibvirtException ex)
        {
            LibvirtLog.VersionsUnknown(_logger, ex, source.Uri);
            return null;
        }
    }

    /// <summary>
    /// What is known of the pair before the migration: the caller's calibration, one made in this process,
    /// a new one when asked for (saved to the store too), or the store's figures.
    /// </summary>
    private async Task<(HostPairCalibration? Calibration, CostSource Source, int Samples)> KnownCostsAsync(MigrationRoute route, LibvirtMigrationOptions options, CancellationToken ct)
    {
        if (options.Calibration is { } given)
        {
            return (given, CostSource.Options, 0);
        }

        if (HostPairCalibration.For(route.SourceUri, route.DestinationUri) is { } remembered)
        {
            return (remembered, CostSource.Calibration, 0);
        }

        if (options.CalibrateHostPair)
        {
            HostPairCalibration measured = await CalibrateAsync(route.SourceUri, route.DestinationUri, new LibvirtCalibrationOptions { MigrationUri = options.MigrationUri }, ct).ConfigureAwait(false);
            SaveCalibration(options.CalibrationStore, route, options, measured);
            return (measured, CostSource.Calibration, 0);
        }

        if (options.CalibrationStore is { } store && PairCalibrationStore.Load(store, route.SourceUri, route.DestinationUri) is { } stored)
        {
            LibvirtLog.CostsLoaded(_logger, route.SourceUri, route.DestinationUri, stored.StopAndCopyBytesPerSecond / (1 << 20), stored.FixedDowntime.TotalMilliseconds, stored.Migrations);
            return (stored, CostSource.Store, stored.Migrations);
        }

        return (null, CostSource.Assumed, 0);
    }

    /// <summary>A calibration replaces what the store knew of the pair: it is the more accurate measurement.</summary>
    private void SaveCalibration(ICalibrationStore? store, MigrationRoute route, LibvirtMigrationOptions options, HostPairCalibration measured)
    {
        if (store is null)
        {
            return;
        }

        try
        {
            store.Save(PairCalibrationStore.Key(route.SourceUri, route.DestinationUri), PairCalibrationStore.Entry(measured with { Migrations = 1 }, options.TimeProvider.GetUtcNow()));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LibvirtLog.CostsNotSaved(_logger, ex, route.SourceUri, route.DestinationUri);
        }
    }

    /// <summary>Adds one migration's figures to the store; a store that cannot be written costs a warning, never the migration.</summary>
    private void LearnCosts(ICalibrationStore store, MigrationRoute route, LibvirtMigrationOptions options, PairCalibrationStore.SwitchoverSeen seen)
    {
        try
        {
            HostPairCalibration combined = PairCalibrationStore.Learn(store, route.SourceUri, route.DestinationUri, seen, options.TimeProvider.GetUtcNow());
            LibvirtLog.CostsLearned(_logger, $"{route.SourceUri} -> {route.DestinationUri}", seen.BytesPerSecond / (1 << 20), seen.DowntimeMs,
                combined.StopAndCopyBytesPerSecond / (1 << 20), combined.FixedDowntime.TotalMilliseconds, combined.Migrations);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LibvirtLog.CostsNotSaved(_logger, ex, route.SourceUri, route.DestinationUri);
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
}
