using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using MigrateKit.Memory;

namespace MigrateKit.Migration;

/// <summary>
/// Backs a destination's fresh memory on a thread of its own, a window ahead of the data: round 0
/// arrives in page order, so the pages after the last data page are the next to be written, and
/// the receiving thread finds them populated instead of paying for it between two frames
/// (docs/BENCHMARKS.md, "Page stream at wire speed"). It stays at most <see cref="WindowPages"/>
/// past the data, so a guest that is mostly zero is not populated where nothing will land.
/// </summary>
internal sealed class PopulateAhead : BackgroundPopulate
{
    /// <summary>How far past the last data page memory is backed: 64 MiB.</summary>
    internal const ulong WindowPages = 16384;

    /// <summary>Pages backed per call: 4 MiB.</summary>
    internal const ulong ChunkPages = 1024;

    private readonly ulong _window;
    private readonly ulong _chunk;
    private readonly ulong[] _data;
    private readonly ulong[] _populated;

    /// <param name="regions">The destination's regions; null where the region already held data (it is left alone).</param>
    /// <param name="windowPages">How far past the data to back memory.</param>
    /// <param name="chunkPages">Pages per populate call, at most <paramref name="windowPages"/>.</param>
    /// <remarks>The thread starts at <see cref="Begin"/>.</remarks>
    internal PopulateAhead(IReadOnlyList<GuestMemoryRegion?> regions, ulong windowPages = WindowPages, ulong chunkPages = ChunkPages)
        : base(regions, idle: false)
    {
        ArgumentOutOfRangeException.ThrowIfZero(chunkPages);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(chunkPages, windowPages);
        _window = windowPages;
        _chunk = chunkPages;
        _data = new ulong[Regions.Length];
        _populated = new ulong[Regions.Length];
    }

    /// <summary>Starts the thread, once, if a region needs it and it was not disposed first.</summary>
    internal void Begin()
    {
        if (Array.Exists(Regions, r => r is not null))
        {
            Start("populate ahead");
        }
    }

    /// <summary>Whether pages up to <paramref name="end"/> of a region are backed already.</summary>
    internal bool Covers(int region, ulong end) => Volatile.Read(ref _populated[region]) >= end;

    /// <summary>Data arrived up to <paramref name="end"/> (exclusive) in a region: the window moves on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    internal void Advance(int region, ulong end)
    {
        if (end > Volatile.Read(ref _data[region]))
        {
            Volatile.Write(ref _data[region], end);
        }
    }

    /// <summary>Returns false when the memory cannot be populated (a kernel before 5.14).</summary>
    private protected override bool Walk(int index, GuestMemoryRegion region)
    {
        ulong next = 0;
        while (next < region.PageCount && !Stopping)
        {
            // Pages the receiver wrote already need nothing from here.
            next = Math.Max(next, Volatile.Read(ref _data[index]));
            if (next >= region.PageCount)
            {
                break;
            }

            if (next + _chunk > Volatile.Read(ref _data[index]) + _window)
            {
                Thread.Sleep(1);
                continue;
            }

            ulong count = Math.Min(_chunk, region.PageCount - next);
            if (!region.TryPopulate(next, count))
            {
                return false;
            }

            next += count;
            Volatile.Write(ref _populated[index], next);
        }

        return true;
    }
}
