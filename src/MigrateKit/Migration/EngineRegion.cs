using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>One guest memory region as the engine sees it: which pages the destination lacks, which are held back, which are in flight.</summary>
internal sealed class EngineRegion
{
    internal EngineRegion(int index, GuestMemoryRegion memory, MigrationOptions options)
    {
        Index = index;
        Memory = memory;
        Pending = new DirtyBitmap(memory.PageCount);
        Deferred = new DirtyBitmap(memory.PageCount);
        Harvested = new DirtyBitmap(memory.PageCount);
        Plan = new DirtyBitmap(memory.PageCount);
        Populated = new DirtyBitmap(memory.PageCount);
        Cheap = new DirtyBitmap(memory.PageCount);
        Deferrable = new DirtyBitmap(memory.PageCount);
        Heat = new PageHeat(memory.PageCount, options.HotPageWindow, options.HotPageThreshold);
        Digest = new RegionDigestAccumulator(memory.PageCount);
    }

    internal int Index { get; }

    internal GuestMemoryRegion Memory { get; }

    /// <summary>Dirty or never sent: what the destination lacks.</summary>
    internal DirtyBitmap Pending { get; }

    /// <summary>Hot pages held back for the switchover.</summary>
    internal DirtyBitmap Deferred { get; }

    /// <summary>The latest harvest.</summary>
    internal DirtyBitmap Harvested { get; }

    /// <summary>What the current round sends, until the destination confirms it.</summary>
    internal DirtyBitmap Plan { get; }

    /// <summary>Pages the host had populated when round 0 began; the rest are zero without a look.</summary>
    internal DirtyBitmap Populated { get; }

    /// <summary>Whether <see cref="Populated"/> applies to the round being sent.</summary>
    internal bool UsePopulated { get; set; }

    internal PageHeat Heat { get; }

    /// <summary>Pages whose last send was a small delta: re-sending them costs a few dozen bytes, so they are never held back.</summary>
    internal DirtyBitmap Cheap { get; }

    /// <summary>Hot pages that are not cheap: the ones worth holding back.</summary>
    internal DirtyBitmap Deferrable { get; }

    /// <summary>Digest of what was sent, page by page.</summary>
    internal RegionDigestAccumulator Digest { get; }

    /// <summary>Pages of the latest harvest that are not deferred: the warm part of the dirty set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal ulong WarmHarvested() => CountAndNot(Harvested.Words, Deferred.Words);

    /// <summary>Pending pages that are deferred.</summary>
    internal ulong PendingDeferred() => CountAnd(Pending.Words, Deferred.Words);

    /// <summary>Pending pages that are cheap.</summary>
    internal ulong PendingCheap() => CountAnd(Pending.Words, Cheap.Words);

    /// <summary>Pages of the latest harvest that are cheap.</summary>
    internal ulong CheapHarvested() => CountAnd(Harvested.Words, Cheap.Words);

    /// <summary>Keeps <see cref="Deferrable"/> equal to the hot pages that are not cheap.</summary>
    internal void UpdateDeferrable()
    {
        Deferrable.CopyFrom(Heat.HotSet);
        Deferrable.AndNot(Cheap);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong CountAnd(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> b)
    {
        ulong count = 0;
        for (int i = 0; i < a.Length; i++)
        {
            count += (ulong)BitOperations.PopCount(a[i] & b[i]);
        }

        return count;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong CountAndNot(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> b)
    {
        ulong count = 0;
        for (int i = 0; i < a.Length; i++)
        {
            count += (ulong)BitOperations.PopCount(a[i] & ~b[i]);
        }

        return count;
    }
}
