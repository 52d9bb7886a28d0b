using System;
using K4os.Compression.LZ4;

namespace MigrateKit.Transport;

/// <summary>
/// A page compressed on its own with LZ4 (K4os.Compression.LZ4: block format, no frame header,
/// no dictionary), for pages with no copy at the destination to delta against.
/// </summary>
/// <remarks>
/// LZ4 rather than zstd: a page must compress well above the link speed on a 2-core machine,
/// and LZ4's fast mode does several GB/s where zstd's lowest level does a few hundred MB/s; the
/// high-compression levels are there for slow links. The decoder is LZ4's safe one: it never
/// reads or writes outside the spans it is given, whatever the input.
/// </remarks>
internal static class PageCompression
{
    /// <summary>LZ4's fast compressor (levels 0-2 are the same).</summary>
    public const int FastLevel = 0;

    /// <summary>The highest level: LZ4's optimal parser at its slowest.</summary>
    public const int MaxLevel = 12;

    private const string Frame = "CompressedPage";

    /// <summary>Compresses <paramref name="page"/> into <paramref name="destination"/>.</summary>
    /// <param name="page">The page.</param>
    /// <param name="destination">Where the compressed form goes.</param>
    /// <param name="level">
    /// 0-2 for LZ4's fast compressor, 3-9 for LZ4-HC, 10-12 for its optimal parser: higher is
    /// smaller and slower.
    /// </param>
    /// <returns>
    /// The compressed length, or -1 when it would not be smaller than the page or does not fit
    /// <paramref name="destination"/>; then the contents of <paramref name="destination"/> are unspecified.
    /// </returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="level"/> is not 0-12.</exception>
    public static int TryCompress(ReadOnlySpan<byte> page, Span<byte> destination, int level)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(level);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, MaxLevel);
        int limit = Math.Min(destination.Length, page.Length - 1);
        if (limit <= 0)
        {
            return -1;
        }

        int written = LZ4Codec.Encode(page, destination[..limit], level < 3 ? LZ4Level.L00_FAST : (LZ4Level)level);
        return written > 0 ? written : -1;
    }

    /// <summary>Decompresses a page compressed by <see cref="TryCompress"/> into <paramref name="page"/>.</summary>
    /// <param name="compressed">The compressed form as received.</param>
    /// <param name="page">Where the page goes; its length is the page size expected.</param>
    /// <exception cref="MigrationProtocolException">
    /// The compressed form is empty, not smaller than a page, not valid LZ4, or decompresses to
    /// anything but exactly one page. <paramref name="page"/> may have been written to.
    /// </exception>
    public static void Decompress(ReadOnlySpan<byte> compressed, Span<byte> page)
    {
        if (compressed.Length == 0 || compressed.Length >= page.Length)
        {
            throw new MigrationProtocolException(Frame, "length", $"a compressed page of {compressed.Length} bytes; it must be 1-{page.Length - 1} bytes, smaller than the {page.Length}-byte page.");
        }

        int decoded = LZ4Codec.Decode(compressed, page);
        if (decoded < 0)
        {
            throw new MigrationProtocolException(Frame, "data", $"the {compressed.Length} compressed bytes are not valid LZ4 or expand past a {page.Length}-byte page.");
        }

        if (decoded != page.Length)
        {
            throw new MigrationProtocolException(Frame, "data", $"the {compressed.Length} compressed bytes expand to {decoded} bytes, not a {page.Length}-byte page.");
        }
    }
}
