using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace MigrateKit.Transport;

/// <summary>Writing of EncodedPages frames, whose entries an <see cref="EncodedPageBatch"/> builds.</summary>
public sealed partial class PageStreamWriter
{
    /// <summary>An EncodedPages payload starts with the region (i32) and the page count (i32).</summary>
    internal const int EncodedHeaderSize = 8;

    /// <summary>Each page: its index (u64), encoding (u8), a reserved byte, the length of its data (u16); then the data.</summary>
    internal const int EncodedEntrySize = 12;

    /// <summary>Appends one EncodedPages frame of <paramref name="count"/> prepared entries of <paramref name="region"/>.</summary>
    /// <exception cref="ArgumentException">No entries, too many pages, or a payload over the frame limit.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void AppendEncodedPages(int region, int count, ReadOnlySpan<byte> entries)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(region);
        int payload = EncodedHeaderSize + entries.Length;
        if (count < 1 || count > _options.MaxPagesPerFrame || entries.Length < count * EncodedEntrySize || payload > _options.MaxFramePayload)
        {
            throw new ArgumentException($"An EncodedPages frame carries 1 to {_options.MaxPagesPerFrame} pages in at most {_options.MaxFramePayload} bytes (got {count} in {payload}).", nameof(entries));
        }

        Span<byte> s = Begin(FrameType.EncodedPages, payload);
        BinaryPrimitives.WriteInt32LittleEndian(s, region);
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], count);
        entries.CopyTo(s[EncodedHeaderSize..]);
        Commit(payload);
    }
}
