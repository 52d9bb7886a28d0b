using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MigrateKit.Memory;

namespace MigrateKit.Estimation;

/// <summary>
/// Per-page dirtying history over the last <see cref="Window"/> rounds (one bit per round in a
/// byte per page). A page is hot when it was dirtied in at least <see cref="Threshold"/> of
/// them: re-sending it each round is wasted work, since it will be dirty again before the end.
/// <see cref="HotSet"/> is kept up to date by <see cref="Update"/>.
/// </summary>
public sealed class PageHeat
{
    /// <summary>For each byte value, a ulong whose byte j is bit j of the value.</summary>
    private static readonly ulong[] SpreadBits = BuildSpreadBits();

    private readonly byte[] _history;
    private readonly byte _mask;
    private readonly bool[] _hotByHistory = new bool[256];

    /// <summary>Creates an all-cold history.</summary>
    /// <param name="pageCount">Pages of the region.</param>
    /// <param name="window">Rounds remembered, 1 to 8 (n).</param>
    /// <param name="threshold">Rounds out of the window that make a page hot, 1 to <paramref name="window"/> (k).</param>
    public PageHeat(ulong pageCount, int window = 4, int threshold = 2)
    {
        if (window is < 1 or > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(window), window, "The heat window is 1 to 8 rounds.");
        }

        if (threshold < 1 || threshold > window)
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, $"The hot threshold must be 1 to the window ({window}).");
        }

        if (pageCount > (ulong)Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, "Too many pages for one heat map.");
        }

        Window = window;
        Threshold = threshold;
        _mask = (byte)((1 << window) - 1);
        _history = new byte[pageCount];
        HotSet = new DirtyBitmap(pageCount);
        for (int h = 0; h < 256; h++)
        {
            _hotByHistory[h] = BitOperations.PopCount((uint)h) >= threshold;
        }
    }

    /// <summary>Rounds remembered (n).</summary>
    public int Window { get; }

    /// <summary>Dirty rounds out of <see cref="Window"/> that make a page hot (k).</summary>
    public int Threshold { get; }

    /// <summary>The pages that are hot now.</summary>
    public DirtyBitmap HotSet { get; }

    /// <summary>How many pages are hot now.</summary>
    public ulong HotCount { get; private set; }

    /// <summary>How many rounds have been recorded.</summary>
    public int Rounds { get; private set; }

    /// <summary>The history of a page: bit 0 is the latest round.</summary>
    public byte History(ulong page) => _history[(int)page];

    /// <summary>Whether a page is hot.</summary>
    public bool IsHot(ulong page) => HotSet.Test(page);

    /// <summary>Records one round: the pages dirtied in it (the round's harvest).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Update(DirtyBitmap dirtied)
    {
        ArgumentNullException.ThrowIfNull(dirtied);
        if (dirtied.PageCount != (ulong)_history.Length)
        {
            throw new ArgumentException($"The bitmap covers {dirtied.PageCount} pages; the heat map {_history.Length}.", nameof(dirtied));
        }

        ReadOnlySpan<ulong> dirty = dirtied.Words;
        Span<ulong> hot = HotSet.Words;
        Span<byte> history = _history;
        ulong hotCount = 0;
        for (int w = 0; w < dirty.Length; w++)
        {
            int first = w * 64;
            int n = Math.Min(64, history.Length - first);
            Span<byte> h = history.Slice(first, n);
            ulong d = dirty[w];

            // Most of memory is cold and clean: skip a word whose 64 pages have no history and no dirt.
            if (d == 0 && hot[w] == 0 && h.IndexOfAnyExcept((byte)0) < 0)
            {
                continue;
            }

            ulong hotWord = n == 64 && BitConverter.IsLittleEndian ? UpdateWord(h, d) : UpdatePages(h, d);
            hot[w] = hotWord;
            hotCount += (ulong)BitOperations.PopCount(hotWord);
        }

        HotCount = hotCount;
        Rounds++;
    }

    /// <summary>
    /// One word's 64 pages, eight at a time with each page's history a byte of a ulong: shift in
    /// the dirty bits, keep the window, and set a page hot where its byte's population count
    /// reaches the threshold. Returns the hot bits; the same as the per-page loop, two to three
    /// times faster (the heat's pass runs after every pre-copy harvest).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ulong UpdateWord(Span<byte> history, ulong dirty)
    {
        const ulong Ones = 0x0101010101010101;
        ulong mask = _mask * Ones;
        ulong bias = (ulong)(0x80 - Threshold) * Ones;
        Span<ulong> groups = MemoryMarshal.Cast<byte, ulong>(history);
        ulong hotWord = 0;
        for (int g = 0; g < 8; g++)
        {
            ulong next = (((groups[g] << 1) & ~Ones) | SpreadBits[(byte)(dirty >> (8 * g))]) & mask;
            groups[g] = next;

            // Population count of each byte (at most 8), then its top bit set where count >= threshold.
            ulong c = next - ((next >> 1) & 0x5555555555555555);
            c = (c & 0x3333333333333333) + ((c >> 2) & 0x3333333333333333);
            c = (c + (c >> 4)) & 0x0F0F0F0F0F0F0F0F;
            ulong reached = ((c + bias) >> 7) & Ones;

            // Gathers bit 0 of each byte into one byte (byte j to bit j).
            hotWord |= ((reached * 0x0102040810204080) >> 56) << (8 * g);
        }

        return hotWord;
    }

    /// <summary>Up to 64 pages one by one; returns their hot bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ulong UpdatePages(Span<byte> history, ulong dirty)
    {
        ulong hotWord = 0;
        for (int i = 0; i < history.Length; i++)
        {
            byte next = (byte)(((history[i] << 1) | (int)((dirty >> i) & 1)) & _mask);
            history[i] = next;
            if (_hotByHistory[next])
            {
                hotWord |= 1UL << i;
            }
        }

        return hotWord;
    }

    private static ulong[] BuildSpreadBits()
    {
        var table = new ulong[256];
        for (int v = 0; v < 256; v++)
        {
            for (int j = 0; j < 8; j++)
            {
                table[v] |= (ulong)((v >> j) & 1) << (8 * j);
            }
        }

        return table;
    }

    /// <summary>Forgets all history.</summary>
    public void Reset()
    {
        MemoryMarshal.AsBytes(_history.AsSpan()).Clear();
        HotSet.ClearAll();
        HotCount = 0;
        Rounds = 0;
    }
}
