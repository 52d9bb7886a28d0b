using System;
using BenchmarkDotNet.Attributes;
using MigrateKit.Kvm;
using MigrateKit.Memory;

namespace MigrateKit.Benchmarks;

/// <summary>
/// One harvest through the managed API (<c>KVM_GET_DIRTY_LOG</c> into a <see cref="DirtyBitmap"/>
/// and a count of it) of an idle and of a fully dirty slot. "Dirty" uses manual protect with
/// <c>KVM_DIRTY_LOG_INITIALLY_SET</c>, so every page reads dirty on every call without a guest.
/// The C floor is <c>mk_harvest_floor GIB idle|dirty</c>, which makes the same calls and count;
/// <see cref="HarvestVsFloor"/> times both the same way in one run.
/// </summary>
public class HarvestBenchmarks
{
    private KvmSystem _kvm = null!;
    private KvmVm _vm = null!;
    private GuestMemoryLayout _memory = null!;
    private MemorySlot _slot = null!;
    private DirtyBitmap _bitmap = null!;

    /// <summary>Slot size in GiB.</summary>
    [Params(1, 16)]
    public int GiB { get; set; }

    /// <summary>"idle" or "dirty".</summary>
    [Params("idle", "dirty")]
    public string Mode { get; set; } = "idle";

    /// <summary>Creates the VM and the slot.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _kvm = KvmSystem.Open();
        _vm = _kvm.CreateVm();
        if (Mode == "dirty")
        {
            _vm.EnableManualDirtyLogProtect(initiallySet: true);
        }

        _memory = GuestMemoryLayout.Create((ulong)GiB << 30);
        _slot = _vm.CreateSlot(0, _memory.Regions[0], dirtyLogging: true);
        _bitmap = new DirtyBitmap(_slot.PageCount);
    }

    /// <summary>GET_DIRTY_LOG and a count of the result.</summary>
    [Benchmark]
    public ulong Harvest()
    {
        _slot.GetDirtyLog(_bitmap);
        return _bitmap.Count();
    }

    /// <summary>Releases the VM.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _vm.Dispose();
        _memory.Dispose();
        _kvm.Dispose();
        GC.KeepAlive(_bitmap);
    }
}
