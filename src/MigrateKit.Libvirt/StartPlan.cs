using System;
using System.Globalization;
using System.Numerics;
using LibvirtSharp;

namespace MigrateKit.Libvirt;

/// <summary>The tools and parameters a libvirt migration starts with, chosen from what was measured before it (<see cref="Choose"/>).</summary>
public sealed record StartPlan
{
    /// <summary>QEMU engages auto-converge once the guest dirties more than half of what was sent in a period.</summary>
    internal const double QemuThrottleTrigger = 0.5;

    /// <summary>The ratio of throttled dirty rate to bandwidth the first throttle step aims at.</summary>
    internal const double ConvergenceTarget = 0.4;

    /// <summary>The smallest xbzrle cache chosen (QEMU's own default).</summary>
    internal const ulong MinXbzrleCache = 64UL << 20;

    /// <summary>The largest xbzrle cache chosen without a measured hot set.</summary>
    internal const ulong MaxUnmeasuredCache = 4UL << 30;

    /// <summary>The strategy in force (never <see cref="LibvirtStrategy.Auto"/>: what auto chose).</summary>
    public LibvirtStrategy Strategy { get; init; } = LibvirtStrategy.Precopy;

    /// <summary>Whether QEMU's auto-converge is on.</summary>
    public bool AutoConverge { get; init; }

    /// <summary>Auto-converge's first throttle step, percent (null: QEMU's default, 20).</summary>
    public int? ThrottleInitial { get; init; }

    /// <summary>Auto-converge's later steps, percent (null: QEMU's default, 10).</summary>
    public int? ThrottleIncrement { get; init; }

    /// <summary>The speed limit, MiB/s (null: unlimited).</summary>
    public ulong? BandwidthMiBps { get; init; }

    /// <summary>The downtime limit handed to QEMU, in whole milliseconds.</summary>
    public TimeSpan MaxDowntime { get; init; }

    /// <summary>Whether postcopy is enabled (switched to only when the policy says so, or after the first pass under <see cref="LibvirtStrategy.Postcopy"/>).</summary>
    public bool Postcopy { get; init; }

    /// <summary>The xbzrle page cache, bytes (null: xbzrle is off).</summary>
    public ulong? XbzrleCacheBytes { get; init; }

    /// <summary>The number of connections (null: one, multifd is off).</summary>
    public int? ParallelConnections { get; init; }

    /// <summary>Why, in words: the strategy, then auto-converge.</summary>
    public string Reason { get; init; } = "";

    /// <summary>
    /// Chooses the start parameters. Under <see cref="LibvirtStrategy.Auto"/>: plain pre-copy when the guest
    /// dirties at most <see cref="QemuThrottleTrigger"/> of the bandwidth (it converges by itself); xbzrle
    /// when it dirties more (re-dirtied pages then cost their deltas, not whole pages); multifd when the
    /// bandwidth is more than one stream between these hosts carried. Auto-converge, where it is on: QEMU
    /// starts at 20 % and adds 10 % per dirty sync whatever the guest does, so a guest dirtying at the link's
    /// speed needs ~7 syncs before it converges; instead the first step is sized so the throttled rate is
    /// <see cref="ConvergenceTarget"/> of the bandwidth, and the increment reaches QEMU's 99 % cap in three
    /// further steps.
    /// </summary>
    /// <param name="options">The caller's options.</param>
    /// <param name="dirtyBytesPerSecond">The measured dirty rate, or null when it was not measured.</param>
    /// <param name="memoryBytes">The guest's memory (bounds the xbzrle cache); 0 when unknown.</param>
    /// <param name="streamBytesPerSecond">What one migration stream between the two hosts carried (a calibration or the store), or null.</param>
    /// <param name="versions">What the source host runs, or null when unknown: the reason then says which tools it lacks.</param>
    public static StartPlan Choose(LibvirtMigrationOptions options, double? dirtyBytesPerSecond, ulong memoryBytes = 0, double? streamBytesPerSecond = null, HostVersions? versions = null)
    {
        StartPlan plan = ChooseTools(options, dirtyBytesPerSecond, memoryBytes, streamBytesPerSecond);
        if (versions is null)
        {
            return plan;
        }

        string multifd = plan.Strategy == LibvirtStrategy.Multifd && versions.Libvirt < HostVersions.LibvirtMultifdCompression
            ? Invariant($"; channels uncompressed (libvirt {versions.Libvirt} compresses multifd from 9.4)")
            : "";
        return plan with { Reason = $"{plan.Reason}{multifd}; {versions.DirtyLimitAbsence()}" };
    }

    private static StartPlan ChooseTools(LibvirtMigrationOptions options, double? dirtyBytesPerSecond, ulong memoryBytes, double? streamBytesPerSecond)
    {
        ArgumentNullException.ThrowIfNull(options);
        var basePlan = new StartPlan
        {
            BandwidthMiBps = options.BandwidthMiBps,
            MaxDowntime = LibvirtMigrationOptions.ToWholeMilliseconds(options.MaxDowntime),
            Postcopy = options.AllowPostcopy,
        };

        double? bandwidth = options.BandwidthLimit;
        double? q = dirtyBytesPerSecond is { } dirty && bandwidth is { } b ? dirty / b : null;
        LibvirtStrategy strategy = options.Strategy;
        string why;
        if (strategy != LibvirtStrategy.Auto)
        {
            why = Invariant($"strategy {Name(strategy)}: chosen by the caller");
        }
        else if (bandwidth is { } limit && streamBytesPerSecond is { } stream && limit > stream * 1.25)
        {
            strategy = LibvirtStrategy.Multifd;
            why = Invariant($"auto chose multifd: the limit ({limit / (1 << 20):F0} MiB/s) is more than one stream between these hosts carried ({stream / (1 << 20):F0} MiB/s)");
        }
        else if (q is { } ratio && ratio > QemuThrottleTrigger)
        {
            strategy = LibvirtStrategy.Xbzrle;
            why = Invariant($"auto chose xbzrle: the guest dirties {ratio * 100:F0}% of the bandwidth, so pre-copy converges only throttled; re-dirtied pages cost their deltas instead");
        }
        else if (q is null && bandwidth is not null)
        {
            strategy = LibvirtStrategy.Xbzrle;
            why = "auto chose xbzrle: under a rate limit, re-dirtied pages cost their deltas instead of whole pages (and nothing more where deltas do not help)";
        }
        else
        {
            strategy = LibvirtStrategy.Precopy;
            why = q is { } ratio2 ? Invariant($"auto chose pre-copy: the guest dirties {ratio2 * 100:F0}% of the bandwidth and converges unthrottled")
                : "auto chose pre-copy: unlimited bandwidth, the stream runs at the link's speed";
        }

        StartPlan plan = basePlan with { Strategy = strategy };
        switch (strategy)
        {
            case LibvirtStrategy.Xbzrle:
                ulong cache = options.XbzrleCacheBytes ?? CacheFor(dirtyBytesPerSecond, options.DirtyRatePeriod, memoryBytes);
                // Auto-converge stays (where allowed): QEMU counts encoded bytes as progress, so with small deltas it may
                // throttle for an iteration or two before the switchover; where deltas do not help, it is what converges.
                return WithThrottle(plan with { XbzrleCacheBytes = cache }, options, dirtyBytesPerSecond, Invariant($"{why}; xbzrle cache {cache >> 20} MiB"));
            case LibvirtStrategy.Postcopy:
                return WithThrottle(plan with { Postcopy = true }, options, dirtyBytesPerSecond, why + ", switching after the first full pass");
            case LibvirtStrategy.Multifd:
                return WithThrottle(plan with { ParallelConnections = options.ParallelConnections }, options, dirtyBytesPerSecond, Invariant($"{why}; {options.ParallelConnections} connections"));
            default:
                return WithThrottle(plan, options, dirtyBytesPerSecond, why);
        }
    }

    /// <summary>
    /// The xbzrle cache for a hot set: twice the pages the guest dirtied over the dirty-rate period (page
    /// sampling counts distinct pages), as a power of two, from <see cref="MinXbzrleCache"/> to half the memory.
    /// </summary>
    internal static ulong CacheFor(double? dirtyBytesPerSecond, TimeSpan period, ulong memoryBytes)
    {
        if (dirtyBytesPerSecond is null)
        {
            // Nothing known of the hot set: half the memory. QEMU allocates a cached page only when it
            // inserts one, so a large cache costs its index (24 bytes a page) and the hot set's pages;
            // QEMU places pages by address, so a cache smaller than a contiguous hot set misses much of it.
            ulong half = memoryBytes / 2 is var m && m > MinXbzrleCache ? FloorPowerOfTwo(m) : MinXbzrleCache;
            return Math.Min(half, MaxUnmeasuredCache);
        }

        double hot = (dirtyBytesPerSecond ?? 0) * Math.Max(period.TotalSeconds, 1);
        ulong wanted = (ulong)Math.Min(2 * hot, 1UL << 62);
        ulong cache = Math.Max(MinXbzrleCache, wanted <= 1 ? 1 : BitOperations.RoundUpToPowerOf2(wanted));
        ulong cap = memoryBytes >= 2 * MinXbzrleCache ? FloorPowerOfTwo(memoryBytes / 2) : ulong.MaxValue;
        return Math.Min(cache, Math.Max(cap, MinXbzrleCache));
    }

    /// <summary>The largest power of two not above <paramref name="value"/> (QEMU sizes its cache in powers of two pages).</summary>
    internal static ulong FloorPowerOfTwo(ulong value) => BitOperations.RoundUpToPowerOf2(value + 1) >> 1;

    /// <summary>Auto-converge for a plan, sized from the dirty rate.</summary>
    private static StartPlan WithThrottle(StartPlan plan, LibvirtMigrationOptions options, double? dirtyBytesPerSecond, string why)
    {
        if (!options.AllowAutoConverge)
        {
            return plan with { Reason = why + "; auto-converge not allowed" };
        }

        if (dirtyBytesPerSecond is not { } dirty || options.BandwidthLimit is not { } bandwidth)
        {
            // Unknown rate or an unlimited link: auto-converge only engages if QEMU itself sees
            // the guest outrun what it sends, so it costs nothing to leave on with QEMU's steps.
            string unknown = dirtyBytesPerSecond is null ? "dirty rate not measured" : "unlimited bandwidth";
            return plan with { AutoConverge = true, Reason = $"{why}; {unknown}: auto-converge on with QEMU's steps" };
        }

        double q = dirty / bandwidth;
        if (q <= QemuThrottleTrigger)
        {
            return plan with { AutoConverge = true, Reason = Invariant($"{why}; dirty rate is {q * 100:F0}% of bandwidth: auto-converge on as a safety net") };
        }

        // A throttled guest runs (100 - t) % of the time and dirties in proportion.
        int initial = Math.Clamp((int)Math.Ceiling(100 * (1 - (ConvergenceTarget / q))), 1, 99);
        int increment = Math.Max(5, (int)Math.Ceiling((99 - initial) / 3.0));
        return plan with
        {
            AutoConverge = true,
            ThrottleInitial = initial,
            ThrottleIncrement = increment,
            Reason = Invariant($"{why}; dirty rate is {q * 100:F0}% of bandwidth: throttle starts at {initial}% (+{increment}% per sync) to bring it to {ConvergenceTarget * 100:F0}%"),
        };
    }

    /// <summary>The migrate call's parameters for this plan.</summary>
    /// <param name="migrationUri">The migration stream's URI, or null for libvirt's choice.</param>
    internal DomainMigrationParameters Parameters(string? migrationUri) => new()
    {
        MigrationUri = migrationUri,
        BandwidthMiBps = BandwidthMiBps,
        AutoConvergeInitial = ThrottleInitial,
        AutoConvergeIncrement = ThrottleIncrement,
        CompressionMethods = XbzrleCacheBytes is null ? null : [MigrationCompression.Xbzrle],
        XbzrleCacheBytes = XbzrleCacheBytes,
        ParallelConnections = ParallelConnections,
    };

    /// <summary>The migrate call's flags for this plan and the caller's options.</summary>
    internal MigrationFlags Flags(LibvirtMigrationOptions options) => MigrationFlags.Live
        | (AutoConverge ? MigrationFlags.AutoConverge : 0)
        | (Postcopy ? MigrationFlags.Postcopy : 0)
        | (XbzrleCacheBytes is not null ? MigrationFlags.Compressed : 0)
        | (ParallelConnections is not null ? MigrationFlags.Parallel : 0)
        | (options.Unsafe ? MigrationFlags.Unsafe : 0)
        | (options.PersistOnDestination ? MigrationFlags.PersistDestination : 0)
        | (options.UndefineSource ? MigrationFlags.UndefineSource : 0)
        | (options.Tls ? MigrationFlags.Tls : 0);

    /// <summary>The strategy's name as the CLI spells it.</summary>
    public static string Name(LibvirtStrategy strategy) => strategy.ToString().ToLowerInvariant();

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
