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
internal sealed class PopulateHoles : BackgroundPopulate
{
    /// <summary>The longest zero run backed: 64 KiB.</summary>
    internal const ulong MaxHolePages = 16;

    /// <summary>Pages per populate call at most: a stop waits for one call.</summary>
    internal const ulong SpanPages = 512;

    private readonly DirtyBitmap?[] _held;
    private readonly ulong _maxHole;
    private ulong _budget;
    private bool _canPopulate = true;
    private long _populated;

    /// <param name="regions">The destination's regions; null where the region held memory before the session (it is left alone).</param>
    /// <param name="held">Per region, the pages that hold data at the end of round 0: a copy the caller no longer changes.</param>
    /// <param name="maxHolePages">The longest zero run backed.</param>
    internal PopulateHoles(IReadOnlyList<GuestMemoryRegion?> regions, IReadOnlyList<DirtyBitmap> held, ulong maxHolePages = MaxHolePages)
        // Idle: never in the way of the receiving thread, least of all during a switchover that
        // starts before this ends (it stops only at Complete).
        : base(regions, idle: true)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(held.Count, regions.Count);
        ArgumentOutOfRangeException.ThrowIfZero(maxHolePages);
        _held = new DirtyBitmap?[Regions.Length];
        _maxHole = maxHolePages;
        for (int i = 0; i < Regions.Length; i++)
        {
            if (Regions[i] is not null)
            {
                _held[i] = held[i];
                _budget += held[i].Count();
            }
        }

        if (_budget > 0)
        {
            Start("populate holes");
        }
    }

    /// <summary>Zero pages backed so far.</summary>
    internal ulong PagesPopulated => (ulong)Interlocked.Read(ref _populated);

    /// <summary>
    /// Backs the region's short holes, several per span where the data between them is short (a
    /// page that holds data already costs a page-table walk and a write back of its first word),
    /// each span from a hole's start to a hole's end and at most <see cref="SpanPages"/> long.
    /// A span past the budget stops the thread.
    /// </summary>
    private protected override bool Walk(int index, GuestMemoryRegion region)
    {
        DirtyBitmap held = _held[index]!;
        ulong previousEnd = 0;
        ulong spanStart = 0;
        ulong spanEnd = 0;
        ulong spanHoles = 0;
        foreach (PageRun run in held.EnumerateRuns())
        {
            if (Stopping)
            {
                return true;
            }

            ulong gap = run.FirstPage - previousEnd;
            bool hole = previousEnd > 0 && gap <= _maxHole;
            if (spanHoles > 0 && (!hole || run.FirstPage - spanStart > SpanPages))
            {
                Flush(region, spanStart, spanEnd, spanHoles);
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

        Flush(region, spanStart, spanEnd, spanHoles);
        return true;
    }

    private void Flush(GuestMemoryRegion region, ulong start, ulong end, ulong holes)
    {
        if (holes == 0 || Stopping)
        {
            return;
        }

        if (holes > _budget)
        {
            Stop();
            return;
        }

        // Backed in one call where the kernel can (5.14+), then written, so the guest's first
        // write lands on a page that is mapped all the way (see GuestMemoryRegion.Touch).
        _canPopulate = _canPopulate && region.TryPopulate(start, end - start);
        region.Touch(start, end - start);
        _budget -= holes;
        Interlocked.Add(ref _populated, (long)holes);
    }
}
