using System;
using System.Collections.Concurrent;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using MigrateKit.Guests;
using MigrateKit.Migration;
using Microsoft.Extensions.Logging;

namespace MigrateKit.Libvirt;

/// <summary>
/// What a migration between two particular hosts costs regardless of the guest: the speed of QEMU's
/// stop-and-copy (which runs without the rate limit, with the guest stopped) and the fixed part of the
/// downtime (stopping the guest, device state, libvirt's hand-off to the destination, starting it there).
/// </summary>
/// <param name="StopAndCopyBytesPerSecond">How fast QEMU moves memory between the two hosts with the guest stopped.</param>
/// <param name="FixedDowntime">The downtime of a migration with nothing left to copy.</param>
/// <param name="Migrations">How many migrations the figures come from (the probe counts as one).</param>
public sealed record HostPairCalibration(double StopAndCopyBytesPerSecond, TimeSpan FixedDowntime, int Migrations = 1)
{
    private static readonly ConcurrentDictionary<(string, string), HostPairCalibration> Known = new();

    /// <summary>Nothing known: forecasts use the pre-copy bandwidth and no fixed cost (what calibration probes run with).</summary>
    internal static HostPairCalibration Uncalibrated { get; } = new(0, TimeSpan.Zero, 0);

    /// <summary>Whether this holds measured figures.</summary>
    internal bool IsMeasured => StopAndCopyBytesPerSecond > 0;

    /// <summary>The calibration known in this process for a pair of hosts, if any.</summary>
    public static HostPairCalibration? For(string sourceUri, string destinationUri) =>
        Known.TryGetValue((sourceUri, destinationUri), out HostPairCalibration? c) ? c : null;

    /// <summary>Records a calibration for a pair of hosts (used by every later migration between them in this process).</summary>
    public static void Remember(string sourceUri, string destinationUri, HostPairCalibration calibration)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        Known[(sourceUri, destinationUri)] = calibration;
    }

    /// <summary>
    /// Folds in a completed migration: the downtime not explained by <paramref name="pendingBytes"/> at the
    /// stop-and-copy speed is the fixed part (averaged with what was known).
    /// </summary>
    internal HostPairCalibration Refine(ulong pendingBytes, TimeSpan actualDowntime)
    {
        if (!IsMeasured)
        {
            return this;
        }

        TimeSpan unexplained = actualDowntime - TimeSpan.FromSeconds(pendingBytes / StopAndCopyBytesPerSecond);
        if (unexplained < TimeSpan.Zero)
        {
            unexplained = TimeSpan.Zero;
        }

        long ticks = ((FixedDowntime.Ticks * Migrations) + unexplained.Ticks) / (Migrations + 1);
        return this with { FixedDowntime = TimeSpan.FromTicks(ticks), Migrations = Migrations + 1 };
    }
}

/// <summary>How <see cref="LibvirtMigrator.CalibrateAsync"/> probes a pair of hosts.</summary>
public sealed class LibvirtCalibrationOptions
{
    /// <summary>Where the probes' boot images and serial logs go; both hosts must see it at this path.</summary>
    /// <value>The default is <c>/var/tmp/migratekit-probe</c>.</value>
    public string ProbeDirectory { get; init; } = "/var/tmp/migratekit-probe";

    /// <summary>The working set of the small probe, which rewrites it page by page.</summary>
    /// <value>The default is 8 MiB.</value>
    public ulong SmallWorkingSet { get; init; } = 8UL << 20;

    /// <summary>The working set of the large probe.</summary>
    /// <value>The default is 64 MiB.</value>
    public ulong LargeWorkingSet { get; init; } = 64UL << 20;

    /// <summary>The migration stream's URI (libvirt's <c>migrate_uri</c>), as for the real migration.</summary>
    /// <value>The default is <see langword="null"/>: libvirt picks.</value>
    public string? MigrationUri { get; init; }

    /// <summary>How long each probe may take.</summary>
    /// <value>The default is 60 seconds.</value>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Checks the options and names the first problem.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(ProbeDirectory);
        if (SmallWorkingSet % (1UL << 20) != 0 || LargeWorkingSet % (1UL << 20) != 0 || SmallWorkingSet == 0 || LargeWorkingSet < 2 * SmallWorkingSet || LargeWorkingSet > (1UL << 30))
        {
            throw new ArgumentException($"The probes' working sets must be whole MiB, the large one at least twice the small one and at most 1 GiB (got {SmallWorkingSet} and {LargeWorkingSet}).", nameof(LargeWorkingSet));
        }

        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Timeout must be positive (got {Timeout}).", nameof(Timeout));
        }
    }
}

/// <summary>The probe migrations behind <see cref="LibvirtMigrator.CalibrateAsync"/>.</summary>
internal static class HostPairProbe
{
    private const ulong Base = 1UL << 20;

    /// <summary>
    /// Migrates two guests that keep rewriting a small and a large working set, each under the migrator's
    /// own forecast with a generous limit, and fits downtime = fixed + pending / speed through the two
    /// (pending as the forecaster saw it at the switchover, so its own bias is calibrated away).
    /// </summary>
    internal static async Task<HostPairCalibration> RunAsync(LibvirtMigrator migrator, string sourceUri, string destinationUri, LibvirtCalibrationOptions options, ILogger logger, CancellationToken ct)
    {
        options.Validate();
        (double p1, double d1) = await ProbeAsync(migrator, sourceUri, destinationUri, options.SmallWorkingSet, options, ct).ConfigureAwait(false);
        (double p2, double d2) = await ProbeAsync(migrator, sourceUri, destinationUri, options.LargeWorkingSet, options, ct).ConfigureAwait(false);
        // Two noisy points make a noisy slope: the speed is kept within 4x of what the large probe
        // shows when all of its downtime is counted as transfer (a speed it certainly reached).
        if (d2 <= 0 || p2 <= 0 || !double.IsFinite(p2 / d2))
        {
            throw new InvalidOperationException($"The calibration probes gave no usable figures ({p1 / (1 << 20):F1} MiB in {d1} ms, {p2 / (1 << 20):F1} MiB in {d2} ms).");
        }

        double floor = p2 / (d2 / 1000);
        double speed = d2 > d1 && p2 > p1 ? Math.Clamp((p2 - p1) / ((d2 - d1) / 1000), floor, 4 * floor) : floor;
        double fixedMs = Math.Clamp(d1 - (p1 / speed * 1000), 0, d1);
        var calibration = new HostPairCalibration(speed, TimeSpan.FromMilliseconds(fixedMs));
        LibvirtLog.Calibrated(logger, sourceUri, destinationUri, speed / (1 << 20), fixedMs, p1 / (1 << 20), d1, p2 / (1 << 20), d2);
        return calibration;
    }

    private static async Task<(double PendingBytes, double DowntimeMs)> ProbeAsync(LibvirtMigrator migrator, string sourceUri, string destinationUri, ulong workingSet,
        LibvirtCalibrationOptions options, CancellationToken ct)
    {
        string name = $"migratekit-probe-{Guid.NewGuid().ToString("N")[..10]}";
        string dir = Path.Combine(options.ProbeDirectory, name);
        Directory.CreateDirectory(dir);
        ulong memory = Base + workingSet + (16UL << 20);
        var guest = new BootSectorDomain(name, memory, Path.Combine(dir, "boot.img"), Path.Combine(dir, "com1.log"), BootSectorDomain.KvmAvailable);
        try
        {
            GuestProgram sweep = GuestPrograms.Sweep(Base, Base + workingSet, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress);
            await File.WriteAllBytesAsync(guest.ImagePath, BootSector.Build(sweep), ct).ConfigureAwait(false);
            using (LibvirtConnection src = LibvirtConnection.Open(sourceUri))
            {
                using LibvirtDomain created = src.CreateDomain(guest.ToXml());
            }

            await guest.WaitForPassAsync(2, options.Timeout, ct).ConfigureAwait(false);

            // QEMU copies everything once (its own limit is tiny), then switches at the first chance:
            // MigrateKit's limit is generous and there is no throttle.
            var probeOptions = new LibvirtMigrationOptions
            {
                MaxDowntime = TimeSpan.FromSeconds(5),
                InitialQemuDowntimeLimit = TimeSpan.FromMilliseconds(1),
                MeasureDirtyRate = false,
                AllowAutoConverge = false,
                CalibratePause = false,
                Deadline = options.Timeout,
                MigrationUri = options.MigrationUri,
                Unsafe = true,
                Calibration = HostPairCalibration.Uncalibrated,
            };
            MigrationReport report = await migrator.MigrateAsync(sourceUri, name, destinationUri, probeOptions, null, ct).ConfigureAwait(false);
            if (report.Status != MigrationStatus.Completed || report.DowntimeMs is not { } downtime)
            {
                throw new InvalidOperationException($"The calibration probe '{name}' did not migrate: {report.Status} ({report.Reason ?? "no downtime reported"}).");
            }

            // A probe quick enough to finish between two polls left no forecast: its whole working
            // set, rewritten continuously, is what the stop-and-copy had to send.
            bool forecastSeen = report.RoundsDetail.Count > 0 && report.RoundsDetail[^1].Action == "switchover";
            return (forecastSeen ? report.RoundsDetail[^1].DirtyPages * 4096.0 : workingSet, downtime);
        }
        finally
        {
            TransientDomains.Destroy(sourceUri, name);
            TransientDomains.Destroy(destinationUri, name);
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // virtlogd may still hold the log for a moment; the name is unique and harmless.
            }
        }
    }
}

/// <summary>Clean-up of transient domains (probes, demos, tests).</summary>
public static class TransientDomains
{
    /// <summary>Destroys the domain <paramref name="name"/> on each host where it is active; unreachable hosts and missing domains are skipped.</summary>
    public static void Destroy(string uri, string name)
    {
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentNullException.ThrowIfNull(name);
        try
        {
            using LibvirtConnection c = LibvirtConnection.Open(uri);
            using LibvirtDomain? d = c.TryLookupDomain(name);
            if (d is { IsActive: true })
            {
                d.Destroy();
            }
        }
        catch (LibvirtException)
        {
            // Nothing to clean up where the host cannot be reached or the domain is gone.
        }
    }
}
