using System;
using MigrateKit.Memory;

namespace MigrateKit.Migration;

/// <summary>
/// The VM being migrated away, as the pre-copy engine needs it. A VMM implements this for its
/// own VMs (MigrateKit.Vmm's MicroVm does).
/// </summary>
public interface IMigrationSource
{
    /// <summary>A name for logs and the Hello frame.</summary>
    string Name { get; }

    /// <summary>The guest memory (the regions the tracker tracks, in the same order).</summary>
    GuestMemoryLayout Memory { get; }

    /// <summary>The number of vCPUs (sent to the destination so it builds the same VM).</summary>
    int VcpuCount { get; }

    /// <summary>Stops every vCPU; no guest write may happen after it returns. Returns how long it took.</summary>
    TimeSpan Pause();

    /// <summary>
    /// Lets the vCPUs run again after <see cref="Pause"/>. If it throws after a failed migration, the
    /// report (or the cancellation) says so, the destination is told, and the source stays as it is.
    /// </summary>
    void Resume();

    /// <summary>Slows the guest: it may run only <c>100 - percent</c> % of the time (0 = full speed).</summary>
    void SetThrottlePercent(int percent);

    /// <summary>Saves the device state (vCPU registers and whatever else the VMM has) while paused.</summary>
    byte[] SaveDeviceState();

    /// <summary>
    /// Whether the vCPUs are paused now. The engine refuses a paused source: a completed
    /// migration leaves its source paused so that the VM never runs twice, and the engine resumes
    /// the VMs it pauses. An implementation that cannot tell keeps the default, false.
    /// </summary>
    bool IsPaused => false;
}

/// <summary>The VM being built on the destination by <see cref="MigrationReceiver"/>.</summary>
public interface IMigrationTarget : IDisposable
{
    /// <summary>The guest memory the receiver writes pages into.</summary>
    GuestMemoryLayout Memory { get; }

    /// <summary>How long <see cref="RestoreDeviceState"/> plus <see cref="Start"/> are expected to take (measured, e.g. by a dry run).</summary>
    TimeSpan EstimateResumeCost();

    /// <summary>Loads the device state the source saved.</summary>
    void RestoreDeviceState(ReadOnlySpan<byte> state);

    /// <summary>Starts the vCPUs: the VM runs on the destination from here on.</summary>
    void Start();
}
