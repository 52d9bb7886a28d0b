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

    /// <summary>The size of the cache of sent pages the <c>xbzrle</c> capability encodes against, in bytes (<c>xbzrle-cache-size</c>); QEMU takes a power of two no smaller than a page.</summary>
    /// <value>The default is <see langword="null"/>: QEMU's own default (64 MiB in QEMU 7.2).</value>
    public long? XbzrleCacheSizeBytes { get; init; }

    /// <summary>How many connections the <c>multifd</c> capability sends pages over (<c>multifd-channels</c>); both sides must agree.</summary>
    /// <value>The default is <see langword="null"/>: QEMU's own default (2).</value>
    public int? MultifdChannels { get; init; }

    /// <summary>How the <c>multifd</c> capability compresses pages (<c>multifd-compression</c>); both sides must agree.</summary>
    /// <value>The default is <see langword="null"/>: QEMU's own default (<see cref="QemuMultifdCompression.None"/>).</value>
    public QemuMultifdCompression? MultifdCompression { get; init; }
}
