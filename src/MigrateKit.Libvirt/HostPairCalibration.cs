using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using MigrateKit.Vmm;
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
    /// <summary>Where the probe's boot image and serial log go; both hosts must see it at this path.</summary>
    /// <value>The default is <c>/var/tmp/migratekit-probe</c>.</value>
    public string ProbeDirectory { get; init; } = "/var/tmp/migratekit-probe";

    /// <summary>The probe guest's memory.</summary>
    /// <value>The default is 160 MiB.</value>
    public ulong ProbeMemoryBytes { get; init; } = 160UL << 20;

    /// <summary>How much memory the probe fills (with non-zero data) before it halts.</summary>
    /// <value>The default is 128 MiB.</value>
    public ulong FillBytes { get; init; } = 128UL << 20;

    /// <summary>The migration stream's URI (libvirt's <c>migrate_uri</c>), as for the real migration.</summary>
    /// <value>The default is <see langword="null"/>: libvirt picks.</value>
    public string? MigrationUri { get; init; }

    /// <summary>How long the whole probe may take.</summary>
    /// <value>The default is 60 seconds.</value>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Checks the options and names the first problem.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(ProbeDirectory);
        if (ProbeMemoryBytes % (1UL << 20) != 0 || FillBytes % 4096 != 0 || FillBytes == 0 || (1UL << 20) + FillBytes > ProbeMemoryBytes)
        {
            throw new ArgumentException($"The probe fills {FillBytes} bytes from 1 MiB up: ProbeMemoryBytes ({ProbeMemoryBytes}) must be whole MiB and hold them.", nameof(FillBytes));
        }

        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Timeout must be positive (got {Timeout}).", nameof(Timeout));
        }
    }
}

/// <summary>The probe migration behind <see cref="LibvirtMigrator.CalibrateAsync"/>.</summary>
internal static class HostPairProbe
{
    private const ulong Base = 1UL << 20;

    /// <summary>
    /// Boots a guest that fills memory and halts, migrates it unlimited and reads the pre-copy speed
    /// (an idle guest: the speed a stop-and-copy gets) and the downtime (nothing left to copy: the fixed part).
    /// </summary>
    internal static async Task<HostPairCalibration> RunAsync(string sourceUri, string destinationUri, LibvirtCalibrationOptions options, ILogger logger, CancellationToken ct)
    {
        options.Validate();
        string name = $"migratekit-probe-{Guid.NewGuid().ToString("N")[..10]}";
        string dir = Path.Combine(options.ProbeDirectory, name);
        Directory.CreateDirectory(dir);
        var guest = new BootSectorDomain(name, options.ProbeMemoryBytes, Path.Combine(dir, "boot.img"), Path.Combine(dir, "com1.log"), BootSectorDomain.KvmAvailable);
        var clock = Stopwatch.StartNew();
        try
        {
            GuestProgram fill = GuestPrograms.Fill(Base, Base + options.FillBytes, GuestPorts.Com1, BootSector.ProgramAddress);
            await File.WriteAllBytesAsync(guest.ImagePath, BootSector.Build(fill), ct).ConfigureAwait(false);
            using LibvirtConnection src = LibvirtConnection.Open(sourceUri);
            using LibvirtConnection dst = LibvirtConnection.Open(destinationUri);
            using LibvirtDomain domain = src.CreateDomain(guest.ToXml());
            while (guest.ReadSerial().LastPass < 1)
            {
                if (clock.Elapsed > options.Timeout)
                {
                    throw new TimeoutException($"The calibration probe '{name}' did not fill its memory within {options.Timeout.TotalSeconds:F0} s.");
                }

                await Task.Delay(20, ct).ConfigureAwait(false);
            }

            var parameters = new DomainMigrationParameters { MigrationUri = options.MigrationUri };
            Task migrate = Task.Factory.StartNew(() => domain.Migrate(dst, parameters, MigrationFlags.Live | MigrationFlags.Unsafe).Dispose(),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            double peak = 0;
            while (!migrate.IsCompleted)
            {
                try
                {
                    if (domain.GetJobStats() is { MemoryBps: { } bps })
                    {
                        peak = Math.Max(peak, bps);
                    }
                }
                catch (LibvirtException)
                {
                    // The job ended between the check and the call.
                }

                await Task.WhenAny(migrate, Task.Delay(10, CancellationToken.None)).ConfigureAwait(false);
            }

            await migrate.ConfigureAwait(false);
            using LibvirtDomain arrived = dst.LookupDomain(name);
            JobStats done = arrived.GetJobStats(completed: true);
            ulong downtime = done.DowntimeMs ?? throw new InvalidOperationException("libvirt reported no downtime for the calibration probe.");
            if (peak == 0 && done.MemoryProcessed is { } processed && done.TimeElapsedMs is { } elapsed && elapsed > downtime)
            {
                // Too quick to poll: the average over the pre-copy part.
                peak = processed / ((elapsed - downtime) / 1000.0);
            }

            if (peak <= 0)
            {
                throw new InvalidOperationException("The calibration probe migrated without a measurable speed.");
            }

            var calibration = new HostPairCalibration(peak, TimeSpan.FromMilliseconds(downtime));
            logger.LogInformation("Calibrated {Source} -> {Destination}: stop-and-copy {Speed:F0} MiB/s, fixed downtime {Fixed} ms",
                sourceUri, destinationUri, peak / (1 << 20), downtime);
            return calibration;
        }
        finally
        {
            foreach (string uri in new[] { sourceUri, destinationUri })
            {
                TransientDomains.Destroy(uri, name);
            }

            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
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
