namespace MigrateKit.Vmm;

/// <summary>Where a <see cref="MicroVm"/> is in its life.</summary>
public enum MicroVmState
{
    /// <summary>Built; programs can be loaded; no vCPU has run.</summary>
    Created,
    /// <summary>vCPU threads are running guest code.</summary>
    Running,
    /// <summary>Every vCPU is parked outside <c>KVM_RUN</c>.</summary>
    Paused,
    /// <summary>vCPU threads have ended.</summary>
    Stopped,
}
