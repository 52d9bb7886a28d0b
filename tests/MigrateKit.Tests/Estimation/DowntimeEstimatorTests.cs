using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;

namespace MigrateKit.Tests.Estimation;

/// <summary>
/// DowntimeEstimator: downtime = pause + final harvest + (pending + dirtied while pausing) / bandwidth
/// + device state / bandwidth + resume; verdicts from the trend of what is left; total time.
/// </summary>
[TestClass]
public sealed class DowntimeEstimatorTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;
    private const double Bandwidth = 100.0 * MiB; // 104 857 600 B/s

    private static ForecastInput Input(
        ulong pending,
        double warm = 0.5 * Bandwidth,
        ulong? next = null,
        ulong deferred = 0,
        double? totalDirty = null,
        ulong deviceState = 0,
        ulong memory = GiB,
        int maxDowntimeMs = 100,
        double bandwidth = Bandwidth,
        int round = 1,
        TimeSpan? elapsed = null) =>
        new ForecastInput
        {
            Round = round,
            Elapsed = elapsed ?? TimeSpan.FromSeconds(2),
            PendingBytes = pending,
            NextRoundBytes = next ?? pending - deferred,
            DeferredBytes = deferred,
            WarmDirtyBytesPerSecond = warm,
            TotalDirtyBytesPerSecond = totalDirty ?? warm,
            DeviceStateBytes = deviceState,
            MemoryBytes = memory,
            MaxDowntime = TimeSpan.FromMilliseconds(maxDowntimeMs),
            BandwidthBytesPerSecond = bandwidth,
        };

    private static void AreClose(TimeSpan expected, TimeSpan actual, string? what = null) =>
        Assert.IsLessThanOrEqualTo(1L, Math.Abs(expected.Ticks - actual.Ticks), $"{what}: expected {expected}, got {actual}");

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [TestMethod]
    public void Downtime_IsTheSumOfMeasuredParts()
    {
        var estimator = new DowntimeEstimator();
        estimator.ObservePause(Ms(10));
        estimator.ObserveResume(Ms(20));
        estimator.ObserveHarvest(Ms(4), GiB); // 4 ms per GiB

        Forecast f = estimator.Estimate(Input(
            pending: 10 * MiB,
            warm: 50.0 * MiB,
            next: 8 * MiB,
            deferred: 2 * MiB,
            totalDirty: 10.0 * MiB,
            deviceState: 1 * MiB,
            memory: 256 * MiB,
            maxDowntimeMs: 300,
            round: 7,
            elapsed: TimeSpan.FromSeconds(5)));

        // Pause 10 ms (measured).
        Assert.AreEqual(Ms(10), f.Breakdown.Pause);

        // Harvest: 4 ms/GiB over 256 MiB = 1 ms.
        AreClose(Ms(1), f.Breakdown.FinalHarvest, "harvest");

        // Transfer: (10 MiB pending + 10 MiB/s * 10 ms dirtied while pausing) / 100 MiB/s = 100 ms + 1 ms.
        AreClose(Ms(101), f.Breakdown.Transfer, "transfer");

        // Device state: 1 MiB / 100 MiB/s = 10 ms.
        AreClose(Ms(10), f.Breakdown.DeviceState, "device state");

        // Resume 20 ms (reported by the destination).
        Assert.AreEqual(Ms(20), f.Breakdown.Resume);

        AreClose(Ms(142), f.PredictedDowntime, "downtime");
        Assert.AreEqual(f.Breakdown.Total, f.PredictedDowntime);
        AreClose(Ms(41), f.Breakdown.Fixed, "fixed");

        // It fits 300 ms: converging, and the total is elapsed + the switchover.
        Assert.AreEqual(ConvergenceVerdict.Converging, f.Verdict);
        Assert.IsNotNull(f.PredictedTotalTime);
        AreClose(TimeSpan.FromSeconds(5) + Ms(142), f.PredictedTotalTime.Value, "total");

        Assert.AreEqual(7, f.Round);
        Assert.AreEqual(Bandwidth, f.BandwidthBytesPerSecond);
        Assert.AreEqual(50.0 * MiB, f.DirtyBytesPerSecond);
        Assert.AreEqual(0.5, f.ConvergenceRatio, 1e-12);
        Assert.AreEqual(10 * MiB, f.PendingBytes);
        Assert.AreEqual(8 * MiB, f.NextRoundBytes);
        Assert.AreEqual(2 * MiB, f.DeferredBytes);
    }

    [TestMethod]
    public void DirtyingWhilePausing_UsesTheTotalRate_NotTheWarmOne()
    {
        var estimator = new DowntimeEstimator();
        estimator.ObservePause(Ms(100));

        // 20 MiB/s of all pages for 100 ms = 2 MiB more to send: 20 ms at 100 MiB/s.
        Forecast f = estimator.Estimate(Input(pending: 0, warm: 1.0 * MiB, totalDirty: 20.0 * MiB, maxDowntimeMs: 1000));
        AreClose(Ms(20), f.Breakdown.Transfer, "transfer");
        AreClose(Ms(120), f.PredictedDowntime, "downtime");

        // The convergence ratio uses the warm rate: 1 MiB/s over 100 MiB/s.
        Assert.AreEqual(0.01, f.ConvergenceRatio, 1e-12);
    }

    [TestMethod]
    public void DirtyingSinceTheHarvest_AddsTheWarmRateOverThatTime()
    {
        var estimator = new DowntimeEstimator();
        estimator.ObservePause(Ms(10));

        // Pause: 20 MiB/s of all pages for 10 ms. Since the harvest: 5 MiB/s of warm pages for
        // 40 ms (the deferred hot pages are pending already). 0.2 + 0.2 MiB: 4 ms at 100 MiB/s.
        ForecastInput input = Input(pending: 0, warm: 5.0 * MiB, totalDirty: 20.0 * MiB, maxDowntimeMs: 1000) with { DirtyingSinceHarvest = Ms(40) };
        Forecast f = estimator.Estimate(input);
        AreClose(Ms(4), f.Breakdown.Transfer, "transfer");

        // Unknown (zero), only the pause counts: 2 ms.
        AreClose(Ms(2), estimator.Estimate(input with { DirtyingSinceHarvest = TimeSpan.Zero }).Breakdown.Transfer, "transfer without it");
    }

    [TestMethod]
    public void TheFinalHarvest_IsPricedFromThePausedOnes_OnceTheHistoryHasThree()
    {
        var estimator = new DowntimeEstimator { History = new DowntimeHistory(), HistoryKey = "k" };
        estimator.ObserveHarvest(Ms(8), GiB);
        ForecastInput input = Input(pending: 0);
        Assert.AreEqual(8, estimator.Estimate(input).Breakdown.FinalHarvest.TotalMilliseconds, 1e-3, "the running harvests, before any switchover");

        estimator.ObserveFinalHarvest(Ms(2), GiB);
        estimator.ObserveFinalHarvest(Ms(2.4), GiB);
        estimator.ObserveFinalHarvest(Ms(3), GiB);

        Assert.AreEqual(2.4, estimator.Estimate(input).Breakdown.FinalHarvest.TotalMilliseconds, 1e-3);
    }

    [TestMethod]
    public void WithoutObservations_OnlyTheBytesCount()
    {
        var estimator = new DowntimeEstimator();
        Assert.AreEqual(TimeSpan.Zero, estimator.PauseCost);
        Assert.AreEqual(TimeSpan.Zero, estimator.ResumeCost);
        Assert.AreEqual(TimeSpan.Zero, estimator.HarvestCostPerGiB);

        Forecast f = estimator.Estimate(Input(pending: 25 * MiB, deviceState: 5 * MiB));
        Assert.AreEqual(TimeSpan.Zero, f.Breakdown.Pause);
        Assert.AreEqual(TimeSpan.Zero, f.Breakdown.FinalHarvest);
        Assert.AreEqual(TimeSpan.Zero, f.Breakdown.Resume);
        AreClose(Ms(250), f.Breakdown.Transfer, "transfer");
        AreClose(Ms(50), f.Breakdown.DeviceState, "device");
        AreClose(Ms(300), f.PredictedDowntime, "downtime");
    }

    [TestMethod]
    public void ZeroBandwidth_IsTreatedAsOneBytePerSecond()
    {
        var estimator = new DowntimeEstimator();
        Forecast f = estimator.Estimate(Input(pending: 1000, bandwidth: 0, warm: 0));
        Assert.AreEqual(1d, f.BandwidthBytesPerSecond);
        Assert.AreEqual(TimeSpan.FromSeconds(1000), f.Breakdown.Transfer);
    }

    [TestMethod]
    public void ObservePause_KeepsTheLargerOfNewAndHalfTheOld()
    {
        var estimator = new DowntimeEstimator();
        estimator.ObservePause(Ms(100));
        Assert.AreEqual(Ms(100), estimator.PauseCost);
        estimator.ObservePause(Ms(20));
        Assert.AreEqual(Ms(50), estimator.PauseCost);
        estimator.ObservePause(Ms(10));
        Assert.AreEqual(Ms(25), estimator.PauseCost);
        estimator.ObservePause(Ms(60));
        Assert.AreEqual(Ms(60), estimator.PauseCost);
    }

    [TestMethod]
    public void ObserveResume_TakesTheLatest()
    {
        var estimator = new DowntimeEstimator();
        estimator.ObserveResume(Ms(30));
        estimator.ObserveResume(Ms(5));
        Assert.AreEqual(Ms(5), estimator.ResumeCost);
    }

    [TestMethod]
    public void ObserveHarvest_AveragesButKeepsTheWorse()
    {
        var estimator = new DowntimeEstimator();
        estimator.ObserveHarvest(Ms(2), GiB / 2);   // 4 ms/GiB
        AreClose(Ms(4), estimator.HarvestCostPerGiB, "first");
        estimator.ObserveHarvest(Ms(2), GiB);       // 2 ms/GiB: average (4 + 2) / 2 = 3 beats 2
        AreClose(Ms(3), estimator.HarvestCostPerGiB, "average");
        estimator.ObserveHarvest(Ms(10), GiB);      // 10 ms/GiB beats the average 6.5
        AreClose(Ms(10), estimator.HarvestCostPerGiB, "worse");

        // Empty observations are ignored.
        estimator.ObserveHarvest(TimeSpan.Zero, GiB);
        estimator.ObserveHarvest(Ms(50), 0);
        AreClose(Ms(10), estimator.HarvestCostPerGiB, "ignored");

        // The final harvest covers all of memory: 10 ms/GiB * 4 GiB.
        Forecast f = estimator.Estimate(Input(pending: 0, memory: 4 * GiB, maxDowntimeMs: 1000));
        AreClose(Ms(40), f.Breakdown.FinalHarvest, "harvest");
    }

    [TestMethod]
    public void AFinalHarvestTimedInTheMigration_PricesTheSwitchoversUntilTheHistoryCan()
    {
        var history = new DowntimeHistory();
        var estimator = new DowntimeEstimator { History = history, HistoryKey = "k" };
        estimator.ObserveHarvest(Ms(8), GiB);
        AreClose(Ms(8), estimator.Estimate(Input(pending: 0, memory: GiB)).Breakdown.FinalHarvest, "the pre-copy harvests, without a probe");

        estimator.ObserveFinalHarvestProbe(Ms(1), GiB / 2);
        estimator.ObserveFinalHarvestProbe(TimeSpan.Zero, GiB);
        estimator.ObserveFinalHarvestProbe(Ms(9), 0);
        estimator.ObserveHarvest(Ms(12), GiB);
        AreClose(Ms(2), estimator.Estimate(Input(pending: 0, memory: GiB)).Breakdown.FinalHarvest, "the probe, 2 ms per GiB; empty probes ignored");

        for (int i = 0; i < 3; i++)
        {
            history.RecordFinalHarvest("k", Ms(3), GiB);
        }

        AreClose(Ms(3), estimator.Estimate(Input(pending: 0, memory: GiB)).Breakdown.FinalHarvest, "the history's final harvests");
    }

    [TestMethod]
    public void FirstTwoRounds_AreConvergingOnlyIfTheRatioIsLow()
    {
        var low = new DowntimeEstimator();
        Assert.AreEqual(ConvergenceVerdict.Converging, low.Estimate(Input(pending: 100 * MiB, warm: 0.94 * Bandwidth)).Verdict);
        Assert.AreEqual(ConvergenceVerdict.Converging, low.Estimate(Input(pending: 200 * MiB, warm: 0.94 * Bandwidth)).Verdict);

        var high = new DowntimeEstimator();
        Assert.AreEqual(ConvergenceVerdict.Unknown, high.Estimate(Input(pending: 100 * MiB, warm: 0.95 * Bandwidth)).Verdict);
        Assert.AreEqual(ConvergenceVerdict.Unknown, high.Estimate(Input(pending: 50 * MiB, warm: 2 * Bandwidth)).Verdict);
    }

    [TestMethod]
    [DataRow(100UL, 50UL, 25UL, 0.96, ConvergenceVerdict.Converging, DisplayName = "halving, ratio under 1")]
    [DataRow(100UL, 50UL, 25UL, 1.0, ConvergenceVerdict.Stalled, DisplayName = "halving, but ratio 1")]
    [DataRow(100UL, 100UL, 100UL, 0.5, ConvergenceVerdict.Stalled, DisplayName = "flat")]
    [DataRow(100UL, 97UL, 95UL, 0.5, ConvergenceVerdict.Stalled, DisplayName = "shrinking under 5 % a round")]
    [DataRow(100UL, 150UL, 225UL, 0.5, ConvergenceVerdict.Diverging, DisplayName = "growing")]
    [DataRow(100UL, 100UL, 100UL, 1.2, ConvergenceVerdict.Diverging, DisplayName = "flat, ratio over 1.05")]
    [DataRow(100UL, 100UL, 100UL, 1.04, ConvergenceVerdict.Stalled, DisplayName = "flat, ratio 1.04")]
    public void ThirdRound_VerdictFollowsTheTrend(ulong first, ulong second, ulong third, double ratio, ConvergenceVerdict expected)
    {
        var estimator = new DowntimeEstimator();
        double warm = ratio * Bandwidth;

        // All three are far over the 100 ms limit (25 MiB is 250 ms at 100 MiB/s).
        estimator.Estimate(Input(pending: first * MiB, warm: warm));
        estimator.Estimate(Input(pending: second * MiB, warm: warm));
        Forecast f = estimator.Estimate(Input(pending: third * MiB, warm: warm));
        Assert.AreEqual(expected, f.Verdict);
    }

    [TestMethod]
    public void Verdict_LooksAtTheLastThreeRoundsOnly()
    {
        var estimator = new DowntimeEstimator();
        double warm = 0.5 * Bandwidth;
        estimator.Estimate(Input(pending: 800 * MiB, warm: warm));
        estimator.Estimate(Input(pending: 400 * MiB, warm: warm));
        Assert.AreEqual(ConvergenceVerdict.Converging, estimator.Estimate(Input(pending: 200 * MiB, warm: warm)).Verdict);
        estimator.Estimate(Input(pending: 200 * MiB, warm: warm));

        // 400 -> 200 -> 200 -> 200: the last three are flat, the earlier halving no longer counts.
        Assert.AreEqual(ConvergenceVerdict.Stalled, estimator.Estimate(Input(pending: 200 * MiB, warm: warm)).Verdict);
    }

    [TestMethod]
    public void Verdict_FromNothingPendingToSomething_IsDiverging()
    {
        var estimator = new DowntimeEstimator();
        double warm = 0.5 * Bandwidth;

        // Nothing pending fits any limit; then 0 -> 0 -> 100 MiB counts as doubling.
        Assert.AreEqual(ConvergenceVerdict.Converging, estimator.Estimate(Input(pending: 0, warm: warm)).Verdict);
        estimator.Estimate(Input(pending: 0, warm: warm));
        Assert.AreEqual(ConvergenceVerdict.Diverging, estimator.Estimate(Input(pending: 100 * MiB, warm: warm)).Verdict);
    }

    [TestMethod]
    public void AFittingSwitchover_IsConverging_WhateverTheTrend()
    {
        var estimator = new DowntimeEstimator();
        double warm = 3 * Bandwidth;
        estimator.Estimate(Input(pending: 100 * MiB, warm: warm));
        estimator.Estimate(Input(pending: 150 * MiB, warm: warm));
        estimator.Estimate(Input(pending: 225 * MiB, warm: warm));

        // 1 MiB is 10 ms at 100 MiB/s: within the 100 ms limit.
        Forecast f = estimator.Estimate(Input(pending: 1 * MiB, warm: warm));
        Assert.AreEqual(ConvergenceVerdict.Converging, f.Verdict);
        Assert.IsNotNull(f.PredictedTotalTime);
    }

    [TestMethod]
    public void PredictedTotal_FollowsTheGeometricRounds()
    {
        var estimator = new DowntimeEstimator();

        // Limit 125 ms at 100 MiB/s: 12.5 MiB, of which 2 MiB are deferred: 10.5 MiB for the rest.
        // Rounds of 80, 40, 20 MiB (q = 0.5) take 1.4 s; then 10 MiB are left (<= 10.5 MiB), and the
        // switchover sends 2 + 10 MiB in 0.12 s. From 2 s elapsed: 3.52 s.
        Forecast f = estimator.Estimate(Input(pending: 82 * MiB, next: 80 * MiB, deferred: 2 * MiB, warm: 0.5 * Bandwidth, maxDowntimeMs: 125));
        Assert.IsGreaterThan(Ms(125), f.PredictedDowntime);
        Assert.IsNotNull(f.PredictedTotalTime);
        AreClose(TimeSpan.FromSeconds(3.52), f.PredictedTotalTime.Value, "total");
    }

    [TestMethod]
    public void PredictedTotal_CountsTheFixedCosts()
    {
        var estimator = new DowntimeEstimator();
        estimator.ObserveResume(Ms(25));

        // Budget (125 - 25) ms * 100 MiB/s - 2 MiB deferred = 8 MiB. Rounds of 80, 40, 20, 10 MiB
        // (1.5 s) leave 5 MiB; the switchover takes 25 ms + (2 + 5) MiB / 100 MiB/s = 95 ms.
        Forecast f = estimator.Estimate(Input(pending: 82 * MiB, next: 80 * MiB, deferred: 2 * MiB, warm: 0.5 * Bandwidth, maxDowntimeMs: 125));
        Assert.IsNotNull(f.PredictedTotalTime);
        AreClose(TimeSpan.FromSeconds(2 + 1.5 + 0.095), f.PredictedTotalTime.Value, "total");
    }

    [TestMethod]
    public void PredictedTotal_IsNull_WhenItWouldNotConverge()
    {
        // The guest dirties as fast as the link sends.
        Assert.IsNull(new DowntimeEstimator().Estimate(Input(pending: 80 * MiB, warm: Bandwidth)).PredictedTotalTime);

        // The deferred pages alone overrun the budget (20 MiB > 10 MiB).
        Assert.IsNull(new DowntimeEstimator().Estimate(Input(pending: 100 * MiB, next: 80 * MiB, deferred: 20 * MiB, warm: 0.1 * Bandwidth)).PredictedTotalTime);

        // Fixed costs alone overrun the limit.
        var slow = new DowntimeEstimator();
        slow.ObserveResume(Ms(150));
        Assert.IsNull(slow.Estimate(Input(pending: 80 * MiB, warm: 0.1 * Bandwidth)).PredictedTotalTime);

        // Nothing left for pre-copy rounds (everything pending is deferred), though the deferred
        // pages fit the budget: what the guest dirties while pausing (10 GiB/s for 10 ms) does not.
        var pausing = new DowntimeEstimator();
        pausing.ObservePause(Ms(10));
        Forecast deferredOnly = pausing.Estimate(Input(pending: 5 * MiB, next: 0, deferred: 5 * MiB, warm: 0.1 * Bandwidth, totalDirty: 10.0 * GiB, maxDowntimeMs: 150));
        Assert.IsGreaterThan(Ms(150), deferredOnly.PredictedDowntime);
        Assert.IsNull(deferredOnly.PredictedTotalTime);

        // Converging so slowly (q = 0.99) that 100 rounds are not enough.
        Assert.IsNull(new DowntimeEstimator().Estimate(Input(pending: 80 * MiB, warm: 0.99 * Bandwidth)).PredictedTotalTime);
    }
}
