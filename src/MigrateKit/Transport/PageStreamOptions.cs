using System;

namespace MigrateKit.Transport;

/// <summary>Limits and buffering of a page stream and of the connections that carry it.</summary>
public sealed class PageStreamOptions
{
    /// <summary>The largest frame payload accepted or produced. The default is 2 MiB.</summary>
    public int MaxFramePayload { get; init; } = 2 << 20;

    /// <summary>The most pages with data one Pages frame carries. The default is 256 (1 MiB).</summary>
    public int MaxPagesPerFrame { get; init; } = 256;

    /// <summary>
    /// Buffered bytes at which a connection's writer waits for its reader; must be above the
    /// largest frame (the 8-byte header plus <see cref="MaxFramePayload"/>). The default is 8 MiB.
    /// </summary>
    public long PauseWriterThreshold { get; init; } = 8 << 20;

    /// <summary>Buffered bytes below which a paused writer goes on. The default is 4 MiB.</summary>
    public long ResumeWriterThreshold { get; init; } = 4 << 20;

    /// <summary>
    /// The most bytes per second a <see cref="PageStreamWriter"/> puts on the wire, headers included;
    /// at least 4096 (one page per second), or <see langword="null"/> for no limit.
    /// </summary>
    public long? BandwidthLimit { get; init; }

    /// <summary>
    /// How long a TCP connection's peer may stay silent or leave sent data unacknowledged before
    /// the connection fails: TCP keepalive probes find a vanished peer of an idle connection, and
    /// TCP_USER_TIMEOUT (Linux) ends one whose link black-holed mid-transfer, instead of the
    /// kernel's two hours idle or some 15 minutes of retransmissions. Whole seconds from 1 s to
    /// 32767 s (TCP_KEEPIDLE's range); Unix domain sockets ignore it.
    /// </summary>
    /// <value>The default is 30 s, like <c>MigrationOptions.ResponseTimeout</c>.</value>
    public TimeSpan PeerTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The clock for rate limiting and timing. The default is <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>These limits and buffering with the sender's own rate limit and clock.</summary>
    internal PageStreamOptions WithRate(long? bandwidthLimit, TimeProvider timeProvider) => new()
    {
        MaxFramePayload = MaxFramePayload,
        MaxPagesPerFrame = MaxPagesPerFrame,
        PauseWriterThreshold = PauseWriterThreshold,
        ResumeWriterThreshold = ResumeWriterThreshold,
        BandwidthLimit = bandwidthLimit,
        PeerTimeout = PeerTimeout,
        TimeProvider = timeProvider,
    };

    /// <summary>The longest <see cref="PeerTimeout"/>: TCP_KEEPIDLE's maximum, in seconds.</summary>
    internal static readonly TimeSpan MaxPeerTimeout = TimeSpan.FromSeconds(short.MaxValue);

    /// <summary>The smallest <see cref="BandwidthLimit"/>: one page per second.</summary>
    internal const long MinBandwidthLimit = MigrationProtocol.PageSize;

    /// <summary>Checks the options and throws an <see cref="ArgumentException"/> naming the first bad one.</summary>
    public void Validate()
    {
        int minPayload = 8 + 16 + MigrationProtocol.PageSize;
        if (MaxFramePayload < minPayload)
        {
            throw new ArgumentException($"MaxFramePayload must be at least {minPayload} bytes (got {MaxFramePayload}).", nameof(MaxFramePayload));
        }

        if (MaxPagesPerFrame < 1 || 8L + (16L * MaxPagesPerFrame) + ((long)MaxPagesPerFrame * MigrationProtocol.PageSize) > MaxFramePayload)
        {
            throw new ArgumentException($"MaxPagesPerFrame must be at least 1 and its pages must fit in MaxFramePayload ({MaxFramePayload} bytes) (got {MaxPagesPerFrame}).", nameof(MaxPagesPerFrame));
        }

        if (ResumeWriterThreshold < 0 || PauseWriterThreshold < ResumeWriterThreshold)
        {
            throw new ArgumentException($"Need 0 <= ResumeWriterThreshold ({ResumeWriterThreshold}) <= PauseWriterThreshold ({PauseWriterThreshold}).", nameof(PauseWriterThreshold));
        }

        // A connection's pump pauses at the threshold; if a frame can be larger, the reader may
        // wait for the rest of a frame that the paused pump never delivers.
        long largestFrame = (long)MigrationProtocol.FrameHeaderSize + MaxFramePayload;
        if (PauseWriterThreshold <= largestFrame)
        {
            throw new ArgumentException($"PauseWriterThreshold ({PauseWriterThreshold} bytes) must be above the largest frame ({largestFrame} bytes: the {MigrationProtocol.FrameHeaderSize}-byte header and MaxFramePayload {MaxFramePayload}), or a stream can stall mid-frame.", nameof(PauseWriterThreshold));
        }

        if (BandwidthLimit is < MinBandwidthLimit)
        {
            throw new ArgumentException($"BandwidthLimit must be at least {MinBandwidthLimit} bytes/s or null (got {BandwidthLimit}).", nameof(BandwidthLimit));
        }

        if (PeerTimeout < TimeSpan.FromSeconds(1) || PeerTimeout > MaxPeerTimeout || PeerTimeout.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            throw new ArgumentException($"PeerTimeout must be whole seconds from 1 s to {MaxPeerTimeout.TotalSeconds:F0} s (got {PeerTimeout}).", nameof(PeerTimeout));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}
