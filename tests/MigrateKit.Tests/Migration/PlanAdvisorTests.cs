using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using static MigrateKit.Tests.Migration.PlanCurves;

namespace MigrateKit.Tests.Migration;

/// <summary>The planner's searches (the smallest bandwidth, the smallest limit) and its recommendation.</summary>
[TestClass]
public sealed class PlanAdvisorTests
{
    [TestMethod]
    public void MinimumBandwidth_IsTheEdge_ItConvergesUnthrottledAndJustBelowItDoesNot()
    {
        PlanInput input = Input(Saturating(5000, 0.2), 100, 30) with { PopulatedPages = 10_000 };

        double least = MigrationPlanner.Plan(input).MinimumBandwidthBytesPerSecond!.Value;

        Assert.IsTrue(least > 60 * MiB, "at 60 MiB/s the rounds settle at about 215 ms");
        Assert.AreEqual(0, least % MiB, "rounded up to whole MiB/s");
        Assert.AreEqual(PlanVerdict.Converges, MigrationPlanner.Plan(input with { BandwidthBytesPerSecond = least, Options = Unthrottled(30) }).Verdict);
        Assert.AreEqual(PlanVerdict.DoesNotConverge, MigrationPlanner.Plan(input with { BandwidthBytesPerSecond = least - (2 * MiB), Options = Unthrottled(30) }).Verdict);
    }

    [TestMethod]
    public void MinimumBandwidth_WithADeadline_IsWhatCopiesTheMemoryInTime()
    {
        // 1 GiB populated, idle: the copy alone takes 1 GiB / bandwidth; a 2 s deadline needs about 512 MiB/s.
        PlanInput input = Input(Idle(), 100, 300) with { Deadline = TimeSpan.FromSeconds(2) };

        MigrationPlan plan = MigrationPlanner.Plan(input);

        Assert.IsFalse(plan.WithinDeadline);
        Assert.AreEqual(PlanVerdict.Converges, plan.Verdict);
        Assert.AreEqual(512 * MiB * (4096 + 16) / 4096, plan.MinimumBandwidthBytesPerSecond!.Value, 4 * MiB);
        Assert.AreEqual(plan.MinimumBandwidthBytesPerSecond!.Value, plan.Recommended.BandwidthBytesPerSecond);
        Assert.IsFalse(plan.Recommended.Postcopy);
        StringAssert.Contains(plan.Recommended.Reason, "deadline");
    }

    [TestMethod]
    public void Recommendation_ForAMigrationThatConverges_KeepsTheSetting()
    {
        MigrationPlan plan = MigrationPlanner.Plan(Input(Saturating(5000, 0.2), 100, 300) with { PopulatedPages = 10_000 });

        Assert.AreEqual(100 * MiB, plan.Recommended.BandwidthBytesPerSecond);
        Assert.AreEqual(TimeSpan.FromMilliseconds(300), plan.Recommended.MaxDowntime);
        Assert.IsFalse(plan.Recommended.Postcopy);
        StringAssert.Contains(plan.Recommended.Reason, "without throttling");
    }

    [TestMethod]
    public void Recommendation_WhenALittleMoreBandwidthAvoidsTheThrottle_IsThatBandwidth()
    {
        // At 60 MiB/s the guest must be throttled for 30 ms; a little more bandwidth does without.
        MigrationPlan plan = MigrationPlanner.Plan(Input(Saturating(5000, 0.2), 60, 30) with { PopulatedPages = 10_000 });

        Assert.AreEqual(PlanVerdict.ConvergesWithThrottle, plan.Verdict, plan.Reason);
        Assert.AreEqual(plan.MinimumBandwidthBytesPerSecond!.Value, plan.Recommended.BandwidthBytesPerSecond);
        Assert.IsTrue(plan.Recommended.BandwidthBytesPerSecond is > 60 * MiB and < 240 * MiB);
        StringAssert.Contains(plan.Recommended.Reason, "throttled");
    }

    [TestMethod]
    public void Recommendation_WhenOnlyALongerLimitHelps_IsThatLimit()
    {
        // Unthrottled, 20 MiB at 10 MiB/s needs about 2 s of downtime; no bandwidth within 4x makes 30 ms.
        PlanInput input = Input(Saturating(5000, 0.2), 10, 30, throttling: false) with { PopulatedPages = 10_000 };

        MigrationPlan plan = MigrationPlanner.Plan(input);

        Assert.AreEqual(PlanVerdict.DoesNotConverge, plan.Verdict);
        Assert.IsFalse(plan.Recommended.Postcopy);
        Assert.IsTrue(plan.Recommended.MaxDowntime > TimeSpan.FromSeconds(1.5) && plan.Recommended.MaxDowntime < TimeSpan.FromSeconds(3), plan.Recommended.MaxDowntime.ToString());
        Assert.AreNotEqual(PlanVerdict.DoesNotConverge, MigrationPlanner.Plan(input with { Options = Unthrottled(plan.Recommended.MaxDowntime.TotalMilliseconds) }).Verdict);
    }

    [TestMethod]
    public void Recommendation_WhenNeitherTheLinkNorTheLimitCanCarryTheWorkingSet_IsPostcopy()
    {
        // All of 1 GiB rewritten within 100 ms, unthrottled, at 100 MiB/s: 10 s of stop-and-copy.
        MigrationPlan plan = MigrationPlanner.Plan(Input(Saturating(262_144, 0.02), 100, 30, throttling: false));

        Assert.AreEqual(PlanVerdict.DoesNotConverge, plan.Verdict);
        Assert.IsTrue(plan.Recommended.Postcopy, plan.Recommended.Reason);
        StringAssert.Contains(plan.Recommended.Reason, "post-copy");
    }

    private static MigrationOptions Unthrottled(double limitMs) => new() { MaxDowntime = TimeSpan.FromMilliseconds(limitMs), AllowThrottling = false };
}
