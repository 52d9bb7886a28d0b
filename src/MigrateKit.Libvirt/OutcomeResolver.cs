using System;
using System.Threading;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using MigrateKit.Migration;

namespace MigrateKit.Libvirt;

/// <summary>
/// Decides, once the migrate call returned, which host runs the guest: the domain's state on both hosts
/// says what happened, whatever the call returned. Resumes the source only where the destination
/// certainly does not run the guest, and calls the outcome unknown where that cannot be known.
/// </summary>
internal sealed class OutcomeResolver(ILogger logger)
{
    /// <summary>Asks both hosts and concludes.</summary>
    /// <param name="source">The source host.</param>
    /// <param name="destination">The destination host.</param>
    /// <param name="domain">The domain.</param>
    /// <param name="run">How far the job got and what was decided.</param>
    /// <param name="failure">What the migrate call threw, or null when it returned.</param>
    internal MigrationOutcome Resolve(ResilientHost source, ResilientHost destination, string domain, LibvirtRunState run, Exception? failure)
    {
        HostView onSource = Query(source, domain);
        HostView onDestination = Query(destination, domain);

        // libvirt's success means the destination runs it; after a failed call only the states count.
        bool completed = failure is null || (onDestination.Active && onSource.Reachable && !onSource.Active);
        JobStats? final = null;
        if (completed)
        {
            final = CompletedStats(destination, domain);
        }
        else if (onSource.State is { State: DomainState.Paused } && !run.PostcopyStarted && onDestination.Reachable && !onDestination.Active)
        {
            // Only when the destination certainly does not run it: resuming a guest that runs
            // elsewhere too would have two copies writing to the same disks.
            // A failed pre-copy migration must leave the guest running where it was.
            ResumeSource(source, domain);
        }

        MigrationStatus status = completed ? MigrationStatus.Completed : run.AbortReason is not null ? MigrationStatus.Aborted : MigrationStatus.Failed;
        string? reason = status switch
        {
            MigrationStatus.Completed when failure is not null => $"the migrate call failed ({failure.Message}) but the domain runs on the destination",
            MigrationStatus.Completed => run.PostcopyStarted ? "completed in postcopy" : null,
            MigrationStatus.Aborted => run.AbortReason,
            _ => failure?.Message ?? (run.PollingLost ? "lost the source host" : "the domain runs on neither host"),
        };

        // Not completed, yet not cleanly back on the source: a host could not be asked, the guest is
        // active on both or on neither, or postcopy had moved its state (recover with libvirt's
        // postcopy-resume, not by resuming the source).
        bool unknown = !completed && (!onSource.Reachable || !onDestination.Reachable || !onSource.Active || onDestination.Active || run.PostcopyStarted);
        if (unknown)
        {
            reason += $" (the domain is {onSource.Describe()} on the source and {onDestination.Describe()} on the destination)";
        }

        return new MigrationOutcome
        {
            Status = status,
            Reason = reason,
            FailedPhase = status == MigrationStatus.Failed ? FailedPhase(run, onSource) : null,
            Unknown = unknown,
            Final = final,
            Error = completed ? null : failure,
        };
    }

    /// <summary>
    /// Where a failed job failed. QEMU pauses the source only for the stop-and-copy, so a source left
    /// paused failed in the switchover even when no poll saw it start.
    /// </summary>
    private static MigrationPhase FailedPhase(LibvirtRunState run, HostView onSource) =>
        onSource.State is { State: DomainState.Paused } ? MigrationPhase.Switchover : run.Phase;

    private JobStats? CompletedStats(ResilientHost destination, string domain)
    {
        try
        {
            return destination.Run(h => h.GetJobStats(domain, completed: true), CancellationToken.None);
        }
        catch (LibvirtException ex)
        {
            LibvirtLog.NoCompletedStats(logger, ex, domain);
            return null;
        }
    }

    private void ResumeSource(ResilientHost source, string domain)
    {
        try
        {
            source.Run(h => h.Resume(domain), CancellationToken.None);
        }
        catch (LibvirtException ex)
        {
            LibvirtLog.ResumeFailed(logger, ex, domain);
        }
    }

    private static HostView Query(ResilientHost host, string domain)
    {
        try
        {
            return new HostView(true, host.Run(h => h.GetState(domain), CancellationToken.None));
        }
        catch (LibvirtException)
        {
            // Unreachable even after reconnecting (or refusing to say): not the same as absent.
            return new HostView(false, null);
        }
    }

    /// <summary>What one host said about the domain: unreachable, absent (null state) or a state.</summary>
    private readonly record struct HostView(bool Reachable, DomainStateInfo? State)
    {
        internal bool Active => State is { State: DomainState.Running or DomainState.Paused or DomainState.Blocked or DomainState.PmSuspended };

        internal string Describe() => !Reachable ? "unknown (host unreachable)" : State is { } s ? s.State.ToString().ToLowerInvariant() : "absent";
    }
}
