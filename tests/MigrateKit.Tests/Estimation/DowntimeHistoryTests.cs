using System;
using System.Linq;
using Microsoft.Extensions.Logging;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Estimation;

/// <summary>DowntimeHistory: actual = fixed + bias + ratio × transfer over past switchovers (medians), and what it misses.</summary>
[TestClass]
public sealed class DowntimeHistoryTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [TestMethod]
    public void Correction_WithoutSwitchovers_IsNone()
    {
        var history = new DowntimeHistory();

        Assert.AreEqual(DowntimeCorrection.None, history.Correction("k"));
        Assert.AreEqual(0, history.Count("k"));
    }

    [TestMethod]
    public void Correction_OfSimilarTransfers_IsTheMedianBiasAlone()
    {
        var history = new DowntimeHistory();

        // Fixed costs forecast at 2 ms took 12, 14 and 10 ms more; transfers of 50 ms, as forecast.
        history.Record("k", Ms(50), Ms(2), Ms(64));
        history.Record("k", Ms(50), Ms(2), Ms(66));
        history.Record("k", Ms(50), Ms(2), Ms(62));

        DowntimeCorrection c = history.Correction("k");

        Assert.AreEqual(1.0, c.TransferRatio);
        Assert.AreEqual(12.0, c.FixedBias.TotalMilliseconds, 1e-3);
        Assert.AreEqual(2.0, c.ErrorAbove.TotalMilliseconds, 1e-3, "the worst miss above the line, with fewer than five samples");
        Assert.AreEqual(2.0, c.ErrorBelow.TotalMilliseconds, 1e-3);
        Assert.AreEqual(3, c.Samples);
    }

    [TestMethod]
    public void Correction_OfVaryingTransfers_FitsRatioAndBias()
    {
        var history = new DowntimeHistory();

        // Every stop-and-copy ran 1.5x as long as forecast, plus 8 ms the fixed costs missed.
        foreach (double transfer in new[] { 10.0, 40, 80, 160, 250 })
        {
            history.Record("k", Ms(transfer), Ms(3), Ms(3 + 8 + (1.5 * transfer)), Ms(1.5 * transfer));
        }

        DowntimeCorrection c = history.Correction("k");

        Assert.AreEqual(1.5, c.TransferRatio, 1e-9);
        Assert.AreEqual(8.0, c.FixedBias.TotalMilliseconds, 1e-3);
        Assert.AreEqual(0.0, c.ErrorAbove.TotalMilliseconds, 1e-3, "the line fits every sample exactly");
    }

    [TestMethod]
    public void Correction_ASpikeInTheFixedParts_MovesNeitherTheRatioNorTheBias()
    {
        var history = new DowntimeHistory();

        // Transfers ran at 0.7x their forecast with 0.5 ms the fixed costs missed; the largest
        // switchover's resume was held up 20 ms by the scheduler. A line through the totals
        // would read that as a steeper ratio.
        double[] transfers = [4, 8, 12, 16];
        foreach (double transfer in transfers)
        {
            double spike = transfer == 16 ? 20 : 0;
            history.Record("k", Ms(transfer), Ms(1), Ms(1 + 0.5 + (0.7 * transfer) + spike), Ms(0.7 * transfer));
        }

        DowntimeCorrection c = history.Correction("k");

        Assert.AreEqual(0.7, c.TransferRatio, 1e-9);
        Assert.AreEqual(0.5, c.FixedBias.TotalMilliseconds, 1e-3);
        Assert.AreEqual(20.0, c.ErrorAbove.TotalMilliseconds, 1e-3, "the spike stays in the interval's top (the worst miss, with fewer than five switchovers)");
    }

    [TestMethod]
    public void Correction_BeforeTheRatioIsKnown_KeepsAMeasuredTransfersMissOutOfTheBias()
    {
        var history = new DowntimeHistory();

        // A process's first switchover: its transfer ran 2.5 ms over a 2 ms forecast, its fixed
        // costs 0.4 ms over theirs. The next switchover's transfer is not the next's fixed cost.
        history.Record("k", Ms(2), Ms(1), Ms(1 + 0.4 + 4.5), Ms(4.5));
        DowntimeCorrection first = history.Correction("k");

        Assert.AreEqual(1.0, first.TransferRatio);
        Assert.AreEqual(0.4 / 3, first.FixedBias.TotalMilliseconds, 1e-3, "one switchover's bias counts at a third");

        // Two more: the ratio is known (the median, 1.25), and the bias is what it leaves.
        history.Record("k", Ms(2), Ms(1), Ms(1 + 0.4 + 2.5), Ms(2.5));
        history.Record("k", Ms(2), Ms(1), Ms(1 + 0.4 + 2.0), Ms(2.0));
        DowntimeCorrection known = history.Correction("k");

        Assert.AreEqual(1.25, known.TransferRatio, 1e-9);
        Assert.AreEqual(0.4, known.FixedBias.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void Correction_WithoutMeasuredTransfers_OrOnlyShortOnes_IsTheBiasAlone()
    {
        var history = new DowntimeHistory();

        // Totals only: nothing tells the transfer's share of what the forecast missed.
        foreach (double transfer in new[] { 10.0, 40, 80, 160, 250 })
        {
            history.Record("k", Ms(transfer), Ms(3), Ms(3 + 8 + (1.5 * transfer)));
        }

        // Measured, but under a millisecond: latency, not work.
        foreach (double transfer in new[] { 0.2, 0.4, 0.8 })
        {
            history.Record("short", Ms(transfer), Ms(1), Ms(1 + transfer + 0.3), Ms(transfer + 0.3));
        }

        Assert.AreEqual(1.0, history.Correction("k").TransferRatio);
        Assert.AreEqual(1.0, history.Correction("short").TransferRatio);
        Assert.AreEqual(0.3, history.Correction("short").FixedBias.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void Correction_OfFewerThanThreeSwitchovers_CountsTheirBiasInPart_AndTheSpreadHoldsTheRest()
    {
        var history = new DowntimeHistory();

        // One switchover the scheduler delayed: 6 ms over its forecast. A third of it is the
        // next forecast's bias; the upper bound holds the whole.
        history.Record("k", Ms(10), Ms(1), Ms(17));
        DowntimeCorrection one = history.Correction("k");
        Assert.AreEqual(2.0, one.FixedBias.TotalMilliseconds, 1e-3);
        Assert.AreEqual(4.0, one.ErrorAbove.TotalMilliseconds, 1e-3);
        Assert.AreEqual(TimeSpan.Zero, one.ErrorBelow);

        // A second, on time: two thirds of the median of 6 and 0.
        history.Record("k", Ms(10), Ms(1), Ms(11));
        Assert.AreEqual(2.0, history.Correction("k").FixedBias.TotalMilliseconds, 1e-3);

        // A third, on time: the median alone, and the spike no longer moves it.
        history.Record("k", Ms(10), Ms(1), Ms(11));
        Assert.AreEqual(0.0, history.Correction("k").FixedBias.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void Correction_WithABroaderKind_DrawsAFewSwitchoversTowardsItsBias()
    {
        var history = new DowntimeHistory();
        for (int i = 0; i < 3; i++)
        {
            history.Record("k", Ms(10), Ms(1), Ms(41));
        }

        // No switchover of "k@b": every destination's bias; one: a third its own.
        Assert.AreEqual(30.0, history.Correction("k@b", "k").FixedBias.TotalMilliseconds, 1e-3);
        history.Record("k@b", Ms(10), Ms(1), Ms(14));
        Assert.AreEqual((3.0 / 3) + (30.0 * 2 / 3), history.Correction("k@b", "k").FixedBias.TotalMilliseconds, 1e-3);

        // A broader kind of fewer than three tells no bias: the rest is none.
        history.Record("j@b", Ms(10), Ms(1), Ms(14));
        history.Record("j", Ms(10), Ms(1), Ms(41));
        Assert.AreEqual(1.0, history.Correction("j@b", "j").FixedBias.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void Correction_KeepsKindsApart()
    {
        var history = new DowntimeHistory();
        for (int i = 0; i < 3; i++)
        {
            history.Record("engine/a/unlimited", Ms(10), Ms(1), Ms(40));
        }

        Assert.AreEqual(DowntimeCorrection.None, history.Correction("engine/a/limited"));
        Assert.AreEqual(29.0, history.Correction("engine/a/unlimited").FixedBias.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void Record_KeepsTheLatestSwitchoversOnly()
    {
        var history = new DowntimeHistory();
        for (int i = 0; i < DowntimeHistory.Capacity; i++)
        {
            history.Record("k", Ms(10), Ms(1), Ms(100));
        }

        // A change on the machine: the recent switchovers outvote the old ones as they replace them.
        for (int i = 0; i < DowntimeHistory.Capacity; i++)
        {
            history.Record("k", Ms(10), Ms(1), Ms(21));
        }

        Assert.AreEqual(DowntimeHistory.Capacity, history.Count("k"));
        Assert.AreEqual(10.0, history.Correction("k").FixedBias.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void Record_IgnoresMeaninglessSamples()
    {
        var history = new DowntimeHistory();
        history.Record("k", Ms(10), Ms(1), TimeSpan.Zero);
        history.Record("k", Ms(-1), Ms(1), Ms(5));

        Assert.AreEqual(0, history.Count("k"));
    }

    [TestMethod]
    public void WithAStore_SwitchoversOutliveTheHistory()
    {
        var store = new InMemoryCalibrationStore();
        var first = new DowntimeHistory(store);
        first.Record("engine/k", Ms(50), Ms(2), Ms(64));
        first.Record("engine/k", Ms(50), Ms(2), Ms(66));
        first.Record("engine/k", Ms(50), Ms(2), Ms(65));

        // Another process: a new history over the same store.
        var second = new DowntimeHistory(store);

        Assert.AreEqual(3, second.Count("engine/k"));
        Assert.AreEqual(13.0, second.Correction("engine/k").FixedBias.TotalMilliseconds, 1e-3);
        Assert.IsNotNull(store.Load("downtime.3/engine/k"), "kept under the downtime.3/ prefix");
    }

    [TestMethod]
    public void WithAStore_TheTransferPartsOutliveTheHistory()
    {
        var store = new InMemoryCalibrationStore();
        var first = new DowntimeHistory(store);
        foreach (double transfer in new[] { 4.0, 8, 12 })
        {
            first.Record("engine/k", Ms(transfer), Ms(1), Ms(1 + (0.5 * transfer)), Ms(0.5 * transfer));
        }

        Assert.AreEqual(0.5, new DowntimeHistory(store).Correction("engine/k").TransferRatio, 1e-9);
        Assert.AreEqual(0.006, store.Load("downtime.3/engine/k")!.Get("x.2")!.Value, 1e-12);
    }

    [TestMethod]
    [DataRow("downtime/engine/k")]
    [DataRow("downtime.2/engine/k")]
    public void WithAStore_SwitchoversRecordedUnderEarlierPrefixes_AreNotUsed(string key)
    {
        // The first prefix's fixed parts included the compiler's time; neither carries a transfer part.
        var store = new InMemoryCalibrationStore();
        store.Save(key, new CalibrationEntry(new System.Collections.Generic.Dictionary<string, double>
        {
            ["t.0"] = 0.05,
            ["f.0"] = 0.015,
            ["a.0"] = 0.06,
        }, 1, DateTimeOffset.UtcNow));

        Assert.AreEqual(0, new DowntimeHistory(store).Count("engine/k"));
    }

    [TestMethod]
    public void WithAStoreThatCannotBeWritten_RecordingCostsThePersistence_NotTheCaller()
    {
        // The engine records a pause before round 0 and the switchover after the destination runs the VM.
        var store = new Moq.Mock<ICalibrationStore>();
        store.Setup(s => s.Save(Moq.It.IsAny<string>(), Moq.It.IsAny<CalibrationEntry>())).Throws(new System.IO.IOException("read-only file system"));
        store.Setup(s => s.Load(Moq.It.IsAny<string>())).Returns((CalibrationEntry?)null);
        var logger = new ListLogger<DowntimeHistory>();
        var history = new DowntimeHistory(store.Object, logger);

        history.Record("k", Ms(10), Ms(1), Ms(12), Ms(10));
        history.RecordFinalHarvest("k", Ms(2), 1UL << 30, 10);
        foreach (double ms in new[] { 0.1, 0.2, 0.3 })
        {
            history.RecordPause("k", Ms(ms));
        }

        Assert.AreEqual(5, history.SaveFailures);
        Assert.AreEqual(1, history.Count("k"), "this process keeps what it learns");
        Assert.AreEqual(0.2, history.PauseCost("k")!.Value.TotalMilliseconds, 1e-9);
        Assert.AreEqual(1, logger.Entries.Count(e => e.Level == LogLevel.Warning), "one warning tells the user");
        Assert.AreEqual(4, logger.Entries.Count(e => e.Level == LogLevel.Debug));
    }

    [TestMethod]
    public async System.Threading.Tasks.Task TwoMigrationsRecordingAtOnce_TheStoreKeepsTheLaterEntry()
    {
        // The first save stalls (a slow disk, another process holding the file's lock) while a
        // second migration records the same kind: its entry, built later, holds both pauses.
        var store = new StallingStore();
        var history = new DowntimeHistory(store);
        System.Threading.Tasks.Task first = System.Threading.Tasks.Task.Run(() => history.RecordPause("k", Ms(0.1)));
        Assert.IsTrue(store.FirstSaveEntered.Wait(TimeSpan.FromSeconds(10)));
        System.Threading.Tasks.Task second = System.Threading.Tasks.Task.Run(() => history.RecordPause("k", Ms(0.2)));
        await System.Threading.Tasks.Task.Delay(100);
        store.ReleaseFirstSave.Set();
        await System.Threading.Tasks.Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(10));

        CalibrationEntry kept = store.Load("pause.1/k")!;
        Assert.AreEqual(2, kept.Samples);
        Assert.AreEqual(0.3e-3, kept.Get("p.0")!.Value + kept.Get("p.1")!.Value, 1e-12);
    }

    [TestMethod]
    public void DeferredSaves_CountAtOnce_AndReachTheStoreInOneCallWhenTheScopeEnds()
    {
        // A switchover teaches four keys: its downtime per destination and for every destination, its final harvest and its pause.
        var store = new CountingStore();
        var history = new DowntimeHistory(store);
        using (history.DeferSaves())
        {
            history.Record("k@tcp:10.0.0.2", Ms(10), Ms(1), Ms(12), Ms(10));
            history.Record("k", Ms(10), Ms(1), Ms(12), Ms(10));
            history.RecordFinalHarvest("k", Ms(2), 1UL << 30, 10);
            history.RecordPause("k", Ms(0.1));
            history.RecordPause("k", Ms(0.3));

            // Another thread's migration is not held back (a thread of its own: a task waited on may run inline).
            var other = new System.Threading.Thread(() => history.RecordPause("other", Ms(0.2)));
            other.Start();
            other.Join();
            Assert.AreEqual(1, store.Calls.Count);
            CollectionAssert.AreEqual(new[] { "pause.1/other" }, store.Calls[0]);

            Assert.AreEqual(1, history.Count("k@tcp:10.0.0.2"), "this process counts a record at once");
        }

        Assert.AreEqual(2, store.Calls.Count);
        CollectionAssert.AreEquivalent(new[] { "downtime.3/k@tcp:10.0.0.2", "downtime.3/k", "harvest.3/k", "pause.1/k" }, store.Calls[1], "one call, the later of a key's two entries");
        Assert.AreEqual(2, store.Load("pause.1/k")!.Samples);

        // Outside the scope each record saves at once again.
        history.RecordPause("k", Ms(0.2));
        Assert.AreEqual(3, store.Calls.Count);
    }

    [TestMethod]
    public void AHeldPause_CountsAtOnce_AndReachesTheStoreWithItsKeysNextSave_OrWhenTheHeldAreSaved()
    {
        var store = new CountingStore();
        var history = new DowntimeHistory(store);
        history.RecordPause("k", Ms(0.1), save: false);
        history.RecordPause("k", Ms(0.3), save: false);
        history.RecordPause("k", Ms(0.2), save: false);

        Assert.AreEqual(0.2, history.PauseCost("k")!.Value.TotalMilliseconds, 1e-9, "this process counts them at once");
        Assert.IsEmpty(store.Calls, "nothing written yet");

        // The next save of the key carries them; nothing is left to save after it.
        history.RecordPause("k", Ms(0.4));
        Assert.HasCount(1, store.Calls);
        Assert.AreEqual(4, store.Load("pause.1/k")!.Samples);
        history.SaveHeld();
        Assert.HasCount(1, store.Calls);

        // A run that ends before its next save: the held pause is saved as it ends.
        history.RecordPause("k", Ms(0.5), save: false);
        history.SaveHeld();
        Assert.HasCount(2, store.Calls);
        Assert.AreEqual(5, store.Load("pause.1/k")!.Samples);
    }

    [TestMethod]
    public void SavingTheHeld_IntoAStoreThatThrows_LeavesTheCallerAlone()
    {
        var store = new Moq.Mock<ICalibrationStore>();
        store.Setup(s => s.Save(Moq.It.IsAny<string>(), Moq.It.IsAny<CalibrationEntry>())).Throws(new InvalidOperationException("the orchestrator's store is down"));
        var history = new DowntimeHistory(store.Object);
        foreach (double ms in new[] { 0.1, 0.3, 0.2 })
        {
            history.RecordPause("k", Ms(ms), save: false);
        }

        history.SaveHeld();
        history.SaveHeld();

        store.Verify(s => s.Save("pause.1/k", Moq.It.IsAny<CalibrationEntry>()), Moq.Times.Once());
        Assert.AreEqual(0.2, history.PauseCost("k")!.Value.TotalMilliseconds, 1e-9, "this process keeps what it learned");
    }

    private sealed class CountingStore : ICalibrationStore
    {
        private readonly InMemoryCalibrationStore _inner = new();

        public System.Collections.Generic.List<string[]> Calls { get; } = [];

        public CalibrationEntry? Load(string key) => _inner.Load(key);

        public void Save(string key, CalibrationEntry entry) => SaveAll([new(key, entry)]);

        public void SaveAll(System.Collections.Generic.IReadOnlyList<System.Collections.Generic.KeyValuePair<string, CalibrationEntry>> entries)
        {
            lock (Calls)
            {
                Calls.Add([.. entries.Select(e => e.Key)]);
            }

            foreach ((string key, CalibrationEntry entry) in entries)
            {
                _inner.Save(key, entry);
            }
        }
    }

    private sealed class StallingStore : ICalibrationStore
    {
        private readonly InMemoryCalibrationStore _inner = new();
        private int _saves;

        public System.Threading.ManualResetEventSlim FirstSaveEntered { get; } = new();

        public System.Threading.ManualResetEventSlim ReleaseFirstSave { get; } = new();

        public CalibrationEntry? Load(string key) => _inner.Load(key);

        public void Save(string key, CalibrationEntry entry)
        {
            if (System.Threading.Interlocked.Increment(ref _saves) == 1)
            {
                FirstSaveEntered.Set();
                ReleaseFirstSave.Wait(TimeSpan.FromSeconds(10));
            }

            _inner.Save(key, entry);
        }
    }

    [TestMethod]
    public void WithAFileStoreInADirectoryThatCannotBeMade_TheSaveFailsWithAWarning()
    {
        // A regular file where the store's directory should be: creating the directory fails, even as root.
        string blocker = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"migratekit-blocker-{System.Guid.NewGuid():N}");
        System.IO.File.WriteAllText(blocker, "");
        try
        {
            var logger = new ListLogger<DowntimeHistory>();
            var history = new DowntimeHistory(new FileCalibrationStore(System.IO.Path.Combine(blocker, "calibration.json")), logger);

            history.RecordPause("k", Ms(0.1));

            Assert.AreEqual(1, history.SaveFailures);
            Logged warning = logger.Entries.Single(e => e.Level == LogLevel.Warning);
            StringAssert.Contains(warning.Message, "pause.1/k");
        }
        finally
        {
            System.IO.File.Delete(blocker);
        }
    }

    [TestMethod]
    public void WithAStore_ADamagedEntry_KeepsWhatPrecedesTheDamage()
    {
        var store = new InMemoryCalibrationStore();
        store.Save("downtime.3/k", new CalibrationEntry(new System.Collections.Generic.Dictionary<string, double>
        {
            ["t.0"] = 0.05,
            ["f.0"] = 0.002,
            ["a.0"] = 0.064,
            ["t.1"] = 0.05,
            ["f.1"] = -1,
            ["a.1"] = 0.064,
            ["t.2"] = 0.05,
            ["f.2"] = 0.002,
            ["a.2"] = 0.064,
        }, 3, DateTimeOffset.UtcNow));

        var history = new DowntimeHistory(store);

        Assert.AreEqual(1, history.Count("k"));
    }
}
