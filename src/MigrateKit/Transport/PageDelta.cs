using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MigrateKit.Transport;

/// <summary>
/// A page as the difference from the copy the destination already holds, in the spirit of QEMU's
/// XBZRLE: runs of unchanged bytes are skipped, runs of changed bytes are carried.
/// </summary>
/// <remarks>
/// <code>
///   delta = run*                        (no run: the page is unchanged)
///   run   = skip:uleb128  count:uleb128  byte[count]
///
///   ┌──────────┬───────────┬──────────────────────┬──────────┬───────────┬─────
///   │ skip     │ count     │ count changed bytes  │ skip     │ count     │ …
///   │ 1-5 B    │ 1-5 B     │                      │ ≥ 1      │ ≥ 1       │
///   └──────────┴───────────┴──────────────────────┴──────────┴───────────┴─────
/// </code>
/// <c>skip</c> unchanged bytes are passed over, then <c>count</c> bytes are replaced. Lengths are
/// ULEB128 in their shortest form; only the first <c>skip</c> may be 0, every <c>count</c> is at
/// least 1, and no run reaches past the page; the trailing unchanged bytes are not written. The
/// encoder folds unchanged gaps of up to <see cref="MaxFoldedGap"/> bytes into the changed run
/// around them, where two more length fields would cost as much as the gap. Nothing in a delta
/// is trusted: <see cref="Decode"/> checks every field before it writes a byte.
/// </remarks>
internal static class PageDelta
{
    /// <summary>Unchanged gaps this short are carried inside a changed run (a separate run costs two length bytes).</summary>
    internal const int MaxFoldedGap = 2;

    /// <summary>The longest ULEB128 field: 5 bytes hold any <see cref="int"/>.</summary>
    private const int MaxLengthBytes = 5;

    private const string Frame = "PageDelta";

    /// <summary>
    /// Writes the delta that turns <paramref name="previous"/> into <paramref name="current"/>.
    /// Allocation-free; the compares are vectorized.
    /// </summary>
    /// <param name="previous">The page as the destination holds it.</param>
    /// <param name="current">The page as it is now; as long as <paramref name="previous"/>.</param>
    /// <param name="destination">Where the delta goes.</param>
    /// <returns>
    /// The delta's length (0 when the pages are equal), or -1 when the delta would not be
    /// smaller than the page itself or does not fit <paramref name="destination"/>; then the
    /// contents of <paramref name="destination"/> are unspecified.
    /// </returns>
    /// <exception cref="ArgumentException">The pages differ in length.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Encode(ReadOnlySpan<byte> previous, ReadOnlySpan<byte> current, Span<byte> destination)
    {
        if (previous.Length != current.Length)
        {
            throw new ArgumentException($"The previous page has {previous.Length} bytes and the current one {current.Length}.", nameof(current));
        }

        int length = current.Length;
        int limit = Math.Min(destination.Length, length - 1);
        int written = 0;
        int position = 0;
        int same = Unchanged(previous, current, 0);
        while (position + same < length)
        {
            int start = position + same;
            int end = start + Changed(previous, current, start);
            same = end < length ? Unchanged(previous, current, end) : 0;
            while (same <= MaxFoldedGap && end < length && end + same < length)
            {
                end += same;
                end += Changed(previous, current, end);
                if (end - start >= limit - written)
                {
                    return -1;
                }

                same = end < length ? Unchanged(previous, current, end) : 0;
            }

            int skip = start - position;
            int count = end - start;
            if (LengthBytes(skip) + LengthBytes(count) + count > limit - written)
            {
                return -1;
            }

            written += WriteLength(destination[written..], skip);
            written += WriteLength(destination[written..], count);
            current.Slice(start, count).CopyTo(destination[written..]);
            written += count;
            position = end;
        }

        return written;
    }

    /// <summary>
    /// Applies a delta to the page it was made against, in place. The delta is checked whole
    /// before the first byte is written, so a rejected delta leaves the page as it was.
    /// </summary>
    /// <param name="delta">The delta as received.</param>
    /// <param name="page">The destination's copy of the page; it becomes the sender's.</param>
    /// <exception cref="MigrationProtocolException">
    /// The delta is malformed: a length field is truncated, overlong or not in its shortest
    /// form, a run is empty, runs touch without a gap, a run reaches past the page, or the
    /// changed bytes are cut short.
    /// </exception>
    public static void Decode(ReadOnlySpan<byte> delta, Span<byte> page)
    {
        Walk(delta, page, apply: false);
        Walk(delta, page, apply: true);
    }

    /// <summary>Reads every run, checking it; with <paramref name="apply"/>, copies its bytes into the page.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Walk(ReadOnlySpan<byte> delta, Span<byte> page, bool apply)
    {
        int read = 0;
        int position = 0;
        while (read < delta.Length)
        {
            int skip = ReadLength(delta, ref read, "skip");
            if (skip == 0 && position > 0)
            {
                throw new MigrationProtocolException(Frame, "skip", $"a run at byte {read} of the delta skips no bytes; only the first run may start where the previous one ended.");
            }

            if (skip > page.Length - position)
            {
                throw new MigrationProtocolException(Frame, "skip", $"skipping {skip} bytes from offset {position} passes the end of a {page.Length}-byte page.");
            }

            position += skip;
            if (read == delta.Length)
            {
                throw new MigrationProtocolException(Frame, "count", $"the delta ends after a skip, without the count of the run at offset {position}.");
            }

            int count = ReadLength(delta, ref read, "count");
            if (count == 0)
            {
                throw new MigrationProtocolException(Frame, "count", $"the run at offset {position} changes no bytes.");
            }

            if (count > page.Length - position)
            {
                throw new MigrationProtocolException(Frame, "count", $"{count} changed bytes from offset {position} pass the end of a {page.Length}-byte page.");
            }

            if (count > delta.Length - read)
            {
                throw new MigrationProtocolException(Frame, "bytes", $"the run at offset {position} declares {count} changed bytes but the delta holds {delta.Length - read} more.");
            }

            if (apply)
            {
                delta.Slice(read, count).CopyTo(page[position..]);
            }

            read += count;
            position += count;
        }
    }

    /// <summary>Reads a ULEB128 length, rejecting a truncated field, one over 5 bytes or beyond <see cref="int"/>, and one not in its shortest form.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int ReadLength(ReadOnlySpan<byte> delta, ref int read, string field)
    {
        int start = read;
        uint value = 0;
        for (int i = 0; i < MaxLengthBytes; i++)
        {
            if (read == delta.Length)
            {
                throw new MigrationProtocolException(Frame, field, $"the length at byte {start} of the delta is cut short.");
            }

            byte b = delta[read++];
            value |= (uint)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 0)
                {
                    throw new MigrationProtocolException(Frame, field, $"the length at byte {start} of the delta is not in its shortest form.");
                }

                // The fifth byte holds bits 28-34: anything over 7 there overflows an int.
                if (i == MaxLengthBytes - 1 && b > 7)
                {
                    break;
                }

                return (int)value;
            }
        }

        throw new MigrationProtocolException(Frame, field, $"the length at byte {start} of the delta does not fit 31 bits.");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static int LengthBytes(int value) => value < 0x80 ? 1 : value < 0x4000 ? 2 : (BitOperations.Log2((uint)value) / 7) + 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static int WriteLength(Span<byte> destination, int value)
    {
        uint v = (uint)value;
        int i = 0;
        while (v >= 0x80)
        {
            destination[i++] = (byte)(v | 0x80);
            v >>= 7;
        }

        destination[i++] = (byte)v;
        return i;
    }

    /// <summary>How many bytes from <paramref name="offset"/> on are the same in both pages (vectorized by the runtime).</summary>
    private static int Unchanged(ReadOnlySpan<byte> previous, ReadOnlySpan<byte> current, int offset) =>
        previous[offset..].CommonPrefixLength(current[offset..]);

    /// <summary>How many bytes from <paramref name="offset"/> on differ, up to the first equal byte or the end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Changed(ReadOnlySpan<byte> previous, ReadOnlySpan<byte> current, int offset)
    {
        int length = current.Length;
        ref byte p = ref MemoryMarshal.GetReference(previous);
        ref byte c = ref MemoryMarshal.GetReference(current);
        int i = offset;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= length - Vector256<byte>.Count; i += Vector256<byte>.Count)
            {
                uint equal = Vector256.Equals(Vector256.LoadUnsafe(ref p, (nuint)i), Vector256.LoadUnsafe(ref c, (nuint)i)).ExtractMostSignificantBits();
                if (equal != 0)
                {
                    return i + BitOperations.TrailingZeroCount(equal) - offset;
                }
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= length - Vector128<byte>.Count; i += Vector128<byte>.Count)
            {
                uint equal = Vector128.Equals(Vector128.LoadUnsafe(ref p, (nuint)i), Vector128.LoadUnsafe(ref c, (nuint)i)).ExtractMostSignificantBits();
                if (equal != 0)
                {
                    return i + BitOperations.TrailingZeroCount(equal) - offset;
                }
            }
        }

        while (i < length && Unsafe.Add(ref p, i) != Unsafe.Add(ref c, i))
        {
            i++;
        }

        return i - offset;
    }
}
