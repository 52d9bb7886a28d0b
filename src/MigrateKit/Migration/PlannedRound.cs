using System;

namespace MigrateKit.Migration;

/// <summary>One pre-copy round as <see cref="MigrationPlanner.Plan"/> expects it to go.</summary>
public readonly record struct PlannedRound
{
    /// <summary>0 is the full copy.</summary>
    public required int Round { get; init; }

    /// <summary>From the round's start to its harvest.</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>What the round puts on the wire.</summary>
    public required ulong BytesSent { get; init; }

    /// <summary>Pages the guest dirties meanwhile: what is left to send after it.</summary>
    public required ulong DirtyPages { get; init; }

    /// <summary>Hot pages held back for the switchover after the round.</summary>
    public required ulong DeferredPages { get; init; }

    /// <summary>The throttle in force during the round.</summary>
    public required int ThrottlePercent { get; init; }

    /// <summary>The downtime of a switchover right after the round.</summary>
    public required TimeSpan PredictedDowntime { get; init; }

    /// <summary>What the policy decides after it.</summary>
    public required MigrationAction Action { get; init; }
}
