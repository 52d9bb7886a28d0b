using System;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using MigrateKit.Estimation;

namespace MigrateKit.Libvirt;

/// <summary>
/// The measurements of a domain before its migration starts: what pausing and resuming it costs
/// through libvirt, and how fast it dirties memory (libvirt's dirty-rate calculation). Timed on the
/// migration's clock.
/// </summary>
internal sealed class DomainProbes(TimeProvider time, ILogger logger)
{
    /// <summary>How much longer than its period the dirty-rate calculation is waited for.</summary>
    internal static readonly TimeSpan DirtyRateGrace = TimeSpan.FromSeconds(10);

    /// <summary>How often a dirty-rate calculation that is not done yet is asked again.</summary>
    internal static readonly TimeSpan DirtyRatePollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Pauses and resumes the domain once and feeds both costs to <paramref name="estimator"/>: they are part of every downtime.</summary>
    internal void MeasurePause(ResilientHost host, string domain, DowntimeEstimator estimator, CancellationToken ct)
    {
        long t0 = time.GetTimestamp();
        host.Run(h => h.Suspend(domain), ct);
        TimeSpan pause = time.GetElapsedTime(t0);
        long t1 = time.GetTimestamp();
        // Whatever happens to the caller's token, the guest does not stay paused.
        host.Run(h => h.Resume(domain), CancellationToken.None);

        TimeSpan resume = time.GetElapsedTime(t1);
        estimator.ObservePause(pause);
        estimator.ObserveResume(resume);
        LibvirtLog.PauseCalibrated(logger, pause.TotalMilliseconds, resume.TotalMilliseconds);
    }

    /// <summary>
    /// Runs libvirt's dirty-rate calculation for <see cref="LibvirtMigrationOptions.DirtyRatePeriod"/> and
    /// returns the rate in bytes per second, or null when it failed or did not finish within
    /// <see cref="DirtyRateGrace"/> more (the migration then starts without it).
    /// </summary>
    internal async Task<double?> MeasureDirtyRateAsync(ResilientHost host, string domain, LibvirtMigrationOptions options, CancellationToken ct)
    {
        try
        {
            // QEMU before 8.0 leaves the vCPU stuck after a dirty-ring calculation: sample pages there instead.
            DirtyRateMode mode = options.DirtyRateMode == DirtyRateMode.DirtyRing && host.Run(h => h.Versions(), ct).Qemu < LibvirtDirtyRateProbe.QemuDirtyRingCalc
                ? DirtyRateMode.PageSampling
                : options.DirtyRateMode;
            host.Run(h => h.StartDirtyRateCalc(domain, options.DirtyRatePeriod, mode), ct);
            long started = time.GetTimestamp();
            TimeSpan give = options.DirtyRatePeriod + DirtyRateGrace;
            await Task.Delay(options.DirtyRatePeriod, time, ct).ConfigureAwait(false);
            while (time.GetElapsedTime(started) < give)
            {
                DirtyRateInfo info = host.Run(h => h.GetDirtyRate(domain), ct);
                if (info.Status == DirtyRateCalcStatus.Measured && info.MegabytesPerSecond is { } mbps)
                {
                    // QEMU's "MB" here is MiB: sampled pages x page size / 2^20.
                    double rate = mbps * (double)(1 << 20);
                    LibvirtLog.DirtyRateMeasured(logger, domain, mbps, mode);
                    return rate;
                }

                await Task.Delay(DirtyRatePollInterval, time, ct).ConfigureAwait(false);
            }

            LibvirtLog.DirtyRateUnfinished(logger, domain);
        }
        catch (LibvirtException ex)
        {
            LibvirtLog.DirtyRateFailed(logger, ex, domain);
        }

        return null;
    }
}
