using System;
using System.Buffers.Binary;
using System.Text;

namespace MigrateKit.Tests.TestSupport;

/// <summary>What changed in a page between two sends.</summary>
public enum SamplePageKind
{
    /// <summary>Random contents with one byte rewritten (the anchor guest's write pattern).</summary>
    OneByte,

    /// <summary>64 records of 64 bytes, each with a 64-bit counter that went up by one.</summary>
    Counters,

    /// <summary>Random contents replaced by other random contents.</summary>
    Random,

    /// <summary>English-like text with a line rewritten and a few letters changed.</summary>
    Text,
}

/// <summary>
/// Deterministic pairs of page versions (as last sent, as now) of realistic kinds, for the
/// page encodings' tests and benchmarks.
/// </summary>
public static class SamplePages
{
    /// <summary>The page size the pairs have.</summary>
    public const int PageSize = 4096;

    private static readonly string[] Words =
    [
        "the", "page", "guest", "memory", "dirty", "round", "sent", "copy", "of", "a", "and", "to",
        "migration", "source", "destination", "kernel", "request", "timeout", "error", "ok", "user",
        "session", "started", "finished", "bytes", "in", "with", "for", "log", "value",
    ];

    /// <summary>A previous and a current version of one page of the given kind.</summary>
    /// <param name="kind">What changed.</param>
    /// <param name="seed">Picks the contents; the same seed gives the same pair.</param>
    public static (byte[] Previous, byte[] Current) Create(SamplePageKind kind, int seed = 1)
    {
        var random = new Random(seed);
        byte[] previous = new byte[PageSize];
        byte[] current;
        switch (kind)
        {
            case SamplePageKind.OneByte:
                random.NextBytes(previous);
                current = (byte[])previous.Clone();
                current[random.Next(PageSize)] ^= (byte)random.Next(1, 256);
                break;
            case SamplePageKind.Counters:
                FillRecords(previous, random);
                current = (byte[])previous.Clone();
                for (int record = 0; record < PageSize; record += 64)
                {
                    ulong count = BinaryPrimitives.ReadUInt64LittleEndian(current.AsSpan(record));
                    BinaryPrimitives.WriteUInt64LittleEndian(current.AsSpan(record), count + 1);
                }

                break;
            case SamplePageKind.Random:
                random.NextBytes(previous);
                current = new byte[PageSize];
                random.NextBytes(current);
                break;
            case SamplePageKind.Text:
                FillText(previous, random);
                current = (byte[])previous.Clone();
                FillText(current.AsSpan(random.Next(PageSize - 80), 60), random);
                for (int i = 0; i < 4; i++)
                {
                    current[random.Next(PageSize)] = (byte)('a' + random.Next(26));
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Not a sample page kind.");
        }

        return (previous, current);
    }

    /// <summary>Records of a counter, a small id, flags and a pointer-like field, the rest zero.</summary>
    private static void FillRecords(Span<byte> page, Random random)
    {
        for (int record = 0; record < page.Length; record += 64)
        {
            Span<byte> r = page.Slice(record, 64);
            r.Clear();
            BinaryPrimitives.WriteUInt64LittleEndian(r, (ulong)random.Next(0, 1 << 20));
            BinaryPrimitives.WriteInt32LittleEndian(r[8..], record / 64);
            r[12] = (byte)random.Next(4);
            BinaryPrimitives.WriteUInt64LittleEndian(r[16..], 0x7F00_0000_0000UL + ((ulong)random.Next(1 << 16) << 6));
        }
    }

    private static void FillText(Span<byte> text, Random random)
    {
        var line = new StringBuilder();
        int written = 0;
        while (written < text.Length)
        {
            line.Clear();
            int words = random.Next(4, 12);
            for (int i = 0; i < words; i++)
            {
                line.Append(Words[random.Next(Words.Length)]).Append(i + 1 < words ? ' ' : '\n');
            }

            written += Encoding.ASCII.GetBytes(line.ToString().AsSpan(0, Math.Min(line.Length, text.Length - written)), text[written..]);
        }
    }
}
