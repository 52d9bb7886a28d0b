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
    public void WithAStore_FinalHarvestsOutliveTheHistory_AndADamagedEntryKeepsWhatPrecedesTheDamage()
    {
        var store = new InMemoryCalibrationStore();
        var first = new DowntimeHistory(store);
        first.RecordFinalHarvest("engine/k", Ms(2), GiB);
        first.RecordFinalHarvest("engine/k", Ms(3), GiB);
        first.RecordFinalHarvest("engine/k", Ms(4), GiB);

        Assert.AreEqual(3, new DowntimeHistory(store).FinalHarvestCost("engine/k", GiB)!.Value.TotalMilliseconds, 1e-3);
        Assert.IsNotNull(store.Load("harvest.1/engine/k"), "kept under the harvest.1/ prefix");

        store.Save("harvest.1/d", new CalibrationEntry(new Dictionary<string, double>
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
}
