using System;
using MigrateKit.Estimation;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>How a pre-copy migration is run and when it switches over, throttles or gives up.</summary>
public sealed class MigrationOptions
{
    /// <summary>The downtime the switchover must fit in.</summary>
    /// <value>The default is 300 ms (QEMU's default downtime limit).</value>
    public TimeSpan MaxDowntime { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>
    /// Bytes per second allowed on the wire: at least 4096 (one 4 KiB page per second), or null
    /// for no limit.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public long? BandwidthLimit { get => _bandwidthLimit; init => _bandwidthLimit = value; }

    private long? _bandwidthLimit;

    /// <summary>Pre-copy rounds before the migration is aborted.</summary>
    /// <value>The default is 30 (Xen stops after 29).</value>
    public int MaxRounds { get; init; } = 30;

    /// <summary>
    /// Pre-copy rounds run before a switchover may be decided. Round 0's rate includes the
    /// destination's first touch of every page; a round of re-sends shows the rate the
    /// stop-and-copy will run at, so the forecast the switchover rests on is measured, not guessed.
    /// </summary>
    /// <value>The default is 2: round 0 and one round of re-sends (never more than <see cref="MaxRounds"/>).</value>
    public int MinRounds { get; init; } = 2;

    /// <summary>Bytes sent, as a multiple of guest memory, before the migration is aborted.</summary>
    /// <value>The default is 3.0 (Xen's limit).</value>
    public double MaxBytesFactor { get; init; } = 3.0;

    /// <summary>Rounds of history per page (n of the hot-page rule).</summary>
    /// <value>The default is 4.</value>
    public int HotPageWindow { get; init; } = 4;

    /// <summary>Dirty rounds out of <see cref="HotPageWindow"/> that make a page hot (k).</summary>
    /// <value>The default is 2.</value>
    public int HotPageThreshold { get; init; } = 2;

    /// <summary>Share of the downtime budget that deferred hot pages may use.</summary>
    /// <value>The default is 0.5.</value>
    public double DeferBudgetFraction { get; init; } = 0.5;

    /// <summary>Whether the guest may be throttled to make the migration converge.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool AllowThrottling { get; init; } = true;

    /// <summary>The strongest throttle, in percent of the guest's run time taken away.</summary>
    /// <value>The default is 95.</value>
    public int MaxThrottlePercent { get; init; } = 95;

    /// <summary>
    /// The ratio of dirtying rate to bandwidth the throttle aims for: each round then sends about
    /// this fraction of the previous one.
    /// </summary>
    /// <value>The default is 0.5.</value>
    public double ConvergenceTarget { get; init; } = 0.5;

    /// <summary>
    /// Give up (and leave the source running) when the migration has not completed after this long.
    /// It ends a round, a handshake or a reconnection in progress at once (the report says Aborted,
    /// every page not acknowledged pending), but never a switchover that has begun: that one ends by
    /// its own response timeouts.
    /// </summary>
    /// <value>The default is <see langword="null"/>: no deadline.</value>
    public TimeSpan? Deadline { get; init; }

    /// <summary>
    /// How long to wait for the destination's answers (HelloAck, RoundAcks, final Ack), for the
    /// connection to take data (a send during which it moves no bytes for this long fails the
    /// migration; waiting for the <see cref="BandwidthLimit"/> does not count) and, while the source
    /// is paused, for the destination to take the whole switchover's data; at most
    /// 4294967294 ms (about 49.7 days), the longest timeout .NET timers take.
    /// </summary>
    /// <value>The default is 30 s.</value>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often the engine reconnects after the link to the destination is lost, when it was given
    /// a way to connect (<see cref="PreCopyEngine.MigrateAsync(Func{System.Threading.CancellationToken, System.Threading.Tasks.Task{IMigrationConnection}}, IProgress{MigrationProgress}?, System.Threading.CancellationToken)"/>):
    /// during pre-copy it continues the same session (only what is pending is sent again); after
    /// Commit it asks the destination whether the VM started. 0 to 100; 0 never reconnects.
    /// An attempt ends when its connection fails, or when the destination does not answer within
    /// <see cref="ResponseTimeout"/>: against a silent destination the first try and the retries take
    /// (ReconnectAttempts + 1) × ResponseTimeout, 3 minutes by default. Each failed attempt is logged (Warning).
    /// </summary>
    /// <value>The default is 5.</value>
    public int ReconnectAttempts { get; init; } = 5;

    /// <summary>
    /// The wait before the first reconnection; each later one waits twice as long (with jitter),
    /// at most 5 s. Positive, at most 1 minute.
    /// </summary>
    /// <value>The default is 200 ms: 5 attempts that fail at once (a refused connection) span about 6 s, inside the destination's default 60 s <see cref="MigrationReceiverOptions.ReconnectTimeout"/>.</value>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// After the destination resumed, hash the (paused) source memory and compare it with what was
    /// sent, proving the tracker missed no write. Takes time after the switchover, not during it.
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool VerifySourceMemory { get; init; } = true;

    /// <summary>
    /// Whether the tracker keeps tracking after a migration fails, is aborted or is cancelled, so
    /// that <see cref="PreCopyEngine.PendingPages"/> stays exact for a resume. When false, the
    /// engine stops the tracker (dirty logging off, write protection released); the next
    /// migration of the engine starts it again and sends every page.
    /// </summary>
    /// <value>The default is <see langword="false"/>: a failed migration leaves nothing tracking.</value>
    public bool KeepTrackingOnFailure { get; init; }

    /// <summary>
    /// Which encodings the sender may use beyond raw and zero pages. Each page goes in the form
    /// smallest on the wire: a delta against the copy sent last (from a cache of sent pages, see
    /// <see cref="SentPageCacheBytes"/>), LZ4-compressed, or raw. A page whose delta is small costs
    /// a few dozen bytes, so it is re-sent every round instead of being held back for the
    /// switchover, and the forecast prices pages by what they cost on the wire and on the sender.
    /// </summary>
    /// <value>
    /// The default is <see langword="null"/>: <see cref="PageEncodings.All"/> with a
    /// <see cref="BandwidthLimit"/>, <see cref="PageEncodings.Delta"/> without one. Measured here
    /// (docs/BENCHMARKS.md, "Page encodings on the wire"): on a 100 MiB/s link they cut a guest
    /// rewriting a byte per page from never converging to 0.2 s, and cost nothing measurable on
    /// random contents; without a limit over loopback, compressing caps the first copy at about
    /// 0.8 GB/s of pages against 1.3 GB/s raw, while deltas alone cost under 3 %.
    /// </value>
    public PageEncodings? Encodings { get; init; }

    /// <summary>A copy of these options with another <see cref="BandwidthLimit"/>.</summary>
    internal MigrationOptions WithBandwidthLimit(long? limit)
    {
        var copy = (MigrationOptions)MemberwiseClone();
        copy._bandwidthLimit = limit;
        return copy;
    }

    /// <summary>The encodings in force: <see cref="Encodings"/>, or the default for the bandwidth limit.</summary>
    public PageEncodings EffectiveEncodings => Encodings ?? (BandwidthLimit is null ? PageEncodings.Delta : PageEncodings.All);

    /// <summary>
    /// Bytes of page copies the source keeps to delta against, when <see cref="Encodings"/> has
    /// <see cref="PageEncodings.Delta"/>: the memory cost of deltas (plus under 1 % bookkeeping),
    /// allocated when the migration starts and touched only as pages are sent. Least recently sent
    /// pages are evicted first, so it should hold the guest's working set. At least 4096 bytes.
    /// </summary>
    /// <value>
    /// The default is <see langword="null"/>: a quarter of guest memory, at least 64 MiB (QEMU's
    /// default XBZRLE cache) and at most 1 GiB, never more than the guest's memory.
    /// </value>
    public long? SentPageCacheBytes { get; init; }

    /// <summary>The LZ4 level of compressed pages, 0 (fastest) to 12 (smallest).</summary>
    /// <value>The default is 0: on this 2-core machine it compresses a page in about a microsecond.</value>
    public int CompressionLevel { get; init; }

    /// <summary>The size of the sent-page cache for a guest of <paramref name="memoryBytes"/>.</summary>
    internal long SentPageCacheSize(ulong memoryBytes) =>
        SentPageCacheBytes ?? Math.Max(MigrationProtocol.PageSize, Math.Min((long)memoryBytes, Math.Clamp((long)(memoryBytes / 4), SentPageCache.DefaultCapacityBytes, 1L << 30)));

    /// <summary>
    /// The machine's earlier switchovers, which correct the downtime forecast (the destination's
    /// checks and start, a stop-and-copy that runs faster than the rounds) and set the width of
    /// its interval; each completed migration adds its own. Share one instance between the
    /// migrations of a process (<see cref="DowntimeHistory.Shared"/>): the correction is learned
    /// per destination host (tcp:HOST, or unix:PATH), and a destination with no switchover yet is
    /// priced by every destination's.
    /// </summary>
    /// <value>The default is <see langword="null"/>: every forecast starts from this migration's measurements alone.</value>
    public DowntimeHistory? DowntimeHistory { get; init; }

    /// <summary>
    /// The clock of every measurement, timeout and bandwidth pacing of the engine; a test passes a
    /// fake one to run timeouts without waiting.
    /// </summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The longest timeout timers take (uint.MaxValue - 1 ms): the bound of <see cref="ResponseTimeout"/>.</summary>
    private static readonly TimeSpan MaxResponseTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>Checks the options and names the first problem.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        if (MaxDowntime <= TimeSpan.Zero)
        {
            throw new ArgumentException($"MaxDowntime must be positive (got {Ms(MaxDowntime)}).", nameof(MaxDowntime));
        }

        // The page stream enforces the same minimum, but only once MigrateAsync runs.
        if (BandwidthLimit is < PageStreamOptions.MinBandwidthLimit)
        {
            throw new ArgumentException(
                $"BandwidthLimit must be at least {PageStreamOptions.MinBandwidthLimit} bytes/s (one 4 KiB page per second) or null (got {BandwidthLimit}).",
                nameof(BandwidthLimit));
        }

        if (MaxRounds < 1)
        {
            throw new ArgumentException($"MaxRounds must be at least 1 (got {MaxRounds}).", nameof(MaxRounds));
        }

        if (MinRounds < 1)
        {
            throw new ArgumentException($"MinRounds must be at least 1 (got {MinRounds}).", nameof(MinRounds));
        }

        if (!(MaxBytesFactor >= 1))
        {
            throw new ArgumentException($"MaxBytesFactor must be at least 1 (got {MaxBytesFactor}).", nameof(MaxBytesFactor));
        }

        if (HotPageWindow is < 1 or > 8)
        {
            throw new ArgumentException($"HotPageWindow must be 1 to 8 (got {HotPageWindow}).", nameof(HotPageWindow));
        }

        if (HotPageThreshold < 1 || HotPageThreshold > HotPageWindow)
        {
            throw new ArgumentException($"HotPageThreshold must be 1 to HotPageWindow ({HotPageWindow}) (got {HotPageThreshold}).", nameof(HotPageThreshold));
        }

        if (!(DeferBudgetFraction >= 0 && DeferBudgetFraction < 1))
        {
            throw new ArgumentException($"DeferBudgetFraction must be in [0, 1) (got {DeferBudgetFraction}).", nameof(DeferBudgetFraction));
        }

        if (MaxThrottlePercent is < 0 or > 99)
        {
            throw new ArgumentException($"MaxThrottlePercent must be 0 to 99 (got {MaxThrottlePercent}).", nameof(MaxThrottlePercent));
        }

        if (!(ConvergenceTarget > 0 && ConvergenceTarget < 1))
        {
            throw new ArgumentException($"ConvergenceTarget must be in (0, 1) (got {ConvergenceTarget}).", nameof(ConvergenceTarget));
        }

        if (Deadline is { } d && d <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Deadline must be positive (got {Ms(d)}).", nameof(Deadline));
        }

        // Timers refuse longer timeouts: the run would fail at its first wait, after the handshake was sent.
        if (ResponseTimeout <= TimeSpan.Zero || ResponseTimeout > MaxResponseTimeout)
        {
            throw new ArgumentException(
                $"ResponseTimeout must be positive and at most {MaxResponseTimeout.TotalMilliseconds:F0} ms (about 49.7 days) (got {Ms(ResponseTimeout)}).",
                nameof(ResponseTimeout));
        }

        if (ReconnectAttempts is < 0 or > 100)
        {
            throw new ArgumentException($"ReconnectAttempts must be 0 to 100 (got {ReconnectAttempts}).", nameof(ReconnectAttempts));
        }

        if (ReconnectDelay <= TimeSpan.Zero || ReconnectDelay > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentException($"ReconnectDelay must be positive and at most 1 minute (got {Ms(ReconnectDelay)}).", nameof(ReconnectDelay));
        }

        if (Encodings is { } e && (e & ~PageEncodings.All) != 0)
        {
            throw new ArgumentException($"Encodings has unknown flags (got {Encodings}).", nameof(Encodings));
        }

        if (SentPageCacheBytes is < MigrationProtocol.PageSize or > SentPageCache.MaxCapacityBytes)
        {
            throw new ArgumentException($"SentPageCacheBytes must be {MigrationProtocol.PageSize} to {SentPageCache.MaxCapacityBytes} bytes, or null for a quarter of guest memory (got {SentPageCacheBytes}).", nameof(SentPageCacheBytes));
        }

        if (CompressionLevel is < 0 or > PageCompression.MaxLevel)
        {
            throw new ArgumentException($"CompressionLevel must be 0 to {PageCompression.MaxLevel} (got {CompressionLevel}).", nameof(CompressionLevel));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
    }

    // "0 ms", not "00:00:00": the unit a limit is written in.
    private static string Ms(TimeSpan t) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{t.TotalMilliseconds:0.###} ms");
}
