using System;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class JobForecasterTests
{
    private const ulong MiB = 1UL << 20;

    private static JobStats Stats(ulong iteration, ulong remainingMiB, double bpsMiB, ulong dirtyPagesPerSecond) => new()
    {
        Type = DomainJobType.Unbounded,
        MemoryIteration = iteration,
        MemoryRemaining = remainingMiB * MiB,
        MemoryTotal = 1024 * MiB,
        MemoryBps = (ulong)(bpsMiB * MiB),
        MemoryDirtyRate = dirtyPagesPerSecond,
        MemoryPageSize = 4096,
    };

    [TestMethod]
    public void Observe_WithoutStatistics_MakesNoForecast()
    {
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), null, null);

        Assert.IsNull(f.Observe(new JobStats { Type = DomainJobType.Unbounded }, TimeSpan.Zero));
    }

    [TestMethod]
    public void Observe_RateLimited_QemuExpectsRemainingOverTheLimitButTheStopAndCopyRunsAtFullSpeed()
    {
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, 1000.0 * MiB);

        Forecast forecast = f.Observe(Stats(1, 100, 100, 0), TimeSpan.FromSeconds(1))!;

        Assert.AreEqual(1000, f.QemuExpectedDowntime.TotalMilliseconds, 1);
        Assert.AreEqual(100, forecast.PredictedDowntime.TotalMilliseconds, 1);
    }

    [TestMethod]
    public void Observe_AfterASync_PendingGrowsAtTheDirtyRateUpToTheWorkingSet()
    {
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, 1000.0 * MiB);
        const ulong pagesPerSecondAt100MiB = 25600;
        f.Observe(Stats(2, 99, 100, pagesPerSecondAt100MiB), TimeSpan.FromSeconds(10));

        // Half a second later 50 MiB were sent and the guest dirtied 50 MiB again.
        f.Observe(Stats(2, 49, 100, pagesPerSecondAt100MiB), TimeSpan.FromSeconds(10.5));
        Assert.AreEqual(99 * MiB, f.PendingBytes, (double)MiB);

        // Much later the dirty set cannot exceed the working set seen at the sync.
        f.Observe(Stats(2, 10, 100, pagesPerSecondAt100MiB), TimeSpan.FromSeconds(20));
        Assert.AreEqual(99 * MiB, f.PendingBytes);
        Assert.AreEqual(2, f.Iteration);
    }

    [TestMethod]
    public void Observe_Unlimited_UsesThePeakPreCopyBandwidthForTheStopAndCopy()
    {
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), null, null);
        f.Observe(Stats(1, 500, 800, 0), TimeSpan.FromSeconds(0.5));

        Forecast forecast = f.Observe(Stats(1, 400, 200, 0), TimeSpan.FromSeconds(0.6))!;

        Assert.AreEqual(400.0 / 800 * 1000, forecast.PredictedDowntime.TotalMilliseconds, 1);
        Assert.AreEqual(2000, f.QemuExpectedDowntime.TotalMilliseconds, 1);
    }

    [TestMethod]
    public void LearnBursts_UnderARateLimit_TimesOnceFromTheSecondIteration_AndTheForecastUsesTheSpeed()
    {
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, null);
        Assert.IsFalse(f.WantsBursts(Stats(1, 500, 100, 0)), "the first copy fills the destination's memory");
        Assert.IsTrue(f.WantsBursts(Stats(2, 100, 100, 0)));

        f.LearnBursts(2000.0 * MiB, 2);

        Assert.IsFalse(f.WantsBursts(Stats(3, 100, 100, 0)));
        Assert.IsTrue(f.SpeedLearnedInRun);
        Assert.AreEqual(2000.0 * MiB, f.MeasuredSpeed);
        Forecast forecast = f.Observe(Stats(2, 100, 100, 0), TimeSpan.FromSeconds(3))!;
        Assert.AreEqual(50, forecast.PredictedDowntime.TotalMilliseconds, 1);
    }

    [TestMethod]
    public void LearnBursts_NotAboveTheRateLimit_IsDroppedAndTriedAgainAtLaterIterations_AndTheForecastStaysAtTheLimit()
    {
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, null);

        f.LearnBursts(120.0 * MiB, 2);

        // Tried again at the next iterations, a few times.
        Assert.IsFalse(f.WantsBursts(Stats(2, 100, 100, 0)));
        Assert.IsTrue(f.WantsBursts(Stats(3, 100, 100, 0)));
        f.LearnBursts(null, 3);
        f.LearnBursts(null, 4);
        Assert.IsFalse(f.WantsBursts(Stats(5, 100, 100, 0)));
        Assert.IsFalse(f.SpeedLearnedInRun);
        Assert.IsNull(f.MeasuredSpeed);
        Assert.AreEqual(1000, f.Observe(Stats(2, 100, 100, 0), TimeSpan.FromSeconds(3))!.PredictedDowntime.TotalMilliseconds, 1);
    }

    [TestMethod]
    public void LearnBursts_WithAKnownSpeed_IsMeasuredButTheKnownSpeedStays()
    {
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, 1000.0 * MiB);

        f.LearnBursts(3000.0 * MiB, 2);

        Assert.IsFalse(f.SpeedLearnedInRun);
        Assert.AreEqual(3000.0 * MiB, f.MeasuredSpeed);
        Assert.AreEqual(1000.0 * MiB, f.SwitchoverBandwidth);
    }

    private static JobStats WithDeltas(JobStats s, ulong normal, ulong deltaPages, ulong deltaBytes) => s with
    {
        MemoryNormal = normal,
        MemoryNormalBytes = normal * 4096,
        CompressionPages = deltaPages,
        CompressionBytes = deltaBytes,
        CompressionCacheMisses = 0,
    };

    [TestMethod]
    public void Observe_UnderXbzrle_PricesTheStopAndCopyByWhatTheDeltasCost_AtTheEncodingSpeed()
    {
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, null, deltas: true);
        f.Observe(WithDeltas(Stats(3, 99, 5, 25344), 50000, 0, 0), TimeSpan.FromSeconds(2));
        Forecast before = f.Observe(WithDeltas(Stats(3, 99, 5, 25344), 50000, 0, 0), TimeSpan.FromSeconds(2.1))!;

        // Iteration 3 encoded the 99 MiB set in 10 bytes a page in 200 ms: 5 MiB/s on the wire, under the limit.
        Forecast after = f.Observe(WithDeltas(Stats(4, 99, 5, 25344), 50000, 25344, 253440), TimeSpan.FromSeconds(2.2))!;

        Assert.IsFalse(f.WantsBursts(Stats(4, 99, 5, 25344)), "deltas have no bursts to time");
        Assert.IsTrue(new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, null, deltas: true).WantsBursts(Stats(2, 99, 100, 25344)),
            "the second iteration fills the cache: whole pages, in bursts");
        Assert.IsGreaterThan(900, before.PredictedDowntime.TotalMilliseconds, "before any delta, whole pages at the 5 MiB/s seen");
        Assert.AreEqual(200, after.PredictedDowntime.TotalMilliseconds, 15, "the set again at the encoding speed it showed");
        Assert.AreEqual(99.0 * MiB / (25344 / 0.2 * 4096) * 1000, after.Breakdown.Transfer.TotalMilliseconds, 1, "pending over the pages per second encoded");
        Assert.AreEqual(5.0 * MiB, f.Bandwidth, 1, "QEMU's own figure stays what it reports");
    }

    [TestMethod]
    public void Observe_UnderXbzrle_AtTheRateLimit_PricesByTheWireRatio()
    {
        // Deltas of half a page, wire-bound at the 100 MiB/s limit: the stop-and-copy at 1000 MiB/s sends half of each page.
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, 1000.0 * MiB, deltas: true);
        f.Observe(WithDeltas(Stats(3, 100, 100, 0), 50000, 0, 0), TimeSpan.FromSeconds(2));

        Forecast forecast = f.Observe(WithDeltas(Stats(4, 100, 100, 0), 50000, 51200, 51200 * 2048), TimeSpan.FromSeconds(3))!;

        Assert.AreEqual(50, forecast.Breakdown.Transfer.TotalMilliseconds, 1, "100 MiB of pages at 2000 MiB/s of page data");
        Assert.AreEqual(200.0 * MiB, forecast.BandwidthBytesPerSecond, 1e6, "pre-copy moves twice the page data it sends");
        Assert.AreEqual(50, forecast.PredictedDowntime.TotalMilliseconds, 5);
    }

    [TestMethod]
    public void Observe_FirstPassOverMostlyZeroMemory_PricesTheRestAtTheShareOfDataPages()
    {
        // An idle 1 GiB guest half copied: 131,072 pages done, 1,000 of them with data.
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, null);
        JobStats halfway = Stats(1, 512, 100, 0) with { MemoryNormal = 1000, MemoryNormalBytes = 1000 * 4096, MemoryConstant = 130072 };

        Forecast forecast = f.Observe(halfway, TimeSpan.FromSeconds(1))!;

        Assert.AreEqual(5120, f.QemuExpectedDowntime.TotalMilliseconds, 1, "QEMU's own view: every remaining page at the limit");
        Assert.IsLessThan(100, forecast.Breakdown.Transfer.TotalMilliseconds, "512 MiB of mostly zero pages");
        Assert.AreEqual(512.0 * MiB / (100.0 * MiB / 0.01) * 1000, forecast.Breakdown.Transfer.TotalMilliseconds, 1, "the share is floored at 1 %");
    }

    [TestMethod]
    public void Observe_FirstPass_PricesTheRestByThePagesSinceTheLastPoll()
    {
        // The guest's data sat in the first 20 MiB; the pages since the last poll were all zero.
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, null);
        f.Observe(Stats(1, 1000, 100, 0) with { MemoryNormal = 5120, MemoryNormalBytes = 5120 * 4096, MemoryConstant = 1024 }, TimeSpan.FromSeconds(0.1));

        Forecast later = f.Observe(Stats(1, 500, 100, 0) with { MemoryNormal = 5120, MemoryNormalBytes = 5120 * 4096, MemoryConstant = 129024 }, TimeSpan.FromSeconds(0.2))!;

        Assert.AreEqual(500.0 * MiB / (100.0 * MiB / JobForecaster.MinWireRatio) * 1000, later.Breakdown.Transfer.TotalMilliseconds, 1,
            "the zero pages since the last poll, not the job's 4 % of data, price the rest");
    }

    [TestMethod]
    public void Observe_FirstPass_AQemuSwitchoverSendsAtMostWhatFitsItsLimit()
    {
        var f = new JobForecaster(new DowntimeEstimator(), TimeSpan.FromMilliseconds(300), 100.0 * MiB, null);

        f.Observe(Stats(1, 1000, 100, 0), TimeSpan.FromSeconds(0.1), TimeSpan.FromMilliseconds(300));

        Assert.AreEqual(30 * MiB, f.PendingBytes, (double)MiB, "QEMU switches in the first pass only with 100 MiB/s x 300 ms left");
        f.Observe(Stats(2, 50, 100, 0), TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(300));
        Assert.AreEqual(50 * MiB, f.PendingBytes, "after the first pass, what remains");
    }
}
