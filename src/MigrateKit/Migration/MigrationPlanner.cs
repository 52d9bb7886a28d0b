using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Memory;
using MigrateKit.Tracking;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// Answers before a migration whether it will converge, how long it will take and what it will
/// cost. <see cref="ObserveAsync"/> watches a running guest through its tracker without
/// migrating it: it harvests at several marks (100 ms to seconds) and builds the curve of
/// distinct pages dirtied against time (it saturates at the working set) and the hot set.
/// <see cref="Plan"/> runs the engine's pre-copy on that curve (or on one from another source,
/// <see cref="DirtyCurve.FromRates"/>) for a bandwidth and a downtime limit.
/// </summary>
public sealed class MigrationPlanner
{
    private readonly MigrationPlannerOptions _options;

    /// <summary>Creates a planner.</summary>
    /// <param name="options">The marks and the clock; null for the defaults.</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public MigrationPlanner(MigrationPlannerOptions? options = null)
    {
        _options = options ?? new MigrationPlannerOptions();
        _options.Validate();
    }

    /// <summary>
    /// Tracks the guest for the length of the marks and returns its curve. Tracking is stopped
    /// in every outcome (the guest is never paused or throttled).
    /// </summary>
    /// <exception cref="ObservationRefusedException">The tracker is already tracking, or its VM is being migrated or observed.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; tracking is stopped.</exception>
    public async Task<DirtyObservation> ObserveAsync(IDirtyPageTracker tracker, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tracker);
        Refuse(tracker);
        Claim(tracker.Regions);
        try
        {
            return await TrackAsync(tracker, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            MemoryClaims.Release(tracker.Regions);
        }
    }

    /// <summary>
    /// Models the migration: the verdict, the rounds, total time, bytes and downtime, the smallest
    /// bandwidth that converges without throttling (within the deadline, if any) and a recommended setting.
    /// </summary>
    /// <exception cref="ArgumentException">The input is invalid.</exception>
    public static MigrationPlan Plan(PlanInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return PlanAdvisor.Plan(input);
    }

    /// <summary>
    /// The address a migration to <paramref name="destination"/> learns its switchovers under, for
    /// <see cref="PlanInput.Destination"/>. The engine keys a TCP destination by the address it
    /// connected to, so a host name is resolved here, to the address a connection tries first; an
    /// address is returned as the engine writes it.
    /// </summary>
    /// <param name="destination">tcp:HOST:PORT, HOST:PORT or unix:PATH.</param>
    /// <param name="cancellationToken">Cancels the name's resolution.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is not an address.</exception>
    /// <exception cref="MigrationConnectionException">The host name cannot be resolved.</exception>
    public static async Task<string> ResolveDestinationAsync(string destination, CancellationToken cancellationToken = default)
    {
        MigrationAddress parsed = MigrationAddress.Parse(destination, nameof(destination));
        if (parsed.Host is not { } host)
        {
            return parsed.ToString();
        }

        try
        {
            IPAddress first = parsed.First(await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false));
            return $"tcp:{MigrationListener.FormatHost(first)}:{parsed.Port}";
        }
        catch (SocketException ex)
        {
            throw parsed.CannotResolve(ex);
        }
    }

    private static void Refuse(IDirtyPageTracker tracker)
    {
        if (tracker.IsTracking)
        {
            throw new ObservationRefusedException($"The {tracker.Kind} tracker is already tracking: the VM is being migrated or observed, and the planner would take the dirty bits it needs.");
        }

        // Another tracker of the same VM (a migration's) turned dirty logging on for its slots.
        if (tracker is KvmDirtyLogTracker kvm && kvm.Slots.FirstOrDefault(s => s.DirtyLogging) is { } slot)
        {
            throw new ObservationRefusedException($"Dirty logging is already on for memory slot {slot.Id}: the VM is being migrated or observed through another tracker.");
        }
    }

    private static void Claim(IReadOnlyList<GuestMemoryRegion> regions)
    {
        if (MemoryClaims.TryClaim(regions, "being observed by a planner") is { } busy)
        {
            throw new ObservationRefusedException($"Memory region {busy.Region} is already {busy.Holder}.");
        }
    }

    private async Task<DirtyObservation> TrackAsync(IDirtyPageTracker tracker, CancellationToken ct)
    {
        TimeProvider time = _options.TimeProvider;
        IReadOnlyList<GuestMemoryRegion> regions = tracker.Regions;
        DirtyBitmap[] union = [.. regions.Select(r => new DirtyBitmap(r.PageCount))];
        DirtyBitmap[] window = [.. regions.Select(r => new DirtyBitmap(r.PageCount))];
        DirtyBitmap[] hot = [.. regions.Select(r => new DirtyBitmap(r.PageCount))];
        var points = new List<DirtyCurvePoint>(_options.Marks.Count);
        TimeSpan slowest = TimeSpan.Zero;
        TimeSpan? final = null;
        try
        {
            tracker.Start();
        }
        catch (DirtyTrackingException ex) when (ex.Errno == Errno.EBUSY)
        {
            // userfaultfd takes one registration per range: another tracker (a migration's) holds it.
            throw new ObservationRefusedException($"The memory is already tracked by another {tracker.Kind} tracker: the VM is being migrated or observed.", ex);
        }

        long start = time.GetTimestamp();
        try
        {
            foreach (TimeSpan mark in _options.Marks)
            {
                TimeSpan wait = mark - time.GetElapsedTime(start);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, time, ct).ConfigureAwait(false);
                }

                ct.ThrowIfCancellationRequested();
                TimeSpan at = time.GetElapsedTime(start);
                Array.ForEach(window, b => b.ClearAll());
                HarvestResult harvest = tracker.Harvest(window);
                slowest = harvest.Duration > slowest ? harvest.Duration : slowest;
                for (int i = 0; i < regions.Count; i++)
                {
                    union[i].Or(window[i]);
                    if (points.Count == 0)
                    {
                        hot[i].CopyFrom(window[i]);
                    }
                    else
                    {
                        hot[i].And(window[i]);
                    }
                }

                points.Add(new DirtyCurvePoint(at, (long)union.Sum(b => (decimal)b.Count())));
            }

            if (!tracker.FinalHarvestRearms)
            {
                // Only reads: what it reports is not taken from anyone.
                Array.ForEach(window, b => b.ClearAll());
                final = tracker.HarvestFinal(window).Duration;
            }
        }
        finally
        {
            tracker.Stop();
        }

        return new DirtyObservation
        {
            Curve = new DirtyCurve(points, (long)hot.Sum(b => (decimal)b.Count())),
            MemoryBytes = regions.Aggregate(0UL, (sum, r) => sum + r.Size),
            PopulatedPages = Populated(regions),
            HarvestCost = slowest,
            FinalHarvestCost = final,
            Duration = time.GetElapsedTime(start),
            TrackerKind = tracker.Kind,
        };
    }

    // Which pages round 0 would read; a host without /proc/self/pagemap leaves it unknown (every page).
    private static ulong? Populated(IReadOnlyList<GuestMemoryRegion> regions)
    {
        try
        {
            return regions.Aggregate(0UL, (sum, r) => sum + r.MarkPopulatedPages(new DirtyBitmap(r.PageCount)));
        }
        catch (System.IO.IOException)
        {
            return null;
        }
    }
}
