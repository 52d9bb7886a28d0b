using System;
using System.Collections.Generic;
using LibvirtSharp;

namespace MigrateKit.Libvirt;

/// <summary>How <see cref="LibvirtDirtyRateProbe"/> measures a domain.</summary>
public sealed class LibvirtDirtyRateProbeOptions
{
    /// <summary>
    /// The periods to run the calculation for, one after another: whole seconds from 1 to 60 (libvirt's
    /// and QEMU's range). Several periods give the curve of distinct pages dirtied against time, which
    /// flattens as the working set saturates.
    /// </summary>
    /// <value>The default is 1, 2 and 5 seconds.</value>
    public IReadOnlyList<TimeSpan> Periods { get; init; } = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5)];

    /// <summary>How QEMU measures.</summary>
    /// <value>
    /// The default is <see cref="DirtyRateMode.PageSampling"/>: it works on every QEMU with the calculation
    /// (5.2+) and every accelerator, but samples 512 pages per GiB and so estimates; the dirty-bitmap and
    /// dirty-ring modes count every page and need a KVM guest (dirty-ring also a domain started with
    /// KVM's dirty ring, and QEMU 8.0 or later: 7.2's stops the guest's vCPU).
    /// </value>
    public DirtyRateMode Mode { get; init; } = DirtyRateMode.PageSampling;

    /// <summary>How much longer than its period a calculation is waited for before <see cref="LibvirtDirtyRateFailure.TimedOut"/>.</summary>
    /// <value>The default is 10 seconds, as for the migrator's own measurement.</value>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often a calculation that has not finished is asked again.</summary>
    /// <value>The default is 100 ms.</value>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The clock the waits run on.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Checks the options and names the first problem.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Periods, nameof(Periods));
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
        if (Periods.Count == 0)
        {
            throw new ArgumentException("Periods must name at least one period.", nameof(Periods));
        }

        foreach (TimeSpan period in Periods)
        {
            if (period.Ticks % TimeSpan.TicksPerSecond != 0 || period < TimeSpan.FromSeconds(1) || period > TimeSpan.FromSeconds(60))
            {
                throw new ArgumentException($"Periods must be whole seconds from 1 to 60, libvirt's range (got {period}).", nameof(Periods));
            }
        }

        if (!Enum.IsDefined(Mode))
        {
            throw new ArgumentException($"Mode {(int)Mode} is not one of page-sampling, dirty-bitmap or dirty-ring.", nameof(Mode));
        }

        if (Grace <= TimeSpan.Zero || Grace > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentException($"Grace must be from a tick to 10 minutes (got {Grace}).", nameof(Grace));
        }

        if (PollInterval < TimeSpan.FromMilliseconds(1) || PollInterval > TimeSpan.FromSeconds(5))
        {
            throw new ArgumentException($"PollInterval must be from 1 ms to 5 s (got {PollInterval}).", nameof(PollInterval));
        }
    }
}
