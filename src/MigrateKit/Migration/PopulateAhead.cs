using System;
using System.Collections.Generic;
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
internal sealed class PopulateAhead : IDisposable
{
    /// <summary>How far past the last data page memory is backed: 64 MiB.</summary>
    internal const ulong WindowPages = 16384;

    /// <summary>Pages backed per call: 4 MiB.</summary>
    internal const ulong ChunkPages = 1024;

    private readonly GuestMemoryRegion?[] _regions;
    private readonly ulong _window;
    private readonly ulong _chunk;
    private readonly ulong[] _data;
    private readonly ulong[] _populated;
    private readonly Thread? _thread;
    private volatile bool _stop;

    /// <param name="regions">The destination's regions; null where the region already held data (it is left alone).</param>
    /// <param name="windowPages">How far past the data to back memory.</param>
    /// <param name="chunkPages">Pages per populate call, at most <paramref name="windowPages"/>.</param>
    internal PopulateAhead(IReadOnlyList<GuestMemoryRegion?> regions, ulong windowPages = WindowPages, ulong chunkPages = ChunkPages)
    {
        ArgumentOutOfRangeException.ThrowIfZero(chunkPages);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(chunkPages, windowPages);
        _regions = [.. regions];
        _window = windowPages;
        _chunk = chunkPages;
        _data = new ulong[_regions.Length];
        _populated = new ulong[_regions.Length];
        if (Array.Exists(_regions, r => r is not null))
        {
            _thread = new Thread(Run) { IsBackground = true, Name = "populate ahead" };
            _thread.Start();
        }
    }

    /// <summary>Whether pages up to <paramref name="end"/> of a region are backed already.</summary>
    internal bool Covers(int region, ulong end) => Volatile.Read(ref _populated[region]) >= end;

    /// <summary>Data arrived up to <paramref name="end"/> (exclusive) in a region: the window moves on.</summary>
    internal void Advance(int region, ulong end)
    {
        if (end > Volatile.Read(ref _data[region]))
        {
            Volatile.Write(ref _data[region], end);
        }
    }

    /// <summary>Stops the thread and waits for it: after this, nothing touches the memory.</summary>
    public void Dispose()
    {
        _stop = true;
        _thread?.Join();
    }

    private void Run()
    {
        for (int i = 0; i < _regions.Length && !_stop; i++)
        {
            if (_regions[i] is { } region && !PopulateRegion(i, region))
            {
                return;
            }
        }
    }

    /// <summary>Returns false when the memory cannot be populated (an old kernel, or released).</summary>
    private bool PopulateRegion(int index, GuestMemoryRegion region)
    {
        ulong next = 0;
        while (next < region.PageCount && !_stop)
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
            try
            {
                if (!region.TryPopulate(next, count))
                {
                    return false;
                }
            }
            catch (ObjectDisposedException)
            {
                return false;
            }

            next += count;
            Volatile.Write(ref _populated[index], next);
        }

        return true;
    }
}
