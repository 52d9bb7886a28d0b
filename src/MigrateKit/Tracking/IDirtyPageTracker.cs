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

    /// <summary>
    /// Takes the pages dirtied since the last harvest into <paramref name="into"/>, as
    /// <see cref="Harvest"/> does, for the switchover's harvest: the guest is paused, and on
    /// success tracking stops. A tracker may leave tracking un-armed for the pages it reports
    /// (<see cref="FinalHarvestRearms"/> is then false): every later harvest reports them again
    /// until a <see cref="Harvest"/> takes them, so if the guest runs on after a failed
    /// switchover no write is missed, and some pages are reported twice.
    /// </summary>
    /// <remarks>The default is <see cref="Harvest"/>.</remarks>
    HarvestResult HarvestFinal(IReadOnlyList<DirtyBitmap> into) => Harvest(into);

    /// <summary>
    /// Whether <see cref="HarvestFinal"/> re-arms tracking for the pages it reports, as
    /// <see cref="Harvest"/> does; false when it only reads, which makes it cheap enough to time
    /// with the guest running (and is then harmless: what it reports, later harvests report again).
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    bool FinalHarvestRearms => true;

    /// <summary>Stops tracking. Pages dirtied since the last harvest are no longer available.</summary>
    void Stop();
}
