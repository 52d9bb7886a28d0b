using System;
using System.Collections.Generic;

namespace MigrateKit.Migration;

/// <summary>What <see cref="MigrationPlanner.Plan"/> expects of a pre-copy migration, before it starts.</summary>
public sealed record MigrationPlan
{
    /// <summary>Whether it converges, and whether only with the guest throttled; <see cref="MaxThrottlePercent"/> is what the policy does, needed or not.</summary>
    public required PlanVerdict Verdict { get; init; }

    /// <summary>Whether a switchover within the limit is reached (throttled or not).</summary>
    public bool Converges => Verdict != PlanVerdict.DoesNotConverge;

    /// <summary>The pre-copy rounds, up to the switchover or the policy's abort.</summary>
    public required IReadOnlyList<PlannedRound> Rounds { get; init; }

    /// <summary>From the start to the guest running on the destination; when it does not converge, until the policy gives up.</summary>
    public required TimeSpan TotalTime { get; init; }

    /// <summary>Bytes on the wire, the switchover's included.</summary>
    public required ulong BytesSent { get; init; }

    /// <summary>The downtime of the switchover; null when it does not converge.</summary>
    public TimeSpan? Downtime { get; init; }

    /// <summary>The strongest throttle the policy applies, percent.</summary>
    public required int MaxThrottlePercent { get; init; }

    /// <summary>Why it converges or not, in words.</summary>
    public required string Reason { get; init; }

    /// <summary>The bandwidth modelled, bytes per second.</summary>
    public required double BandwidthBytesPerSecond { get; init; }

    /// <summary>The downtime limit modelled.</summary>
    public required TimeSpan MaxDowntime { get; init; }

    /// <summary>
    /// The smallest bandwidth at which the migration converges without throttling the guest (and
    /// within <see cref="PlanInput.Deadline"/> when one is given), bytes per second; null when
    /// none does (the fixed costs alone take more than the limit).
    /// </summary>
    public double? MinimumBandwidthBytesPerSecond { get; init; }

    /// <summary>Whether it completes within <see cref="PlanInput.Deadline"/> (true without one).</summary>
    public bool WithinDeadline { get; init; } = true;

    /// <summary>The setting to use, with the reason.</summary>
    public required PlanRecommendation Recommended { get; init; }
}
