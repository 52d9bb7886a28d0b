using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class LibvirtPolicyTests
{
    private static readonly TimeSpan Ms300 = TimeSpan.FromMilliseconds(300);

    private static Forecast Forecast(double downtimeMs, ConvergenceVerdict verdict = ConvergenceVerdict.Stalled, double ratio = 1.0) =>
        new Forecast
        {
            Round = 3,
            PredictedDowntime = TimeSpan.FromMilliseconds(downtimeMs),
            Breakdown = new DowntimeBreakdown(TimeSpan.Zero, TimeSpan.Zero, TimeSpan.FromMilliseconds(downtimeMs), TimeSpan.Zero, TimeSpan.Zero),
            PredictedTotalTime = null,
            Verdict = verdict,
            BandwidthBytesPerSecond = 100 << 20,
            DirtyBytesPerSecond = 100 << 20,
            PendingBytes = 99 << 20,
            NextRoundBytes = 99 << 20,
            DeferredBytes = 0,
            ConvergenceRatio = ratio,
        };

    private static LibvirtPolicyState State(int iteration = 3, double elapsedS = 2, double qemuLimitMs = 300, double qemuExpectedMs = 990, int throttle = 0, bool postcopy = false) =>
        new(iteration, TimeSpan.FromSeconds(elapsedS), TimeSpan.FromMilliseconds(qemuLimitMs), TimeSpan.FromMilliseconds(qemuExpectedMs), throttle, postcopy);

    [TestMethod]
    public void Decide_RealDowntimeFitsButQemuExpectsMore_RaisesQemusLimitJustEnough()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300 });

        LibvirtDecision d = policy.Decide(Forecast(120), State(qemuExpectedMs: 990));

        Assert.AreEqual(LibvirtAction.RaiseDowntimeLimit, d.Action);
        // 990 ms * 1.25 = 1237.5 ms, rounded to the whole milliseconds libvirt takes.
        Assert.AreEqual(TimeSpan.FromMilliseconds(1238), d.DowntimeLimit);
        StringAssert.Contains(d.Reason, "120 ms");
    }

    [TestMethod]
    public void Decide_QemuLimitAlreadyHighEnough_LeavesItAlone()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300 });

        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(120), State(qemuLimitMs: 2000, qemuExpectedMs: 990)).Action);
    }

    [TestMethod]
    public void Decide_RealDowntimeOverTheLimit_NeverRaises()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300 });

        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(400), State()).Action);
    }

    [TestMethod]
    public void Decide_ForecastFitsOnlyWithoutTheMargin_DoesNotRaise()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300 });

        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(250), State()).Action);
        Assert.AreEqual(LibvirtAction.RaiseDowntimeLimit, policy.Decide(Forecast(200), State()).Action);
    }

    [TestMethod]
    public void Decide_QemuExpectsNearlyForever_RaisesNoFurtherThanTwentyTimesTheLimit()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300 });

        LibvirtDecision d = policy.Decide(Forecast(100), State(qemuExpectedMs: 1_000_000));

        Assert.AreEqual(TimeSpan.FromMilliseconds(6000), d.DowntimeLimit);
    }

    [TestMethod]
    public void Decide_QemuExpectsNearlyForever_RaisesNoFurtherThanQemusMaximum()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = TimeSpan.FromSeconds(200) });

        LibvirtDecision d = policy.Decide(Forecast(100_000), State(qemuLimitMs: 200_000, qemuExpectedMs: 100_000_000));

        Assert.AreEqual(LibvirtAction.RaiseDowntimeLimit, d.Action);
        Assert.AreEqual(TimeSpan.FromSeconds(2000), d.DowntimeLimit);
    }

    [TestMethod]
    public void Decide_FirstIteration_WaitsForTheFullCopy()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300 });

        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(10), State(iteration: 1)).Action);
    }

    [TestMethod]
    public void Decide_StuckWithABudget_SpendsTheBudget()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300, DowntimeBudget = TimeSpan.FromMilliseconds(800) });

        LibvirtDecision d = policy.Decide(Forecast(500, ConvergenceVerdict.Diverging), State(qemuExpectedMs: 1000));

        Assert.AreEqual(LibvirtAction.RaiseDowntimeLimit, d.Action);
        StringAssert.Contains(d.Reason, "800 ms");
    }

    [TestMethod]
    public void Decide_ConvergingOverTheLimit_DoesNotSpendTheBudget()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300, DowntimeBudget = TimeSpan.FromMilliseconds(800) });

        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(600, ConvergenceVerdict.Converging, 0.3), State()).Action);
    }

    [TestMethod]
    public void Decide_StuckThreeTimesWithPostcopyAllowed_SwitchesToPostcopy()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300, AllowPostcopy = true, AllowAutoConverge = false });

        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(2000, ConvergenceVerdict.Diverging), State()).Action);
        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(2000, ConvergenceVerdict.Diverging), State()).Action);
        LibvirtDecision d = policy.Decide(Forecast(2000, ConvergenceVerdict.Diverging), State());

        Assert.AreEqual(LibvirtAction.StartPostcopy, d.Action);
        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(2000, ConvergenceVerdict.Diverging), State(postcopy: true)).Action);
    }

    [TestMethod]
    public void Decide_StuckWithoutPostcopy_WaitsForTheDeadlineThenAborts()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { MaxDowntime = Ms300, Deadline = TimeSpan.FromSeconds(10) });
        for (int i = 0; i < 5; i++)
        {
            Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(2000, ConvergenceVerdict.Diverging), State(elapsedS: 5, throttle: 99)).Action);
        }

        LibvirtDecision d = policy.Decide(Forecast(2000, ConvergenceVerdict.Diverging), State(elapsedS: 10));

        Assert.AreEqual(LibvirtAction.Abort, d.Action);
        StringAssert.Contains(d.Reason, "deadline of 10.0 s");
    }

    [TestMethod]
    public void Decide_PostcopyStrategy_SwitchesOnceTheFirstPassIsDone()
    {
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions { Strategy = LibvirtStrategy.Postcopy });

        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(50, ConvergenceVerdict.Converging), State(iteration: 1)).Action);
        LibvirtDecision d = policy.Decide(Forecast(50, ConvergenceVerdict.Converging), State(iteration: 2));
        Assert.AreEqual(LibvirtAction.StartPostcopy, d.Action);
        StringAssert.Contains(d.Reason, "first full pass");
        Assert.AreEqual(LibvirtAction.Continue, policy.Decide(Forecast(50), State(iteration: 3, postcopy: true)).Action);
    }

    private static XbzrleIteration Iteration(double missRatio) =>
        new(10000, (ulong)(10000 * (1 - missRatio)), 1_000_000, 100_000, (ulong)(10000 * missRatio), TimeSpan.FromSeconds(1));

    [TestMethod]
    public void GrowCache_MissingOften_GrowsToTwiceTheWorkingSet_ThenStops()
    {
        const ulong MiB = 1UL << 20;
        var policy = new LibvirtPolicy(new LibvirtMigrationOptions());

        Assert.IsNull(policy.GrowCache(Iteration(0.9), 1, 64 * MiB, 200 * MiB, 1024 * MiB), "the first iteration with deltas mostly fills the cache");
        Assert.IsNull(policy.GrowCache(Iteration(0.1), 2, 64 * MiB, 200 * MiB, 1024 * MiB), "few misses: the hot set fits");
        Assert.IsNull(policy.GrowCache(Iteration(0.6), 2, 64 * MiB, 30 * MiB, 1024 * MiB), "room for the working set twice: not for lack of room");
        Assert.AreEqual(256 * MiB, policy.GrowCache(Iteration(0.6), 2, 64 * MiB, 100 * MiB, 1024 * MiB));
        Assert.IsNull(policy.GrowCache(Iteration(0.9), 3, 256 * MiB, 200 * MiB, 1024 * MiB), "the iteration after a resize misses the emptied cache");
        Assert.AreEqual(512 * MiB, policy.GrowCache(Iteration(0.6), 4, 256 * MiB, 200 * MiB, 1024 * MiB), "twice the working set, at most half the memory");
        Assert.IsNull(policy.GrowCache(Iteration(0.6), 6, 256 * MiB, 400 * MiB, 1024 * MiB), "at most twice");
    }
}
