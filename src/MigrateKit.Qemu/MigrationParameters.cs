namespace MigrateKit.Qemu;

/// <summary>
/// Parameters for QMP <c>migrate-set-parameters</c>; a <see langword="null"/> property is not sent,
/// so QEMU keeps its current value.
/// </summary>
public sealed record MigrationParameters
{
    /// <summary>The bandwidth cap in bytes per second (<c>max-bandwidth</c>).</summary>
    /// <value>The default is <see langword="null"/>: QEMU's own default (32 MiB/s in QEMU 7.2).</value>
    public long? MaxBandwidthBytesPerSecond { get; init; }

    /// <summary>The largest downtime QEMU aims for, in milliseconds (<c>downtime-limit</c>).</summary>
    /// <value>The default is <see langword="null"/>: QEMU's own default (300 ms).</value>
    public long? DowntimeLimitMilliseconds { get; init; }

    /// <summary>The first throttle applied by auto-converge, in percent (<c>cpu-throttle-initial</c>).</summary>
    /// <value>The default is <see langword="null"/>: QEMU's own default (20).</value>
    public int? CpuThrottleInitialPercent { get; init; }

    /// <summary>How much auto-converge raises the throttle each step, in percent (<c>cpu-throttle-increment</c>).</summary>
    /// <value>The default is <see langword="null"/>: QEMU's own default (10).</value>
    public int? CpuThrottleIncrementPercent { get; init; }
}
