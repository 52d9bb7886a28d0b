using System;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using static MigrateKit.Tests.Migration.PlanCurves;

namespace MigrateKit.Tests.Migration;

/// <summary>The pre-copy model behind <see cref="MigrationPlanner.Plan"/> on synthetic curves: idle, a saturating working set, linear, faster than the link.</summary>
[TestClass]
public sealed class PreCopyModelTests
{
    private const double Wire = 4096 + 16;

    [TestMethod]
    public void Idle_ConvergesAfterRound0AndOneEmptyRound_SendingThePopulatedPagesOnce()
    {
        MigrationPlan plan = MigrationPlanner.Plan(Input(Idle(), 100, 300) with { PopulatedPages = 25_600 });

        Assert.AreEqual(PlanVerdict.Converges, plan.Verdict, plan.Reason);
        Assert.HasCount(2, plan.Rounds, "MinRounds: round 0 and one round of re-sends");
        Assert.AreEqual(25_600 * Wire, plan.Rounds[0].BytesSent, 1);
        Assert.AreEqual(0UL, plan.Rounds[1].BytesSent);
        Assert.AreEqual((25_600 * Wire) + 4096, plan.BytesSent, 2);

        // 100 MiB of pages at 100 MiB/s, plus two round trips and harvests; the downtime is the fixed costs.
        Assert.AreEqual(1.0 * Wire / 4096, plan.TotalTime.TotalSeconds, 0.01);
        Assert.IsTrue(plan.Downtime < TimeSpan.FromMilliseconds(5), plan.Downtime.ToString());
        Assert.AreEqual(0, plan.MaxThrottlePercent);
    }

    [TestMethod]
    public void SaturatingWorkingSet_ThatFitsTheLimit_ConvergesWithoutThrottle_ResendingTheSetEachRound()
    {
        // 5000 pages (about 20 MiB) rewritten within about a second; 20 MiB at 100 MiB/s is 200 ms.
        MigrationPlan plan = MigrationPlanner.Plan(Input(Saturating(5000, 0.2), 100, 300) with { PopulatedPages = 10_000 });

        Assert.AreEqual(PlanVerdict.Converges, plan.Verdict, plan.Reason);
        Assert.AreEqual(10_000 * Wire, plan.Rounds[0].BytesSent, 1);
        Assert.IsTrue(plan.Rounds.Skip(1).All(r => r.BytesSent <= 5000 * Wire), "no round re-sends more than the working set");
        Assert.IsTrue(plan.Downtime <= TimeSpan.FromMilliseconds(300), plan.Downtime.ToString());
        Assert.IsTrue(plan.Downtime > TimeSpan.FromMilliseconds(100), "the stop-and-copy sends most of the working set: " + plan.Downtime);
        Assert.AreEqual(MigrationAction.SwitchOver, plan.Rounds[^1].Action);
    }

    [TestMethod]
    public void SaturatingWorkingSet_OverTheLimit_ConvergesOnlyThrottled()
    {
        // At 60 MiB/s the rounds settle at about 3200 pages (215 ms), never within 30 ms.
        MigrationPlan throttled = MigrationPlanner.Plan(Input(Saturating(5000, 0.2), 60, 30) with { PopulatedPages = 10_000 });
        MigrationPlan unthrottled = MigrationPlanner.Plan(Input(Saturating(5000, 0.2), 60, 30, throttling: false) with { PopulatedPages = 10_000 });

        Assert.AreEqual(PlanVerdict.ConvergesWithThrottle, throttled.Verdict, throttled.Reason);
        Assert.IsTrue(throttled.MaxThrottlePercent > 0);
        Assert.IsTrue(throttled.Downtime <= TimeSpan.FromMilliseconds(30));
        Assert.IsTrue(throttled.Rounds.Any(r => r.Action == MigrationAction.Throttle));
        Assert.AreEqual(PlanVerdict.DoesNotConverge, unthrottled.Verdict);
        Assert.IsNull(unthrottled.Downtime);
        Assert.IsFalse(string.IsNullOrEmpty(unthrottled.Reason));
    }

    [TestMethod]
    public void LinearBelowTheLink_ConvergesWithoutThrottle_EachRoundAQuarterOfTheOneBefore()
    {
        // The guest dirties at a quarter of the link: each round sends about a quarter of the one before.
        MigrationPlan plan = MigrationPlanner.Plan(Input(Linear(PagesPerSecondOf(25 * MiB)), 100, 30) with { PopulatedPages = 50_000 });

        Assert.AreEqual(PlanVerdict.Converges, plan.Verdict, plan.Reason);
        Assert.AreEqual(0.25, (double)plan.Rounds[1].BytesSent / plan.Rounds[0].BytesSent, 0.02);
        Assert.IsTrue(plan.Rounds.Count is >= 3 and <= 6, plan.Rounds.Count.ToString());
    }

    [TestMethod]
    public void FasterThanTheLink_DoesNotConvergeUnthrottled_AndConvergesThrottledHard()
    {
        DirtyCurve curve = Linear(PagesPerSecondOf(200 * MiB));

        MigrationPlan unthrottled = MigrationPlanner.Plan(Input(curve, 100, 100, throttling: false) with { PopulatedPages = 12_800 });
        MigrationPlan throttled = MigrationPlanner.Plan(Input(curve, 100, 100) with { PopulatedPages = 12_800 });

        Assert.AreEqual(PlanVerdict.DoesNotConverge, unthrottled.Verdict);
        Assert.IsTrue(unthrottled.Rounds.Skip(1).Zip(unthrottled.Rounds.Skip(2)).All(p => p.Second.BytesSent >= p.First.BytesSent), "rounds grow or stay: the guest outruns the link");
        Assert.AreEqual(PlanVerdict.ConvergesWithThrottle, throttled.Verdict, throttled.Reason);
        Assert.IsTrue(throttled.MaxThrottlePercent >= 75, throttled.MaxThrottlePercent.ToString());
    }

    [TestMethod]
    public void TheThrottle_StartsAfterRound0UnderALimit_AndAfterTheFirstResendRoundWithoutOne_AsTheEnginesPolicyDoes()
    {
        PlanInput unlimited = Input(Linear(PagesPerSecondOf(200 * MiB)), 100, 100) with { PopulatedPages = 12_800 };
        PlanInput limited = unlimited with { Options = new MigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(100), BandwidthLimit = 100L << 20 } };

        MigrationPlan waits = MigrationPlanner.Plan(unlimited);
        MigrationPlan atOnce = MigrationPlanner.Plan(limited);

        Assert.AreEqual(MigrationAction.Continue, waits.Rounds[0].Action, "round 0's first copies do not price the re-sends");
        Assert.AreEqual(MigrationAction.Throttle, waits.Rounds[1].Action);
        Assert.AreEqual(MigrationAction.Throttle, atOnce.Rounds[0].Action);
        Assert.AreEqual(PlanVerdict.ConvergesWithThrottle, atOnce.Verdict, atOnce.Reason);
    }

    [TestMethod]
    public void HotPages_AreHeldBackFromRound1On_WithinTheDowntimeBudget()
    {
        // 2000 hot pages of a 5000-page set; the budget is half of what 300 ms carries at 100 MiB/s (about 3800 pages).
        MigrationPlan plan = MigrationPlanner.Plan(Input(Saturating(5000, 0.2, hot: 2000), 100, 300) with { PopulatedPages = 10_000 });

        Assert.AreEqual(0UL, plan.Rounds[0].DeferredPages, "a page is hot after two dirty rounds");
        Assert.IsTrue(plan.Rounds[1].DeferredPages is >= 2000 and < 3800, $"at least the pages every window wrote: {plan.Rounds[1].DeferredPages}");
        MigrationPlan tight = MigrationPlanner.Plan(Input(Saturating(5000, 0.2, hot: 2000), 100, 30) with { PopulatedPages = 10_000 });
        Assert.IsTrue(tight.Rounds[1].DeferredPages is > 0 and < 2000, $"the budget caps the deferred set: {tight.Rounds[1].DeferredPages}");
    }

    [TestMethod]
    public void PagesDirtiedInTwoConsecutiveRounds_AreHot_EvenWhenNoPageWasInEveryWindow()
    {
        // A 5000-page set filled in about a second: rounds of ~0.3 s and ~0.16 s share D(a) + D(b) - D(a + b) pages.
        PlanInput input = Input(Saturating(5000, 0.2), 100, 300) with { PopulatedPages = 10_000 };
        MigrationPlan plan = MigrationPlanner.Plan(input);
        double a = plan.Rounds[0].Duration.TotalSeconds;
        double b = plan.Rounds[1].Duration.TotalSeconds;
        double both = input.Curve.PagesAt(TimeSpan.FromSeconds(a)) + input.Curve.PagesAt(TimeSpan.FromSeconds(b)) - input.Curve.PagesAt(TimeSpan.FromSeconds(a + b));

        Assert.AreEqual(both, plan.Rounds[1].DeferredPages, 1.0);
        Assert.IsTrue(plan.Rounds[1].DeferredPages > 1000);
    }

    [TestMethod]
    public void APacedGuest_DirtiesAtFullSpeed_WhileTheThrottleAllowsMoreThanItsRunShare_AndSlowerBeyond()
    {
        // The guest runs a fifth of its time and waits for its pace the rest: a throttle up to 80 % takes only waiting time.
        PlanInput input = Input(Linear(PagesPerSecondOf(80 * MiB)), 100, 30) with { PopulatedPages = 12_800, GuestRunShare = 0.2 };

        MigrationPlan plan = MigrationPlanner.Plan(input);
        PlannedRound mild = plan.Rounds.First(r => r.ThrottlePercent > 0);
        Assert.IsLessThanOrEqualTo(80, mild.ThrottlePercent, "the first raise");
        Assert.AreEqual(PagesPerSecondOf(80 * MiB) * mild.Duration.TotalSeconds, mild.DirtyPages, 1.5);

        PlannedRound hard = plan.Rounds.First(r => r.ThrottlePercent > 80);
        double share = (100 - hard.ThrottlePercent) / 100.0 / 0.2;
        Assert.AreEqual(PagesPerSecondOf(80 * MiB) * hard.Duration.TotalSeconds * share, hard.DirtyPages, 1.5);
    }

    [TestMethod]
    public void AGuestRunShareOutsideZeroToOne_IsRefused()
    {
        foreach (double share in new[] { 0, -0.5, 1.5, double.NaN })
        {
            ArgumentException e = Assert.ThrowsExactly<ArgumentException>(() => MigrationPlanner.Plan(Input(Idle(), 100, 300) with { GuestRunShare = share }));
            Assert.AreEqual("GuestRunShare", e.ParamName);
        }
    }

    [TestMethod]
    public void TheFixedCostsAloneOverTheLimit_NeverConverge()
    {
        MigrationPlan plan = MigrationPlanner.Plan(Input(Idle(), 100, 5) with { HarvestCost = TimeSpan.FromMilliseconds(10) });

        Assert.AreEqual(PlanVerdict.DoesNotConverge, plan.Verdict);
        Assert.IsNull(plan.MinimumBandwidthBytesPerSecond, "no bandwidth makes a 10 ms harvest fit 5 ms");
    }

    [TestMethod]
    public void AFinalHarvestCostApart_PricesTheSwitchoversHarvest()
    {
        PlanInput slow = Input(Idle(), 100, 100) with { HarvestCost = TimeSpan.FromMilliseconds(10) };
        MigrationPlan rounds = MigrationPlanner.Plan(slow);
        MigrationPlan final = MigrationPlanner.Plan(slow with { FinalHarvestCost = TimeSpan.FromMilliseconds(0.5) });

        Assert.AreEqual(9.5, (rounds.Downtime!.Value - final.Downtime!.Value).TotalMilliseconds, 0.01, $"{rounds.Downtime} against {final.Downtime}");
        Assert.AreEqual(rounds.Rounds.Count, final.Rounds.Count);
        Assert.AreEqual(9.5, (rounds.TotalTime - final.TotalTime).TotalMilliseconds, 0.01, "the rounds' harvests still cost HarvestCost");
        var bad = Assert.ThrowsExactly<ArgumentException>(() => MigrationPlanner.Plan(slow with { FinalHarvestCost = TimeSpan.FromMilliseconds(-1) }));
        Assert.AreEqual("FinalHarvestCost", bad.ParamName);
    }

    [TestMethod]
    public void Throttle_ReadsTheCurveInGuestTime()
    {
        // At 80 % of the link the policy throttles; a throttled round's dirty pages are the curve at the guest's share of it.
        MigrationPlan plan = MigrationPlanner.Plan(Input(Linear(PagesPerSecondOf(80 * MiB)), 100, 30) with { PopulatedPages = 12_800 });
        PlannedRound throttledRound = plan.Rounds.First(r => r.ThrottlePercent > 0);
        double guestSeconds = throttledRound.Duration.TotalSeconds * (100 - throttledRound.ThrottlePercent) / 100.0;

        Assert.AreEqual(PagesPerSecondOf(80 * MiB) * guestSeconds, throttledRound.DirtyPages, 1.5);
    }

    [TestMethod]
    public void AGuestThePolicyThrottlesThoughItWouldConvergeAnyway_IsCalledConverging_WithThePolicysRounds()
    {
        // At 80 % of the link each round is 0.8 of the one before: it converges unthrottled, but the policy aims at 50 %.
        MigrationPlan plan = MigrationPlanner.Plan(Input(Linear(PagesPerSecondOf(80 * MiB)), 100, 30) with { PopulatedPages = 12_800 });

        Assert.AreEqual(PlanVerdict.Converges, plan.Verdict, plan.Reason);
        Assert.IsTrue(plan.MaxThrottlePercent > 0, "the rounds are what the policy does");
        StringAssert.Contains(plan.Reason, "unthrottled it converges too");
    }

    [TestMethod]
    [DataRow("MemoryBytes")]
    [DataRow("BandwidthBytesPerSecond")]
    [DataRow("PopulatedPages")]
    [DataRow("Deadline")]
    [DataRow("RoundTrip")]
    [DataRow("Destination")]
    public void BadInput_IsRejectedNamingTheValue(string name)
    {
        PlanInput good = Input(Idle(), 100, 300);
        PlanInput bad = name switch
        {
            "MemoryBytes" => good with { MemoryBytes = 4095 },
            "BandwidthBytesPerSecond" => good with { BandwidthBytesPerSecond = double.PositiveInfinity },
            "PopulatedPages" => good with { PopulatedPages = (1UL << 30) / 4096 + 1 },
            "Deadline" => good with { Deadline = TimeSpan.Zero },
            "Destination" => good with { Destination = "10.0.0.2" },
            _ => good with { RoundTrip = TimeSpan.FromMilliseconds(-1) },
        };

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => MigrationPlanner.Plan(bad)).Message, name);
    }

    [TestMethod]
    public void ADestination_IsPricedByItsOwnSwitchovers_OrByEveryDestinationsWhileItHasNone()
    {
        // Switchovers to one host took 20 ms more than forecast; the record for every destination says 2 ms.
        var history = new MigrateKit.Estimation.DowntimeHistory();
        for (int i = 0; i < 3; i++)
        {
            history.Record("engine//unlimited@tcp:10.0.0.2", TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(35));
            history.Record("engine//unlimited", TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(17));
        }

        PlanInput input = Input(Idle(), 100, 300) with
        {
            PopulatedPages = 25_600,
            Options = new MigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(300), DowntimeHistory = history },
        };
        TimeSpan known = MigrationPlanner.Plan(input with { Destination = "tcp:10.0.0.2:7000" }).Downtime!.Value;
        Assert.AreEqual(known, MigrationPlanner.Plan(input with { Destination = "10.0.0.2:41000" }).Downtime!.Value, "HOST:PORT, as a migration dials it");
        TimeSpan unknown = MigrationPlanner.Plan(input with { Destination = "tcp:10.0.0.3:7000" }).Downtime!.Value;
        TimeSpan any = MigrationPlanner.Plan(input).Downtime!.Value;

        Assert.AreEqual(any, unknown, "a host without switchovers: every destination's");
        Assert.AreEqual(18.0, (known - any).TotalMilliseconds, 0.01, "the host's own bias, 20 ms against 2 ms");
    }

    [TestMethod]
    [DataRow("tcp:10.0.0.2:7000", "tcp:10.0.0.2:7000")]
    [DataRow("10.0.0.2:41000", "tcp:10.0.0.2:41000")]
    [DataRow("[fe80::1]:7000", "tcp:[fe80::1]:7000")]
    [DataRow("tcp:[::ffff:10.0.0.2]:7000", "tcp:10.0.0.2:7000")]
    [DataRow("unix:/run/mk.sock", "unix:/run/mk.sock")]
    public async Task ResolveDestination_WritesAnAddressAsTheEngineKeysIt(string destination, string keyed)
    {
        Assert.AreEqual(keyed, await MigrationPlanner.ResolveDestinationAsync(destination));
    }

    [TestMethod]
    public async Task ResolveDestination_ResolvesAHostNameToTheAddressAConnectionTriesFirst()
    {
        string first = System.Net.Dns.GetHostAddresses("localhost")[0] is var ip && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
        Assert.AreEqual($"tcp:{first}:7000", await MigrationPlanner.ResolveDestinationAsync("localhost:7000"));
        Assert.AreEqual($"tcp:{first}:7000", await MigrationPlanner.ResolveDestinationAsync("tcp:localhost:7000"));
    }

    [TestMethod]
    [DataRow("10.0.0.2", "is not an address")]
    [DataRow("tcp:10.0.0.2:port", "has an invalid port 'port'")]
    [DataRow("unix:", "has no socket path")]
    public async Task ResolveDestination_OfNoAddress_IsRejectedSayingWhy(string destination, string why)
    {
        ArgumentException ex = await Assert.ThrowsExactlyAsync<ArgumentException>(() => MigrationPlanner.ResolveDestinationAsync(destination));
        StringAssert.Contains(ex.Message, $"'{destination}' {why}");
        Assert.AreEqual("destination", ex.ParamName);
    }
}
