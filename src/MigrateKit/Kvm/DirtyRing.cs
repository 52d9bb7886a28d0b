using System;
using MigrateKit.Interop;

namespace MigrateKit.Kvm;

/// <summary>
/// One vCPU's dirty ring as mapped from KVM. Entries are collected in order from the fetch
/// index; KVM's <c>KVM_RESET_DIRTY_RINGS</c> (see <see cref="KvmVm.CollectDirtyRings"/>) then
/// re-protects the collected pages.
/// </summary>
public sealed unsafe class DirtyRing : IDisposable
{
    private readonly SafeMappingHandle _mapping;
    private uint _fetchIndex;

    internal DirtyRing(uint vcpuId, SafeMappingHandle mapping, int entries)
    {
        VcpuId = vcpuId;
        _mapping = mapping;
        EntryCount = entries;
    }

    /// <summary>The vCPU the ring belongs to.</summary>
    public uint VcpuId { get; }

    /// <summary>The number of 16-byte entries.</summary>
    public int EntryCount { get; }

    /// <summary>How many entries have been collected so far (wraps at 2^32).</summary>
    public uint FetchIndex => _fetchIndex;

    /// <summary>Collects up to <paramref name="max"/> entries; fewer means the ring is drained.
    /// Callers serialize (the VM does, under its ring lock).</summary>
    internal int Harvest(NativeDirtyEntry* buffer, int max)
    {
        using (new HandleLease(_mapping))
        {
            KvmException.Check(NativeMethods.VcpuHarvestDirtyRing(_mapping.Address, (uint)EntryCount, ref _fetchIndex, buffer, (uint)max, out uint count),
                $"harvest of the dirty ring of vCPU {VcpuId}");
            return (int)count;
        }
    }

    /// <summary>Unmaps the ring.</summary>
    public void Dispose() => _mapping.Dispose();
}
