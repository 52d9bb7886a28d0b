using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tracking;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class RegionSetTests
{
    private const ulong Page = GuestMemoryLayout.PageSize;

    private static GuestMemoryLayout Memory() =>
        new([new GuestMemoryRegionSpec(0, 64 * Page), new GuestMemoryRegionSpec(0x1000_0000, 16 * Page)]);

    private static (int Region, ulong Page)[] Pages(IReadOnlyList<DirtyBitmap> bitmaps)
    {
        var pages = new List<(int, ulong)>();
        for (int r = 0; r < bitmaps.Count; r++)
        {
            foreach (ulong p in bitmaps[r].EnumerateSetPages())
            {
                pages.Add((r, p));
            }
        }

        return pages.ToArray();
    }

    private static (int, ulong)[] Plan(RegionSet set) => Pages(set.Regions.Select(r => r.Plan).ToArray());

    private static (int, ulong)[] Deferred(RegionSet set) => Pages(set.Regions.Select(r => r.Deferred).ToArray());

    /// <summary>A set with exactly the given pages pending and deferred.</summary>
    private static RegionSet With(GuestMemoryLayout memory, (int, ulong)[] pending, (int, ulong)[] deferred)
    {
        var set = new RegionSet(memory.Regions, new MigrationOptions());
        foreach ((int r, ulong p) in pending)
        {
            set.Regions[r].Pending.Set(p);
        }

        foreach ((int r, ulong p) in deferred)
        {
            set.Regions[r].Deferred.Set(p);
        }

        return set;
    }

    [TestMethod]
    public void Restart_MakesEveryPagePending_AndForgetsDeferredPagesAndHeat()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [], [(0, 5)]);
        var harvest = new ScriptedTracker(memory, _ => [new PageWrite(0, 5, 1), new PageWrite(1, 2, 1)], () => false, _ => { });
        set.Harvest(harvest);
        set.Harvest(harvest);
        Assert.AreEqual(2UL, set.HotPages);

        set.Restart();

        Assert.AreEqual(80UL, set.PendingPages);
        Assert.AreEqual(0UL, set.DeferredPages);
        Assert.AreEqual(0UL, set.HotPages);
    }

    [TestMethod]
    public void PlanRound_SendsThePendingPagesThatAreNotDeferred_AndKeepsTheDeferredOnesPending()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [(0, 1), (0, 5), (1, 3), (1, 4)], [(0, 5), (1, 3), (1, 9)]);

        set.PlanRound();

        Assert.AreSequenceEqual(new[] { (0, 1UL), (1, 4UL) }, Plan(set));
        Assert.AreSequenceEqual(new[] { (0, 5UL), (1, 3UL) }, Pages(set.Pending));
        Assert.AreEqual(2UL, set.PendingDeferredPages);
    }

    [TestMethod]
    public void PlanSwitchover_SendsEveryPendingPage_TheDeferredOnesIncluded()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [(0, 1), (0, 5), (1, 3)], [(0, 5)]);

        set.PlanSwitchover();

        Assert.AreSequenceEqual(new[] { (0, 1UL), (0, 5UL), (1, 3UL) }, Plan(set));
        Assert.AreEqual(0UL, set.PendingPages);
    }

    [TestMethod]
    public void ReturnUndelivered_MakesEveryPageInFlightPendingAgain()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [(0, 1), (0, 5), (1, 3)], [(0, 5)]);
        set.PlanRound();
        set.Regions[0].Pending.Set(7); // dirtied meanwhile

        set.ReturnUndelivered();

        Assert.AreSequenceEqual(new[] { (0, 1UL), (0, 5UL), (0, 7UL), (1, 3UL) }, Pages(set.Pending));
        Assert.IsEmpty(Plan(set));
        set.ReturnUndelivered();
        Assert.AreEqual(4UL, set.PendingPages, "returning twice changes nothing");
    }

    [TestMethod]
    public void ConfirmDelivered_LeavesNothingToReturn()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [(0, 1), (1, 3)], []);
        set.PlanRound();

        set.ConfirmDelivered();
        set.ReturnUndelivered();

        Assert.AreEqual(0UL, set.PendingPages);
    }

    [TestMethod]
    public void Harvest_AddsTheDirtyPagesToPending_AndCountsTheWarmOnes()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [(0, 9)], [(0, 5)]);
        var tracker = new ScriptedTracker(memory, _ => [new PageWrite(0, 5, 1), new PageWrite(0, 6, 1), new PageWrite(1, 2, 1)], () => false, _ => { });

        (HarvestResult result, ulong warm) = set.Harvest(tracker);

        Assert.AreEqual(3UL, result.DirtyPages);
        Assert.AreEqual(2UL, warm, "page 5 is deferred, not warm");
        Assert.AreSequenceEqual(new[] { (0, 5UL), (0, 6UL), (0, 9UL), (1, 2UL) }, Pages(set.Pending));
        Assert.AreSequenceEqual(new[] { (0, 5UL), (0, 6UL), (1, 2UL) }, Pages(set.Regions.Select(r => r.Harvested).ToArray()));
    }

    [TestMethod]
    public void TheFinalHarvest_AddsToPending_WithoutTouchingTheHeat()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [], []);
        var tracker = new ScriptedTracker(memory, _ => [new PageWrite(0, 5, 1), new PageWrite(1, 3, 1)], () => false, _ => { });
        set.Harvest(tracker);

        (HarvestResult result, ulong warm) = set.Harvest(tracker, final: true);

        Assert.AreEqual(2UL, result.DirtyPages);
        Assert.AreEqual(2UL, warm);
        Assert.AreSequenceEqual(new[] { (0, 5UL), (1, 3UL) }, Pages(set.Pending));
        Assert.AreSequenceEqual(new[] { 1, 1 }, set.Regions.Select(r => r.Heat.Rounds).ToArray(), "only the first harvest was recorded");
        Assert.AreEqual(0UL, set.Regions.Aggregate(0UL, (sum, r) => sum + r.Heat.HotCount), "dirty in one round only: nothing is hot");
    }

    [TestMethod]
    public void Harvest_MarksEveryPagePending_WhenTheTrackerFails()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [(0, 9)], []);
        var tracker = new ScriptedTracker(memory, _ => [], () => false, _ => { }) { BeforeHarvest = _ => throw new InvalidOperationException("dirty log gone") };

        Assert.ThrowsExactly<InvalidOperationException>(() => set.Harvest(tracker));

        Assert.AreEqual(80UL, set.PendingPages);
    }

    [TestMethod]
    public void DeferHotPages_DefersWhatTheBudgetAllows_AndSaysWhetherTheSetGrew()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [], []);
        var tracker = new ScriptedTracker(memory, _ => [new PageWrite(0, 5, 1), new PageWrite(0, 6, 1), new PageWrite(1, 3, 1)], () => false, _ => { });
        set.Harvest(tracker);
        set.Harvest(tracker); // dirty in 2 of the last rounds: hot

        Assert.IsTrue(set.DeferHotPages(2));
        Assert.AreSequenceEqual(new[] { (0, 5UL), (0, 6UL) }, Deferred(set));
        Assert.IsFalse(set.DeferHotPages(2), "the same set again");
        Assert.IsTrue(set.DeferHotPages(10));
        Assert.AreEqual(3UL, set.DeferredPages);
        Assert.IsFalse(set.DeferHotPages(1), "a smaller set did not grow");
        Assert.AreEqual(1UL, set.DeferredPages);

        set.ClearDeferred();
        Assert.AreEqual(0UL, set.DeferredPages);
    }

    [TestMethod]
    public void UsePopulatedPages_LooksAtWhatTheHostPopulated_OnlyWhileOn()
    {
        using GuestMemoryLayout memory = Memory();
        memory.Regions[1].GetPage(4)[0] = 1;
        RegionSet set = With(memory, [], []);

        set.UsePopulatedPages(true);

        Assert.IsTrue(set.Regions.All(r => r.UsePopulated));
        Assert.IsTrue(set.Regions[1].Populated.Test(4));
        Assert.IsFalse(set.Regions[1].Populated.Test(5));
        set.UsePopulatedPages(false);
        Assert.IsFalse(set.Regions.Any(r => r.UsePopulated));
    }

    [TestMethod]
    public void Pending_IsTheLiveBitmapOfEachRegion()
    {
        using GuestMemoryLayout memory = Memory();
        RegionSet set = With(memory, [], []);

        Assert.HasCount(2, set.Pending);
        Assert.AreSame(set.Regions[1].Pending, set.Pending[1]);
        Assert.AreEqual(64UL, set.Pending[0].PageCount);
    }
}
