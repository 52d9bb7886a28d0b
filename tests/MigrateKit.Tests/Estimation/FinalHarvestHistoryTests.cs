using System;
using System.Collections.Generic;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;

namespace MigrateKit.Tests.Estimation;

/// <summary>
/// The switchover's final harvest runs with the guest paused; pre-copy harvests run against its
/// writes. The history keeps the paused ones and prices the next final harvest from them.
/// </summary>
[TestClass]
public sealed class FinalHarvestHistoryTests
{
    private const ulong GiB = 1UL << 30;

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [TestMethod]
    public void FinalHarvestCost_NeedsThreeHarvests_ThenIsTheMedianOfThoseOfTheSameSize()
    {
        var history = new DowntimeHistory();
        history.RecordFinalHarvest("k", Ms(2.5), GiB);
        history.RecordFinalHarvest("k", Ms(1.5), GiB);
        Assert.IsNull(history.FinalHarvestCost("k", GiB));

        history.RecordFinalHarvest("k", Ms(9), GiB);
        history.RecordFinalHarvest("k", Ms(0.4), GiB / 8);

        Assert.AreEqual(2.5, history.FinalHarvestCost("k", GiB)!.Value.TotalMilliseconds, 1e-3);
        Assert.IsNull(history.FinalHarvestCost("other", GiB), "kinds are kept apart");
    }

    [TestMethod]
    public void FinalHarvestCost_OfAnUnseenSize_ScalesEachBySize()
    {
        var history = new DowntimeHistory();
        history.RecordFinalHarvest("k", Ms(2), GiB);
        history.RecordFinalHarvest("k", Ms(0.5), GiB / 8);
        history.RecordFinalHarvest("k", Ms(3), GiB);

        // Per 2 GiB: 4, 8 and 6 ms.
        Assert.AreEqual(6, history.FinalHarvestCost("k", 2 * GiB)!.Value.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void RecordFinalHarvest_IgnoresMeaninglessSamples_AndKeepsTheLatestSixteen()
    {
        var history = new DowntimeHistory();
        history.RecordFinalHarvest("k", TimeSpan.Zero, GiB);
        history.RecordFinalHarvest("k", Ms(1), 0);
        history.RecordFinalHarvest("k", Ms(-1), GiB);
        Assert.IsNull(history.FinalHarvestCost("k", GiB));

        for (int i = 0; i < 16; i++)
        {
            history.RecordFinalHarvest("k", Ms(100), GiB);
        }

        for (int i = 0; i < 16; i++)
        {
            history.RecordFinalHarvest("k", Ms(2), GiB);
        }

        Assert.AreEqual(2, history.FinalHarvestCost("k", GiB)!.Value.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void RecordFinalHarvest_KeepsEachSizesOwn_WhileOtherSizesComeAndGo()
    {
        var history = new DowntimeHistory();
        foreach (double ms in new[] { 3.0, 3.2, 3.1 })
        {
            history.RecordFinalHarvest("k", Ms(ms), 3 * GiB);
        }

        // Eighteen smaller migrations in between: scaled up, theirs would say 12 ms for 3 GiB.
        for (int i = 0; i < 18; i++)
        {
            history.RecordFinalHarvest("k", Ms(1), GiB / 4);
        }

        Assert.AreEqual(3.1, history.FinalHarvestCost("k", 3 * GiB)!.Value.TotalMilliseconds, 1e-3);

        // Of one size the latest sixteen count; of all sizes the latest sixty-four.
        for (int i = 0; i < 64; i++)
        {
            history.RecordFinalHarvest("k", Ms(2), (ulong)(i + 1) << 20);
        }

        Assert.IsGreaterThan(50.0, history.FinalHarvestCost("k", 3 * GiB)!.Value.TotalMilliseconds, "its own pushed out: the small ones scaled up");
    }

    [TestMethod]
    public void WithAStore_AnEntryOfMoreHarvestsOfOneSizeThanAreKept_LoadsTheLatestOfThem()
    {
        var store = new InMemoryCalibrationStore();
        var values = new Dictionary<string, double>();
        for (int i = 0; i < 40; i++)
        {
            values[$"m.{i}"] = GiB;
            values[$"h.{i}"] = i < 24 ? 0.009 : 0.002;
        }

        store.Save("harvest.3/many", new CalibrationEntry(values, 40, DateTimeOffset.UtcNow));

        Assert.AreEqual(2, new DowntimeHistory(store).FinalHarvestCost("many", GiB)!.Value.TotalMilliseconds, 1e-6, "the last sixteen");
    }

    [TestMethod]
    public void WithAStore_FinalHarvestsOutliveTheHistory_AndADamagedEntryKeepsWhatPrecedesTheDamage()
    {
        var store = new InMemoryCalibrationStore();
        var first = new DowntimeHistory(store);
        first.RecordFinalHarvest("engine/k", Ms(2), GiB);
        first.RecordFinalHarvest("engine/k", Ms(3), GiB);
        first.RecordFinalHarvest("engine/k", Ms(4), GiB);

        Assert.AreEqual(3, new DowntimeHistory(store).FinalHarvestCost("engine/k", GiB)!.Value.TotalMilliseconds, 1e-3);
        Assert.IsNotNull(store.Load("harvest.3/engine/k"), "kept under the harvest.3/ prefix");

        store.Save("harvest.3/d", new CalibrationEntry(new Dictionary<string, double>
        {
            ["m.0"] = GiB,
            ["h.0"] = 0.002,
            ["m.1"] = GiB,
            ["h.1"] = 0.002,
            ["m.2"] = GiB,
            ["h.2"] = -1,
            ["m.3"] = GiB,
            ["h.3"] = 0.002,
        }, 4, DateTimeOffset.UtcNow));
        Assert.IsNull(new DowntimeHistory(store).FinalHarvestCost("d", GiB), "two kept, the damaged one and all after it dropped");
    }

    [TestMethod]
    public void FinalHarvestCost_ForAChunkCount_IsALineInTheChunks_ThatOneWildSampleDoesNotBend()
    {
        // 1 ms and 0.05 ms per dirty chunk, and one harvest that a preempted thread made 9 ms.
        var history = new DowntimeHistory();
        foreach ((ulong chunks, double ms) in new[] { (0UL, 1.0), (10UL, 1.5), (20UL, 2.0), (30UL, 2.5), (10UL, 9.0) })
        {
            history.RecordFinalHarvest("k", Ms(ms), GiB, chunks);
        }

        Assert.AreEqual(1.8, history.FinalHarvestCost("k", GiB, 16)!.Value.TotalMilliseconds, 1e-6);
        Assert.AreEqual(1.0, history.FinalHarvestCost("k", GiB, 0)!.Value.TotalMilliseconds, 1e-6);
        Assert.AreEqual(2.0, history.FinalHarvestCost("k", GiB)!.Value.TotalMilliseconds, 1e-6, "no chunk count: the median");
    }

    [TestMethod]
    public void FinalHarvestCost_ForAChunkCount_IsTheMedian_UntilTheChunksDifferEnoughToTellASlope()
    {
        var history = new DowntimeHistory();
        history.RecordFinalHarvest("k", Ms(1.0), GiB, 1);
        history.RecordFinalHarvest("k", Ms(1.4), GiB, 3);
        history.RecordFinalHarvest("k", Ms(1.2), GiB, 2);
        history.RecordFinalHarvest("k", Ms(3.0), GiB);
        Assert.AreEqual(1.3, history.FinalHarvestCost("k", GiB, 30)!.Value.TotalMilliseconds, 1e-6);

    }

    [TestMethod]
    public void FinalHarvestCost_ForAChunkCount_NeedsTwoHarvestsAtEachEnd_ToTellASlope()
    {
        // Sequential writers' harvests at 1-2 chunks, then one random writer's at 50: six pairs,
        // all through that one harvest's time.
        var history = new DowntimeHistory();
        foreach ((ulong chunks, double ms) in new[] { (1UL, 3.0), (2UL, 3.2), (1UL, 3.1), (2UL, 3.1), (1UL, 3.3), (1UL, 3.1) })
        {
            history.RecordFinalHarvest("k", Ms(ms), 3 * GiB, chunks);
        }

        history.RecordFinalHarvest("k", Ms(6.3), 3 * GiB, 50);
        Assert.AreEqual(3.1, history.FinalHarvestCost("k", 3 * GiB, 100)!.Value.TotalMilliseconds, 1e-6, "one harvest at the far end: the median");

        // A second: the slopes, 0.03-0.07 ms per chunk, and their median.
        history.RecordFinalHarvest("k", Ms(4.6), 3 * GiB, 48);
        double priced = history.FinalHarvestCost("k", 3 * GiB, 50)!.Value.TotalMilliseconds;
        Assert.IsTrue(priced > 4 && priced < 6.3, $"priced {priced} ms along the line");
    }

    [TestMethod]
    public void FinalHarvestCost_ForAChunkCount_LeavesHarvestsWithoutACountOutOfTheLine()
    {
        // Three counted harvests on the line 1 ms + 0.05 ms per chunk, and three uncounted ones
        // that would move the intercept's median to 5 ms if they took part.
        var history = new DowntimeHistory();
        foreach ((ulong chunks, double ms) in new[] { (0UL, 1.0), (10UL, 1.5), (20UL, 2.0) })
        {
            history.RecordFinalHarvest("k", Ms(ms), GiB, chunks);
            history.RecordFinalHarvest("k", Ms(9), GiB);
        }

        Assert.AreEqual(1.8, history.FinalHarvestCost("k", GiB, 16)!.Value.TotalMilliseconds, 1e-6);
    }

    [TestMethod]
    public void WithAStore_TheChunkCountsOutliveTheHistory_AndAnEntryWithoutThemPricesByTheMedian()
    {
        var store = new InMemoryCalibrationStore();
        var first = new DowntimeHistory(store);
        foreach ((ulong chunks, double ms) in new[] { (1UL, 1.0), (33UL, 2.6), (2UL, 1.05), (30UL, 2.5) })
        {
            first.RecordFinalHarvest("k", Ms(ms), GiB, chunks);
        }

        var second = new DowntimeHistory(store);
        Assert.AreEqual(first.FinalHarvestCost("k", GiB, 33), second.FinalHarvestCost("k", GiB, 33));
        Assert.IsTrue(second.FinalHarvestCost("k", GiB, 33)!.Value.TotalMilliseconds > 2.4, "priced by its chunks, not the median");

        store.Save("harvest.3/old", new CalibrationEntry(new Dictionary<string, double>
        {
            ["m.0"] = GiB,
            ["h.0"] = 0.001,
            ["m.1"] = GiB,
            ["h.1"] = 0.003,
            ["c.1"] = -5,
            ["m.2"] = GiB,
            ["h.2"] = 0.002,
        }, 3, DateTimeOffset.UtcNow));
        Assert.AreEqual(2, new DowntimeHistory(store).FinalHarvestCost("old", GiB, 33)!.Value.TotalMilliseconds, 1e-6);
    }
}
