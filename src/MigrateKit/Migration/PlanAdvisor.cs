using System;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// Searches the model for the smallest bandwidth and downtime limit that converge, and turns
/// the plan into a recommended setting. The searches assume more bandwidth or a higher limit
/// never makes a migration worse, which the model's property tests check.
/// </summary>
internal static class PlanAdvisor
{
    /// <summary>A needed bandwidth up to this multiple of the given one is recommended; beyond it, the limit or post-copy.</summary>
    internal const double BandwidthHeadroom = 4;

    /// <summary>The highest downtime limit the advisor recommends before post-copy.</summary>
    internal static readonly TimeSpan LongestLimit = TimeSpan.FromSeconds(5);

    private const double HighestBandwidth = 1e12;
    private const int Steps = 48;
    private const int RoundingTries = 8;

    internal static MigrationPlan Plan(PlanInput input)
    {
        input.Validate();

        // The model keys the history as the engine keys its connection; parsed here once, not per model run.
        if (input.Destination is { } destination)
        {
            input = input with { Destination = MigrationAddress.Parse(destination).ToString() };
        }

        double bandwidth = input.BandwidthBytesPerSecond;
        MigrationOptions options = input.Options;
        PreCopyModel.Outcome outcome = PreCopyModel.Run(input, bandwidth, PreCopyModel.With(options, options.MaxDowntime, options.AllowThrottling));
        if (outcome.Verdict == PlanVerdict.ConvergesWithThrottle
            && PreCopyModel.Run(input, bandwidth, PreCopyModel.With(options, options.MaxDowntime, allowThrottling: false)) is { Verdict: PlanVerdict.Converges } free)
        {
            // The policy throttles whenever the guest dirties over the convergence target, also when it would converge anyway:
            // the rounds are the policy's, the verdict says the throttle is not needed.
            outcome = outcome with
            {
                Verdict = PlanVerdict.Converges,
                Reason = PreCopyModel.Invariant($"{outcome.Reason}; unthrottled it converges too, in {free.Rounds.Count} rounds and {free.TotalTime.TotalMilliseconds:F0} ms"),
            };
        }
        double? minimum = MinimumBandwidth(input);
        bool withinDeadline = Within(outcome, input.Deadline);
        return new MigrationPlan
        {
            Verdict = outcome.Verdict,
            Rounds = outcome.Rounds,
            TotalTime = outcome.TotalTime,
            BytesSent = outcome.BytesSent,
            Downtime = outcome.Downtime,
            MaxThrottlePercent = outcome.MaxThrottlePercent,
            Reason = outcome.Reason,
            BandwidthBytesPerSecond = bandwidth,
            MaxDowntime = options.MaxDowntime,
            MinimumBandwidthBytesPerSecond = minimum,
            WithinDeadline = withinDeadline,
            Recommended = Recommend(input, outcome, minimum, withinDeadline),
        };
    }

    /// <summary>The smallest bandwidth that converges without a throttle (within the deadline, if any); null when none up to 1 TB/s does.</summary>
    internal static double? MinimumBandwidth(PlanInput input)
    {
        MigrationOptions unthrottled = PreCopyModel.With(input.Options, input.Options.MaxDowntime, allowThrottling: false);
        bool Fits(double b)
        {
            PreCopyModel.Outcome o = PreCopyModel.Run(input, b, unthrottled);
            return o.Verdict == PlanVerdict.Converges && Within(o, input.Deadline);
        }

        double? found = Smallest(Fits, Math.Log(4096), Math.Log(HighestBandwidth), Math.Exp);
        return found is double b ? Typed(Fits, b, RoundUp(b), f => RoundUp(f + 1)) : null;
    }

    /// <summary>The smallest downtime limit up to <see cref="LongestLimit"/> at which the given bandwidth converges (throttling as the options allow); null when none does.</summary>
    internal static TimeSpan? MinimumLimit(PlanInput input)
    {
        bool Fits(double ms)
        {
            PreCopyModel.Outcome o = PreCopyModel.Run(input, input.BandwidthBytesPerSecond, PreCopyModel.With(input.Options, TimeSpan.FromMilliseconds(ms), input.Options.AllowThrottling));
            return o.Verdict != PlanVerdict.DoesNotConverge && Within(o, input.Deadline);
        }

        double? found = Smallest(Fits, input.Options.MaxDowntime.TotalMilliseconds, LongestLimit.TotalMilliseconds, ms => ms);
        return found is double m ? TimeSpan.FromMilliseconds(Typed(Fits, m, Math.Ceiling(m), f => f + 1)) : null;
    }

    /// <summary>
    /// The first round figure from <paramref name="rounded"/> up (each the <paramref name="next"/> of the one
    /// before) that fits; <paramref name="found"/> itself (which fits) when none of a few does. The model's
    /// verdict is not monotonic near its boundary (a round that ends a little earlier sees a different
    /// rate), so a figure rounded up from one that converges may not.
    /// </summary>
    private static double Typed(Func<double, bool> fits, double found, double rounded, Func<double, double> next)
    {
        double figure = rounded;
        for (int i = 0; i < RoundingTries; i++, figure = next(figure))
        {
            if (fits(figure))
            {
                return figure;
            }
        }

        return found;
    }

    // Bisection over [low, high] in the search's own scale: the smallest value (mapped) that fits.
    private static double? Smallest(Func<double, bool> fits, double low, double high, Func<double, double> map)
    {
        if (!fits(map(high)))
        {
            return null;
        }

        if (fits(map(low)))
        {
            return map(low);
        }

        for (int i = 0; i < Steps; i++)
        {
            double mid = (low + high) / 2;
            if (fits(map(mid)))
            {
                high = mid;
            }
            else
            {
                low = mid;
            }
        }

        return map(high);
    }

    private static bool Within(PreCopyModel.Outcome o, TimeSpan? deadline) => deadline is not TimeSpan d || (o.Verdict != PlanVerdict.DoesNotConverge && o.TotalTime <= d);

    // A figure to type: whole KiB/s below 1 MiB/s, whole MiB/s above, never below what converged.
    private static double RoundUp(double b) => b < 1 << 20 ? Math.Ceiling(b / 1024) * 1024 : Math.Ceiling(b / (1 << 20)) * (1 << 20);

    private static PlanRecommendation Recommend(PlanInput input, PreCopyModel.Outcome outcome, double? minimum, bool withinDeadline)
    {
        double bandwidth = input.BandwidthBytesPerSecond;
        TimeSpan limit = input.Options.MaxDowntime;
        int cap = input.Options.MaxThrottlePercent;
        string needed = minimum is double least ? Rate(least) : "more than any link";
        string deadline = input.Deadline is TimeSpan d ? PreCopyModel.Invariant($" within the {d.TotalSeconds:0.#} s deadline") : "";
        if (outcome.Verdict == PlanVerdict.Converges && withinDeadline)
        {
            return new PlanRecommendation(bandwidth, limit, cap, false, PreCopyModel.Invariant($"converges{deadline} at {Rate(bandwidth)} without throttling; {Rate(minimum ?? bandwidth)} would do"));
        }

        // Only more bandwidth makes a converging migration meet its deadline; otherwise it must be within reach.
        bool late = outcome.Verdict != PlanVerdict.DoesNotConverge && !withinDeadline;
        if (minimum is double m && (late || m <= bandwidth * BandwidthHeadroom))
        {
            string now = outcome.Verdict == PlanVerdict.ConvergesWithThrottle && withinDeadline
                ? PreCopyModel.Invariant($"at {Rate(bandwidth)} the guest must be throttled up to {outcome.MaxThrottlePercent}%")
                : PreCopyModel.Invariant($"at {Rate(bandwidth)}: {outcome.Reason}");
            return new PlanRecommendation(m, limit, cap, false, PreCopyModel.Invariant($"{Rate(m)} converges{deadline} without throttling; {now}"));
        }

        if (outcome.Verdict == PlanVerdict.ConvergesWithThrottle && withinDeadline)
        {
            return new PlanRecommendation(bandwidth, limit, Math.Max(cap, outcome.MaxThrottlePercent), false,
                PreCopyModel.Invariant($"converges{deadline} with the guest throttled up to {outcome.MaxThrottlePercent}%; without throttling it needs {needed}"));
        }

        if (MinimumLimit(input) is TimeSpan longer)
        {
            return new PlanRecommendation(bandwidth, longer, cap, false,
                PreCopyModel.Invariant($"at {Rate(bandwidth)} a downtime limit of {PreCopyModel.Ms(longer)} converges{deadline}; without throttling it needs {needed}"));
        }

        return new PlanRecommendation(bandwidth, limit, cap, true,
            PreCopyModel.Invariant($"pre-copy needs {needed} (over {BandwidthHeadroom:0}x {Rate(bandwidth)}) or a downtime over {PreCopyModel.Ms(LongestLimit)}; post-copy sends each page once"));
    }

    private static string Rate(double bytesPerSecond) => Units.FormatRate(bytesPerSecond);
}
