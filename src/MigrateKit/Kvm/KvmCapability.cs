namespace MigrateKit.Kvm;

/// <summary>KVM capabilities MigrateKit asks about (values of <c>KVM_CAP_*</c>).</summary>
public enum KvmCapability : uint
{
    /// <summary><c>KVM_CAP_USER_MEMORY</c>: user-space memory slots.</summary>
    UserMemory = 3,

    /// <summary><c>KVM_CAP_NR_MEMSLOTS</c>: the number of memory slots per address space.</summary>
    MemorySlots = 10,

    /// <summary><c>KVM_CAP_NR_VCPUS</c>: the recommended maximum of vCPUs.</summary>
    RecommendedVcpus = 9,

    /// <summary><c>KVM_CAP_MAX_VCPUS</c>: the maximum of vCPUs.</summary>
    MaxVcpus = 66,

    /// <summary><c>KVM_CAP_IMMEDIATE_EXIT</c>: <c>kvm_run.immediate_exit</c> is honoured.</summary>
    ImmediateExit = 136,

    /// <summary><c>KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2</c>: bitmask of supported manual-protect flags.</summary>
    ManualDirtyLogProtect2 = 168,

    /// <summary><c>KVM_CAP_DIRTY_LOG_RING</c>: the maximum dirty-ring size in bytes.</summary>
    DirtyLogRing = 192,

    /// <summary><c>KVM_CAP_DIRTY_LOG_RING_ACQ_REL</c>: the ring with acquire/release ordering.</summary>
    DirtyLogRingAcqRel = 223,
}
