namespace MigrateKit.Libvirt;

/// <summary>Why <see cref="LibvirtDirtyRateProbe"/> could not measure a domain.</summary>
public enum LibvirtDirtyRateFailure
{
    /// <summary>The host has no domain of that name.</summary>
    NoDomain,

    /// <summary>The domain is not running (shut off, paused, crashed): a stopped guest dirties nothing worth measuring.</summary>
    NotRunning,

    /// <summary>The domain has a job under way (a migration): the measurement and the job would disturb each other.</summary>
    JobActive,

    /// <summary>
    /// The hypervisor cannot measure in this mode: QEMU without the mode, a dirty-ring measurement of a
    /// domain started without KVM's dirty ring or on QEMU before 8.0 (7.2's leaves the vCPU stuck), or a
    /// dirty-bitmap or dirty-ring measurement of a guest that does not run on KVM.
    /// </summary>
    ModeNotSupported,

    /// <summary>The calculation did not report a result within its period and the grace period.</summary>
    TimedOut,

    /// <summary>libvirt refused or failed a call for another reason (the inner exception says which).</summary>
    LibvirtError,
}
