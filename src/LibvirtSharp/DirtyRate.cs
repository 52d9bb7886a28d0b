using System;
using System.Collections.Generic;
using System.Globalization;

namespace LibvirtSharp;

/// <summary>How QEMU measures the dirty rate (<c>virDomainDirtyRateCalcFlags</c>).</summary>
public enum DirtyRateMode
{
    /// <summary><c>VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING</c> (0): hash a sample of pages and count the changed ones.</summary>
    PageSampling,

    /// <summary><c>VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_BITMAP</c> (1 &lt;&lt; 0): count pages in KVM's dirty bitmap.</summary>
    DirtyBitmap,

    /// <summary><c>VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING</c> (1 &lt;&lt; 1): count pages in KVM's per-vCPU dirty rings (gives per-vCPU rates).</summary>
    DirtyRing,
}

/// <summary>The state of a dirty-rate measurement (<c>virDomainDirtyRateStatus</c>; the values are libvirt's).</summary>
public enum DirtyRateCalcStatus
{
    /// <summary><c>VIR_DOMAIN_DIRTYRATE_UNSTARTED</c>: no measurement has been started.</summary>
    Unstarted = 0,

    /// <summary><c>VIR_DOMAIN_DIRTYRATE_MEASURING</c>: a measurement is running.</summary>
    Measuring = 1,

    /// <summary><c>VIR_DOMAIN_DIRTYRATE_MEASURED</c>: the last measurement finished; its results are valid.</summary>
    Measured = 2,
}

/// <summary>The result of the last dirty-rate measurement (the <c>dirtyrate.*</c> domain statistics).</summary>
/// <param name="Status"><c>dirtyrate.calc_status</c>; <see cref="DirtyRateCalcStatus.Unstarted"/> also when the domain reports no dirty-rate statistics at all (an inactive domain).</param>
/// <param name="StartTime">
/// <c>dirtyrate.calc_start_time</c> read as Unix seconds. QEMU 8.2 and later report wall-clock time; earlier
/// QEMU reports seconds of its monotonic clock, which this reads as a date early in 1970 — compare
/// <see cref="StartTimeSeconds"/> between measurements instead.
/// </param>
/// <param name="Period"><c>dirtyrate.calc_period</c>: how long the measurement ran.</param>
/// <param name="MegabytesPerSecond"><c>dirtyrate.megabytes_per_second</c>: the measured rate (MiB/s), once measured.</param>
/// <param name="Mode"><c>dirtyrate.calc_mode</c>: <c>page-sampling</c>, <c>dirty-bitmap</c> or <c>dirty-ring</c>.</param>
/// <param name="VcpuMegabytesPerSecond"><c>dirtyrate.vcpu.N.megabytes_per_second</c> indexed by vCPU number (dirty-ring mode only; otherwise empty).</param>
public sealed record DirtyRateInfo(
    DirtyRateCalcStatus Status,
    DateTimeOffset? StartTime,
    TimeSpan Period,
    ulong? MegabytesPerSecond,
    string? Mode,
    IReadOnlyList<ulong> VcpuMegabytesPerSecond)
{
    private const string VcpuPrefix = "dirtyrate.vcpu.";
    private const string VcpuSuffix = ".megabytes_per_second";

    /// <summary><c>dirtyrate.calc_start_time</c> exactly as reported (seconds; see <see cref="StartTime"/> for the clock).</summary>
    public long? StartTimeSeconds { get; init; }

    /// <summary>Maps the <c>dirtyrate.*</c> fields of a domain statistics record.</summary>
    internal static DirtyRateInfo FromStats(IReadOnlyDictionary<string, object> stats)
    {
        long? start = TypedValue.Int64(stats, "dirtyrate.calc_start_time");
        var vcpus = new Dictionary<int, ulong>();
        int highestVcpu = -1;
        foreach ((string name, object _) in stats)
        {
            if (name.StartsWith(VcpuPrefix, StringComparison.Ordinal) && name.EndsWith(VcpuSuffix, StringComparison.Ordinal)
                && int.TryParse(name.AsSpan(VcpuPrefix.Length, name.Length - VcpuPrefix.Length - VcpuSuffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int vcpu)
                && TypedValue.UInt64(stats, name) is { } rate)
            {
                vcpus[vcpu] = rate;
                highestVcpu = Math.Max(highestVcpu, vcpu);
            }
        }

        // Index = vCPU number; a vCPU libvirt skipped reads as 0.
        ulong[] perVcpu = new ulong[highestVcpu + 1];
        foreach ((int vcpu, ulong rate) in vcpus)
        {
            perVcpu[vcpu] = rate;
        }

        return new DirtyRateInfo(
            (DirtyRateCalcStatus)(TypedValue.Int32(stats, "dirtyrate.calc_status") ?? 0),
            start is { } seconds ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null,
            TimeSpan.FromSeconds(TypedValue.Int64(stats, "dirtyrate.calc_period") ?? 0),
            TypedValue.UInt64(stats, "dirtyrate.megabytes_per_second"),
            TypedValue.String(stats, "dirtyrate.calc_mode"),
            perVcpu)
        {
            StartTimeSeconds = start,
        };
    }
}
