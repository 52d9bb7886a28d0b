using System;
using System.Collections.Generic;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tracking;

namespace MigrateKit.Vmm;

/// <summary>
/// A VM that runs a workload of known write patterns and migrates, as a source or a target:
/// what a <see cref="MicroVm"/> (guest programs on KVM vCPUs) and a <see cref="HostVm"/> (a
/// workload on a host thread) have in common, so a caller drives either one the same way.
/// </summary>
public interface IWorkloadVm : IMigrationSource, IMigrationTarget
{
    /// <summary>The guest memory.</summary>
    new GuestMemoryLayout Memory { get; }

    /// <summary>The pages/s limit set by <see cref="SetPaceLimit"/>, or 0 for none.</summary>
    double PaceLimit { get; }

    /// <summary>The throttle set by <see cref="IMigrationSource.SetThrottlePercent"/> (0 to 99).</summary>
    int ThrottlePercent { get; }

    /// <summary>Whether the workload runs: started, not paused, not stopped.</summary>
    bool IsRunning { get; }

    /// <summary>Creates a tracker of all of the VM's memory, the one that suits the VM.</summary>
    IDirtyPageTracker CreateTracker();

    /// <summary>Holds the workload to at most <paramref name="pagesPerSecond"/> page writes per second; 0 removes the limit.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The limit is negative or NaN.</exception>
    void SetPaceLimit(double pagesPerSecond);

    /// <summary>What the workload has reported, per vCPU in id order (a HostVm has one worker).</summary>
    IReadOnlyList<VcpuStatus> GetStatus();

    /// <summary>Waits until the first vCPU's workload has completed <paramref name="passes"/> passes.</summary>
    /// <returns>false when the time ran out or the workload cannot get there (a fault).</returns>
    bool WaitForPass(uint passes, TimeSpan timeout);

    /// <summary>Ends the workload for good; memory stays readable until the VM is disposed.</summary>
    void Stop();
}
