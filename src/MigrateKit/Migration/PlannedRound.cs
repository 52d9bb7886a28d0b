using System;

namespace MigrateKit.Migration;

/// <summary>One pre-copy round as <see cref="MigrationPlanner.Plan"/> expects it to go.</summary>
/// <param name="Round">0 is the full copy.</param>
/// <param name="Duration">From the round's start to its harvest.</param>
/// <param name="BytesSent">What the round puts on the wire.</param>
/// <param name="DirtyPages">Pages the guest dirties meanwhile: what is left to send after it.</param>
/// <param name="DeferredPages">Hot pages held back for the switchover after the round.</param>
/// <param name="ThrottlePercent">The throttle in force during the round.</param>
/// <param name="PredictedDowntime">The downtime of a switchover right after the round.</param>
/// <param name="Action">What the policy decides after it.</param>
public readonly record struct PlannedRound(int Round, TimeSpan Duration, ulong BytesSent, ulong DirtyPages, ulong DeferredPages, int ThrottlePercent, TimeSpan PredictedDowntime, MigrationAction Action);
