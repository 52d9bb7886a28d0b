using System;
using System.Collections.Generic;
using System.Threading;
using MigrateKit.Memory;

namespace MigrateKit.Migration;

/// <summary>
/// After round 0, backs and writes the short runs of zero pages between the pages that held data,
/// on a thread of its own, while the later rounds run. A zero page among data pages lies in memory
/// the guest uses (a random writer's untouched page, a freed buffer); the guest's first write there
/// reaches the destination in a later round or in the switchover, and the destination's first
/// write to the page then pays for mapping it, inside the downtime in the switchover's case: about
/// 6.5 µs a page on the reference machine, a page that was only populated included, against 0.5
/// µs once written (docs/BENCHMARKS.md, "The destination writes short zero runs ahead"). Long
/// zero runs (memory the guest has not used) are left alone, and nothing is backed past as many
/// pages as round 0 held, so the destination's memory grows by at most that much.
/// </summary>
internal sealed class PopulateHoles : IDisposable
{
    /// <summary>The longest zero run backed: 64 KiB.</summary>
    internal const ulong MaxHolePages = 16;

    /// <summary>Pages per populate call at most: a stop waits for one call.</summary>
    internal const ulong SpanPages = 512;

    private readonly GuestMemoryRegion?[] _regions;
    private readonly DirtyBitmap?[] _held;
    private readonly ulong _maxHole;
    private readonly Thread? _thread;
    private ulong _budget;
    private bool _canPopulate = true;
    private long _populated;
    private volatile bool _stop;

    /// <param name="regions">The destination's regions; null where the region held memory before the session (it is left alone).</param>
    /// <param name="held">Per region, the pages that hold data at the end of round 0: a copy the caller no longer changes.</param>
    /// <param name="maxHolePages">The longest zero run backed.</param>
    internal PopulateHoles(IReadOnlyList<GuestMemoryRegion?> regions, IReadOnlyList<DirtyBitmap> held, ulong maxHolePages = MaxHolePages)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(held.Count, regions.Count);
        ArgumentOutOfRangeException.ThrowIfZero(maxHolePages);
        _regions = [.. regions];
        _held = new DirtyBitmap?[_regions.Length];
        _maxHole = maxHolePages;
        for (int i = 0; i < _regions.Length; i++)
        {
            if (_regions[i] is not null)
            {
                _held[i] = held[i];
                _budget += held[i].Count();
            }
        }

        if (_budget > 0)
        {
            _thread = new Thread(Run) { IsBackground = true, Name = "populate holes" };
            _thread.Start();
        }
    }

    /// <summary>Zero pages backed so far.</summary>
    internal ulong PagesPopulated => (ulong)Interlocked.Read(ref _populated);

    /// <summary>Whether the thread has finished (or never started).</summary>
    internal bool Finished => _thread is null || !_thread.IsAlive;

    /// <summary>Asks the thread to stop after its current call, without waiting: the switchover must not wait for it.</summary>
    internal void Stop() => _stop = true;

    /// <summary>Stops the thread and waits for it: after this, nothing touches the memory.</summary>
    public void Dispose()
    {
        _stop = true;
        _thread?.Join();
    }

    private void Run()
    {
        // Only on a CPU nothing else wants: never in the way of the receiving thread, least of
        // all during a switchover that starts before this ends (it stops only at Complete).
        _ = Interop.NativeMethods.ThreadIdle();
        for (int i = 0; i < _regions.Length && !_stop; i++)
        {
            if (_regions[i] is { } region && _held[i] is { } held && !PopulateRegion(region, held))
            {
                return;
            }
        }
    }

    /// <summary>
    /// Backs the region's short holes, several per span where the data between them is short (a
    /// page that holds data already costs a page-table walk and a write back of its first word),
    /// each span from a hole's start to a hole's end and at most <see cref="SpanPages"/> long.
    /// Returns false when the memory was released.
    /// </summary>
    private bool PopulateRegion(GuestMemoryRegion region, DirtyBitmap held)
    {
        ulong previousEnd = 0;
        ulong spanStart = 0;
        ulong spanEnd = 0;
        ulong spanHoles = 0;
        foreach (PageRun run in held.EnumerateRuns())
        {
            if (_stop)
            {
                return true;
            }

            ulong gap = run.FirstPage - previousEnd;
            bool hole = previousEnd > 0 && gap <= _maxHole;
            if (spanHoles > 0 && (!hole || run.FirstPage - spanStart > SpanPages))
            {
                if (!Flush(region, spanStart, spanEnd, spanHoles))
                {
                    return false;
                }

                spanHoles = 0;
            }

            if (hole)
            {
                spanStart = spanHoles == 0 ? previousEnd : spanStart;
                spanEnd = run.FirstPage;
                spanHoles += gap;
            }

            previousEnd = run.End;
        }

        return spanHoles == 0 || Flush(region, spanStart, spanEnd, spanHoles);
    }

    private bool Flush(GuestMemoryRegion region, ulong start, ulong end, ulong holes)
    {
        if (holes == 0 || _stop)
        {
            return true;
        }

        if (holes > _budget)
        {
            _stop = true;
            return true;
        }

        try
        {
            // Backed in one call where the kernel can (5.14+), then written, so the guest's
            // first write lands on a page that is mapped all the way (see GuestMemoryRegion.Touch).
            _canPopulate = _canPopulate && region.TryPopulate(start, end - start);
            region.Touch(start, end - start);
        }
        catch (ObjectDisposedException)
        {
            return false;
        }

        _budget -= holes;
        Interlocked.Add(ref _populated, (long)holes);
        return true;
    }
}
