using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace MigrateKit.Transport;

/// <summary>
/// Collects the entries of one EncodedPages frame: each page encoded by a <see cref="PageEncoder"/>
/// into a buffer of the batch's own, then appended to a writer in one copy. The buffer is
/// allocated once; adding pages allocates nothing. Not thread-safe.
/// </summary>
internal sealed class EncodedPageBatch
{
    private const int PageSize = MigrationProtocol.PageSize;
    private const int EntrySize = PageStreamWriter.EncodedEntrySize;

    /// <summary>Entries are appended in frames of at most this many bytes, so the batch stays in cache.</summary>
    private const int MaxBatchBytes = 256 << 10;

    private readonly byte[] _entries;
    private readonly int _maxPages;
    private int _length;
    private int _region = -1;

    /// <summary>Creates a batch for frames within <paramref name="options"/>' limits.</summary>
    /// <param name="encoder">Chooses each page's form and keeps the sent-page cache.</param>
    /// <param name="options">The frame limits of the writer the batches go to.</param>
    /// <exception cref="ArgumentException">A frame cannot hold one raw page.</exception>
    public EncodedPageBatch(PageEncoder encoder, PageStreamOptions options)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(options);
        int bytes = Math.Min(options.MaxFramePayload - PageStreamWriter.EncodedHeaderSize, MaxBatchBytes);
        if (bytes < EntrySize + PageSize)
        {
            throw new ArgumentException($"A {options.MaxFramePayload}-byte frame cannot hold one encoded page.", nameof(options));
        }

        Encoder = encoder;
        _entries = new byte[bytes];
        _maxPages = options.MaxPagesPerFrame;
    }

    /// <summary>The encoder, with its counts per form.</summary>
    public PageEncoder Encoder { get; }

    /// <summary>Pages in the batch.</summary>
    public int Count { get; private set; }

    /// <summary>Whether the batch must be appended before a page of <paramref name="region"/> can be added.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public bool IsFullFor(int region) =>
        Count > 0 && (region != _region || Count == _maxPages || _entries.Length - _length < EntrySize + PageSize);

    /// <summary>Encodes one page into the batch and covers what the destination will hold with <paramref name="digest"/>.</summary>
    /// <param name="region">The page's region.</param>
    /// <param name="page">The page's index in its region.</param>
    /// <param name="contents">The page in guest memory.</param>
    /// <param name="digest">The region's digest, or <see langword="null"/>.</param>
    /// <param name="length">The encoded bytes, entry excluded.</param>
    /// <returns>The form chosen.</returns>
    /// <exception cref="InvalidOperationException">The batch is full for this page (<see cref="IsFullFor"/>).</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public PageEncoding Add(int region, ulong page, ReadOnlySpan<byte> contents, RegionDigestAccumulator? digest, out int length)
    {
        if (IsFullFor(region))
        {
            throw new InvalidOperationException("The batch is full: append it before adding another page.");
        }

        _region = region;
        Span<byte> entry = _entries.AsSpan(_length, EntrySize);
        PageEncoding encoding = Encoder.Encode(region, page, contents, _entries.AsSpan(_length + EntrySize), out length, out ReadOnlySpan<byte> sent);
        BinaryPrimitives.WriteUInt64LittleEndian(entry, page);
        entry[8] = (byte)encoding;
        entry[9] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(entry[10..], (ushort)length);
        digest?.Update(page, sent);
        _length += EntrySize + length;
        Count++;
        return encoding;
    }

    /// <summary>Appends the batch as one EncodedPages frame and empties it; nothing when it is empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AppendTo(PageStreamWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (Count == 0)
        {
            return;
        }

        writer.AppendEncodedPages(_region, Count, _entries.AsSpan(0, _length));
        Count = 0;
        _length = 0;
    }
}
