using System;
using System.Buffers.Binary;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Memory;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>HostVm workloads and device state, without running a worker.</summary>
[TestClass]
public sealed class HostVmTests
{
    private const ulong MiB = 1UL << 20;

    [TestMethod]
    public void DeviceState_RoundTripsTheWorkloadAndItsProgress()
    {
        using var source = new HostVm(64 * MiB);
        source.Load(HostWorkload.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(2 * MiB, 6 * MiB), 7));
        byte[] state = source.SaveDeviceState();

        using var target = new HostVm([new GuestMemoryRegionSpec(0, 64 * MiB)]);
        target.RestoreDeviceState(state);

        Assert.AreEqual(source.Workload, target.Workload);
        CollectionAssert.AreEqual(state, target.SaveDeviceState());
    }

    [TestMethod]
    public void DeviceState_WithAnImpossibleWorkload_IsRejected()
    {
        byte[] state = ValidState();
        BinaryPrimitives.WriteUInt32LittleEndian(state.AsSpan(40), 0); // HotCold every 0 passes
        using var target = new HostVm(64 * MiB);
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => target.RestoreDeviceState(state));
        StringAssert.Contains(ex.Message, "workload");
    }

    [TestMethod]
    [DataRow(0u, 0UL)]
    [DataRow(1u, 5UL * 256)]
    public void DeviceState_WithProgressOutsideTheWorkload_IsRejected(uint pass, ulong position)
    {
        byte[] state = ValidState();
        BinaryPrimitives.WriteUInt32LittleEndian(state.AsSpan(48), pass);
        BinaryPrimitives.WriteUInt64LittleEndian(state.AsSpan(56), position);
        using var target = new HostVm(64 * MiB);
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => target.RestoreDeviceState(state));
        StringAssert.Contains(ex.Message, "progress");
    }

    [TestMethod]
    public void DeviceState_OfAnotherKind_IsRejected()
    {
        using var target = new HostVm(64 * MiB);
        Assert.ThrowsExactly<FormatException>(() => target.RestoreDeviceState(new byte[96]));
        Assert.ThrowsExactly<FormatException>(() => target.RestoreDeviceState(ValidState().AsSpan(0, 95)));
    }

    [TestMethod]
    public void Workloads_ValidateTheirRanges()
    {
        Assert.ThrowsExactly<ArgumentException>(() => HostWorkload.Sweep(MiB, MiB));
        Assert.ThrowsExactly<ArgumentException>(() => HostWorkload.Sweep(MiB + 1, 2 * MiB));
        Assert.ThrowsExactly<ArgumentException>(() => HostWorkload.HotCold(new GuestRange(MiB, 3 * MiB), new GuestRange(2 * MiB, 4 * MiB), 1));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => HostWorkload.RandomWrites(MiB, 2 * MiB, 0));
        using var vm = new HostVm(8 * MiB);
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => vm.Load(HostWorkload.Sweep(4 * MiB, 16 * MiB)));
        StringAssert.Contains(ex.Message, "not inside");

        // Built with the record's constructor, past the factories' checks: Load checks the same, and nothing is loaded.
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => vm.Load(new HostWorkload(HostWorkloadKind.HotCold, new GuestRange(MiB, 2 * MiB), new GuestRange(4 * MiB, 8 * MiB), 0)));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => vm.Load(new HostWorkload(HostWorkloadKind.RandomWrites, new GuestRange(MiB, 2 * MiB))));
        Assert.ThrowsExactly<ArgumentException>(() => vm.Load(new HostWorkload(HostWorkloadKind.Sweep, new GuestRange(2 * MiB, MiB))));
        Assert.IsNull(vm.Workload);
    }

    [TestMethod]
    public void AsAWorkloadVm_ReportsItsOneWorker_AndIsNotRunningBeforeStart()
    {
        using IWorkloadVm vm = new HostVm(8 * MiB);
        ((HostVm)vm).Load(HostWorkload.Sweep(MiB, 2 * MiB));
        vm.SetPaceLimit(1000);
        vm.SetThrottlePercent(20);
        Assert.IsFalse(vm.IsRunning);
        Assert.AreEqual(1000d, vm.PaceLimit);
        Assert.AreEqual(20, vm.ThrottlePercent);
        VcpuStatus status = vm.GetStatus().Single();
        Assert.AreEqual(0u, status.Passes);
        Assert.AreEqual(8 * MiB, vm.Memory.TotalSize);
    }

    [TestMethod]
    public void Pause_BeforeStart_ReturnsAtOnce_AndTheStateCanBeSaved()
    {
        using var vm = new HostVm(8 * MiB);
        vm.Load(HostWorkload.Sweep(MiB, 2 * MiB));
        vm.Pause();
        Assert.HasCount(96, vm.SaveDeviceState());
        vm.Resume();
    }

    private static byte[] ValidState()
    {
        using var vm = new HostVm(64 * MiB);
        vm.Load(HostWorkload.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(2 * MiB, 6 * MiB), 7));
        return vm.SaveDeviceState();
    }
}
