using System;
using System.Threading;
using MigrateKit.Migration;

namespace MigrateKit.Libvirt;

/// <summary>
/// How far one libvirt migration job got and what was decided about it: its clock, the downtime limit
/// QEMU holds, the phase reached, an abort and postcopy. The job follower writes it; the outcome
/// resolver reads it once the migrate call returned.
/// </summary>
internal sealed class LibvirtRunState
{
    private readonly TimeProvider _time;
    private readonly long _started;
    private int _phaseRank;

    /// <param name="time">The migration's clock; the run starts now.</param>
    /// <param name="qemuLimit">The downtime limit QEMU starts with.</param>
    internal LibvirtRunState(TimeProvider time, TimeSpan qemuLimit)
    {
        _time = time;
        _started = time.GetTimestamp();
        QemuLimit = qemuLimit;
    }

    /// <summary>Time since the run started.</summary>
    internal TimeSpan Elapsed => _time.GetElapsedTime(_started);

    /// <summary>The downtime limit QEMU holds.</summary>
    internal TimeSpan QemuLimit { get; set; }

    /// <summary>The xbzrle cache QEMU holds, bytes; null when xbzrle is off.</summary>
    internal ulong? XbzrleCache { get; set; }

    /// <summary>The guest's memory, bytes.</summary>
    internal ulong MemoryBytes { get; init; }

    /// <summary>Why the job is being aborted; null while it is not.</summary>
    internal string? AbortReason { get; private set; }

    /// <summary>Whether an abort is asked for and still means something (postcopy has not moved the guest).</summary>
    internal bool AbortPending => AbortReason is not null && !PostcopyStarted;

    /// <summary>Whether the job was switched to postcopy.</summary>
    internal bool PostcopyStarted { get; private set; }

    /// <summary>Whether QEMU was seen in the stop-and-copy.</summary>
    internal bool SwitchoverSeen { get; private set; }

    /// <summary>Whether polling gave up on the source host.</summary>
    internal bool PollingLost { get; private set; }

    /// <summary>
    /// The furthest phase the job reached: <see cref="MigrationPhase.Handshake"/> until the job shows up
    /// (libvirt is still preparing the destination), <see cref="MigrationPhase.Send"/> while pre-copy
    /// runs, <see cref="MigrationPhase.Switchover"/> from the stop-and-copy or postcopy on.
    /// </summary>
    internal MigrationPhase Phase => Volatile.Read(ref _phaseRank) switch
    {
        0 => MigrationPhase.Handshake,
        1 => MigrationPhase.Send,
        _ => MigrationPhase.Switchover,
    };

    /// <summary>Records an abort; the first reason stays.</summary>
    /// <returns>Whether this call asked for it.</returns>
    internal bool RequestAbort(string reason)
    {
        if (AbortReason is not null)
        {
            return false;
        }

        AbortReason = reason;
        return true;
    }

    /// <summary>The job exists and sends (a poll or an iteration event showed it); thread-safe.</summary>
    internal void MarkJobSeen() => Advance(1);

    /// <summary>QEMU stopped the guest for the stop-and-copy.</summary>
    /// <returns>Whether this is the first time.</returns>
    internal bool MarkSwitchover()
    {
        Advance(2);
        bool first = !SwitchoverSeen;
        SwitchoverSeen = true;
        return first;
    }

    /// <summary>The job runs in postcopy: the destination runs the guest from here on.</summary>
    internal void MarkPostcopy()
    {
        Advance(2);
        PostcopyStarted = true;
    }

    /// <summary>Polling the source failed past the reconnect timeout.</summary>
    /// <returns>Whether this is the first time.</returns>
    internal bool MarkPollingLost()
    {
        bool first = !PollingLost;
        PollingLost = true;
        return first;
    }

    // Iteration events arrive on libvirt's event thread while the follower polls: the phase only moves forward.
    private void Advance(int rank)
    {
        int seen = Volatile.Read(ref _phaseRank);
        while (seen < rank)
        {
            int was = Interlocked.CompareExchange(ref _phaseRank, rank, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }
}
