using System;
using System.Collections.Generic;
using System.Linq;
using MigrateKit.Memory;

namespace MigrateKit.Libvirt;

/// <summary>
/// One run of libvirt's dirty-rate calculation: QEMU's rate over <see cref="Period"/>, which counts
/// each page dirtied in the period once, however often the guest wrote it.
/// </summary>
/// <param name="Period">How long the calculation ran (whole seconds, libvirt's <c>dirtyrate.calc_period</c>).</param>
/// <param name="MiBPerSecond">
/// <c>dirtyrate.megabytes_per_second</c>: QEMU's "MB" is MiB (dirty pages × page size / 2^20), and it is
/// an integer, so a rate below 1 MiB/s reads 0.
/// </param>
/// <param name="Mode">How QEMU measured: <c>page-sampling</c>, <c>dirty-bitmap</c> or <c>dirty-ring</c> (<c>dirtyrate.calc_mode</c>).</param>
public sealed record LibvirtDirtyRatePoint(TimeSpan Period, double MiBPerSecond, string Mode)
{
    /// <summary>
    /// Each vCPU's rate in MiB/s (<c>dirtyrate.vcpu.N.megabytes_per_second</c>), indexed by vCPU number:
    /// QEMU counts per vCPU only in the dirty-ring mode, so in the others the list is empty.
    /// </summary>
    public IReadOnlyList<double> VcpuMiBPerSecond { get; init; } = [];

    /// <summary>Equal when every figure is, the vCPUs' rates compared element by element.</summary>
    /// <param name="other">The point to compare with.</param>
    public bool Equals(LibvirtDirtyRatePoint? other) =>
        other is not null && Period == other.Period && MiBPerSecond.Equals(other.MiBPerSecond) && Mode == other.Mode
        && VcpuMiBPerSecond.SequenceEqual(other.VcpuMiBPerSecond);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Period, MiBPerSecond, Mode, VcpuMiBPerSecond.Count);

    /// <summary>
    /// The distinct pages the guest dirtied during the period: rate × period / page size, rounded to
    /// the nearest page.
    /// </summary>
    /// <param name="pageSize">The guest's page size in bytes; the default is <see cref="GuestMemoryLayout.PageSize"/> (4 KiB, QEMU's target page on x86).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="pageSize"/> is 0.</exception>
    public long DistinctPages(ulong pageSize = GuestMemoryLayout.PageSize)
    {
        ArgumentOutOfRangeException.ThrowIfZero(pageSize);
        return (long)Math.Round(MiBPerSecond * (1 << 20) * Period.TotalSeconds / pageSize);
    }
}
