namespace MigrateKit.Kvm;

/// <summary>Why <c>KVM_RUN</c> returned (values of <c>KVM_EXIT_*</c>).</summary>
public enum VcpuExitReason : uint
{
    /// <summary><c>KVM_EXIT_UNKNOWN</c>.</summary>
    Unknown = 0,
    /// <summary><c>KVM_EXIT_IO</c>: the guest executed <c>in</c> or <c>out</c>.</summary>
    Io = 2,
    /// <summary><c>KVM_EXIT_HLT</c>: the guest halted.</summary>
    Halt = 5,
    /// <summary><c>KVM_EXIT_MMIO</c>: access to guest-physical memory no slot backs.</summary>
    Mmio = 6,
    /// <summary><c>KVM_EXIT_SHUTDOWN</c>: triple fault.</summary>
    Shutdown = 8,
    /// <summary><c>KVM_EXIT_FAIL_ENTRY</c>: the hardware refused to enter the guest.</summary>
    FailEntry = 9,
    /// <summary><c>KVM_EXIT_INTR</c>: interrupted by a signal or <c>immediate_exit</c> (a kick).</summary>
    Interrupted = 10,
    /// <summary><c>KVM_EXIT_INTERNAL_ERROR</c>.</summary>
    InternalError = 17,
    /// <summary><c>KVM_EXIT_DIRTY_RING_FULL</c>: a dirty ring must be harvested and reset before re-entry.</summary>
    DirtyRingFull = 31,
}

/// <summary>What one <c>KVM_RUN</c> ended with.</summary>
/// <param name="Reason">Why the vCPU exited.</param>
/// <param name="IsOut">For <see cref="VcpuExitReason.Io"/>: an <c>out</c> (otherwise an <c>in</c>, answered with all-ones unless <see cref="KvmVcpu.AnswerIn"/> says otherwise).</param>
/// <param name="Port">For <see cref="VcpuExitReason.Io"/>: the port.</param>
/// <param name="Size">For <see cref="VcpuExitReason.Io"/>: the access size in bytes (1, 2 or 4).</param>
/// <param name="Count">For <see cref="VcpuExitReason.Io"/>: the repeat count (string instructions).</param>
/// <param name="Data">For an <c>out</c>: the first bytes written, little-endian; for MMIO: the guest-physical address.</param>
/// <param name="HardwareReason">For entry failures and internal errors: KVM's sub-code.</param>
public readonly record struct VcpuExit(
    VcpuExitReason Reason,
    bool IsOut,
    ushort Port,
    byte Size,
    uint Count,
    ulong Data,
    uint HardwareReason);
