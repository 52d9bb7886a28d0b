using System;
using System.Collections.Generic;
using MigrateKit.Memory;

namespace MigrateKit.Migration;

/// <summary>Which hot pages are held back for the switchover instead of being re-sent every round.</summary>
internal static class HotPageDeferral
{
    /// <summary>
    /// Writes into <paramref name="deferred"/> the hot pages of each region, at most
    /// <paramref name="budgetPages"/> in all: the lowest pages first, regions in order, so the set
    /// stays the same from round to round while the heat does. Returns how many pages are deferred.
    /// </summary>
    /// <param name="hotSets">Each region's hot pages.</param>
    /// <param name="budgetPages">How many pages the downtime budget can take on top of the rest.</param>
    /// <param name="deferred">Each region's deferred set, overwritten.</param>
    internal static ulong Select(IReadOnlyList<DirtyBitmap> hotSets, ulong budgetPages, IReadOnlyList<DirtyBitmap> deferred)
    {
        ArgumentNullException.ThrowIfNull(hotSets);
        ArgumentNullException.ThrowIfNull(deferred);
        if (hotSets.Count != deferred.Count)
        {
            throw new ArgumentException($"{hotSets.Count} hot sets for {deferred.Count} deferred sets.", nameof(deferred));
        }

        ulong total = 0;
        for (int i = 0; i < hotSets.Count; i++)
        {
            DirtyBitmap hotSet = hotSets[i];
            DirtyBitmap into = deferred[i];
            into.CopyFrom(hotSet);
            ulong hot = hotSet.Count();
            if (hot > budgetPages)
            {
                hot = KeepFirst(hotSet, budgetPages, into);
            }

            budgetPages -= hot;
            total += hot;
        }

        return total;
    }

    // Clears every page of `into` after the first `pages` hot ones.
    private static ulong KeepFirst(DirtyBitmap hotSet, ulong pages, DirtyBitmap into)
    {
        ulong kept = 0;
        foreach (PageRun run in hotSet.EnumerateRuns())
        {
            if (kept + run.Count <= pages)
            {
                kept += run.Count;
                continue;
            }

            into.ClearRange(run.FirstPage + (pages - kept), into.PageCount);
            return pages;
        }

        return kept;
    }
}
