using System;
using MigrateKit.Interop;

namespace MigrateKit.Kvm;

/// <summary>
/// Receives the entries <see cref="KvmVm.CollectDirtyRings"/> takes from the vCPUs' rings: the
/// dirty-ring tracker keeps them until its next harvest, so the VM itself keeps no tracking state.
/// </summary>
internal interface IDirtyRingSink
{
    /// <summary>
    /// Takes one batch of entries. Called under the VM's ring lock, from the thread that collects
    /// (a vCPU's run loop on a full ring, or a harvest); the span is valid only during the call.
    /// </summary>
    void Collect(ReadOnlySpan<NativeDirtyEntry> entries);
}
