using System;

namespace MigrateKit.Migration;

/// <summary>What <see cref="MigrationPlanner.ObserveAsync"/> saw of a running guest.</summary>
public sealed record DirtyObservation
{
    /// <summary>Distinct pages dirtied against time, with the hot set.</summary>
    public required DirtyCurve Curve { get; init; }

    /// <summary>The memory observed.</summary>
    public required ulong MemoryBytes { get; init; }

    /// <summary>Pages the host has populated (the rest read as zero); null when it could not be read.</summary>
    public ulong? PopulatedPages { get; init; }

    /// <summary>The longest harvest of the observation: what one harvest of all of the memory costs.</summary>
    public required TimeSpan HarvestCost { get; init; }

    /// <summary>
    /// How long the switchover's kind of harvest took, timed once before tracking stopped, where
    /// the tracker's only reads (<see cref="Tracking.IDirtyPageTracker.FinalHarvestRearms"/> false);
    /// otherwise null, and <see cref="HarvestCost"/> stands for it.
    /// </summary>
    public TimeSpan? FinalHarvestCost { get; init; }

    /// <summary>From the start of tracking to its stop.</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>The tracker's kind (<see cref="Tracking.IDirtyPageTracker.Kind"/>).</summary>
    public required string TrackerKind { get; init; }
}
