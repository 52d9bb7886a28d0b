using System;
using System.Collections.Generic;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;

namespace MigrateKit.Tests.Estimation;

/// <summary>DowntimeHistory's pauses: the median of the recent ones of a kind prices the next.</summary>
[TestClass]
public sealed class PauseHistoryTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [TestMethod]
    public void PauseCost_NeedsThreePauses_ThenIsTheirMedian_WhichOneSpikeDoesNotMove()
    {
        var history = new DowntimeHistory();
        history.RecordPause("engine/write-protect", Ms(0.1));
        history.RecordPause("engine/write-protect", Ms(0.12));

        Assert.IsNull(history.PauseCost("engine/write-protect"));

        // The scheduler held the vCPU's thread up once.
        history.RecordPause("engine/write-protect", Ms(3.5));

        Assert.AreEqual(0.12, history.PauseCost("engine/write-protect")!.Value.TotalMilliseconds, 1e-9);
        Assert.IsNull(history.PauseCost("engine/bitmap"), "kinds are kept apart");
    }

    [TestMethod]
    public void RecordPause_KeepsTheLatestSixteen_AndIgnoresNonPositiveLatencies()
    {
        var history = new DowntimeHistory();
        for (int i = 0; i < 16; i++)
        {
            history.RecordPause("k", Ms(5));
        }

        for (int i = 0; i < 9; i++)
        {
            history.RecordPause("k", Ms(0.2));
        }

        history.RecordPause("k", TimeSpan.Zero);
        history.RecordPause("k", Ms(-1));

        Assert.AreEqual(0.2, history.PauseCost("k")!.Value.TotalMilliseconds, 1e-9, "9 of the 16 kept are the recent 0.2 ms");
        history.Clear();
        Assert.IsNull(history.PauseCost("k"));
    }

    [TestMethod]
    public void WithAStore_PausesOutliveTheHistory_AndADamagedEntryKeepsWhatPrecedesTheDamage()
    {
        var store = new InMemoryCalibrationStore();
        var first = new DowntimeHistory(store);
        foreach (double ms in new[] { 0.1, 0.3, 0.2 })
        {
            first.RecordPause("engine/k", Ms(ms));
        }

        Assert.AreEqual(0.2, new DowntimeHistory(store).PauseCost("engine/k")!.Value.TotalMilliseconds, 1e-9);
        Assert.AreEqual(0.0003, store.Load("pause.1/engine/k")!.Get("p.1")!.Value, 1e-12);

        store.Save("pause.1/engine/d", new CalibrationEntry(new Dictionary<string, double>
        {
            ["p.0"] = 0.0001,
            ["p.1"] = 0.0001,
            ["p.2"] = -1,
            ["p.3"] = 0.0001,
        }, 4, DateTimeOffset.UtcNow));

        Assert.IsNull(new DowntimeHistory(store).PauseCost("engine/d"), "two pauses precede the damage, one short of a price");
    }
}
