namespace LibvirtSharp;

/// <summary>A domain's state (<c>virDomainState</c>; the values are libvirt's).</summary>
public enum DomainState
{
    /// <summary><c>VIR_DOMAIN_NOSTATE</c>: no state.</summary>
    NoState = 0,

    /// <summary><c>VIR_DOMAIN_RUNNING</c>: the domain is running.</summary>
    Running = 1,

    /// <summary><c>VIR_DOMAIN_BLOCKED</c>: the domain is blocked on a resource.</summary>
    Blocked = 2,

    /// <summary><c>VIR_DOMAIN_PAUSED</c>: the domain is paused (by the user, a migration, an I/O error…).</summary>
    Paused = 3,

    /// <summary><c>VIR_DOMAIN_SHUTDOWN</c>: the domain is being shut down.</summary>
    Shutdown = 4,

    /// <summary><c>VIR_DOMAIN_SHUTOFF</c>: the domain is shut off.</summary>
    Shutoff = 5,

    /// <summary><c>VIR_DOMAIN_CRASHED</c>: the domain crashed.</summary>
    Crashed = 6,

    /// <summary><c>VIR_DOMAIN_PMSUSPENDED</c>: suspended by guest power management.</summary>
    PmSuspended = 7,
}

/// <summary>A domain's state and the reason for it (<c>virDomainGetState</c>).</summary>
/// <param name="State">The state.</param>
/// <param name="Reason">
/// The reason, from the state's own libvirt enum: <c>virDomainRunningReason</c>, <c>virDomainPausedReason</c>
/// (e.g. 2 = <c>VIR_DOMAIN_PAUSED_MIGRATION</c>), <c>virDomainShutoffReason</c> and so on.
/// </param>
public readonly record struct DomainStateInfo(DomainState State, int Reason);
