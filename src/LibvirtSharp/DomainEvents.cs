using System;

namespace LibvirtSharp;

/// <summary>A domain lifecycle event (<c>virDomainEventType</c>; the values are libvirt's).</summary>
public enum DomainEventType
{
    /// <summary><c>VIR_DOMAIN_EVENT_DEFINED</c>: the domain was defined (or its definition updated).</summary>
    Defined = 0,

    /// <summary><c>VIR_DOMAIN_EVENT_UNDEFINED</c>: the domain was undefined.</summary>
    Undefined = 1,

    /// <summary><c>VIR_DOMAIN_EVENT_STARTED</c>: the domain started (booted, restored, migrated in…).</summary>
    Started = 2,

    /// <summary><c>VIR_DOMAIN_EVENT_SUSPENDED</c>: the domain was paused (by the user, a migration, an I/O error…).</summary>
    Suspended = 3,

    /// <summary><c>VIR_DOMAIN_EVENT_RESUMED</c>: the domain resumed.</summary>
    Resumed = 4,

    /// <summary><c>VIR_DOMAIN_EVENT_STOPPED</c>: the domain stopped (shut down, destroyed, migrated out, crashed…).</summary>
    Stopped = 5,

    /// <summary><c>VIR_DOMAIN_EVENT_SHUTDOWN</c>: the guest is shutting down.</summary>
    Shutdown = 6,

    /// <summary><c>VIR_DOMAIN_EVENT_PMSUSPENDED</c>: the guest suspended itself through power management.</summary>
    PmSuspended = 7,

    /// <summary><c>VIR_DOMAIN_EVENT_CRASHED</c>: the guest crashed.</summary>
    Crashed = 8,
}

/// <summary>Data of <see cref="LibvirtConnection.DomainLifecycle"/>.</summary>
public sealed class DomainLifecycleEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    public DomainLifecycleEventArgs(string domainName, Guid uuid, DomainEventType @event, int detail)
    {
        DomainName = domainName;
        Uuid = uuid;
        Event = @event;
        Detail = detail;
    }

    /// <summary>The domain's name.</summary>
    public string DomainName { get; }

    /// <summary>The domain's UUID.</summary>
    public Guid Uuid { get; }

    /// <summary>What happened.</summary>
    public DomainEventType Event { get; }

    /// <summary>
    /// Why, from the event's own libvirt enum: <c>virDomainEventStartedDetailType</c>,
    /// <c>virDomainEventStoppedDetailType</c> (e.g. 1 = <c>VIR_DOMAIN_EVENT_STOPPED_DESTROYED</c>, 3 = <c>…_MIGRATED</c>)…
    /// </summary>
    public int Detail { get; }
}

/// <summary>Data of <see cref="LibvirtConnection.MigrationIteration"/>.</summary>
public sealed class DomainMigrationIterationEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    public DomainMigrationIterationEventArgs(string domainName, Guid uuid, int iteration)
    {
        DomainName = domainName;
        Uuid = uuid;
        Iteration = iteration;
    }

    /// <summary>The migrating domain's name.</summary>
    public string DomainName { get; }

    /// <summary>The migrating domain's UUID.</summary>
    public Guid Uuid { get; }

    /// <summary>The pass over guest memory that just started (1 = the second pass, the first re-send of dirtied pages).</summary>
    public int Iteration { get; }
}

/// <summary>Data of <see cref="LibvirtConnection.JobCompleted"/>.</summary>
public sealed class DomainJobCompletedEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    public DomainJobCompletedEventArgs(string domainName, Guid uuid, JobStats stats)
    {
        DomainName = domainName;
        Uuid = uuid;
        Stats = stats;
    }

    /// <summary>The domain's name.</summary>
    public string DomainName { get; }

    /// <summary>The domain's UUID.</summary>
    public Guid Uuid { get; }

    /// <summary>The completed job's statistics, as <see cref="LibvirtDomain.GetJobStats"/> with <c>completed: true</c> would return them.</summary>
    public JobStats Stats { get; }
}

/// <summary>An event yielded by <see cref="LibvirtConnection.WatchEventsAsync"/>.</summary>
/// <param name="DomainName">The domain's name.</param>
/// <param name="Uuid">The domain's UUID.</param>
public abstract record DomainEvent(string DomainName, Guid Uuid);

/// <summary>A lifecycle event (see <see cref="DomainLifecycleEventArgs"/>).</summary>
/// <param name="DomainName">The domain's name.</param>
/// <param name="Uuid">The domain's UUID.</param>
/// <param name="Event">What happened.</param>
/// <param name="Detail">Why, from the event's own libvirt detail enum.</param>
public sealed record DomainLifecycleEvent(string DomainName, Guid Uuid, DomainEventType Event, int Detail) : DomainEvent(DomainName, Uuid);

/// <summary>A migration iteration event (see <see cref="DomainMigrationIterationEventArgs"/>).</summary>
/// <param name="DomainName">The domain's name.</param>
/// <param name="Uuid">The domain's UUID.</param>
/// <param name="Iteration">The pass over guest memory that just started.</param>
public sealed record DomainMigrationIterationEvent(string DomainName, Guid Uuid, int Iteration) : DomainEvent(DomainName, Uuid);

/// <summary>A job-completed event (see <see cref="DomainJobCompletedEventArgs"/>).</summary>
/// <param name="DomainName">The domain's name.</param>
/// <param name="Uuid">The domain's UUID.</param>
/// <param name="Stats">The completed job's statistics.</param>
public sealed record DomainJobCompletedEvent(string DomainName, Guid Uuid, JobStats Stats) : DomainEvent(DomainName, Uuid);
