using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using MigrateKit.Guests;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Libvirt;

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
        ProbeResult small = await ProbeAsync(migrator, sourceUri, destinationUri, options.SmallWorkingSet, options, ct).ConfigureAwait(false);
        ProbeResult large = await ProbeAsync(migrator, sourceUri, destinationUri, options.LargeWorkingSet, options, ct).ConfigureAwait(false);
        (double p1, double d1) = small;
        (double p2, double d2) = large;
        // Two noisy points make a noisy slope: the speed is kept within 4x of what the large probe
        // shows when all of its downtime is counted as transfer (a speed it certainly reached).
        if (d2 <= 0 || p2 <= 0 || !double.IsFinite(p2 / d2))
        {
            throw new InvalidOperationException($"The calibration probes gave no usable figures ({small}, {large}).");
        }

        double floor = p2 / (d2 / 1000);
        double speed = d2 > d1 && p2 > p1 ? Math.Clamp((p2 - p1) / ((d2 - d1) / 1000), floor, 4 * floor) : floor;
        double fixedMs = Math.Clamp(d1 - (p1 / speed * 1000), 0, d1);
        var calibration = new HostPairCalibration(speed, TimeSpan.FromMilliseconds(fixedMs));
        LibvirtLog.Calibrated(logger, sourceUri, destinationUri, speed / (1 << 20), fixedMs, small, large);
        return calibration;
    }

    private static async Task<ProbeResult> ProbeAsync(LibvirtMigrator migrator, string sourceUri, string destinationUri, ulong workingSet,
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

                // Whole pages: the probe times the link, not an encoder.
                Strategy = LibvirtStrategy.Precopy,
            };
            MigrationReport report = await migrator.MigrateAsync(sourceUri, name, destinationUri, probeOptions, null, ct).ConfigureAwait(false);
            if (report.Status != MigrationStatus.Completed || report.DowntimeMs is not { } downtime)
            {
                throw new InvalidOperationException($"The calibration probe '{name}' did not migrate: {report.Status} ({report.Reason ?? "no downtime reported"}).");
            }

            // A probe quick enough to finish between two polls left no forecast: its whole working
            // set, rewritten continuously, is what the stop-and-copy had to send.
            bool forecastSeen = report.RoundsDetail.Count > 0 && report.RoundsDetail[^1].Action == RoundAction.Switchover;
            return new ProbeResult(forecastSeen ? report.RoundsDetail[^1].DirtyPages * (double)GuestMemoryLayout.PageSize : workingSet, downtime);
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
