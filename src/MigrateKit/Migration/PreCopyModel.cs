using System;
using System.Collections.Generic;
using MigrateKit.Estimation;

namespace MigrateKit.Migration;

/// <summary>
/// Runs pre-copy on paper, as the engine runs it: round 0 sends the populated memory, each later
/// round what the guest dirtied during the one before (per the <see cref="DirtyCurve"/>, at the
/// guest's speed under the throttle), the hot pages held back once <see cref="PageHeat"/> would
/// call them hot and the downtime budget allows; after each round the engine's own
/// <see cref="DowntimeEstimator"/> forecasts (with the options' <see cref="MigrationOptions.DowntimeHistory"/>)
/// and its own <see cref="MigrationPolicy"/> decides.
/// </summary>
internal static class PreCopyModel
{
    private const double WireBytes = TransferMeasurements.PageWireBytes;

    /// <summary>One run of the model.</summary>
    internal sealed record Outcome(PlanVerdict Verdict, IReadOnlyList<PlannedRound> Rounds, TimeSpan TotalTime, ulong BytesSent, TimeSpan? Downtime, int MaxThrottlePercent, string Reason);

    /// <summary>Models the migration of <paramref name="input"/> at <paramref name="bandwidth"/> under <paramref name="options"/> (its bandwidth limit only says whether there is one, for the policy).</summary>
    internal static Outcome Run(PlanInput input, double bandwidth, MigrationOptions options)
    {
        // The engine's estimator, corrected by the same past switchovers the engine's would be.
        var estimator = new DowntimeEstimator { History = input.Options.DowntimeHistory };
        TransferMeasurements.KeyHistory(estimator, input.Options, input.TrackerKind, input.Destination);
        estimator.ObservePause(input.PauseCost);
        estimator.ObserveResume(input.ResumeCost);
        estimator.ObserveHarvest(input.HarvestCost, input.MemoryBytes);
        if (input.FinalHarvestCost is TimeSpan final)
        {
            estimator.ObserveFinalHarvestProbe(final, input.MemoryBytes);
        }
        estimator.ObserveRoundTrip(input.RoundTrip);
        var policy = new MigrationPolicy(options);

        double totalPages = input.TotalPages;
        double hot = Math.Min(input.Curve.HotPages, totalPages);
        double pending = input.PopulatedPages ?? totalPages;
        double deferred = 0;
        double elapsed = input.SetupCost.TotalSeconds;
        double bytes = 0;
        int throttle = 0;
        int maxThrottle = 0;
        var windows = new List<double>();
        var fixedCosts = new DowntimeBreakdown(input.PauseCost, input.HarvestCost, TimeSpan.Zero, TimeSpan.FromSeconds(input.DeviceStateBytes / bandwidth), input.ResumeCost);
        double deferBudget = Math.Floor(policy.DeferBudgetBytes(fixedCosts, bandwidth) / WireBytes);
        var rounds = new List<PlannedRound>();
        for (int round = 0; round < options.MaxRounds; round++)
        {
            double send = Math.Max(pending - deferred, 0);
            double interval = (send * WireBytes / bandwidth) + input.RoundTrip.TotalSeconds + input.HarvestCost.TotalSeconds;
            elapsed += interval;
            bytes += send * WireBytes;

            // The guest runs (100 - throttle) % of the time: its curve in guest time, read at the share of the round it ran.
            // A paced guest runs only part of its time anyway: the throttle slows it once it allows less than that part.
            double window = interval * Math.Min(1, (100 - throttle) / 100.0 / input.GuestRunShare);
            double dirty = Pages(input, window);
            double warm = Math.Max(dirty - deferred, 0);
            pending = Math.Max(dirty, deferred);

            windows.Add(window);
            double hotNow = round + 1 >= options.HotPageThreshold ? Math.Min(Math.Max(hot, HotPages(input, options, windows)), dirty) : 0;
            double nowDeferred = Math.Min(hotNow, deferBudget);
            bool deferredGrew = nowDeferred > deferred;
            deferred = nowDeferred;

            Forecast forecast = estimator.Estimate(new ForecastInput
            {
                Round = round,
                Elapsed = TimeSpan.FromSeconds(elapsed),
                PendingBytes = (ulong)(pending * WireBytes),
                NextRoundBytes = (ulong)((pending - deferred) * WireBytes),
                DeferredBytes = (ulong)(deferred * WireBytes),
                WarmDirtyBytesPerSecond = warm * WireBytes / interval,
                TotalDirtyBytesPerSecond = dirty * WireBytes / interval,
                DeviceStateBytes = input.DeviceStateBytes,
                MemoryBytes = input.MemoryBytes,
                MaxDowntime = options.MaxDowntime,
                BandwidthBytesPerSecond = bandwidth,
            });
            var state = new PolicyState(round, TimeSpan.FromSeconds(elapsed), (ulong)bytes, input.MemoryBytes, throttle, deferredGrew, (ulong)dirty);
            PolicyDecision decision = policy.Decide(forecast, state);
            rounds.Add(new PlannedRound
            {
                Round = round,
                Duration = TimeSpan.FromSeconds(interval),
                BytesSent = (ulong)(send * WireBytes),
                DirtyPages = (ulong)dirty,
                DeferredPages = (ulong)deferred,
                ThrottlePercent = throttle,
                PredictedDowntime = forecast.PredictedDowntime,
                Action = decision.Action,
            });
            switch (decision.Action)
            {
                case MigrationAction.SwitchOver:
                    TimeSpan downtime = forecast.PredictedDowntime;
                    bytes += (pending * WireBytes) + input.DeviceStateBytes;
                    PlanVerdict verdict = maxThrottle == 0 ? PlanVerdict.Converges : PlanVerdict.ConvergesWithThrottle;
                    string how = maxThrottle == 0 ? "with the guest at full speed" : Invariant($"with the guest throttled up to {maxThrottle}%");
                    return new Outcome(verdict, rounds, TimeSpan.FromSeconds(elapsed) + downtime, (ulong)bytes, downtime, maxThrottle,
                        Invariant($"switches over after {rounds.Count} rounds {how}: {Ms(downtime)} of downtime within the {Ms(options.MaxDowntime)} limit"));
                case MigrationAction.Abort:
                    return new Outcome(PlanVerdict.DoesNotConverge, rounds, TimeSpan.FromSeconds(elapsed), (ulong)bytes, null, maxThrottle, decision.Reason ?? "aborted by policy");
                case MigrationAction.Throttle:
                    throttle = decision.ThrottlePercent;
                    maxThrottle = Math.Max(maxThrottle, throttle);
                    break;
            }
        }

        return new Outcome(PlanVerdict.DoesNotConverge, rounds, TimeSpan.FromSeconds(elapsed), (ulong)bytes, null, maxThrottle, Invariant($"{options.MaxRounds} rounds without a switchover"));
    }

    /// <summary>
    /// The pages <see cref="PageHeat"/> would call hot after the rounds of <paramref name="windows"/>
    /// (guest seconds each): at least those dirtied in two consecutive rounds of the last Window,
    /// which is what either round holds less what both together hold, D(a) + D(b) - D(a + b), for a
    /// guest that writes alike over time. A set rewritten within every round is all hot; a sweep
    /// slower than the rounds, or pages written once, are not.
    /// </summary>
    private static double HotPages(PlanInput input, MigrationOptions options, List<double> windows)
    {
        double hot = 0;
        for (int i = Math.Max(1, windows.Count - options.HotPageWindow + 1); i < windows.Count; i++)
        {
            double a = windows[i - 1];
            double b = windows[i];
            hot = Math.Max(hot, Pages(input, a) + Pages(input, b) - Pages(input, a + b));
        }

        return hot;
    }

    private static double Pages(PlanInput input, double seconds) => Math.Min(input.TotalPages, input.Curve.PagesAt(TimeSpan.FromSeconds(seconds)));

    /// <summary>A copy of the policy's options with another downtime limit and throttle rule (the bandwidth limit is kept: the policy reads whether there is one).</summary>
    internal static MigrationOptions With(MigrationOptions o, TimeSpan maxDowntime, bool allowThrottling) => new()
    {
        MaxDowntime = maxDowntime,
        BandwidthLimit = o.BandwidthLimit,
        MaxRounds = o.MaxRounds,
        MinRounds = o.MinRounds,
        MaxBytesFactor = o.MaxBytesFactor,
        HotPageWindow = o.HotPageWindow,
        HotPageThreshold = o.HotPageThreshold,
        DeferBudgetFraction = o.DeferBudgetFraction,
        AllowThrottling = allowThrottling,
        MaxThrottlePercent = o.MaxThrottlePercent,
        ConvergenceTarget = o.ConvergenceTarget,
        Deadline = o.Deadline,
    };

    internal static string Ms(TimeSpan t) => Invariant($"{t.TotalMilliseconds:F0} ms");

    // Reasons end up in logs and JSON: the same text whatever the process's culture.
    internal static string Invariant(FormattableString text) => FormattableString.Invariant(text);
}
