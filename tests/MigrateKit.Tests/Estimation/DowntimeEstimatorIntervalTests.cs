using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;

namespace MigrateKit.Tests.Estimation;

/// <summary>
/// DowntimeEstimator's interval: the point corrected by the history, widened by the bandwidth's
/// spread, this migration's send-time errors and what the history still misses.
/// </summary>
[TestClass]
public sealed class DowntimeEstimatorIntervalTests
{
    private const ulong MiB = 1UL << 20;
    private const double Bandwidth = 100.0 * MiB;

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    /// <summary>10 MiB pending at 100 MiB/s: a 100 ms transfer; no dirtying, no device state.</summary>
    private static ForecastInput Input(double? low = null) => new()
    {
        Round = 2,
        Elapsed = TimeSpan.FromSeconds(1),
        PendingBytes = 10 * MiB,
        NextRoundBytes = 10 * MiB,
        DeferredBytes = 0,
        WarmDirtyBytesPerSecond = 0,
        TotalDirtyBytesPerSecond = 0,
        DeviceStateBytes = 0,
        MemoryBytes = 1UL << 30,
        MaxDowntime = Ms(300),
        BandwidthBytesPerSecond = Bandwidth,
        BandwidthLowBytesPerSecond = low,
    };

    private static DowntimeEstimator Estimator()
    {
        var e = new DowntimeEstimator();
        e.ObservePause(Ms(2));
        e.ObserveResume(Ms(3));
        return e;
    }

    [TestMethod]
    public void Interval_WithNothingLearned_IsThePointAndTimingNoise()
    {
        Forecast f = Estimator().Estimate(Input());

        Assert.AreEqual(105.0, f.PredictedDowntime.TotalMilliseconds, 1e-3);

        // 0.5 ms plus 5 % of the 5 ms of fixed costs on either side.
        Assert.AreEqual(105.75, f.DowntimeHigh.TotalMilliseconds, 1e-3);
        Assert.AreEqual(104.25, f.DowntimeLow.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void ALimitersBurst_ShortensThePoint_ButNotTheTop()
    {
        // A full bucket of 4 MiB takes 40 ms off the point; the top counts on no credit.
        Forecast without = Estimator().Estimate(Input());
        Forecast with = Estimator().Estimate(Input() with { BurstBytes = 4 * MiB });

        Assert.AreEqual(without.PredictedDowntime.TotalMilliseconds - 40, with.PredictedDowntime.TotalMilliseconds, 1e-3);
        Assert.AreEqual(without.DowntimeHigh.TotalMilliseconds, with.DowntimeHigh.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void ATransferPricedByTheCaller_ReplacesTheBytesAtTheRate_AndItsBurstCreditIsLeftOutOfTheTop()
    {
        // The engine prices the transfer itself (work per page on both ends, the link's rate): 30 ms
        // after a burst credit of 5 ms, instead of the pending bytes' 100 ms at the rate.
        Forecast bytes = Estimator().Estimate(Input());
        Forecast priced = Estimator().Estimate(Input() with { SwitchoverTransfer = Ms(30), SwitchoverBurstCredit = Ms(5), BurstBytes = 4 * MiB });

        Assert.AreEqual(30.0, priced.Breakdown.Transfer.TotalMilliseconds, 1e-3);
        Assert.AreEqual(bytes.PredictedDowntime.TotalMilliseconds - 70, priced.PredictedDowntime.TotalMilliseconds, 1e-3, "BurstBytes is not credited twice");
        Forecast uncredited = Estimator().Estimate(Input() with { SwitchoverTransfer = Ms(30) });
        Assert.AreEqual(uncredited.DowntimeHigh.TotalMilliseconds + 5, priced.DowntimeHigh.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void Interval_WidensWithTheBandwidthSpread()
    {
        // The low quantile is 80 % of the average: the transfer may take 125 ms instead of 100.
        Forecast f = Estimator().Estimate(Input(low: 0.8 * Bandwidth));

        Assert.AreEqual(105.0, f.PredictedDowntime.TotalMilliseconds, 1e-3);
        Assert.AreEqual(105.0 + 25 + 0.75, f.DowntimeHigh.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void Interval_WidensWithThisMigrationsSendErrors()
    {
        DowntimeEstimator e = Estimator();
        e.ObserveSend(Ms(100), Ms(130));
        e.ObserveSend(Ms(100), Ms(90));

        Forecast f = e.Estimate(Input());

        Assert.AreEqual(105.0 + 30 + 0.75, f.DowntimeHigh.TotalMilliseconds, 1e-3, "a round took 1.3x its forecast");
        Assert.AreEqual(105.0 - 10 - 0.75, f.DowntimeLow.TotalMilliseconds, 1e-3, "a round took 0.9x its forecast");
    }

    [TestMethod]
    public void WithoutEnoughHistory_TheBoundAllowsTwoOfTheSlowestExchanges()
    {
        DowntimeEstimator e = Estimator();
        e.ObserveRoundTrip(Ms(1));
        e.ObserveRoundTrip(Ms(6));
        e.ObserveRoundTrip(Ms(2));

        Forecast f = e.Estimate(Input());

        Assert.AreEqual(Ms(6), e.SlowestRoundTrip);
        Assert.AreEqual(105.0, f.PredictedDowntime.TotalMilliseconds, 1e-3, "the point does not move");
        Assert.AreEqual(105.0 + 12 + 0.75, f.DowntimeHigh.TotalMilliseconds, 1e-3, "Complete to Ready and Commit to the Ack");
    }

    [TestMethod]
    public void WithEnoughHistory_ItsSpreadReplacesTheExchangeAllowance()
    {
        var history = new DowntimeHistory();
        for (int i = 0; i < 5; i++)
        {
            history.Record("k", Ms(100), Ms(5), Ms(107));
        }

        DowntimeEstimator e = Estimator();
        e.History = history;
        e.HistoryKey = "k";
        e.ObserveRoundTrip(Ms(6));

        Forecast f = e.Estimate(Input());

        Assert.AreEqual(107.0, f.PredictedDowntime.TotalMilliseconds, 1e-3);
        Assert.AreEqual(107.0 + 0 + 0.85, f.DowntimeHigh.TotalMilliseconds, 1e-3, "five alike switchovers: nothing missed, only timing noise");
    }

    [TestMethod]
    public void Point_IsCorrectedByTheHistory_AndTheIntervalCarriesWhatItMisses()
    {
        var history = new DowntimeHistory();
        DowntimeEstimator e = Estimator();
        e.History = history;
        e.HistoryKey = "k";

        // Three earlier switchovers of this kind: 12, 16 and 14 ms over the uncorrected forecast.
        e.Estimate(Input());
        e.ObserveSwitchover(Ms(117));
        e.Estimate(Input());
        e.ObserveSwitchover(Ms(121));
        e.Estimate(Input());
        e.ObserveSwitchover(Ms(119));

        Forecast f = e.Estimate(Input());

        Assert.AreEqual(105.0 + 14, f.PredictedDowntime.TotalMilliseconds, 1e-3, "the median bias lands on the resume part");
        Assert.AreEqual(3.0 + 14, f.Breakdown.Resume.TotalMilliseconds, 1e-3);
        Assert.AreEqual(14.0, f.FixedCorrection.TotalMilliseconds, 1e-3, "the forecast says how much of the resume part is the history's");
        // The timing noise is 0.5 ms plus 5 % of the corrected fixed costs (2 + 17 ms).
        Assert.AreEqual(119.0 + 2 + 1.45, f.DowntimeHigh.TotalMilliseconds, 1e-3);
        Assert.AreEqual(119.0 - 2 - 1.45, f.DowntimeLow.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void ADestinationWithoutSwitchovers_IsPricedByEveryDestinations_ThenByItsOwn()
    {
        // Other destinations' switchovers took 20 ms more than forecast.
        var history = new DowntimeHistory();
        for (int i = 0; i < 3; i++)
        {
            history.Record("k", Ms(100), Ms(5), Ms(125));
        }

        DowntimeEstimator e = Estimator();
        e.History = history;
        e.HistoryKey = "k@tcp:10.0.0.2";
        e.HistoryFallbackKey = "k";
        Assert.AreEqual(20.0, e.Estimate(Input()).FixedCorrection.TotalMilliseconds, 1e-3, "a new destination: every destination's history");

        // Its first switchover, 2 ms over, and every destination's has it too: a third its own
        // (2 ms), two thirds every destination's (the median of 20, 20, 20 and 2).
        e.ObserveSwitchover(Ms(107));
        Assert.AreEqual(1, history.Count("k@tcp:10.0.0.2"));
        Assert.AreEqual(4, history.Count("k"));
        Assert.AreEqual((2.0 / 3) + (20.0 * 2 / 3), e.Estimate(Input()).FixedCorrection.TotalMilliseconds, 1e-3);

        // From its third on, its own alone.
        e.ObserveSwitchover(Ms(107));
        e.Estimate(Input());
        e.ObserveSwitchover(Ms(107));
        Assert.AreEqual(2.0, e.Estimate(Input()).FixedCorrection.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void FixedCorrection_IsZeroWithoutHistory_AndNeverTakesTheResumePartBelowZero()
    {
        DowntimeEstimator e = Estimator();
        Assert.AreEqual(TimeSpan.Zero, e.Estimate(Input()).FixedCorrection);

        // Switchovers 8 ms under their forecast: the resume part (3 ms) goes to zero, and the correction says 3 ms of it went.
        var history = new DowntimeHistory();
        for (int i = 0; i < 3; i++)
        {
            history.Record("k", Ms(100), Ms(5), Ms(97));
        }

        e.History = history;
        e.HistoryKey = "k";
        Forecast f = e.Estimate(Input());
        Assert.AreEqual(TimeSpan.Zero, f.Breakdown.Resume);
        Assert.AreEqual(-3.0, f.FixedCorrection.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void Interval_NeverGoesBelowThePauseAndHarvest()
    {
        var history = new DowntimeHistory();
        history.Record("k", Ms(100), Ms(5), Ms(300));
        history.Record("k", Ms(100), Ms(5), Ms(20));
        DowntimeEstimator e = Estimator();
        e.History = history;
        e.HistoryKey = "k";

        Forecast f = e.Estimate(Input());

        Assert.IsGreaterThanOrEqualTo(Ms(2), f.DowntimeLow);
        Assert.IsLessThanOrEqualTo(f.PredictedDowntime, f.DowntimeLow);
        Assert.IsGreaterThanOrEqualTo(f.PredictedDowntime, f.DowntimeHigh);
    }

    [TestMethod]
    public void Forecast_WithoutAnInterval_HasThePointAtBothEnds()
    {
        var breakdown = new DowntimeBreakdown(Ms(1), Ms(1), Ms(10), TimeSpan.Zero, Ms(1));
        var f = new Forecast
        {
            Round = 1,
            PredictedDowntime = breakdown.Total,
            Breakdown = breakdown,
            Verdict = ConvergenceVerdict.Converging,
            BandwidthBytesPerSecond = Bandwidth,
            DirtyBytesPerSecond = 0,
            PendingBytes = MiB,
            NextRoundBytes = MiB,
            DeferredBytes = 0,
            ConvergenceRatio = 0,
        };

        Assert.AreEqual(f.PredictedDowntime, f.DowntimeLow);
        Assert.AreEqual(f.PredictedDowntime, f.DowntimeHigh);
    }
}
