using System;
using System.Runtime.CompilerServices;

namespace MigrateKit.Transport;

/// <summary>
/// Chooses per page the form cheapest on the wire (zero, a delta against the copy last sent,
/// compressed, or raw), writes it, and keeps the sent-page cache equal to what the destination
/// will hold. Counts pages and bytes per encoding. Allocation-free; not thread-safe.
/// </summary>
/// <remarks>
/// The guest may write a page while it is encoded. Whatever it reads, the encoder keeps its
/// cache equal to the destination's copy: a delta is applied to the cached copy (as the
/// destination will apply it), and a page sent compressed or raw is first copied into the cache
/// (or, without <see cref="KeepNewCopies"/>, a scratch page when it has no copy) and encoded
/// from that copy. <see cref="Encode"/> hands out the bytes the destination ends up with, which
/// is what a digest must cover. A page that changed during the call is dirty again
/// and goes in a later round.
/// </remarks>
internal sealed class PageEncoder
{
    private const int PageSize = MigrationProtocol.PageSize;

    private readonly SentPageCache? _cache;
    private readonly int? _compressionLevel;
    private readonly TimeProvider _time;
    private long _firstWriteTicks;
    /// <summary>A delta up to this long is taken at once; a longer one is weighed against compressing the page.</summary>
    private const int SmallDelta = PageSize / 8;

    private readonly byte[] _snapshot = new byte[PageSize];
    private readonly byte[] _scratch = new byte[PageSize];
    private readonly long[] _pages = new long[4];
    private readonly long[] _bytes = new long[4];

    /// <summary>Creates an encoder.</summary>
    /// <param name="cache">The copies to delta against, or <see langword="null"/> for no deltas.</param>
    /// <param name="compressionLevel">The <see cref="PageCompression"/> level (0-12), or <see langword="null"/> for no compression.</param>
    /// <param name="time">The clock that times <see cref="FirstWrites"/>; the system's by default.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="compressionLevel"/> is not 0-12.</exception>
    public PageEncoder(SentPageCache? cache, int? compressionLevel, TimeProvider? time = null)
    {
        if (compressionLevel is < 0 or > PageCompression.MaxLevel)
        {
            throw new ArgumentOutOfRangeException(nameof(compressionLevel), compressionLevel, $"The compression level is 0-{PageCompression.MaxLevel}, or null for none.");
        }

        _cache = cache;
        _compressionLevel = compressionLevel;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Pages encoded in the given form so far.</summary>
    public long Pages(PageEncoding encoding) => _pages[(int)encoding];

    /// <summary>Bytes written in the given form so far (0 for zero pages).</summary>
    public long Bytes(PageEncoding encoding) => _bytes[(int)encoding];

    /// <summary>Non-zero pages that had no copy in the cache (all of them without a cache).</summary>
    public long CacheMisses { get; private set; }

    /// <summary>
    /// The time spent copying pages into never-written slots of the cache, so far: the switchover
    /// takes no new copies (<see cref="KeepNewCopies"/>), and its price per page leaves this out.
    /// </summary>
    public TimeSpan FirstWrites => _time.GetElapsedTime(0, _firstWriteTicks);

    /// <summary>Pages with a cached copy whose delta was not smaller than the page.</summary>
    public long Overflows { get; private set; }

    /// <summary>The counts so far, to subtract an earlier snapshot from.</summary>
    public EncodingTally Tally => new(
        (ulong)_pages[(int)PageEncoding.Raw], (ulong)_pages[(int)PageEncoding.Delta], (ulong)_bytes[(int)PageEncoding.Delta],
        (ulong)_pages[(int)PageEncoding.Compressed], (ulong)_bytes[(int)PageEncoding.Compressed], (ulong)CacheMisses, (ulong)Overflows);

    /// <summary>The page went out in a form this encoder did not choose (a zero run): its cached copy is stale.</summary>
    public void Forget(int region, ulong page)
    {
        if (_cache is { Count: > 0 })
        {
            _cache.Remove(region, page);
        }
    }

    /// <summary>
    /// What the destination holds is no longer known (frames may have been lost with a
    /// connection): every cached copy goes, and each page's next send is whole.
    /// </summary>
    public void ForgetAll() => _cache?.Clear();

    /// <summary>
    /// Whether a page without a cached copy gets one. Off for the switchover: no round follows
    /// to delta against it, and a copy's first write into an untouched slot faults in a page.
    /// </summary>
    public bool KeepNewCopies { get; set; } = true;

    /// <summary>The migration is over: the cache's memory goes back to the system, and no page is encoded after.</summary>
    public void ReleaseCache() => _cache?.Dispose();

    /// <summary>Encodes one page in its cheapest form.</summary>
    /// <param name="region">The page's region.</param>
    /// <param name="page">The page's index in its region.</param>
    /// <param name="contents">The page in guest memory; exactly one page.</param>
    /// <param name="destination">Where the encoded page goes; at least one page long.</param>
    /// <param name="length">The bytes written to <paramref name="destination"/>.</param>
    /// <param name="sent">
    /// The page as the destination will hold it once decoded (the bytes a digest covers); valid
    /// until the next call.
    /// </param>
    /// <returns>The form chosen.</returns>
    /// <exception cref="ArgumentException"><paramref name="contents"/> is not one page, or <paramref name="destination"/> is shorter than one.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public PageEncoding Encode(int region, ulong page, ReadOnlySpan<byte> contents, Span<byte> destination, out int length, out ReadOnlySpan<byte> sent)
    {
        if (contents.Length != PageSize || destination.Length < PageSize)
        {
            throw new ArgumentException($"A page has {PageSize} bytes and needs a destination at least as long; got {contents.Length} and {destination.Length}.", nameof(contents));
        }

        PageEncoding encoding = Choose(region, page, contents, destination, out length, out sent);
        _pages[(int)encoding]++;
        _bytes[(int)encoding] += length;
        return encoding;
    }

    /// <summary>Writes a received page into guest memory, checking the payload whatever its form.</summary>
    /// <param name="encoding">The form it came in.</param>
    /// <param name="payload">The encoded page as received.</param>
    /// <param name="page">The destination's page, holding the copy last received (what a delta applies to).</param>
    /// <exception cref="MigrationProtocolException">The payload does not match its form, or the form is unknown.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode(PageEncoding encoding, ReadOnlySpan<byte> payload, Span<byte> page)
    {
        switch (encoding)
        {
            case PageEncoding.Raw when payload.Length == page.Length:
                payload.CopyTo(page);
                break;
            case PageEncoding.Zero when payload.IsEmpty:
                page.Clear();
                break;
            case PageEncoding.Delta:
                PageDelta.Decode(payload, page);
                break;
            case PageEncoding.Compressed:
                PageCompression.Decompress(payload, page);
                break;
            case PageEncoding.Raw or PageEncoding.Zero:
                throw new MigrationProtocolException(nameof(PageEncoding), "length", $"a {encoding} page of {payload.Length} bytes; it must have {(encoding == PageEncoding.Raw ? page.Length : 0)}.");
            default:
                throw new MigrationProtocolException(nameof(PageEncoding), "encoding", $"unknown page encoding {(byte)encoding}.");
        }
    }

    /// <summary>
    /// What sending a page as a delta would cost now, without sending it or touching the cache's
    /// order: the delta's length, or <see langword="null"/> when there is no copy or the delta
    /// would not be smaller than the page. Lets the engine keep sending hot pages that cost a few bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int? DeltaCost(int region, ulong page, ReadOnlySpan<byte> contents)
    {
        if (_cache is null || !_cache.TryPeek(region, page, out ReadOnlySpan<byte> copy))
        {
            return null;
        }

        int length = PageDelta.Encode(copy, contents, _scratch);
        return length >= 0 ? length : null;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private PageEncoding Choose(int region, ulong page, ReadOnlySpan<byte> contents, Span<byte> destination, out int length, out ReadOnlySpan<byte> sent)
    {
        if (!contents.ContainsAnyExcept((byte)0))
        {
            _cache?.Remove(region, page);
            _snapshot.AsSpan().Clear();
            sent = _snapshot;
            length = 0;
            return PageEncoding.Zero;
        }

        Span<byte> copy = default;
        if (_cache?.TryGet(region, page, out copy) == true)
        {
            length = PageDelta.Encode(copy, contents, destination);
            if (length >= 0 && (length <= SmallDelta || _compressionLevel is null))
            {
                // Applied to the cache as the destination will apply it, so both hold the same bytes.
                PageDelta.Decode(destination[..length], copy);
                sent = copy;
                return PageEncoding.Delta;
            }

            if (length < 0)
            {
                Overflows++;
            }
        }
        else
        {
            CacheMisses++;
        }

        // A stable copy to compress or send: the cache's when there is one.
        Span<byte> snapshot;
        if (_cache is null || (copy.IsEmpty && !KeepNewCopies))
        {
            snapshot = _snapshot;
            contents.CopyTo(snapshot);
        }
        else if (copy.IsEmpty)
        {
            // Timed only into a never-written slot: two reads of the clock against its page fault.
            bool first = _cache.NextSlotNeverWritten;
            long t0 = first ? _time.GetTimestamp() : 0;
            snapshot = _cache.Put(region, page, contents);
            if (first)
            {
                _firstWriteTicks += _time.GetTimestamp() - t0;
            }
        }
        else if (_compressionLevel is null)
        {
            snapshot = copy;
            contents.CopyTo(snapshot);
        }
        else
        {
            // A large delta: whichever of it and the compressed page is smaller, both taken from
            // one stable snapshot, which becomes the cached copy.
            contents.CopyTo(_snapshot);
            int delta = PageDelta.Encode(copy, _snapshot, _scratch);
            int compressed = PageCompression.TryCompress(_snapshot, destination, _compressionLevel.Value);
            _snapshot.CopyTo(copy);
            sent = copy;
            if (delta >= 0 && (compressed <= 0 || delta <= compressed))
            {
                _scratch.AsSpan(0, delta).CopyTo(destination);
                length = delta;
                return PageEncoding.Delta;
            }

            if (compressed > 0)
            {
                length = compressed;
                return PageEncoding.Compressed;
            }

            copy.CopyTo(destination);
            length = PageSize;
            return PageEncoding.Raw;
        }

        sent = snapshot;
        if (_compressionLevel is int level)
        {
            length = PageCompression.TryCompress(snapshot, destination, level);
            if (length > 0)
            {
                return PageEncoding.Compressed;
            }
        }

        snapshot.CopyTo(destination);
        length = PageSize;
        return PageEncoding.Raw;
    }
}
