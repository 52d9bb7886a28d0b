using System;
using System.Collections.Generic;
using MigrateKit.Memory;

namespace MigrateKit.Tracking;

/// <summary>What one harvest found.</summary>
/// <param name="DirtyPages">Pages newly reported dirty, summed over all regions.</param>
/// <param name="Duration">How long the harvest took (kernel calls and scanning).</param>
public readonly record struct HarvestResult(ulong DirtyPages, TimeSpan Duration);

/// <summary>
/// Tracks which guest pages are written. <see cref="Harvest"/> ORs the pages dirtied since the
/// previous harvest (or since <see cref="Start"/>) into one <see cref="DirtyBitmap"/> per region
/// and re-arms tracking for them: a page written after its bit was taken is reported again by
/// the next harvest, so no write is ever missed.
/// </summary>
public interface IDirtyPageTracker : IDisposable
{
    /// <summary>The tracked regions, in the order harvest bitmaps are given.</summary>
    IReadOnlyList<GuestMemoryRegion> Regions { get; }

    /// <summary>Whether tracking is on.</summary>
    bool IsTracking { get; }

    /// <summary>
    /// What tracks the pages, as telemetry and reports name it: <c>dirty-log</c> (KVM's dirty
    /// bitmap), <c>dirty-ring</c> (KVM's dirty ring), <c>write-protect</c> (userfaultfd); a
    /// tracker of another kind is named by its type unless it says otherwise.
    /// </summary>
    string Kind => GetType().Name;

    /// <summary>Starts tracking; writes before this call are not reported.</summary>
    void Start();

    /// <summary>
    /// Takes the pages dirtied since the last harvest and ORs them into <paramref name="into"/>,
    /// one bitmap per region (each sized to its region's page count).
    /// </summary>
    HarvestResult Harvest(IReadOnlyList<DirtyBitmap> into);

    /// <summary>Stops tracking. Pages dirtied since the last harvest are no longer available.</summary>
    void Stop();
}
