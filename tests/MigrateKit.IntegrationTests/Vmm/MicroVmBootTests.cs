using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Kvm;
using MigrateKit.Memory;
using MigrateKit.Tracking;
using MigrateKit.Vmm;
using static MigrateKit.IntegrationTests.TestSupport.TestVms;

namespace MigrateKit.IntegrationTests.Vmm;

/// <summary>MicroVm.Boot on real KVM: the boot-sector images QEMU runs, in real mode, reporting on COM1.</summary>
[TestClass]
[TestCategory("Kvm")]
public sealed class MicroVmBootTests
{
    private const ulong SweepStart = BootSector.MinimumWriteAddress;
    private const ulong SweepEnd = SweepStart + (8 * MiB);

    [TestInitialize]
    public void RequireKvm() => KvmRequirement.Require();

    /// <summary>The image of the issue: a sweep of 8 MiB above 1 MiB, reporting on COM1.</summary>
    internal static byte[] SweepImage() =>
        BootSector.Build(GuestPrograms.Sweep(SweepStart, SweepEnd, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress));

    /// <summary>A MicroVm that listens on COM1, as a booted image needs.</summary>
    internal static MicroVm BootVm(ulong memory, bool manualProtect = false) =>
        MicroVm.Create(new MicroVmOptions { MemorySize = memory, Ports = GuestPorts.Com1, ManualDirtyLogProtect = manualProtect });

    [TestMethod]
    public void SweepImage_Boots_AndReportsItsPassesOnCom1()
    {
        using MicroVm vm = BootVm(16 * MiB);
        vm.Boot(SweepImage());
        vm.Start();
        WaitForPass(vm, 3);
        VcpuStatus status = vm.GetStatus()[0];
        Assert.IsNull(status.Fault);
        Assert.AreEqual(0L, status.Failures);
        Assert.AreEqual(0L, status.PagesWritten, "COM1 programs have no pace port");
    }

    [TestMethod]
    public void SweepImage_DirtiesExactlyItsPages()
    {
        using MicroVm vm = BootVm(16 * MiB);
        vm.Boot(SweepImage());
        vm.Start();
        WaitForPass(vm, 2);
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        uint pass = vm.GetStatus()[0].Passes;
        WaitForPass(vm, pass + 2);
        vm.Pause();
        DirtyBitmap[] bitmaps = Bitmaps(tracker);
        tracker.Harvest(bitmaps);

        // The sweep's pages, and the stack page below 0x7C00 the COM1 report's call and pushes write.
        List<ulong> expected = [(BootSector.StackTop - 1) / 4096, .. SweepPages(SweepStart, SweepEnd, 4096)];
        AssertSamePages(expected, Pages(bitmaps[0]), "booted sweep");
    }

    [TestMethod]
    public void FillImage_Of64MiB_Finishes_AndEveryPageIsNonZero()
    {
        const ulong End = SweepStart + (64 * MiB);
        using MicroVm vm = BootVm(End + MiB);
        vm.Boot(GuestPrograms.Fill(SweepStart, End, GuestPorts.Com1, BootSector.ProgramAddress));
        var clock = Stopwatch.StartNew();
        vm.Start();
        WaitForPass(vm, 1);
        Assert.IsTrue(SpinWait.SpinUntil(() => vm.GetStatus()[0].Halted, PassTimeout), $"the fill did not halt: {vm.GetStatus()[0]}");
        Console.WriteLine($"64 MiB filled in {clock.ElapsedMilliseconds} ms");
        vm.Pause();
        for (ulong a = SweepStart; a < End; a += 4096)
        {
            Assert.IsTrue(vm.Memory.GetSpan(a, 4096).ContainsAnyExcept((byte)0), $"page 0x{a:x} is all zero");
        }
    }

    [TestMethod]
    public void Throttle_WithoutAPacePort_HoldsABootedSweepAtItsTimerKicks()
    {
        using MicroVm vm = BootVm(16 * MiB);
        vm.Boot(SweepImage());
        vm.Start();
        WaitForPass(vm, 2);
        double free = PassRate(vm, 1500);
        vm.SetThrottlePercent(50);
        Thread.Sleep(200);
        double throttled = PassRate(vm, 2000);
        vm.SetThrottlePercent(0);
        double ratio = throttled / free;
        Console.WriteLine($"free {free:F1} passes/s, at 50 % {throttled:F1} passes/s (ratio {ratio:F2})");

        // 50 % throttle: about half the free rate (the kicks and holds cost a little more).
        Assert.IsTrue(ratio is > 0.25 and < 0.7, $"free {free:F1} passes/s, throttled {throttled:F1} passes/s (ratio {ratio:F2})");
        Assert.IsNull(vm.GetStatus()[0].Fault);
    }

    [TestMethod]
    public void UartReads_ShowTheTransmitterEmpty_OtherRegistersZero_OtherPortsAllOnes()
    {
        // Reads the line status register, the interrupt enable register and port 0x92 and stores each byte at 2 MiB.
        var a = new X86Assembler();
        a.MovImm(Reg32.Edi, (uint)(2 * MiB));
        int at = 0;
        foreach (ushort port in new ushort[] { 0x3FD, 0x3F9, 0x92 })
        {
            a.MovDx(port);
            a.InAlDx();
            a.MovStoreByte(Reg32.Edi, at++, Reg32.Eax);
        }

        a.Hlt();
        var probe = new GuestProgram("uart probe", a.ToArray(), 0x1000, GuestPorts.Com1, [new GuestRange(2 * MiB, (2 * MiB) + 4096)]);
        using MicroVm vm = BootVm(4 * MiB);
        vm.Load(probe);
        vm.Start();
        Assert.IsTrue(SpinWait.SpinUntil(() => vm.GetStatus()[0].Halted, PassTimeout), $"the probe did not halt: {vm.GetStatus()[0]}");
        vm.Pause();
        CollectionAssert.AreEqual(new byte[] { 0x60, 0x00, 0xFF }, vm.Memory.GetSpan(2 * MiB, 3).ToArray(), "LSR: THR and transmitter empty; IER: 0; an unbacked port: all-ones");
    }

    [TestMethod]
    public void AnswerIn_WhenTheLastExitWasNoIn_IsRefusedWithEinval()
    {
        using KvmSystem kvm = KvmSystem.Open();
        using KvmVm vm = kvm.CreateVm();
        KvmVcpu vcpu = vm.CreateVcpu(0);
        var ex = Assert.ThrowsExactly<KvmException>(() => vcpu.AnswerIn(0x60));
        Assert.AreEqual("EINVAL", ex.ErrnoName);
        StringAssert.Contains(ex.Message, "answering an in");
    }

    [TestMethod]
    public void BootOptions_BadInput_IsRejectedWithAMessageNamingTheProblem()
    {
        using MicroVm small = BootVm(MiB);
        var tooSmall = Assert.ThrowsExactly<ArgumentException>(() => small.Boot(SweepImage()));
        StringAssert.Contains(tooSmall.Message, "0x101000");

        using MicroVm vm = BootVm(4 * MiB);
        var outside = Assert.ThrowsExactly<ArgumentException>(() => vm.Boot(GuestPrograms.Sweep(SweepStart, SweepEnd, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress)));
        StringAssert.Contains(outside.Message, "working set");
        var ports = Assert.ThrowsExactly<ArgumentException>(() => vm.Boot(GuestPrograms.Sweep(SweepStart, 2 * MiB, loadAddress: BootSector.ProgramAddress)));
        StringAssert.Contains(ports.Message, "ports");
        vm.Boot(SweepImage());
        var twice = Assert.ThrowsExactly<InvalidOperationException>(() => vm.Boot(SweepImage()));
        StringAssert.Contains(twice.Message, "already boots");
        vm.Start();
        Assert.ThrowsExactly<InvalidOperationException>(() => vm.Boot(SweepImage()));
    }

    private static double PassRate(MicroVm vm, int milliseconds)
    {
        uint before = vm.GetStatus()[0].Passes;
        var clock = Stopwatch.StartNew();
        Thread.Sleep(milliseconds);
        return (vm.GetStatus()[0].Passes - before) / clock.Elapsed.TotalSeconds;
    }
}
