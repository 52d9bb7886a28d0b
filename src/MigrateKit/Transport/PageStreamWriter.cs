using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Hashing;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Memory;

namespace MigrateKit.Transport;

/// <summary>
/// Writes protocol frames into a <see cref="PipeWriter"/>. Append methods only buffer; 
/// <see cref="FlushAsync"/> applies the bandwidth limit and hands the bytes to the connection,
/// waiting while the connection's buffer is over its pause threshold (backpressure).
/// Appending pages copies guest memory straight into the pipe's buffers and allocates nothing.
/// Not thread-safe: one writer per connection, used by one task at a time.
/// </summary>
public sealed partial class PageStreamWriter : IDisposable
{
    private const int RunEntrySize = 16;

    private readonly PipeWriter _output;
    private readonly PageStreamOptions _options;

    /// <summary>The limits this writer's frames keep to.</summary>
    internal PageStreamOptions Options => _options;
    private readonly long _rate;
    private readonly int _tokenLimit;
    private double _tokens;
    private long _lastRefill;
    private long _bytesWritten;
    private long _unflushed;
    private BackpressureDeadline? _deadline;

    /// <summary>Creates a writer over a connection's output.</summary>
    /// <param name="output">Where frames go.</param>
    /// <param name="options">Limits; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public PageStreamWriter(PipeWriter output, PageStreamOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _options = options ?? new PageStreamOptions();
        _options.Validate();
        if (_options.BandwidthLimit is long rate)
        {
            // A token bucket of bytes, refilled by elapsed time on the options' clock, so the
            // long-run rate does not depend on timer jitter; it holds 50 ms (at least 64 KiB: flushes
            // are paced in bucket-sized chunks, so a frame need not fit in it at once) and
            // starts full. Refilling also while full means idle time never buys extra burst
            // (TokenBucketRateLimiter's manual TryReplenish skips the timestamp update when full,
            // so after idle it credits the whole idle time: up to twice the bucket in one burst).
            _rate = rate;
            _tokenLimit = (int)Math.Clamp(Math.Max(rate / 20, 64 * 1024), 1, int.MaxValue);
            _tokens = _tokenLimit;
            _lastRefill = _options.TimeProvider.GetTimestamp();
        }
    }

    /// <summary>
    /// A writer for <paramref name="connection"/> whose every wait for the connection to take data
    /// (backpressure) ends in a <see cref="TimeoutException"/> after <paramref name="stallTimeout"/>
    /// without progress; the bandwidth limit's pacing does not count.
    /// </summary>
    internal static PageStreamWriter ForConnection(IMigrationConnection connection, PageStreamOptions options, TimeSpan stallTimeout)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Func<long>? sentBytes = connection is SocketMigrationConnection socket ? () => socket.BytesSent : null;
        return new PageStreamWriter(connection.Output, options).BoundStalls(stallTimeout, sentBytes);
    }

    /// <summary>
    /// Ends every wait of this writer for its output to take data in a <see cref="TimeoutException"/>
    /// after <paramref name="stallTimeout"/> without progress, progress being a change of
    /// <paramref name="sentBytes"/> (or, without it, the end of the wait).
    /// </summary>
    internal PageStreamWriter BoundStalls(TimeSpan stallTimeout, Func<long>? sentBytes)
    {
        _deadline?.Dispose();
        _deadline = new BackpressureDeadline(_output, stallTimeout, _options.TimeProvider, sentBytes);
        return this;
    }

    /// <summary>How long a flush waits for the connection to take data without progress; infinite unless made <see cref="ForConnection"/>.</summary>
    internal TimeSpan StallTimeout => _deadline?.Limit ?? Timeout.InfiniteTimeSpan;

    /// <summary>Bytes appended so far, frame headers included (the bytes this side puts on the wire).</summary>
    public long BytesWritten => _bytesWritten;

    /// <summary>Bytes appended since the last <see cref="FlushAsync"/>.</summary>
    public long UnflushedBytes => _unflushed;

    /// <summary>Appends a <see cref="FrameType.Hello"/> frame.</summary>
    /// <exception cref="ArgumentException">The hello does not fit the protocol's limits.</exception>
    public void AppendHello(MigrationHello hello)
    {
        ArgumentNullException.ThrowIfNull(hello);
        ArgumentNullException.ThrowIfNull(hello.Regions);
        if (hello.Regions.Count is 0 or > MigrationProtocol.MaxRegions)
        {
            throw new ArgumentException($"A Hello carries 1 to {MigrationProtocol.MaxRegions} regions (got {hello.Regions.Count}).", nameof(hello));
        }

        if (hello.MinimumVersion > hello.Version)
        {
            throw new ArgumentException($"The oldest version accepted ({hello.MinimumVersion}) is above the version ({hello.Version}).", nameof(hello));
        }

        int nameBytes = CheckedByteCount(hello.SourceName ?? string.Empty, nameof(hello));
        CheckSessionId(hello.SessionId, nameof(hello));
        int payload = HelloFixedSize + (hello.Regions.Count * 16) + nameBytes;
        Span<byte> s = Begin(FrameType.Hello, payload);
        BinaryPrimitives.WriteUInt32LittleEndian(s, MigrationProtocol.HelloMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], hello.Version);
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], hello.MinimumVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], MigrationProtocol.PageSize);
        BinaryPrimitives.WriteInt32LittleEndian(s[12..], hello.VcpuCount);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], hello.Regions.Count);
        BinaryPrimitives.WriteInt32LittleEndian(s[20..], nameBytes);
        hello.SessionId.TryWriteBytes(s.Slice(24, 16));
        int at = HelloFixedSize;
        foreach (GuestMemoryRegionSpec r in hello.Regions)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[at..], r.GuestPhysicalAddress);
            BinaryPrimitives.WriteUInt64LittleEndian(s[(at + 8)..], r.Size);
            at += 16;
        }

        Encoding.UTF8.GetBytes(hello.SourceName ?? string.Empty, s[at..]);
        Commit(payload);
    }

    /// <summary>Appends a <see cref="FrameType.HelloAck"/> frame.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The resume-cost estimate is negative or over a day.</exception>
    public void AppendHelloAck(HelloAck ack)
    {
        long ticks = DurationTicks(ack.ResumeCostEstimate, nameof(ack));
        Span<byte> s = Begin(FrameType.HelloAck, 16);
        BinaryPrimitives.WriteUInt16LittleEndian(s, ack.Version);
        s.Slice(2, 6).Clear();
        BinaryPrimitives.WriteInt64LittleEndian(s[8..], ticks);
        Commit(16);
    }

    /// <summary>
    /// Appends one <see cref="FrameType.Pages"/> frame with the given runs of
    /// <paramref name="memory"/>, copying the pages straight from guest memory. When
    /// <paramref name="digest"/> is given, each page is hashed as copied (the copy, not the
    /// live page, so the digest matches what the destination receives).
    /// </summary>
    /// <exception cref="ArgumentException">No runs, an empty run, too many pages for one frame, or a run outside the region.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AppendPages(int region, GuestMemoryRegion memory, ReadOnlySpan<PageRun> runs, RegionDigestAccumulator? digest = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentOutOfRangeException.ThrowIfNegative(region);
        ulong pages = 0;
        foreach (PageRun run in runs)
        {
            if (run.Count == 0 || run.FirstPage >= memory.PageCount || run.Count > memory.PageCount - run.FirstPage)
            {
                throw new ArgumentException($"Run [{run.FirstPage}, +{run.Count}) is empty or outside region {memory.Index} of {memory.PageCount} pages.", nameof(runs));
            }

            pages += run.Count;
        }

        if (runs.IsEmpty || pages > (ulong)_options.MaxPagesPerFrame)
        {
            throw new ArgumentException($"A Pages frame carries 1 to {_options.MaxPagesPerFrame} pages (got {pages} in {runs.Length} runs).", nameof(runs));
        }

        long payloadLong = 8L + ((long)runs.Length * RunEntrySize) + ((long)pages * MigrationProtocol.PageSize);
        if (payloadLong > _options.MaxFramePayload)
        {
            throw new ArgumentException($"{runs.Length} runs of {pages} pages make a {payloadLong}-byte frame, over the {_options.MaxFramePayload}-byte limit.", nameof(runs));
        }

        int payload = (int)payloadLong;
        int table = 8 + (runs.Length * RunEntrySize);
        Span<byte> s = Begin(FrameType.Pages, payload, table);
        BinaryPrimitives.WriteInt32LittleEndian(s, region);
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], runs.Length);
        int at = 8;
        foreach (PageRun run in runs)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[at..], run.FirstPage);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 8)..], (uint)run.Count);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 12)..], 0);
            at += RunEntrySize;
        }

        _output.Advance(MigrationProtocol.FrameHeaderSize + table);

        const int page = MigrationProtocol.PageSize;
        foreach (PageRun run in runs)
        {
            ulong next = run.FirstPage;
            ulong end = run.End;
            while (next < end)
            {
                Span<byte> target = _output.GetSpan(page);
                int fit = (int)Math.Min((ulong)(target.Length / page), end - next);
                int bytes = fit * page;
                memory.GetSpan(next * page, bytes).CopyTo(target);
                if (digest is not null)
                {
                    for (int i = 0; i < fit; i++)
                    {
                        digest.Update(next + (ulong)i, target.Slice(i * page, page));
                    }
                }

                _output.Advance(bytes);
                next += (ulong)fit;
            }
        }

        Account(payload);
    }

    /// <summary>Appends one <see cref="FrameType.ZeroPages"/> frame: runs of all-zero pages, no data.</summary>
    /// <exception cref="ArgumentException">No runs, an empty run, or more runs than fit in a frame.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AppendZeroPages(int region, ReadOnlySpan<PageRun> runs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(region);
        long payloadLong = 8L + ((long)runs.Length * RunEntrySize);
        if (runs.IsEmpty || payloadLong > _options.MaxFramePayload)
        {
            throw new ArgumentException($"A ZeroPages frame carries 1 to {(_options.MaxFramePayload - 8) / RunEntrySize} runs (got {runs.Length}).", nameof(runs));
        }

        int payload = (int)payloadLong;
        Span<byte> s = Begin(FrameType.ZeroPages, payload);
        BinaryPrimitives.WriteInt32LittleEndian(s, region);
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], runs.Length);
        int at = 8;
        foreach (PageRun run in runs)
        {
            if (run.Count == 0)
            {
                throw new ArgumentException($"Run at page {run.FirstPage} is empty.", nameof(runs));
            }

            BinaryPrimitives.WriteUInt64LittleEndian(s[at..], run.FirstPage);
            BinaryPrimitives.WriteUInt64LittleEndian(s[(at + 8)..], run.Count);
            at += RunEntrySize;
        }

        Commit(payload);
    }

    /// <summary>Appends a <see cref="FrameType.RoundEnd"/> frame.</summary>
    public void AppendRoundEnd(RoundEnd roundEnd)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(roundEnd.Round);
        Span<byte> s = Begin(FrameType.RoundEnd, 24);
        BinaryPrimitives.WriteInt32LittleEndian(s, roundEnd.Round);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(s[8..], roundEnd.PagesSent);
        BinaryPrimitives.WriteUInt64LittleEndian(s[16..], roundEnd.BytesSent);
        Commit(24);
    }

    /// <summary>Appends a <see cref="FrameType.RoundAck"/> frame: the destination has applied the round.</summary>
    public void AppendRoundAck(int round)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(round);
        Span<byte> s = Begin(FrameType.RoundAck, 8);
        BinaryPrimitives.WriteInt32LittleEndian(s, round);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], 0);
        Commit(8);
    }

    /// <summary>Appends a <see cref="FrameType.DeviceState"/> frame carrying opaque bytes.</summary>
    /// <exception cref="ArgumentException">The state is larger than a frame.</exception>
    public void AppendDeviceState(ReadOnlySpan<byte> state)
    {
        if (state.Length > _options.MaxFramePayload)
        {
            throw new ArgumentException($"Device state of {state.Length} bytes is over the {_options.MaxFramePayload}-byte frame limit.", nameof(state));
        }

        Span<byte> s = Begin(FrameType.DeviceState, state.Length);
        state.CopyTo(s);
        Commit(state.Length);
    }

    /// <summary>Appends a <see cref="FrameType.Digests"/> frame.</summary>
    /// <exception cref="ArgumentException">No digests, too many, or a negative region.</exception>
    public void AppendDigests(IReadOnlyList<RegionDigest> digests)
    {
        ArgumentNullException.ThrowIfNull(digests);
        if (digests.Count is 0 or > MigrationProtocol.MaxRegions)
        {
            throw new ArgumentException($"A Digests frame carries 1 to {MigrationProtocol.MaxRegions} digests (got {digests.Count}).", nameof(digests));
        }

        int payload = 8 + (digests.Count * 16);
        Span<byte> s = Begin(FrameType.Digests, payload);
        BinaryPrimitives.WriteInt32LittleEndian(s, digests.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], 0);
        int at = 8;
        foreach (RegionDigest d in digests)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d.Region, nameof(digests));
            BinaryPrimitives.WriteInt32LittleEndian(s[at..], d.Region);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 4)..], 0);
            BinaryPrimitives.WriteUInt64LittleEndian(s[(at + 8)..], d.Digest);
            at += 16;
        }

        Commit(payload);
    }

    /// <summary>Appends a <see cref="FrameType.Complete"/> frame.</summary>
    public void AppendComplete()
    {
        Begin(FrameType.Complete, 0);
        Commit(0);
    }

    /// <summary>Appends an <see cref="FrameType.Error"/> frame; a message over 4096 UTF-8 bytes is cut at a character boundary.</summary>
    public void AppendError(MigrationError error)
    {
        ArgumentNullException.ThrowIfNull(error);
        string message = Truncated(error.Message);
        int bytes = Encoding.UTF8.GetByteCount(message);
        int payload = 8 + bytes;
        Span<byte> s = Begin(FrameType.Error, payload);
        BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)error.Code);
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], 0);
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], bytes);
        Encoding.UTF8.GetBytes(message, s[8..]);
        Commit(payload);
    }

    /// <summary>
    /// Appends an <see cref="FrameType.Error"/> frame and flushes it within one second, ignoring
    /// a peer that is already gone: a last word before hanging up, never a second failure.
    /// </summary>
    /// <returns>Whether the frame was handed to the connection.</returns>
    public async ValueTask<bool> TrySendErrorAsync(MigrationError error, CancellationToken cancellationToken = default)
    {
        try
        {
            AppendError(error);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(1));
            await FlushAsync(timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or TimeoutException or InvalidOperationException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Waits for the bandwidth limit to allow the buffered bytes, then flushes them to the
    /// connection (waiting while the connection applies backpressure).
    /// </summary>
    /// <exception cref="IOException">The peer is gone (the connection's reader completed).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="TimeoutException">The connection took no data for the writer's stall timeout.</exception>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        long pending = _unflushed;
        _unflushed = 0;
        if (_rate > 0)
        {
            await PaceAsync(pending, cancellationToken).ConfigureAwait(false);
        }

        FlushResult result = await FlushOutputAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCanceled && _deadline is not null && _deadline.TakeStrayCancel())
        {
            // The deadline cancelled a wait that had just ended; the cancellation hit this flush instead.
            result = await FlushOutputAsync(cancellationToken).ConfigureAwait(false);
        }

        if (result.IsCanceled)
        {
            throw new OperationCanceledException("The flush was cancelled.", cancellationToken);
        }

        if (result.IsCompleted)
        {
            throw new IOException("The peer closed the connection.");
        }
    }

    /// <summary>
    /// Bytes the bandwidth limit would let through at once right now (the token bucket's
    /// content); 0 without a limit. A forecast of a short transfer subtracts it.
    /// </summary>
    public long BurstAvailable
    {
        get
        {
            if (_rate <= 0)
            {
                return 0;
            }

            TimeProvider time = _options.TimeProvider;
            return (long)Math.Min(_tokenLimit, _tokens + (time.GetElapsedTime(_lastRefill, time.GetTimestamp()).TotalSeconds * _rate));
        }
    }

    /// <inheritdoc />
    public void Dispose() => _deadline?.Dispose();

    // Only a flush that has to wait for the connection is watched: the usual one completes at once.
    private ValueTask<FlushResult> FlushOutputAsync(CancellationToken ct)
    {
        ValueTask<FlushResult> flushing = _output.FlushAsync(ct);
        return flushing.IsCompleted || _deadline is null ? flushing : _deadline.WaitAsync(flushing);
    }

    private async ValueTask PaceAsync(long bytes, CancellationToken ct)
    {
        TimeProvider time = _options.TimeProvider;
        while (bytes > 0)
        {
            int chunk = (int)Math.Min(bytes, _tokenLimit);
            while (true)
            {
                long now = time.GetTimestamp();
                _tokens = Math.Min(_tokenLimit, _tokens + (time.GetElapsedTime(_lastRefill, now).TotalSeconds * _rate));
                _lastRefill = now;
                if (_tokens >= chunk)
                {
                    _tokens -= chunk;
                    break;
                }

                // Task.Delay counts whole milliseconds: a shorter wait would be no wait, and the
                // loop would spin until the clock moved. Round up instead.
                double milliseconds = Math.Ceiling((chunk - _tokens) * 1000 / _rate);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(milliseconds, 1)), time, ct).ConfigureAwait(false);
            }

            bytes -= chunk;
        }
    }

    // Writes the header of a frame with a payload of `payload` bytes and returns a span for the
    // first `buffered` payload bytes (all of them unless the caller writes the rest separately).
    private Span<byte> Begin(FrameType type, int payload, int buffered = -1)
    {
        if (buffered < 0)
        {
            buffered = payload;
        }

        Span<byte> span = _output.GetSpan(MigrationProtocol.FrameHeaderSize + buffered);
        BinaryPrimitives.WriteInt32LittleEndian(span, payload);
        span[4] = (byte)type;
        span[5] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], 0);
        return span.Slice(MigrationProtocol.FrameHeaderSize, buffered);
    }

    private void Commit(int payload)
    {
        _output.Advance(MigrationProtocol.FrameHeaderSize + payload);
        Account(payload);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private void Account(int payload)
    {
        _bytesWritten += MigrationProtocol.FrameHeaderSize + payload;
        _unflushed += MigrationProtocol.FrameHeaderSize + payload;
    }

    private static int CheckedByteCount(string value, string paramName)
    {
        int bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > MigrationProtocol.MaxStringBytes)
        {
            throw new ArgumentException($"A string in a frame is at most {MigrationProtocol.MaxStringBytes} UTF-8 bytes (got {bytes}).", paramName);
        }

        return bytes;
    }
}
