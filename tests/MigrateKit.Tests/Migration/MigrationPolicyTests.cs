using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Migration;

/// <summary>MigrationPolicy: switch over, throttle proportionally, defer, or abort with a reason.</summary>
[TestClass]
public sealed class MigrationPolicyTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;
    private const double Bandwidth = 100.0 * MiB;

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    /// <summary>A forecast whose fixed costs are all pause, and whose downtime is fixed + transfer.</summary>
    private static Forecast Forecast(
        double predictedMs,
        double ratio = 0.2,
        ConvergenceVerdict verdict = ConvergenceVerdict.Converging,
        double fixedMs = 10,
        ulong deferredBytes = 0,
        double bandwidth = Bandwidth)
    {
        var breakdown = new DowntimeBreakdown(Ms(fixedMs), TimeSpan.Zero, Ms(predictedMs - fixedMs), TimeSpan.Zero, TimeSpan.Zero);
        return new Forecast
        {
            Round = 1,
            PredictedDowntime = breakdown.Total,
            Breakdown = breakdown,
            PredictedTotalTime = null,
            Verdict = verdict,
            BandwidthBytesPerSecond = bandwidth,
            DirtyBytesPerSecond = ratio * bandwidth,
            PendingBytes = 64 * MiB,
            NextRoundBytes = 64 * MiB,
            DeferredBytes = deferredBytes,
            ConvergenceRatio = ratio,
        };
    }

    private static PolicyState State(int round = 1, double elapsedSeconds = 1, ulong bytesSent = GiB, ulong memory = GiB, int throttle = 0, bool deferredGrew = false, ulong dirty = 0) =>
        new(round, TimeSpan.FromSeconds(elapsedSeconds), bytesSent, memory, throttle, deferredGrew, dirty);

    [TestMethod]
    [DataRow(1d)]
    [DataRow(299.9)]
    [DataRow(300d)]
    public void PredictedDowntimeWithinTheLimit_SwitchesOver(double predictedMs)
    {
        var policy = new MigrationPolicy(new MigrationOptions());
        PolicyDecision d = policy.Decide(Forecast(predictedMs, fixedMs: 0.5), State(throttle: 40));
        Assert.AreEqual(MigrationAction.SwitchOver, d.Action);
        Assert.AreEqual(40, d.ThrottlePercent, "the throttle in force is kept");
        Assert.IsNull(d.Reason);
    }

    [TestMethod]
    public void PointWithinTheLimit_ButUpperBoundAbove_DoesNotSwitchOver()
    {
        var policy = new MigrationPolicy(new MigrationOptions());
        Forecast f = Forecast(250, ratio: 0.3) with { DowntimeLow = Ms(200), DowntimeHigh = Ms(320) };

        PolicyDecision d = policy.Decide(f, State());

        Assert.AreEqual(MigrationAction.Continue, d.Action, "the limit is a promise: the bound must fit, not the point");
    }

    [TestMethod]
    public void AfterRoundZero_EvenAFittingBound_WaitsForARoundOfResends()
    {
        var policy = new MigrationPolicy(new MigrationOptions());

        PolicyDecision d = policy.Decide(Forecast(50), State(round: 0));

        Assert.AreEqual(MigrationAction.Continue, d.Action, "round 0's rate includes the destination's first touch of every page");
        Assert.AreEqual(MigrationAction.SwitchOver, policy.Decide(Forecast(50), State(round: 1)).Action);
        Assert.AreEqual(MigrationAction.SwitchOver, new MigrationPolicy(new MigrationOptions { MinRounds = 1 }).Decide(Forecast(50), State(round: 0)).Action, "MinRounds = 1 allows it");
    }

    [TestMethod]
    public void UpperBoundWithinTheLimit_SwitchesOver()
    {
        var policy = new MigrationPolicy(new MigrationOptions());
        Forecast f = Forecast(250) with { DowntimeLow = Ms(240), DowntimeHigh = Ms(300) };

        Assert.AreEqual(MigrationAction.SwitchOver, policy.Decide(f, State()).Action);
    }

    [TestMethod]
    public void RoundsRunOut_WithTheBoundAbove_AbortsNamingPointAndBound()
    {
        var policy = new MigrationPolicy(new MigrationOptions { MaxRounds = 3 });
        Forecast f = Forecast(250, ratio: 0.3) with { DowntimeHigh = Ms(320) };

        PolicyDecision d = policy.Decide(f, State(round: 2));

        Assert.AreEqual(MigrationAction.Abort, d.Action);
        StringAssert.Contains(d.Reason, "250 ms, up to 320 ms");
    }

    [TestMethod]
    public void AFittingSwitchover_WinsOverEveryLimit()
    {
        var policy = new MigrationPolicy(new MigrationOptions { MaxRounds = 2, Deadline = TimeSpan.FromSeconds(1) });
        PolicyDecision d = policy.Decide(Forecast(100), State(round: 5, elapsedSeconds: 10, bytesSent: 10 * GiB));
        Assert.AreEqual(MigrationAction.SwitchOver, d.Action);
    }

    [TestMethod]
    public void OverTheLimit_WithAGoodRatio_Continues()
    {
        var policy = new MigrationPolicy(new MigrationOptions());
        PolicyDecision d = policy.Decide(Forecast(301, ratio: 0.3), State());
        Assert.AreEqual(MigrationAction.Continue, d.Action);
        Assert.AreEqual(0, d.ThrottlePercent);
        Assert.IsNull(d.Reason);
    }

    [TestMethod]
    public void WithoutALimit_Round0sRatio_DoesNotThrottleYet_ButTheFirstResendRoundDoes()
    {
        var policy = new MigrationPolicy(new MigrationOptions());

        PolicyDecision first = policy.Decide(Forecast(500, ratio: 2.0), State(round: 0));
        Assert.AreEqual(MigrationAction.Continue, first.Action, "round 0's first copies do not price the re-sends");
        Assert.AreEqual(0, first.ThrottlePercent);

        PolicyDecision second = policy.Decide(Forecast(500, ratio: 2.0), State(round: 1));
        Assert.AreEqual(MigrationAction.Throttle, second.Action);
        Assert.AreEqual(75, second.ThrottlePercent);
    }

    [TestMethod]
    [DataRow(2.0, 75)]
    [DataRow(0.8, 38)]
    public void UnderALimit_Round0sRatio_Throttles(double ratio, int throttle)
    {
        var policy = new MigrationPolicy(new MigrationOptions { BandwidthLimit = 100L << 20 });
        PolicyDecision d = policy.Decide(Forecast(500, ratio), State(round: 0));
        Assert.AreEqual(MigrationAction.Throttle, d.Action);
        Assert.AreEqual(throttle, d.ThrottlePercent);
    }

    [TestMethod]
    public void DeferredSetGrew_Defers()
    {
        var policy = new MigrationPolicy(new MigrationOptions());
        PolicyDecision d = policy.Decide(Forecast(500, ratio: 0.3), State(deferredGrew: true, throttle: 10));
        Assert.AreEqual(MigrationAction.Defer, d.Action);
        Assert.AreEqual(10, d.ThrottlePercent);
    }

    [TestMethod]
    [DataRow(1.0, 0, 50, DisplayName = "q = 1 from full speed: half speed")]
    [DataRow(2.0, 0, 75, DisplayName = "q = 2: a quarter of the speed")]
    [DataRow(4.0, 0, 88, DisplayName = "q = 4: 12.5 % of the speed, rounded up")]
    [DataRow(0.8, 0, 38, DisplayName = "q = 0.8: 62.5 % of the speed, rounded up")]
    [DataRow(1.0, 50, 75, DisplayName = "q = 1 at 50 %: half of the remaining speed")]
    [DataRow(2.0, 25, 82, DisplayName = "q = 2 at 25 %: 0.75 * 0.25 of the speed")]
    [DataRow(1.0, 75, 88, DisplayName = "q = 1 at 75 %")]
    public void Throttle_IsProportionalToTheRatio(double ratio, int current, int expected)
    {
        // speed = (100 - current) / 100 * target / q; throttle = ceil(100 * (1 - speed)); target 0.5.
        var policy = new MigrationPolicy(new MigrationOptions());
        PolicyDecision d = policy.Decide(Forecast(1000, ratio), State(throttle: current));
        Assert.AreEqual(MigrationAction.Throttle, d.Action);
        Assert.AreEqual(expected, d.ThrottlePercent);
        Assert.IsNotNull(d.Reason);
        Assert.Contains("dirty rate", d.Reason);
    }

    [TestMethod]
    public void AGuestThatRewritesItsWholeWorkingSetAgainAfterARaise_IsCutHarder()
    {
        // Round 1: q = 1 -> 50 %. Round 2: as many pages dirty as before the raise, so the round's
        // rate (q = 1 again) is a floor: a quarter of the proportional speed, 0.5 * 0.5 * 0.25.
        var policy = new MigrationPolicy(new MigrationOptions());
        Assert.AreEqual(50, policy.Decide(Forecast(1000, 1.0), State(round: 1, dirty: 25_000)).ThrottlePercent);
        PolicyDecision d = policy.Decide(Forecast(1000, 1.0), State(round: 2, throttle: 50, dirty: 24_600));
        Assert.AreEqual(MigrationAction.Throttle, d.Action);
        Assert.AreEqual(94, d.ThrottlePercent);
        Assert.Contains("whole working set", d.Reason!);
    }

    [TestMethod]
    public void AGuestWhoseDirtyPagesFellAfterARaise_GetsTheProportionalStep()
    {
        var policy = new MigrationPolicy(new MigrationOptions());
        Assert.AreEqual(50, policy.Decide(Forecast(1000, 1.0), State(round: 1, dirty: 25_000)).ThrottlePercent);
        Assert.AreEqual(75, policy.Decide(Forecast(1000, 1.0), State(round: 2, throttle: 50, dirty: 20_000)).ThrottlePercent, "fewer pages after the raise: the rate is real");

        // Without a raise in between, an unchanged count is no evidence either.
        var steady = new MigrationPolicy(new MigrationOptions { AllowThrottling = false });
        Assert.AreEqual(MigrationAction.Continue, steady.Decide(Forecast(1000, 1.0), State(round: 1, dirty: 25_000)).Action);
        Assert.AreEqual(0, steady.Decide(Forecast(1000, 1.0), State(round: 2, dirty: 25_000)).ThrottlePercent);
    }

    [TestMethod]
    public void Throttle_AimsAtTheConfiguredTarget()
    {
        // Target 0.25 with q = 1: a quarter of the speed.
        var policy = new MigrationPolicy(new MigrationOptions { ConvergenceTarget = 0.25 });
        PolicyDecision d = policy.Decide(Forecast(1000, 1.0), State());
        Assert.AreEqual(MigrationAction.Throttle, d.Action);
        Assert.AreEqual(75, d.ThrottlePercent);

        // q = 0.4 is above 0.25 but below the default 0.5: a throttle here, none with the default.
        Assert.AreEqual(MigrationAction.Throttle, policy.Decide(Forecast(1000, 0.4), State()).Action);
        Assert.AreEqual(MigrationAction.Continue, new MigrationPolicy(new MigrationOptions()).Decide(Forecast(1000, 0.4), State()).Action);
    }

    [TestMethod]
    public void Throttle_IsCappedByMaxThrottle()
    {
        var policy = new MigrationPolicy(new MigrationOptions { MaxThrottlePercent = 80 });
        PolicyDecision d = policy.Decide(Forecast(1000, 4.0), State());
        Assert.AreEqual(MigrationAction.Throttle, d.Action);
        Assert.AreEqual(80, d.ThrottlePercent, "88 % capped at 80 %");

        // From 79 %: the formula wants 90 %, the cap allows 80 %.
        Assert.AreEqual(80, policy.Decide(Forecast(1000, 1.0), State(throttle: 79)).ThrottlePercent);
    }

    [TestMethod]
    public void AtMaxThrottle_NoFurtherThrottle()
    {
        var policy = new MigrationPolicy(new MigrationOptions { MaxThrottlePercent = 80 });
        PolicyDecision d = policy.Decide(Forecast(1000, 4.0, ConvergenceVerdict.Unknown), State(throttle: 80));
        Assert.AreEqual(MigrationAction.Continue, d.Action);
        Assert.AreEqual(80, d.ThrottlePercent);
    }

    [TestMethod]
    public void ThrottlingDisallowed_NeverThrottles()
    {
        var policy = new MigrationPolicy(new MigrationOptions { AllowThrottling = false });
        PolicyDecision d = policy.Decide(Forecast(1000, 4.0, ConvergenceVerdict.Unknown), State());
        Assert.AreEqual(MigrationAction.Continue, d.Action);
        Assert.AreEqual(0, d.ThrottlePercent);
    }

    [TestMethod]
    public void RatioAtOrBelowTheTarget_DoesNotThrottle()
    {
        var policy = new MigrationPolicy(new MigrationOptions());
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(Forecast(1000, 0.5), State()).Action);
    }

    [TestMethod]
    public void MaxRounds_Aborts_OnTheLastRound()
    {
        var policy = new MigrationPolicy(new MigrationOptions { MaxRounds = 5 });
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(Forecast(400), State(round: 3)).Action);

        PolicyDecision d = policy.Decide(Forecast(400), State(round: 4, throttle: 30));
        Assert.AreEqual(MigrationAction.Abort, d.Action);
        Assert.AreEqual(30, d.ThrottlePercent);
        Assert.IsNotNull(d.Reason);
        Assert.Contains("5 rounds", d.Reason);
        Assert.Contains("400 ms", d.Reason);
        Assert.Contains("300 ms", d.Reason);
    }

    [TestMethod]
    [DataRow(0.42, 0.01, "fixed costs and deferred pages alone take 0.42 ms, over the limit of 0.01 ms")]
    [DataRow(3.5, 1.0, "fixed costs and deferred pages alone take 3.5 ms, over the limit of 1.0 ms")]
    [DataRow(2400.0, 50.0, "fixed costs and deferred pages alone take 2400 ms, over the limit of 50 ms")]
    public void FixedCostsOverTheLimit_Abort_NamingBothWithTheDigitsTheyNeed(double fixedMs, double limitMs, string reason)
    {
        var policy = new MigrationPolicy(new MigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(limitMs) });

        PolicyDecision d = policy.Decide(Forecast(fixedMs + 1, fixedMs: fixedMs), State());

        Assert.AreEqual(MigrationAction.Abort, d.Action);
        Assert.AreEqual(reason, d.Reason);
    }

    [TestMethod]
    public void MaxBytes_Aborts()
    {
        var policy = new MigrationPolicy(new MigrationOptions());
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(Forecast(400), State(bytesSent: (3 * GiB) - 1)).Action);

        PolicyDecision d = policy.Decide(Forecast(400), State(bytesSent: 3 * GiB));
        Assert.AreEqual(MigrationAction.Abort, d.Action);
        Assert.IsNotNull(d.Reason);
        Assert.Contains("sent 3072 MiB", d.Reason);
        Assert.Contains("3x the guest memory", d.Reason);
    }

    [TestMethod]
    public void MaxBytesFactor_IsConfigurable()
    {
        var policy = new MigrationPolicy(new MigrationOptions { MaxBytesFactor = 1.5 });
        PolicyDecision d = policy.Decide(Forecast(400), State(bytesSent: 1536 * MiB));
        Assert.AreEqual(MigrationAction.Abort, d.Action);
        Assert.Contains("sent 1536 MiB", d.Reason!);
        Assert.Contains("x the guest memory", d.Reason!);
    }

    [TestMethod]
    public void Deadline_Aborts()
    {
        var policy = new MigrationPolicy(new MigrationOptions { Deadline = TimeSpan.FromSeconds(10) });
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(Forecast(400), State(elapsedSeconds: 9.5)).Action);

        PolicyDecision d = policy.Decide(Forecast(400), State(elapsedSeconds: 10));
        Assert.AreEqual(MigrationAction.Abort, d.Action);
        Assert.IsNotNull(d.Reason);
        Assert.Contains("deadline", d.Reason);
        Assert.Contains("400 ms", d.Reason);
    }

    [TestMethod]
    public void FixedCostsAndDeferredPagesOverTheLimit_Abort()
    {
        var policy = new MigrationPolicy(new MigrationOptions());

        // 250 ms fixed + 10 MiB deferred at 100 MiB/s (100 ms) = 350 ms > 300 ms: no round can help.
        PolicyDecision d = policy.Decide(Forecast(500, fixedMs: 250, deferredBytes: 10 * MiB), State());
        Assert.AreEqual(MigrationAction.Abort, d.Action);
        Assert.IsNotNull(d.Reason);
        Assert.Contains("350 ms", d.Reason);
        Assert.Contains("300 ms", d.Reason);

        // 250 ms + 2 MiB (20 ms) still leaves room.
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(Forecast(500, fixedMs: 250, deferredBytes: 2 * MiB), State()).Action);
    }

    [TestMethod]
    public void Hopeless_ThreeRoundsInARow_Abort()
    {
        var policy = new MigrationPolicy(new MigrationOptions { AllowThrottling = false });
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(Forecast(1000, 1.2, ConvergenceVerdict.Diverging), State(round: 1)).Action);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(Forecast(1000, 1.0, ConvergenceVerdict.Stalled), State(round: 2)).Action);
        PolicyDecision d = policy.Decide(Forecast(1000, 1.2, ConvergenceVerdict.Diverging), State(round: 3));
        Assert.AreEqual(MigrationAction.Abort, d.Action);
        Assert.IsNotNull(d.Reason);
        Assert.Contains("cannot converge", d.Reason);
    }

    [TestMethod]
    public void Hopeless_CountIsResetByARoundWithHope()
    {
        var policy = new MigrationPolicy(new MigrationOptions { AllowThrottling = false });
        Forecast hopeless = Forecast(1000, 1.2, ConvergenceVerdict.Diverging);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(hopeless, State()).Action);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(hopeless, State()).Action);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(Forecast(1000, 1.2, ConvergenceVerdict.Converging), State()).Action);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(hopeless, State()).Action);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(hopeless, State()).Action);
        Assert.AreEqual(MigrationAction.Abort, policy.Decide(hopeless, State()).Action);
    }

    [TestMethod]
    public void DivergingWithARatioUnderOne_IsNotHopeless()
    {
        var policy = new MigrationPolicy(new MigrationOptions { AllowThrottling = false });
        for (int i = 0; i < 5; i++)
        {
            Assert.AreEqual(MigrationAction.Continue, policy.Decide(Forecast(1000, 0.9, ConvergenceVerdict.Diverging), State()).Action);
        }
    }

    [TestMethod]
    public void AtMaxThrottle_HopelessRounds_AbortNamingTheThrottle()
    {
        var policy = new MigrationPolicy(new MigrationOptions { MaxThrottlePercent = 60 });
        Forecast hopeless = Forecast(1000, 1.5, ConvergenceVerdict.Diverging);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(hopeless, State(throttle: 60)).Action);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(hopeless, State(throttle: 60)).Action);

        // A throttle decision in between starts the count again.
        Assert.AreEqual(MigrationAction.Throttle, policy.Decide(hopeless, State(throttle: 50)).Action);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(hopeless, State(throttle: 60)).Action);
        Assert.AreEqual(MigrationAction.Continue, policy.Decide(hopeless, State(throttle: 60)).Action);
        PolicyDecision d = policy.Decide(hopeless, State(throttle: 60));
        Assert.AreEqual(MigrationAction.Abort, d.Action);
        Assert.AreEqual(60, d.ThrottlePercent);
        Assert.Contains("60%", d.Reason!);
    }

    [TestMethod]
    public void DeferBudget_IsAShareOfWhatTheLimitCarriesAfterFixedCosts()
    {
        // (250 - 125) ms at 100 MiB/s = 12.5 MiB; half of it.
        var policy = new MigrationPolicy(new MigrationOptions { MaxDowntime = Ms(250) });
        var breakdown = new DowntimeBreakdown(Ms(100), Ms(25), Ms(999), TimeSpan.Zero, TimeSpan.Zero);
        Assert.AreEqual(6_553_600UL, policy.DeferBudgetBytes(breakdown, Bandwidth));

        var quarter = new MigrationPolicy(new MigrationOptions { MaxDowntime = Ms(250), DeferBudgetFraction = 0.25 });
        Assert.AreEqual(3_276_800UL, quarter.DeferBudgetBytes(breakdown, Bandwidth));

        var none = new MigrationPolicy(new MigrationOptions { MaxDowntime = Ms(250), DeferBudgetFraction = 0 });
        Assert.AreEqual(0UL, none.DeferBudgetBytes(breakdown, Bandwidth));

        // Fixed costs at or over the limit leave nothing.
        Assert.AreEqual(0UL, policy.DeferBudgetBytes(new DowntimeBreakdown(Ms(250), TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero), Bandwidth));
        Assert.AreEqual(0UL, policy.DeferBudgetBytes(new DowntimeBreakdown(Ms(200), TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, Ms(100)), Bandwidth));
    }

    [TestMethod]
    public void Constructor_ValidatesTheOptions()
    {
        Assert.ThrowsExactly<ArgumentNullException>(() => new MigrationPolicy(null!));
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => new MigrationPolicy(new MigrationOptions { MaxRounds = 0 }));
        Assert.AreEqual(nameof(MigrationOptions.MaxRounds), ex.ParamName);
    }

    [TestMethod]
    public void Decide_NullForecast_Throws() =>
        Assert.ThrowsExactly<ArgumentNullException>(() => new MigrationPolicy(new MigrationOptions()).Decide(null!, State()));
}
