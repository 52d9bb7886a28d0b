using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace MigrateKit.Transport;

/// <summary>Decoding of EncodedPages frames: pages each in its own form.</summary>
public sealed partial class PageStreamReader
{
    // Checks the whole frame (every entry's form, length and reserved byte, and that the entries
    // fill the payload exactly) before the first handler call, as for Pages.
    private static void DispatchEncodedPages(IPageStreamHandler handler, ReadOnlySequence<byte> payload)
    {
        const string frame = "EncodedPages";
        const int header = PageStreamWriter.EncodedHeaderSize;
        const int entrySize = PageStreamWriter.EncodedEntrySize;
        if (payload.Length < header + entrySize)
        {
            throw new MigrationProtocolException(frame, "length", $"An {frame} frame is at least {header + entrySize} bytes (got {payload.Length}).");
        }

        Span<byte> s = stackalloc byte[header];
        payload.Slice(0, header).CopyTo(s);
        int region = BinaryPrimitives.ReadInt32LittleEndian(s);
        int count = BinaryPrimitives.ReadInt32LittleEndian(s[4..]);
        if (region < 0)
        {
            throw new MigrationProtocolException(frame, "region", $"Region {region} is negative.");
        }

        // Like Pages, bounded by the payload (the entries must fill it), not by this side's MaxPagesPerFrame.
        if (count < 1)
        {
            throw new MigrationProtocolException(frame, "pageCount", $"An {frame} frame carries at least one page (got {count}).");
        }

        Span<byte> entry = stackalloc byte[entrySize];
        long at = header;
        for (int i = 0; i < count; i++)
        {
            if (payload.Length - at < entrySize)
            {
                throw new MigrationProtocolException(frame, "length", $"Entry {i} of {count} starts at byte {at} of a {payload.Length}-byte payload.");
            }

            payload.Slice(at, entrySize).CopyTo(entry);
            int length = EntryLength(entry, i);
            at += entrySize;
            if (payload.Length - at < length)
            {
                throw new MigrationProtocolException(frame, "length", $"Page {i} of {count} has {length} bytes, the frame has {payload.Length - at} left.");
            }

            at += length;
        }

        if (at != payload.Length)
        {
            throw new MigrationProtocolException(frame, "length", $"{count} pages end at byte {at} of a {payload.Length}-byte payload.");
        }

        at = header;
        for (int i = 0; i < count; i++)
        {
            payload.Slice(at, entrySize).CopyTo(entry);
            ulong page = BinaryPrimitives.ReadUInt64LittleEndian(entry);
            var encoding = (PageEncoding)entry[8];
            int length = BinaryPrimitives.ReadUInt16LittleEndian(entry[10..]);
            at += entrySize;
            handler.OnEncodedPage(region, page, encoding, payload.Slice(at, length));
            at += length;
        }
    }

    /// <summary>Checks one entry's form, reserved byte and length for its form; returns the length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int EntryLength(ReadOnlySpan<byte> entry, int index)
    {
        const string frame = "EncodedPages";
        var encoding = (PageEncoding)entry[8];
        if (entry[9] != 0)
        {
            throw new MigrationProtocolException(frame, "reserved", "Reserved bytes must be 0.");
        }

        int length = BinaryPrimitives.ReadUInt16LittleEndian(entry[10..]);
        (int min, int max) = encoding switch
        {
            PageEncoding.Raw => (MigrationProtocol.PageSize, MigrationProtocol.PageSize),
            PageEncoding.Zero => (0, 0),
            PageEncoding.Delta => (0, MigrationProtocol.PageSize - 1),
            PageEncoding.Compressed => (1, MigrationProtocol.PageSize - 1),
            _ => throw new MigrationProtocolException(frame, "encoding", $"Page {index} has unknown encoding {entry[8]}."),
        };
        if (length < min || length > max)
        {
            throw new MigrationProtocolException(frame, "length", $"Page {index} is {encoding} with {length} bytes; that form has {min} to {max}.");
        }

        return length;
    }
}
