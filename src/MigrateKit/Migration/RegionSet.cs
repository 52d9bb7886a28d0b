using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using MigrateKit.Memory;
using MigrateKit.Tracking;

namespace MigrateKit.Migration;

/// <summary>
/// The engine's bookkeeping of guest memory, region by region: which pages the destination lacks
/// (pending), which hot ones are held back (deferred) and which are in flight (the plan of the
/// round being sent). A dirty bit taken from the tracker is always either confirmed delivered or
/// pending again: that is what lets a failed migration leave the source with nothing lost.
/// </summary>
internal sealed class RegionSet
{
    private readonly EngineRegion[] _regions;
    private readonly DirtyBitmap[] _harvested;
    private readonly DirtyBitmap[] _deferrable;
    private readonly DirtyBitmap[] _deferred;

    internal RegionSet(IReadOnlyList<GuestMemoryRegion> memory, MigrationOptions options)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(options);
        _regions = memory.Select((r, i) => new EngineRegion(i, r, options)).ToArray();
        _harvested = _regions.Select(r => r.Harvested).ToArray();
        _deferrable = _regions.Select(r => r.Deferrable).ToArray();
        _deferred = _regions.Select(r => r.Deferred).ToArray();
    }

    internal IReadOnlyList<EngineRegion> Regions => _regions;

    /// <summary>Each region's pending set (live, not a copy).</summary>
    internal IReadOnlyList<DirtyBitmap> Pending => _regions.Select(r => r.Pending).ToArray();

    internal ulong PendingPages => Sum(r => r.Pending.Count());

    /// <summary>Pending pages that are held back for the switchover.</summary>
    internal ulong PendingDeferredPages => Sum(r => r.PendingDeferred());

    internal ulong DeferredPages => Sum(r => r.Deferred.Count());

    internal ulong HotPages => Sum(r => r.Heat.HotCount);

    /// <summary>Pending pages whose last send was a small delta.</summary>
    internal ulong PendingCheapPages => Sum(r => r.PendingCheap());

    /// <summary>Pages of the latest harvest whose last send was a small delta.</summary>
    internal ulong CheapHarvestedPages => Sum(r => r.CheapHarvested());

    /// <summary>Starts a migration: every page pending, none deferred, no heat.</summary>
    internal void Restart()
    {
        foreach (EngineRegion r in _regions)
        {
            r.Pending.SetAll();
            r.Deferred.ClearAll();
            r.Cheap.ClearAll();
            r.Heat.Reset();
        }
    }

    /// <summary>Marks every page pending (when it is unknown which dirty bits were lost).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void MarkAllPending()
    {
        foreach (EngineRegion r in _regions)
        {
            r.Pending.SetAll();
        }
    }

    /// <summary>
    /// Whether the round being sent may treat pages the host never populated as zero without
    /// reading them; when turned on, takes a fresh look at which pages are populated.
    /// </summary>
    internal void UsePopulatedPages(bool use)
    {
        foreach (EngineRegion r in _regions)
        {
            r.UsePopulated = use;
            if (use)
            {
                r.Populated.ClearAll();
                r.Memory.MarkPopulatedPages(r.Populated);
            }
        }
    }

    /// <summary>Plans a pre-copy round: every pending page that is not deferred goes in flight; deferred pages stay pending.</summary>
    internal void PlanRound()
    {
        foreach (EngineRegion r in _regions)
        {
            r.Plan.CopyFrom(r.Pending);
            r.Plan.AndNot(r.Deferred);
            r.Pending.And(r.Deferred);
        }
    }

    /// <summary>Plans the switchover: every pending page goes in flight, the deferred ones included.</summary>
    internal void PlanSwitchover()
    {
        foreach (EngineRegion r in _regions)
        {
            r.Plan.CopyFrom(r.Pending);
            r.Pending.ClearAll();
        }
    }

    /// <summary>The destination confirmed the pages in flight: they are delivered.</summary>
    internal void ConfirmDelivered()
    {
        foreach (EngineRegion r in _regions)
        {
            r.Plan.ClearAll();
        }
    }

    /// <summary>Nothing in flight is known delivered: every such page is pending again.</summary>
    internal void ReturnUndelivered()
    {
        foreach (EngineRegion r in _regions)
        {
            r.Pending.Or(r.Plan);
            r.Plan.ClearAll();
        }
    }

    /// <summary>Releases the hot pages held back (the switchover sends them).</summary>
    internal void ClearDeferred()
    {
        foreach (EngineRegion r in _regions)
        {
            r.Deferred.ClearAll();
        }
    }

    /// <summary>The 2 MiB chunks that held a page of the latest harvest (see <see cref="DirtyBitmap.CountChunks"/>).</summary>
    internal ulong HarvestedChunks { get; private set; }

    /// <summary>
    /// Harvests the tracker into the pending sets and, unless <paramref name="final"/>, updates the
    /// heat. Returns the harvest and how many harvested pages are not deferred (the warm ones).
    /// </summary>
    /// <param name="tracker">The tracker to harvest.</param>
    /// <param name="final">The switchover's harvest, guest paused: every pending page goes, so
    /// which are hot no longer matters, and the heat's pass over every page would only lengthen
    /// the downtime (about 1 ms per GiB in a migration here). It is the tracker's
    /// <see cref="IDirtyPageTracker.HarvestFinal"/>, which need not re-arm what it reports.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal (HarvestResult Result, ulong WarmPages) Harvest(IDirtyPageTracker tracker, bool final = false)
    {
        ArgumentNullException.ThrowIfNull(tracker);
        foreach (EngineRegion r in _regions)
        {
            r.Harvested.ClearAll();
        }

        HarvestResult result;
        try
        {
            result = final ? tracker.HarvestFinal(_harvested) : tracker.Harvest(_harvested);
        }
        catch
        {
            // Some regions may already be re-protected with their bits taken: without knowing
            // which, everything must count as dirty again.
            MarkAllPending();
            throw;
        }

        ulong warm = 0;
        ulong chunks = 0;
        foreach (EngineRegion r in _regions)
        {
            r.Pending.Or(r.Harvested);
            chunks += r.Harvested.CountChunks();
            if (!final)
            {
                r.Heat.Update(r.Harvested);
            }

            warm += r.WarmHarvested();
        }

        HarvestedChunks = chunks;
        return (result, warm);
    }

    /// <summary>Defers the hot pages, at most <paramref name="budgetPages"/>; returns whether more pages are deferred than before.</summary>
    internal bool DeferHotPages(ulong budgetPages)
    {
        ulong before = DeferredPages;
        foreach (EngineRegion r in _regions)
        {
            r.UpdateDeferrable();
        }

        ulong after = HotPageDeferral.Select(_deferrable, budgetPages, _deferred);
        return after > before;
    }

    private ulong Sum(Func<EngineRegion, ulong> count)
    {
        ulong sum = 0;
        foreach (EngineRegion r in _regions)
        {
            sum += count(r);
        }

        return sum;
    }
}
