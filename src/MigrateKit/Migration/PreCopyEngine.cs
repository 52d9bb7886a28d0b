using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Tracking;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// Iterative pre-copy with hot-page deferral. Round 0 sends all non-zero memory; each later
/// round sends the pages dirtied since (minus the hot ones, which would only be dirtied again);
/// after every round a <see cref="DowntimeEstimator"/> forecasts the switchover and a
/// <see cref="MigrationPolicy"/> decides whether to go on, throttle the guest, switch over or give
/// up. The switchover pauses the source, sends every remaining dirty page (the deferred hot ones
/// included), the device state and the digests, and waits for the destination to resume.
/// </summary>
/// <remarks>
/// Failure leaves the source running with its memory intact: a paused source is resumed, the
/// throttle is lifted, and every page the destination may lack stays in <see cref="PendingPages"/>
/// (a page whose dirty bit was taken from KVM is either delivered or merged back there). The
/// tracker is then stopped, unless <see cref="MigrationOptions.KeepTrackingOnFailure"/> keeps it
/// running so that <see cref="PendingPages"/> stays exact for a resume; the next
/// <see cref="MigrateAsync(IMigrationConnection, IProgress{MigrationProgress}?, CancellationToken)"/> starts it again and sends every page.
/// <para>
/// One migration at a time: a second <see cref="MigrateAsync(IMigrationConnection, IProgress{MigrationProgress}?, CancellationToken)"/> while one runs is refused, as is
/// a migration of a VM that another engine migrates or a <see cref="MigrationPlanner"/> observes in
/// this process, and one of a paused source (a completed migration leaves its source paused).
/// </para>
/// <para>
/// Diagnostics: the logger gets Information at the start, the switchover and the end, Debug per
/// round and Warning on an abort or a failure; the <c>MigrateKit</c> meter and activity source
/// (see <see cref="Diagnostics.MigrateKitDiagnostics"/>) get the round and outcome measurements and
/// a <c>migratekit.migrate</c> span with a <c>migratekit.round</c> child per round.
/// </para>
/// </remarks>
public sealed class PreCopyEngine
{
    private int _running;

    /// <summary>Creates an engine for one source VM and its tracker.</summary>
    /// <exception cref="ArgumentException">The tracker's regions are not the source's memory regions, or the options are invalid.</exception>
    public PreCopyEngine(IMigrationSource source, IDirtyPageTracker tracker, MigrationOptions? options = null, ILogger<PreCopyEngine>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tracker);
        Options = options ?? new MigrationOptions();
        Options.Validate();
        Source = source;
        Tracker = tracker;
        Logger = (ILogger?)logger ?? NullLogger.Instance;
        IReadOnlyList<GuestMemoryRegion> memory = source.Memory.Regions;
        if (tracker.Regions.Count != memory.Count || tracker.Regions.Where((r, i) => !ReferenceEquals(r, memory[i])).Any())
        {
            throw new ArgumentException("The tracker must track exactly the source's memory regions, in order.", nameof(tracker));
        }

        Regions = new RegionSet(memory, Options);
    }

    /// <summary>Pages the destination may not have (after a failure: everything not known delivered).</summary>
    public IReadOnlyList<DirtyBitmap> PendingPages => Regions.Pending;

    internal IMigrationSource Source { get; }

    internal IDirtyPageTracker Tracker { get; }

    internal MigrationOptions Options { get; }

    internal ILogger Logger { get; }

    /// <summary>What the destination lacks, kept from one migration to the next.</summary>
    internal RegionSet Regions { get; }

    /// <summary>
    /// Migrates the source over <paramref name="connection"/> to a <see cref="MigrationReceiver"/>.
    /// Never throws for a failed migration: the report says Failed or Aborted and carries the
    /// typed error (<see cref="MigrationException"/>); only cancellation throws, after the source was
    /// left running.
    /// </summary>
    /// <exception cref="InvalidOperationException">A migration of this engine is already running, another engine or a planner holds the VM's memory, or the source is paused (<see cref="IMigrationSource.IsPaused"/>).</exception>
    public Task<MigrationReport> MigrateAsync(IMigrationConnection connection, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return RunAsync(new Reconnector(connection), progress, cancellationToken);
    }

    /// <summary>
    /// Migrates the source to a listening <see cref="MigrationReceiver"/> that <paramref name="connect"/>
    /// reaches, and reaches again when the link is lost: during pre-copy the session continues
    /// where the destination's memory is (only what is pending is sent again); after Commit the
    /// engine asks the destination whether the VM started. Retries follow
    /// <see cref="MigrationOptions.ReconnectAttempts"/> and <see cref="MigrationOptions.ReconnectDelay"/>.
    /// The engine owns and disposes the connections it opens. Never throws for a failed migration
    /// (see <see cref="MigrateAsync(IMigrationConnection, IProgress{MigrationProgress}?, CancellationToken)"/>).
    /// </summary>
    /// <param name="connect">Opens a new connection to the destination, for example <c>ct =&gt; MigrationConnector.ConnectAsync(address, tls, null, ct)</c>.</param>
    /// <param name="progress">Gets a report after every round.</param>
    /// <param name="cancellationToken">Cancels the migration; the source is left running (or, after Commit, paused).</param>
    /// <exception cref="InvalidOperationException">A migration of this engine is already running, another engine or a planner holds the VM's memory, or the source is paused (<see cref="IMigrationSource.IsPaused"/>).</exception>
    public Task<MigrationReport> MigrateAsync(Func<CancellationToken, Task<IMigrationConnection>> connect, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connect);
        return RunAsync(new Reconnector(connect, Options, Logger), progress, cancellationToken);
    }

    private async Task<MigrationReport> RunAsync(Reconnector connector, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _running, 1, 0) != 0)
        {
            throw new InvalidOperationException($"A migration of {Source.Name} is already running on this engine; wait for it to end before starting another.");
        }

        try
        {
            return await RunClaimedAsync(connector, progress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    private async Task<MigrationReport> RunClaimedAsync(Reconnector connector, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        // Another engine would hand the same VM over a second time, and each would take the other's dirty bits.
        IReadOnlyList<GuestMemoryRegion> regions = Source.Memory.Regions;
        if (MemoryClaims.TryClaim(regions, "being migrated") is { } busy)
        {
            throw new InvalidOperationException($"The memory of {Source.Name} (region {busy.Region}) is already {busy.Holder} in this process; a VM is migrated or observed by one at a time.");
        }

        try
        {
            // The engine resumes what it pauses: a paused source is handed over already (a completed
            // migration leaves it paused) or held by its owner, and must not be set running.
            if (Source.IsPaused)
            {
                throw new InvalidOperationException($"{Source.Name} is paused: a completed (or unresolved) migration leaves its source paused, and the engine resumes the VMs it pauses. Resume it first if it runs nowhere else.");
            }

            var run = new PreCopyRun(this, connector, progress);
            return await run.ExecuteAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            MemoryClaims.Release(regions);
        }
    }
}
