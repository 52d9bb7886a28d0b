using System;
using System.Linq;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class TransferMeasurementsTests
{
    private const ulong Wire = TransferMeasurements.PageWireBytes;
    private const long MiB = 1L << 20;

    private readonly FakeTimeProvider _time = new();

    private TransferMeasurements Measurements(long? limit = MiB, double maxDowntimeMs = 100) =>
        new(new MigrationOptions { BandwidthLimit = limit, MaxDowntime = TimeSpan.FromMilliseconds(maxDowntimeMs), TimeProvider = _time }, 64 * MiB);

    [TestMethod]
    public void ThePause_IsPricedAtTheMedianOfTheRecentOnes_OnceThereAreThree()
    {
        var history = new DowntimeHistory();
        var options = new MigrationOptions { DowntimeHistory = history, TimeProvider = _time };

        // The first migrations of a kind price the pause at their own calibration pause.
        var first = new TransferMeasurements(options, 64 * MiB, "write-protect");
        first.ObservePause(TimeSpan.FromMilliseconds(0.1));
        Assert.AreEqual(0.1, first.Estimator.PauseCost.TotalMilliseconds, 1e-9);
        first.ObservePause(TimeSpan.FromMilliseconds(0.2));

        // A calibration pause the scheduler held up does not price the whole migration.
        var later = new TransferMeasurements(options, 64 * MiB, "write-protect");
        later.ObservePause(TimeSpan.FromMilliseconds(3));
        Assert.AreEqual(0.2, later.Estimator.PauseCost.TotalMilliseconds, 1e-9);
        Assert.AreEqual(0.2, history.PauseCost("engine/write-protect")!.Value.TotalMilliseconds, 1e-9);

        // Without a history, the pause measured is the price.
        TransferMeasurements alone = Measurements();
        alone.ObservePause(TimeSpan.FromMilliseconds(3));
        Assert.AreEqual(3.0, alone.Estimator.PauseCost.TotalMilliseconds, 1e-9);
    }

    [TestMethod]
    [DataRow("tcp:10.0.0.2:7000", "engine/write-protect/unlimited@tcp:10.0.0.2")]
    [DataRow("tcp:[fd00::2]:7000", "engine/write-protect/unlimited@tcp:[fd00::2]")]
    [DataRow("tcp:dst.example:41234", "engine/write-protect/unlimited@tcp:dst.example")]
    [DataRow("unix:/run/migratekit.sock", "engine/write-protect/unlimited@unix:/run/migratekit.sock")]
    [DataRow("memory", "engine/write-protect/unlimited@memory")]
    public void Switchovers_AreLearnedPerDestinationHost_AndForEveryDestination(string address, string key)
    {
        TransferMeasurements m = new(new MigrationOptions { DowntimeHistory = new DowntimeHistory(), TimeProvider = _time }, 64 * MiB, "write-protect");
        Assert.AreEqual("engine/write-protect/unlimited", m.Estimator.HistoryKey, "before the destination is known");

        m.UseDestination(address);

        Assert.AreEqual(key, m.Estimator.HistoryKey);
        Assert.AreEqual("engine/write-protect/unlimited", m.Estimator.HistoryFallbackKey);
        Assert.AreEqual("engine/write-protect", m.Estimator.HarvestHistoryKey, "the final harvest is the source's alone");
    }

    [TestMethod]
    public void ASwitchover_SavesWhatItTaughtInOneCallToTheStore()
    {
        (TransferMeasurements m, Moq.Mock<ICalibrationStore> store, System.Collections.Generic.List<string[]> saved) = OverARecordingStore();
        m.UseDestination("tcp:10.0.0.2:7000");

        m.ObserveSwitchover(Switchover, 64 * MiB, 4);

        Assert.AreEqual(1, saved.Count);
        CollectionAssert.AreEquivalent(
            new[] { "downtime.3/engine/write-protect/unlimited@tcp:10.0.0.2", "downtime.3/engine/write-protect/unlimited", "harvest.3/engine/write-protect", "pause.1/engine/write-protect" },
            saved[0]);
        store.Verify(s => s.Save(Moq.It.IsAny<string>(), Moq.It.IsAny<CalibrationEntry>()), Moq.Times.Never());
    }

    [TestMethod]
    public void ThePauseBeforeRound0_ReachesTheStoreWithTheSwitchover_OrAsTheRunEnds()
    {
        (TransferMeasurements m, _, System.Collections.Generic.List<string[]> saved) = OverARecordingStore();

        m.ObservePause(TimeSpan.FromMilliseconds(0.1), save: false);
        Assert.IsEmpty(saved, "no store write before round 0");

        m.ObserveSwitchover(Switchover, 64 * MiB, 4);
        m.SaveHeldFigures();
        Assert.HasCount(1, saved, "the switchover's one call carries the pause before round 0");
        CollectionAssert.Contains(saved[0], "pause.1/engine/write-protect");

        // A run that ends before its switchover saves its pause as it ends.
        m.ObservePause(TimeSpan.FromMilliseconds(0.1), save: false);
        m.SaveHeldFigures();
        Assert.HasCount(2, saved);
        CollectionAssert.AreEqual(new[] { "pause.1/engine/write-protect" }, saved[1]);
    }

    private static SwitchoverResult Switchover { get; } = new() { Downtime = TimeSpan.FromMilliseconds(5), PauseLatency = TimeSpan.FromMilliseconds(0.1), ActualParts = new DowntimeParts(0.1, 1, 3, 0.9) };

    /// <summary>Measurements whose history saves to a mocked store that lists the keys of each call (a SaveAll's together, a Save's alone).</summary>
    private (TransferMeasurements Measurements, Moq.Mock<ICalibrationStore> Store, System.Collections.Generic.List<string[]> Saved) OverARecordingStore()
    {
        var store = new Moq.Mock<ICalibrationStore>();
        var saved = new System.Collections.Generic.List<string[]>();
        store.Setup(s => s.SaveAll(Moq.It.IsAny<System.Collections.Generic.IReadOnlyList<System.Collections.Generic.KeyValuePair<string, CalibrationEntry>>>()))
            .Callback((System.Collections.Generic.IReadOnlyList<System.Collections.Generic.KeyValuePair<string, CalibrationEntry>> e) => saved.Add([.. e.Select(p => p.Key)]));
        store.Setup(s => s.Save(Moq.It.IsAny<string>(), Moq.It.IsAny<CalibrationEntry>())).Callback((string key, CalibrationEntry _) => saved.Add([key]));
        return (new TransferMeasurements(new MigrationOptions { DowntimeHistory = new DowntimeHistory(store.Object), TimeProvider = _time }, 64 * MiB, "write-protect"), store, saved);
    }

    [TestMethod]
    public void Bandwidth_IsTheLimit_OrAHundredMegabytesPerSecond_BeforeAnythingIsMeasured()
    {
        Assert.AreEqual(MiB, Measurements().Bandwidth());
        Assert.AreEqual(100e6, Measurements(limit: null).Bandwidth());
    }

    [TestMethod]
    public void Bandwidth_IsTheMeasuredRate_NeverAboveTheLimit()
    {
        TransferMeasurements unlimited = Measurements(limit: null);
        TransferMeasurements limited = Measurements();
        foreach (TransferMeasurements m in new[] { unlimited, limited })
        {
            m.RecordSend(10_000_000, TimeSpan.FromMilliseconds(100));
        }

        Assert.AreEqual(100e6, unlimited.Bandwidth(), 1);
        Assert.AreEqual(MiB, limited.Bandwidth());
    }

    [TestMethod]
    public void Bandwidth_PrefersWhatReSendsMeasured_OverTheFirstCopy()
    {
        TransferMeasurements m = Measurements(limit: null);
        m.RecordSend(10_000_000, TimeSpan.FromMilliseconds(100));
        Assert.AreEqual(100e6, m.Bandwidth(), 1);

        m.Resending = true;
        m.RecordSend(5_000_000, TimeSpan.FromMilliseconds(100));

        Assert.AreEqual(50e6, m.Bandwidth(), 1);
    }

    [TestMethod]
    public void PendingPages_ArePricedByTheirMeasuredWireCost_CheapOnesApart()
    {
        TransferMeasurements m = Measurements();
        m.RecordPageCosts(dataPages: 100, cheapPages: 60, cheapBytes: 60 * 24, otherBytes: 40 * 1000);
        Assert.AreEqual(24.0, m.CheapPageBytes);
        Assert.AreEqual(1000.0, m.OtherPageBytes);

        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 50, deferredPages: 10, burstBytes: 0, cheapPages: 20);
        Assert.AreEqual((20UL * 24) + (30UL * 1000), f.PendingBytes);
        Assert.AreEqual((20UL * 24) + (20UL * 1000), f.NextRoundBytes);
        Assert.AreEqual(10UL * 1000, f.DeferredBytes);
    }

    [TestMethod]
    public void TheSendersWorkPerPage_IsPricedAtTheBandwidth_OnTopOfEachPagesBytes()
    {
        TransferMeasurements m = Measurements();
        m.RecordBuild(pages: 32, TimeSpan.FromSeconds(1));
        Assert.AreEqual(TimeSpan.Zero, m.BuildTimePerPage, "too few pages to tell");
        m.RecordBuild(pages: 1000, TimeSpan.FromMilliseconds(100));
        Assert.AreEqual(TimeSpan.FromMilliseconds(0.1), m.BuildTimePerPage);

        // 0.1 ms a page at 1 MiB/s is worth 104.9 bytes a page.
        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 10, deferredPages: 0, burstBytes: 0);
        Assert.AreEqual(10 * (Wire + (0.0001 * MiB)), f.PendingBytes, 1);
    }

    [TestMethod]
    public void TheLimitersBurst_LetsTheWireBytesThrough_NotTheSendersWork()
    {
        TransferMeasurements m = Measurements();
        m.RecordBuild(pages: 1000, TimeSpan.FromMilliseconds(100));

        // A full bucket takes the ten pages' bytes at once; reading and encoding them still takes 0.1 ms each.
        Forecast full = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 10, deferredPages: 0, burstBytes: (ulong)MiB);
        Assert.AreEqual(1.0, full.Breakdown.Transfer.TotalMilliseconds, 1e-3);

        // A bucket smaller than the bytes takes what it holds; the rest goes at the rate.
        Forecast part = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 10, deferredPages: 0, burstBytes: 4 * Wire);
        Assert.AreEqual(1.0 + (6 * (double)Wire / MiB * 1000), part.Breakdown.Transfer.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void TheSendersWorkPerPage_IsTheReSends_OnceARoundReSentPages_NotTheFirstCopies()
    {
        TransferMeasurements m = Measurements(limit: null);
        m.RoundStarting();
        m.RecordBuild(pages: 25_000, TimeSpan.FromMilliseconds(375));
        Assert.AreEqual(15.0, m.BuildTimePerPage.TotalMicroseconds, 1e-6, "round 0: first copies");

        m.Resending = true;
        m.RoundStarting();
        m.RecordBuild(pages: 14_000, TimeSpan.FromMilliseconds(14));
        Assert.AreEqual(1.0, m.BuildTimePerPage.TotalMicroseconds, 1e-6, "a switchover re-sends pages, as round 1 did");

        m.RoundStarting();
        m.RecordBuild(pages: 7_000, TimeSpan.FromMilliseconds(28));
        Assert.AreEqual((7 + 28) / 14.0, m.BuildTimePerPage.TotalMicroseconds, 1e-6, "the round before weighs half as much");

        m.RoundStarting();
        m.RecordBuild(pages: 10, TimeSpan.FromMilliseconds(10));
        Assert.AreEqual((3.5 + 14) / 7.0, m.BuildTimePerPage.TotalMicroseconds, 1e-6, "a handful of pages is left out");
    }

    [TestMethod]
    public void TheSwitchoversWorkPerPage_LeavesOutTheRoundsFirstWritesIntoTheCache_ARoundsKeepsThem()
    {
        TransferMeasurements m = Measurements();
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(10), firstWrites: TimeSpan.FromMilliseconds(6));
        Assert.AreEqual(10.0, m.BuildTimePerPage.TotalMicroseconds, 1e-6, "round 0 as it went");
        Assert.AreEqual(4.0, m.SwitchoverBuildTimePerPage.TotalMicroseconds, 1e-6, "the switchover takes no new copies");

        m.Resending = true;
        m.RoundStarting();
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(3), firstWrites: TimeSpan.FromMilliseconds(1));
        Assert.AreEqual(3.0, m.BuildTimePerPage.TotalMicroseconds, 1e-6);
        Assert.AreEqual(2.0, m.SwitchoverBuildTimePerPage.TotalMicroseconds, 1e-6, "from the re-sends once there are some");

        // The pending pages go in the switchover; the next round's in a round.
        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 10, deferredPages: 4, burstBytes: 0);
        Assert.AreEqual(10 * (Wire + (2e-6 * MiB)), f.PendingBytes, 1);
        Assert.AreEqual(4 * (Wire + (2e-6 * MiB)), f.DeferredBytes, 1);
        Assert.AreEqual(6 * (Wire + (3e-6 * MiB)), f.NextRoundBytes, 1);
    }

    [TestMethod]
    public void TheDestinationsWorkPerPage_IsTheRoundAckWait_OfReSendRoundsSentInOneFlush_OverTheirPages()
    {
        TransferMeasurements m = Measurements(limit: null);
        m.RoundStarting();
        m.RecordRoundAckWait(lastFlushPages: 2_000, roundPages: 2_000, TimeSpan.FromMilliseconds(40));
        Assert.AreEqual(TimeSpan.Zero, m.ApplyTimePerPage, "round 0's pages are first touches");

        m.Resending = true;
        m.RoundStarting();
        m.RecordRoundAckWait(lastFlushPages: 32, roundPages: 32, TimeSpan.FromMilliseconds(1));
        Assert.AreEqual(TimeSpan.Zero, m.ApplyTimePerPage, "a few pages' wait is the round trip");
        m.RecordRoundAckWait(lastFlushPages: 256, roundPages: 10_000, TimeSpan.FromMilliseconds(40));
        Assert.AreEqual(TimeSpan.Zero, m.ApplyTimePerPage, "after several flushes the wait holds what was still queued");

        m.RoundStarting();
        m.RecordRoundAckWait(lastFlushPages: 1_000, roundPages: 1_000, TimeSpan.FromMilliseconds(3));
        Assert.AreEqual(3.0, m.ApplyTimePerPage.TotalMicroseconds, 1e-6);
        m.RoundStarting();
        m.RecordRoundAckWait(lastFlushPages: 500, roundPages: 500, TimeSpan.FromMilliseconds(3));
        Assert.AreEqual(4.5, m.ApplyTimePerPage.TotalMicroseconds, 1e-6, "the round before weighs half as much: (1.5 + 3) ms over (500 + 500) pages");

        // The waits count as the rounds' sending time, not as the link's.
        Assert.AreEqual(100e6, m.LinkBandwidth());
        m.RecordSend(1_000_000, TimeSpan.FromMilliseconds(1));
        Assert.AreEqual(1e9, m.LinkBandwidth(), 1);
        Assert.IsLessThan(1e9, m.Bandwidth());
    }

    [TestMethod]
    public void AfterSeveralFlushes_TheWaitMeasuresTheLastFlushsPages_WhereTheDestinationKeptPace()
    {
        TransferMeasurements m = Measurements(limit: null);
        m.Resending = true;
        m.RoundStarting();
        m.RecordRoundAckWait(lastFlushPages: 256, roundPages: 10_000, TimeSpan.FromMilliseconds(2), lastFlushBuild: TimeSpan.FromMilliseconds(1));
        Assert.AreEqual(TimeSpan.Zero, m.ApplyTimePerPage, "a wait longer than the last flush's build holds what was queued");

        m.RecordRoundAckWait(lastFlushPages: 256, roundPages: 10_000, TimeSpan.FromMilliseconds(0.512), lastFlushBuild: TimeSpan.FromMilliseconds(1));
        Assert.AreEqual(2.0, m.ApplyTimePerPage.TotalMicroseconds, 1e-6, "0.512 ms over the last flush's 256 pages");
    }

    [TestMethod]
    public void UntilTheDestinationsWorkIsMeasured_TheSwitchoverIsPricedAtTheRoundsRate()
    {
        TransferMeasurements m = Measurements(limit: null);
        m.Resending = true;
        m.RoundStarting();
        m.RecordSend(1_000_000, TimeSpan.FromMilliseconds(1));
        m.RecordRoundAckWait(lastFlushPages: 256, roundPages: 10_000, TimeSpan.FromMilliseconds(9));

        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 100, deferredPages: 0, burstBytes: 0);
        Assert.AreEqual(100 * (double)Wire / m.Bandwidth() * 1000, f.Breakdown.Transfer.TotalMilliseconds, 1e-6);
    }

    [TestMethod]
    public void UntilTheDestinationsWorkIsMeasured_ItsWorkOnACheapPage_IsPricedLikeTheBuild_OnTopOfTheRoundsRate()
    {
        TransferMeasurements m = Measurements(limit: null);
        m.Resending = true;
        m.RoundStarting();
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(1), cheapPages: 1_000);
        m.RecordSend(1_000_000, TimeSpan.FromMilliseconds(1));
        m.RecordPageCosts(dataPages: 1_000, cheapPages: 1_000, cheapBytes: 1_000 * 24, otherBytes: 0);

        // 1000 small deltas at 1 GB/s: 24 bytes each, 1 us each to build and as much to apply.
        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 1_000, deferredPages: 0, burstBytes: 0, cheapPages: 1_000);
        Assert.AreEqual(0.024 + 1 + 1, f.Breakdown.Transfer.TotalMilliseconds, 1e-3);

        // Once a round sent in one flush measured the destination's work (3 us a page), that prices it.
        m.RecordRoundAckWait(lastFlushPages: 1_000, roundPages: 1_000, TimeSpan.FromMilliseconds(3));
        f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 1_000, deferredPages: 0, burstBytes: 0, cheapPages: 1_000);
        Assert.AreEqual(1 + 0.024 + 3, f.Breakdown.Transfer.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void ASwitchoverInOneFlush_PaysTheSendersWork_TheLink_AndTheDestinationsWork_OneAfterTheOther()
    {
        TransferMeasurements m = MeasuredPerPage();
        m.RecordPageCosts(dataPages: 100, cheapPages: 100, cheapBytes: 100 * 24, otherBytes: 0);

        // 1000 small deltas (24 kB, one flush): 5 us each to build, 24 us on a 1 GB/s link, 3 us each to apply.
        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 1_000, deferredPages: 0, burstBytes: 0, cheapPages: 1_000);
        Assert.AreEqual(5 + 0.024 + 3, f.Breakdown.Transfer.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void CheapPages_ArePricedAtWhatBuildingCheapPagesCost_OthersAtTheRoundsAverage()
    {
        TransferMeasurements m = MeasuredPerPage();
        m.RecordPageCosts(dataPages: 100, cheapPages: 50, cheapBytes: 50 * 24, otherBytes: 50 * 24);

        // A build of nine tenths cheap pages measures them: 1 us each against the round's 5 us.
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(1), cheapPages: 900);
        Assert.AreEqual(1.0, m.CheapBuildTimePerPage.TotalMicroseconds, 1e-6);
        Assert.AreEqual(3.0, m.BuildTimePerPage.TotalMicroseconds, 1e-6, "every re-sent page still counts in the average");

        // 1000 small deltas and 1000 other pages of 24 bytes (one flush): 1 and 3 us each to build, 48 us on the link, 3 us each to apply.
        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 2_000, deferredPages: 0, burstBytes: 0, cheapPages: 1_000);
        Assert.AreEqual(1 + 3 + 0.048 + 6, f.Breakdown.Transfer.TotalMilliseconds, 1e-3);

        // A build with fewer cheap pages than that tells nothing of theirs.
        TransferMeasurements mixed = MeasuredPerPage();
        mixed.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(1), cheapPages: 800);
        Assert.AreEqual(mixed.BuildTimePerPage, mixed.CheapBuildTimePerPage);
    }

    [TestMethod]
    public void UntilABuildOfCheapPagesIsMeasured_PricingTheHotPages_PricesThem_NeverAboveTheAveragePage()
    {
        TransferMeasurements m = MeasuredPerPage();
        Assert.AreEqual(m.BuildTimePerPage, m.CheapBuildTimePerPage, "nothing measured: a cheap page costs any page's work");

        m.RecordDeltaPricing(pages: 32, TimeSpan.FromMilliseconds(0.01));
        Assert.AreEqual(m.BuildTimePerPage, m.CheapBuildTimePerPage, "too few pages to tell");
        m.RecordDeltaPricing(pages: 2_000, TimeSpan.FromMilliseconds(1));
        Assert.AreEqual(0.5, m.CheapBuildTimePerPage.TotalMicroseconds, 1e-6);

        // A build of cheap pages, once there is one, is what they cost.
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(2), cheapPages: 1_000);
        Assert.AreEqual(2.0, m.CheapBuildTimePerPage.TotalMicroseconds, 1e-6);

        // Pricing that the scheduler held up costs no more than the average page.
        TransferMeasurements held = MeasuredPerPage();
        held.RecordDeltaPricing(pages: 100, TimeSpan.FromMilliseconds(4));
        Assert.AreEqual(5.0, held.CheapBuildTimePerPage.TotalMicroseconds, 1e-6);

        // Without deltas nothing is priced for them.
        var compressed = new TransferMeasurements(new MigrationOptions { TimeProvider = _time, Encodings = PageEncodings.Compression }, 64 * MiB) { Resending = true };
        compressed.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(5));
        compressed.RecordDeltaPricing(pages: 2_000, TimeSpan.FromMilliseconds(1));
        Assert.AreEqual(compressed.BuildTimePerPage, compressed.CheapBuildTimePerPage);
    }

    [TestMethod]
    public void ACheapPage_IsHeldToThePageWithoutTheRoundsFirstWrites_ItHasACopyAlready()
    {
        // Re-sends at 5 us a page, 3 of them first writes into never-written slots of the cache.
        TransferMeasurements m = Measurements(limit: null);
        m.Resending = true;
        m.RoundStarting();
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(5), firstWrites: TimeSpan.FromMilliseconds(3));
        Assert.AreEqual(5.0, m.BuildTimePerPage.TotalMicroseconds, 1e-6);
        Assert.AreEqual(2.0, m.CheapBuildTimePerPage.TotalMicroseconds, 1e-6, "nothing measured for deltas: a page without first writes");

        m.RecordDeltaPricing(pages: 1_000, TimeSpan.FromMilliseconds(4));
        Assert.AreEqual(2.0, m.CheapBuildTimePerPage.TotalMicroseconds, 1e-6, "pricing at 4 us a page is held to 2");
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(1), cheapPages: 1_000);
        Assert.AreEqual(1.0, m.CheapBuildTimePerPage.TotalMicroseconds, 1e-6, "a build of cheap pages below it is what they cost");
    }

    [TestMethod]
    public void CheapPageMeasurements_WeighHalfAsMuch_AtEachNewRound()
    {
        TransferMeasurements m = MeasuredPerPage();
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(1), cheapPages: 1_000);
        m.RoundStarting();
        m.RecordBuild(pages: 500, TimeSpan.FromMilliseconds(2), cheapPages: 500);
        Assert.AreEqual(2.5, m.CheapBuildTimePerPage.TotalMicroseconds, 1e-6, "(0.5 ms + 2 ms) over (500 + 500) pages");
    }

    [TestMethod]
    public void ASwitchoverOfManyFlushes_AppliesWhileItSends_TheLastFlushAfter_OrAtTheDestinationsPace()
    {
        TransferMeasurements m = MeasuredPerPage();

        // 1000 raw pages are four flushes: the destination applies each while the next is built.
        double sending = 1_000 * (5e-3 + ((double)Wire / 1e9 * 1e3));
        double lastFlush = RoundSender.FlushThreshold / (double)Wire;
        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 1_000, deferredPages: 0, burstBytes: 0);
        Assert.AreEqual(sending + (lastFlush * 3e-3), f.Breakdown.Transfer.TotalMilliseconds, 1e-3, "a tick is 1e-4 ms");

        // A destination slower than the sender sets the pace.
        m.RoundStarting();
        m.RecordRoundAckWait(lastFlushPages: 1_000, roundPages: 1_000, TimeSpan.FromMilliseconds(60));
        double apply = m.ApplyTimePerPage.TotalMilliseconds;
        Assert.IsGreaterThan(sending / 1_000, apply);
        f = m.Forecast(round: 2, TimeSpan.FromSeconds(1), pendingPages: 1_000, deferredPages: 0, burstBytes: 0);
        Assert.AreEqual(1_000 * apply, f.Breakdown.Transfer.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void OnceTheDestinationsWorkIsMeasured_ARoundsTimeAgainstThePerPageCosts_WidensTheInterval()
    {
        TransferMeasurements Measured()
        {
            TransferMeasurements m = MeasuredPerPage();
            m.RecordPageCosts(dataPages: 100, cheapPages: 100, cheapBytes: 100 * 24, otherBytes: 0);
            m.RoundStarting();
            return m;
        }

        TransferMeasurements steady = Measured();
        TransferMeasurements slow = Measured();

        // 1000 small deltas priced at 8.024 ms (as a switchover of them) took twice that: a
        // round of 24 kB, which the bytes at the bandwidth would leave out as too small to tell.
        slow.RoundDelivered(bytes: 24_000, TimeSpan.FromMilliseconds(2 * 8.024), pages: 1_000);
        Forecast f = steady.Forecast(round: 2, TimeSpan.FromSeconds(1), pendingPages: 1_000, deferredPages: 0, burstBytes: 0, cheapPages: 1_000);
        Forecast wide = slow.Forecast(round: 2, TimeSpan.FromSeconds(1), pendingPages: 1_000, deferredPages: 0, burstBytes: 0, cheapPages: 1_000);

        Assert.AreEqual(f.PredictedDowntime, wide.PredictedDowntime);
        Assert.AreEqual(f.DowntimeHigh.TotalMilliseconds + f.Breakdown.Transfer.TotalMilliseconds, wide.DowntimeHigh.TotalMilliseconds, 1e-3);
    }

    /// <summary>A re-send round measured without a limit: 5 us a page to build, a 1 GB/s link, 3 us a page to apply (one flush of 1000 pages).</summary>
    private TransferMeasurements MeasuredPerPage()
    {
        TransferMeasurements m = Measurements(limit: null);
        m.Resending = true;
        m.RoundStarting();
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(5));
        m.RecordSend(1_000_000, TimeSpan.FromMilliseconds(1));
        m.RecordRoundAckWait(lastFlushPages: 1_000, roundPages: 1_000, TimeSpan.FromMilliseconds(3));
        return m;
    }

    [TestMethod]
    public void WithoutEncodings_EveryPageCostsAPage_WhateverTheRoundsMeasured()
    {
        var m = new TransferMeasurements(new MigrationOptions { BandwidthLimit = MiB, TimeProvider = _time, Encodings = PageEncodings.None }, 64 * MiB);
        m.RecordPageCosts(dataPages: 100, cheapPages: 0, cheapBytes: 0, otherBytes: 100);
        m.RecordBuild(pages: 1000, TimeSpan.FromSeconds(1));
        Assert.AreEqual((double)Wire, m.OtherPageBytes);
        Assert.AreEqual(TimeSpan.Zero, m.BuildTimePerPage, "the work per page is in the measured bandwidth");
        Assert.AreEqual(50 * Wire, m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 50, deferredPages: 0, burstBytes: 0).PendingBytes);
    }

    [TestMethod]
    public void DeferBudget_HoldsMorePages_WhenAPageCostsLessOnTheWire()
    {
        var policy = new MigrationPolicy(new MigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(100) });
        TransferMeasurements m = Measurements();
        ulong raw = m.DeferBudgetPages(policy);
        m.RecordPageCosts(dataPages: 10, cheapPages: 0, cheapBytes: 0, otherBytes: 10 * 512);
        Assert.IsGreaterThan(raw * 7, m.DeferBudgetPages(policy));
    }

    [TestMethod]
    public void DirtyRate_InBytes_BlendsCheapAndOtherPages_ByTheHarvestsShare_OfWarmPages()
    {
        TransferMeasurements m = Measurements();
        m.RecordPageCosts(dataPages: 100, cheapPages: 50, cheapBytes: 50 * 20, otherBytes: 50 * 4000);
        m.TrackingStarted();
        _time.Advance(TimeSpan.FromSeconds(1));
        m.RecordHarvest(new HarvestResult(1000, TimeSpan.FromMilliseconds(1)), warmPages: 1000, cheapPages: 750);
        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 1000, deferredPages: 0, burstBytes: 0, cheapPages: 750);
        Assert.AreEqual((750 * 20) + (250 * 4000), f.DirtyBytesPerSecond, 1);
    }

    [TestMethod]
    public void DirtyRate_InBytes_PricesTheSendersWork_OnCheapPagesAtTheirOwnPrice()
    {
        TransferMeasurements m = Measurements();
        m.RecordPageCosts(dataPages: 100, cheapPages: 50, cheapBytes: 50 * 20, otherBytes: 50 * 4000);
        m.Resending = true;
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(100));
        m.RecordBuild(pages: 1_000, TimeSpan.FromMilliseconds(10), cheapPages: 1_000);
        m.TrackingStarted();
        _time.Advance(TimeSpan.FromSeconds(1));
        m.RecordHarvest(new HarvestResult(1000, TimeSpan.FromMilliseconds(1)), warmPages: 1000, cheapPages: 750);
        Forecast f = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 1000, deferredPages: 0, burstBytes: 0, cheapPages: 750);

        // A cheap page's 10 us and the average page's 55 us (both builds), each worth its bytes at 1 MiB/s.
        Assert.AreEqual((750 * (20 + (10e-6 * MiB))) + (250 * (4000 + (55e-6 * MiB))), f.DirtyBytesPerSecond, 1);
    }

    [TestMethod]
    public void RecordHarvest_MeasuresTheDirtyRatesOverTheIntervalSinceThePreviousHarvest()
    {
        TransferMeasurements m = Measurements();
        m.TrackingStarted();
        _time.Advance(TimeSpan.FromMilliseconds(100));
        m.RecordHarvest(new HarvestResult(50, TimeSpan.FromMilliseconds(1)), warmPages: 20);

        Assert.AreEqual(500, m.DirtyPagesPerSecond, 1e-9);
        Forecast f = m.Forecast(1, TimeSpan.FromSeconds(1), 10, 0, 0);
        Assert.AreEqual(200 * (double)Wire, f.DirtyBytesPerSecond, 1e-6, "the forecast's rate is the warm pages'");

        _time.Advance(TimeSpan.FromMilliseconds(400));
        m.RecordHarvest(new HarvestResult(50, TimeSpan.FromMilliseconds(1)), warmPages: 20);
        Assert.AreEqual(125, m.DirtyPagesPerSecond, 1e-9);
    }

    [TestMethod]
    public void Forecast_CountsTheWarmPagesDirtiedSinceTheHarvestLookedAtThem()
    {
        TransferMeasurements m = Measurements();
        m.TrackingStarted();
        _time.Advance(TimeSpan.FromMilliseconds(100));
        m.RecordHarvest(new HarvestResult(50, TimeSpan.FromMilliseconds(8)), warmPages: 20);

        // Half the 8 ms harvest and the 6 ms since it ended: 10 ms of warm pages still to send.
        _time.Advance(TimeSpan.FromMilliseconds(6));
        Forecast f = m.Forecast(1, TimeSpan.FromSeconds(1), 0, 0, 0);
        Assert.AreEqual(f.DirtyBytesPerSecond * 0.010 / f.BandwidthBytesPerSecond, f.Breakdown.Transfer.TotalSeconds, 2e-6);

        // Later, more.
        _time.Advance(TimeSpan.FromMilliseconds(10));
        Forecast later = m.Forecast(1, TimeSpan.FromSeconds(1), 0, 0, 0);
        Assert.AreEqual(2 * f.Breakdown.Transfer.TotalSeconds, later.Breakdown.Transfer.TotalSeconds, 4e-6);
    }

    [TestMethod]
    public void RecordHarvest_MeasuresTheHarvestCost()
    {
        TransferMeasurements m = Measurements();
        m.TrackingStarted();
        m.RecordHarvest(new HarvestResult(0, TimeSpan.FromMilliseconds(8)), 0);

        // 8 ms for 64 MiB is 128 ms per GiB; the forecast's final harvest covers the 64 MiB again.
        Assert.AreEqual(128, m.Estimator.HarvestCostPerGiB.TotalMilliseconds, 1e-6);
        Assert.AreEqual(8, m.Forecast(0, TimeSpan.Zero, 0, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);
    }

    [TestMethod]
    public void TheHarvestCost_IsPricedFromTheResendRounds_OnceOneWasHarvested()
    {
        TransferMeasurements m = Measurements();
        m.TrackingStarted();
        m.RecordHarvest(new HarvestResult(10_000, TimeSpan.FromMilliseconds(8)), 10_000);
        Assert.AreEqual(8, m.Forecast(0, TimeSpan.Zero, 0, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6, "round 0's until a round re-sends");

        // Round 1's harvest replaces round 0's, which raced the whole first copy, instead of averaging with it.
        m.Resending = true;
        m.RecordHarvest(new HarvestResult(100, TimeSpan.FromMilliseconds(2)), 100);
        Assert.AreEqual(2, m.Forecast(1, TimeSpan.Zero, 0, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);

        // From then on, as before: the worse of the new one and the average.
        m.RecordHarvest(new HarvestResult(100, TimeSpan.FromMilliseconds(4)), 100);
        Assert.AreEqual(4, m.Forecast(2, TimeSpan.Zero, 0, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);
        m.RecordHarvest(new HarvestResult(100, TimeSpan.FromMilliseconds(2)), 100);
        Assert.AreEqual(3, m.Forecast(3, TimeSpan.Zero, 0, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);
    }

    [TestMethod]
    public void FinalHarvestsLearnedWithoutALimit_PriceTheFinalHarvestOfAMigrationWithOne_OfTheSameTracker()
    {
        // Three paused harvests of 64 MiB took 3 ms in migrations without a limit. A limited
        // migration's pre-copy harvests, against the guest's writes, took 9 ms.
        var history = new DowntimeHistory();
        TransferMeasurements With(long? limit, string tracker) =>
            new(new MigrationOptions { BandwidthLimit = limit, DowntimeHistory = history, TimeProvider = _time }, 64 * MiB, tracker);
        TransferMeasurements unlimited = With(null, "write-protect");
        for (int i = 0; i < 3; i++)
        {
            unlimited.Estimator.ObserveFinalHarvest(TimeSpan.FromMilliseconds(3), 64 * MiB);
        }

        TransferMeasurements limited = With(MiB, "write-protect");
        TransferMeasurements otherTracker = With(MiB, "bitmap");
        Assert.AreNotEqual(unlimited.Estimator.HistoryKey, limited.Estimator.HistoryKey, "the switchovers' line stays apart");
        foreach (TransferMeasurements m in new[] { limited, otherTracker })
        {
            m.TrackingStarted();
            m.RecordHarvest(new HarvestResult(100, TimeSpan.FromMilliseconds(9)), 100);
        }

        Assert.AreEqual(3, limited.Forecast(0, TimeSpan.Zero, 0, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6, "the same tracker's final harvests");
        Assert.AreEqual(9, otherTracker.Forecast(0, TimeSpan.Zero, 0, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6, "another tracker's are not its own");
    }

    [TestMethod]
    public void TheFinalHarvest_IsPricedByTheChunksTheGuestShouldHaveDirtiedSinceTheLastHarvest()
    {
        // This machine's final harvests of 64 MiB: 1 ms and 0.05 ms per dirty 2 MiB chunk. The
        // pre-copy harvests here take no time, so any other price would show.
        TransferMeasurements m = Measurements();
        var history = new DowntimeHistory();
        foreach (ulong chunks in new ulong[] { 0, 10, 20, 30 })
        {
            history.RecordFinalHarvest(m.Estimator.HarvestHistoryKey!, TimeSpan.FromMilliseconds(1 + (0.05 * chunks)), 64 * MiB, chunks);
        }

        m.Estimator.History = history;
        m.TrackingStarted();

        // A random writer: 1,000 pages in 100 ms over 20 chunks. 10 ms on, 100 pages are dirty
        // again: enough to touch all 20 chunks.
        _time.Advance(TimeSpan.FromMilliseconds(100));
        m.RecordHarvest(new HarvestResult(1000, TimeSpan.Zero), 1000, chunks: 20);
        _time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.AreEqual(2, m.Forecast(1, TimeSpan.Zero, 100, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);

        // A sequential one at the same rate fills 2 chunks per 1,000 pages; 10 ms on, 100 pages lie in at most 2.
        _time.Advance(TimeSpan.FromMilliseconds(90));
        m.RecordHarvest(new HarvestResult(1000, TimeSpan.Zero), 1000, chunks: 2);
        _time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.AreEqual(1.1, m.Forecast(2, TimeSpan.Zero, 100, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);

        // After a short round (100 pages in 10 ms, 2 chunks), twice its pages are expected to
        // spread over twice its chunks: 20 ms on, 4.
        m.RecordHarvest(new HarvestResult(100, TimeSpan.Zero), 100, chunks: 2);
        _time.Advance(TimeSpan.FromMilliseconds(20));
        Assert.AreEqual(1.2, m.Forecast(3, TimeSpan.Zero, 200, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);

        // A guest that stopped writing leaves no chunk dirty.
        m.RecordHarvest(new HarvestResult(0, TimeSpan.Zero), 0, chunks: 0);
        Assert.AreEqual(1, m.Forecast(4, TimeSpan.Zero, 0, 0, 0).Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);
    }

    [TestMethod]
    public void Forecast_CountsPagesInWireBytes_WithTheDeferredOnesApart()
    {
        Forecast f = Measurements().Forecast(1, TimeSpan.FromSeconds(2), 10, 3, 0);

        Assert.AreEqual(1, f.Round);
        Assert.AreEqual(10 * Wire, f.PendingBytes);
        Assert.AreEqual(7 * Wire, f.NextRoundBytes);
        Assert.AreEqual(3 * Wire, f.DeferredBytes);
        Assert.AreEqual(MiB, f.BandwidthBytesPerSecond);
    }

    [TestMethod]
    public void Forecast_LeavesOutTheShareOfZeroPagesSeenAfterTheFirstRound()
    {
        TransferMeasurements m = Measurements();
        m.RecordZeroShare(0, 10, 90);
        Assert.AreEqual(10 * Wire, m.Forecast(0, TimeSpan.Zero, 10, 0, 0).PendingBytes, "round 0's zero pages are never-touched memory");

        m.RecordZeroShare(1, 50, 50);
        Assert.AreEqual(5 * Wire, m.Forecast(1, TimeSpan.Zero, 10, 0, 0).PendingBytes);

        m.RecordZeroShare(2, 0, 0);
        Assert.AreEqual(5 * Wire, m.Forecast(2, TimeSpan.Zero, 10, 0, 0).PendingBytes, "an empty round keeps the last share");
    }

    [TestMethod]
    public void Forecast_AddsTheMeasuredFixedCosts_AndTheBurstTheLimiterLetsThrough()
    {
        TransferMeasurements m = Measurements();
        m.Estimator.ObservePause(TimeSpan.FromMilliseconds(5));
        m.Estimator.ObserveResume(TimeSpan.FromMilliseconds(7));
        m.DeviceStateBytes = (int)MiB;

        Forecast f = m.Forecast(0, TimeSpan.Zero, 256, 0, 0);
        Forecast burst = m.Forecast(0, TimeSpan.Zero, 256, 0, (ulong)MiB / 2);

        Assert.AreEqual(TimeSpan.FromMilliseconds(5), f.Breakdown.Pause);
        Assert.AreEqual(TimeSpan.FromMilliseconds(7), f.Breakdown.Resume);
        Assert.AreEqual(1000, f.Breakdown.DeviceState.TotalMilliseconds, 1e-3);
        Assert.AreEqual(256 * (double)Wire / MiB * 1000, f.Breakdown.Transfer.TotalMilliseconds, 1e-3);
        Assert.AreEqual(f.Breakdown.Transfer.TotalMilliseconds - 500, burst.Breakdown.Transfer.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void DeferBudgetPages_IsThePolicysBudgetInPages_AndNothingWhenTheFixedCostsOverrunTheLimit()
    {
        var options = new MigrationOptions { BandwidthLimit = MiB, MaxDowntime = TimeSpan.FromMilliseconds(100), TimeProvider = _time };
        var policy = new MigrationPolicy(options);
        TransferMeasurements m = new(options, 64 * MiB);

        ulong expected = policy.DeferBudgetBytes(new DowntimeBreakdown(TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.FromSeconds(512.0 / MiB), TimeSpan.Zero), MiB) / Wire;
        Assert.IsGreaterThan(0UL, expected);
        Assert.AreEqual(expected, m.DeferBudgetPages(policy));

        m.Estimator.ObservePause(TimeSpan.FromMilliseconds(150));
        Assert.AreEqual(0UL, m.DeferBudgetPages(policy));
    }

    [TestMethod]
    public void DeferBudgetPages_PricesTheFinalHarvest_AsTheForecastDoes_NotAtThePreCopyHarvests()
    {
        var options = new MigrationOptions { BandwidthLimit = MiB, MaxDowntime = TimeSpan.FromMilliseconds(100), TimeProvider = _time };
        var policy = new MigrationPolicy(options);
        TransferMeasurements m = new(options, 64 * MiB);

        // Pre-copy harvests that re-arm what they report: 40 ms over the guest's 64 MiB.
        m.RecordHarvest(new HarvestResult(0, TimeSpan.FromMilliseconds(40)), warmPages: 0);
        Forecast forecast = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 0, deferredPages: 0, burstBytes: 0);
        Assert.AreEqual(40, forecast.Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);
        ulong precopyPriced = m.DeferBudgetPages(policy);

        // A final harvest that only reads, timed at 4 ms: the forecast and the budget both take it.
        m.Estimator.ObserveFinalHarvestProbe(TimeSpan.FromMilliseconds(4), 64 * MiB);
        forecast = m.Forecast(round: 1, TimeSpan.FromSeconds(1), pendingPages: 0, deferredPages: 0, burstBytes: 0);
        Assert.AreEqual(4, forecast.Breakdown.FinalHarvest.TotalMilliseconds, 1e-6);
        ulong expected = policy.DeferBudgetBytes(new DowntimeBreakdown(TimeSpan.Zero, forecast.Breakdown.FinalHarvest, TimeSpan.Zero, TimeSpan.FromSeconds(512.0 / MiB), TimeSpan.Zero), MiB) / Wire;
        Assert.AreEqual(expected, m.DeferBudgetPages(policy));
        Assert.IsGreaterThan(precopyPriced, expected);
    }
}
