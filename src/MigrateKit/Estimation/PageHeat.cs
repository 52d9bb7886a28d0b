using System;
using System.Numerics;
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

            ulong hotWord = 0;
            for (int i = 0; i < n; i++)
            {
                byte next = (byte)(((h[i] << 1) | (int)((d >> i) & 1)) & _mask);
                h[i] = next;
                if (_hotByHistory[next])
                {
                    hotWord |= 1UL << i;
                }
            }

            hot[w] = hotWord;
            hotCount += (ulong)BitOperations.PopCount(hotWord);
        }

        HotCount = hotCount;
        Rounds++;
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
