using System;
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

/// <summary>The MicroVm on real KVM: guest programs, pause, throttling, state save/restore.</summary>
[TestClass]
[TestCategory("Kvm")]
public sealed class MicroVmTests
{
    [TestInitialize]
    public void RequireKvm() => KvmRequirement.Require();

    [TestMethod]
    public void Verifier_PassesItsOwnChecksPassAfterPass()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        vm.Load(GuestPrograms.Verifier(MiB, 9 * MiB));
        vm.Start();
        WaitForPass(vm, 5);
        VcpuStatus status = vm.GetStatus()[0];
        Assert.AreEqual(0L, status.Failures, $"first failed page {status.FirstFailedPage}");
        Assert.IsNull(status.Fault);
    }

    [TestMethod]
    public void Verifier_ReportsAPageChangedBehindItsBack()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        vm.Load(GuestPrograms.Verifier(MiB, 5 * MiB));
        vm.Start();
        WaitForPass(vm, 2);
        vm.Pause();

        // Corrupt page 100 of the working set; the next visit must flag exactly that page.
        Span<byte> page = vm.Memory.GetSpan(MiB + (100 * 4096), 4096);
        page[2048] ^= 0xFF;
        vm.Resume();
        WaitForPass(vm, vm.GetStatus()[0].Passes + 2);
        VcpuStatus status = vm.GetStatus()[0];
        Assert.AreEqual(1L, status.Failures);
        Assert.AreEqual(100L, status.FirstFailedPage);
    }

    [TestMethod]
    public void Verifier_StoresTheDocumentedValues()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 8 * MiB });
        vm.Load(GuestPrograms.Verifier(MiB, 2 * MiB));
        vm.Start();
        WaitForPass(vm, 3);
        vm.Pause();
        uint pass = vm.GetStatus()[0].Passes;
        int mixed = 0;
        for (uint i = 0; i < 256; i++)
        {
            Span<byte> page = vm.Memory.GetSpan(MiB + (i * 4096UL), 4096);
            uint[] values = [BitConverter.ToUInt32(page[..4]), BitConverter.ToUInt32(page[2048..2052]), BitConverter.ToUInt32(page[4092..])];

            // The vCPU stopped mid-pass: each offset holds this pass's value or the next one's, and
            // only the page it was writing when it stopped may hold both.
            foreach (uint value in values)
            {
                Assert.IsTrue(value == GuestPrograms.VerifierValue(i, pass) || value == GuestPrograms.VerifierValue(i, pass + 1), $"page {i}: 0x{value:x8}");
            }

            if (values.Distinct().Count() > 1)
            {
                mixed++;
            }
        }

        Assert.IsLessThanOrEqualTo(1, mixed, "more than the one page the vCPU was writing holds two passes' values");
    }

    [TestMethod]
    public void SavedVcpuState_AndMemory_ResumeOnAnotherVmWithoutSelfCheckFailures()
    {
        using MicroVm source = PausedVerifier(out byte[] blob, out uint passes);

        using MicroVm destination = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        source.Memory.Regions[0].GetSpan(0, (int)(16 * MiB)).CopyTo(destination.Memory.Regions[0].GetSpan(0, (int)(16 * MiB)));
        destination.RestoreVcpuState(VcpuState.Deserialize(blob));
        destination.Start();

        // The destination continues the source's pass count and keeps passing its checks.
        WaitForPass(destination, passes + 3);
        VcpuStatus status = destination.GetStatus()[0];
        Assert.AreEqual(0L, status.Failures, $"first failed page {status.FirstFailedPage}");
    }

    [TestMethod]
    public void ReadiedDestination_StartsItsWaitingThreads_OrEndsThemWhenDisposedUnstarted()
    {
        using MicroVm source = PausedVerifier(out byte[] blob, out uint passes);

        // The receiver's estimate at Hello readies the VM: its vCPU thread starts and waits.
        using MicroVm destination = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        Assert.IsNull(destination.VcpuThreads[0]);
        ((MigrateKit.Migration.IMigrationTarget)destination).EstimateResumeCost();
        Assert.IsTrue(destination.VcpuThreads[0]!.IsAlive, "the vCPU thread waits");
        source.Memory.Regions[0].GetSpan(0, (int)(16 * MiB)).CopyTo(destination.Memory.Regions[0].GetSpan(0, (int)(16 * MiB)));
        destination.RestoreVcpuState(VcpuState.Deserialize(blob));
        destination.Start();
        WaitForPass(destination, passes + 2);
        Assert.AreEqual(0L, destination.GetStatus()[0].Failures);

        // Readied and never started (a migration that failed): disposing ends the waiting threads.
        var unused = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB, VcpuCount = 2 });
        ((MigrateKit.Migration.IMigrationTarget)unused).EstimateResumeCost();
        Thread[] waiting = unused.VcpuThreads.Select(t => t!).ToArray();
        Assert.IsTrue(waiting.All(t => t.IsAlive));
        unused.Dispose();
        Assert.IsTrue(waiting.All(t => t.Join(TimeSpan.FromSeconds(10))), "the readied threads of a VM disposed unstarted ended");
    }

    [TestMethod]
    public void Pause_StopsEveryVcpu_AndResumeContinues()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 32 * MiB, VcpuCount = 2 });
        vm.Load(GuestPrograms.Sweep(4 * MiB, 8 * MiB, loadAddress: 0x1000), vcpu: 0);
        vm.Load(GuestPrograms.RandomWrites(8 * MiB, 16 * MiB, 7, loadAddress: 0x2000), vcpu: 1);
        vm.Start();
        WaitForPass(vm, 1, 0);
        WaitForPass(vm, 1, 1);

        TimeSpan latency = vm.Pause();
        Assert.AreEqual(latency, vm.LastPauseLatency);
        long[] written = vm.GetStatus().Select(s => s.PagesWritten).ToArray();
        Thread.Sleep(200);
        CollectionAssert.AreEqual(written, vm.GetStatus().Select(s => s.PagesWritten).ToArray(), "a paused vCPU wrote pages");

        vm.Resume();
        Assert.IsTrue(SpinWait.SpinUntil(() => vm.GetStatus().Zip(written).All(p => p.First.PagesWritten > p.Second), TimeSpan.FromSeconds(30)),
            "a vCPU did not continue after Resume");
    }

    [TestMethod]
    public void AsAWorkloadVm_RunsPausesAndReportsEveryVcpu()
    {
        using IWorkloadVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB, VcpuCount = 2 });
        ((MicroVm)vm).Load(GuestPrograms.Sweep(MiB, 5 * MiB));
        Assert.IsFalse(vm.IsRunning);
        vm.Start();
        Assert.IsTrue(vm.IsRunning);
        Assert.IsTrue(vm.WaitForPass(2, PassTimeout), $"no second pass: {vm.GetStatus()[0]}");
        vm.Pause();
        Assert.IsFalse(vm.IsRunning);
        Assert.HasCount(2, vm.GetStatus());
        Assert.IsGreaterThanOrEqualTo(2u, vm.GetStatus()[0].Passes);
        Assert.AreEqual(0L, vm.GetStatus()[1].PagesWritten, "vCPU 1 has no program");
        using IDirtyPageTracker tracker = vm.CreateTracker();
        Assert.IsInstanceOfType<KvmDirtyLogTracker>(tracker);
    }

    [TestMethod]
    public void Fill_WritesEveryPageOnce_ThenHalts_AndPauseStillWorks()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        vm.Load(GuestPrograms.Fill(MiB, 9 * MiB));
        vm.Start();
        WaitForPass(vm, 1);
        Assert.IsTrue(SpinWait.SpinUntil(() => vm.GetStatus()[0].Halted, TimeSpan.FromSeconds(10)), "the fill program did not halt");
        vm.Pause();
        for (ulong p = 0; p < 2048; p++)
        {
            Span<byte> page = vm.Memory.GetSpan(MiB + (p * 4096), 4096);
            Assert.IsTrue(page.ContainsAnyExcept((byte)0), $"page {p} is all zero");
        }

        Assert.AreEqual(2048L, vm.PagesWritten);
    }

    [TestMethod]
    public void PaceLimit_HoldsTheRequestedPagesPerSecondWithinTenPercent()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 64 * MiB });
        vm.Load(GuestPrograms.Sweep(MiB, 60 * MiB));
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        const double target = 5000;
        vm.SetPaceLimit(target);
        vm.Start();
        Thread.Sleep(500);

        long before = vm.PagesWritten;
        var clock = Stopwatch.StartNew();
        Thread.Sleep(3000);
        long after = vm.PagesWritten;
        double rate = (after - before) / clock.Elapsed.TotalSeconds;
        Assert.IsTrue(Math.Abs(rate - target) <= target * 0.10, $"measured {rate:F0} pages/s against a limit of {target}");

        // And the limit lifts.
        vm.SetPaceLimit(0);
        before = vm.PagesWritten;
        clock.Restart();
        Thread.Sleep(1000);
        double free = (vm.PagesWritten - before) / clock.Elapsed.TotalSeconds;
        Assert.IsGreaterThan(target * 1.5, free, $"unthrottled rate {free:F0} pages/s");
    }

    [TestMethod]
    public void ThrottlePercent_SlowsTheGuestProportionally()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 64 * MiB });
        vm.Load(GuestPrograms.Sweep(MiB, 60 * MiB));
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        Thread.Sleep(300);
        double free = Rate(vm, 1500);
        vm.SetThrottlePercent(75);
        Thread.Sleep(300);
        double throttled = Rate(vm, 2000);
        double ratio = throttled / free;

        // 75 % throttle: about a quarter of the free rate.
        Assert.IsTrue(ratio is > 0.15 and < 0.35, $"free {free:F0} pages/s, throttled {throttled:F0} pages/s (ratio {ratio:F2})");
    }

    [TestMethod]
    public void BadInput_IsRejectedWithAMessageNamingTheProblem()
    {
        var size = Assert.ThrowsExactly<ArgumentException>(() => MicroVm.Create(new MicroVmOptions { MemorySize = (16 * MiB) + 100 }));
        StringAssert.Contains(size.Message, "MemorySize");

        var overlapLayout = Assert.ThrowsExactly<ArgumentException>(() => new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 2 * MiB), new GuestMemoryRegionSpec(MiB, 2 * MiB)]));
        StringAssert.Contains(overlapLayout.Message, "overlaps");

        // Two layouts mapped into one VM at the same guest address: KVM refuses the second slot.
        using KvmSystem kvm = KvmSystem.Open();
        using KvmVm kvmVm = kvm.CreateVm();
        using GuestMemoryLayout a = GuestMemoryLayout.Create(2 * MiB);
        using GuestMemoryLayout b = GuestMemoryLayout.Create(2 * MiB);
        kvmVm.CreateSlot(0, a.Regions[0]);
        var overlap = Assert.ThrowsExactly<KvmException>(() => kvmVm.CreateSlot(1, b.Regions[0]));
        Assert.AreEqual("EEXIST", overlap.ErrnoName);
        StringAssert.Contains(overlap.Message, "overlaps");

        var unknown = Assert.ThrowsExactly<ArgumentException>(() => kvmVm.GetDirtyLog(7, new DirtyBitmap(512)));
        StringAssert.Contains(unknown.Message, "no memory slot 7");

        var wrongSize = Assert.ThrowsExactly<ArgumentException>(() => kvmVm.GetSlot(0).GetDirtyLog(new DirtyBitmap(100)));
        StringAssert.Contains(wrongSize.Message, "512");

        var noDevice = Assert.ThrowsExactly<KvmException>(() => KvmSystem.Open("/dev/no-such-kvm"));
        Assert.AreEqual("ENOENT", noDevice.ErrnoName);
        StringAssert.Contains(noDevice.Message, "/dev/no-such-kvm");
    }

    [TestMethod]
    public void DirtyRingSizes_KvmRefuses_GiveAnExceptionNamingTheSize()
    {
        using KvmSystem kvm = KvmSystem.Open();
        int max = kvm.CheckExtension(KvmCapability.DirtyLogRing);
        Assert.IsGreaterThan(0, max, "this host has no dirty ring");

        using (KvmVm vm = kvm.CreateVm())
        {
            var tooBig = Assert.ThrowsExactly<KvmException>(() => vm.EnableDirtyRing(max * 2));
            StringAssert.Contains(tooBig.Message, (max * 2).ToString(System.Globalization.CultureInfo.InvariantCulture));
            StringAssert.Contains(tooBig.Message, max.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        using (KvmVm vm = kvm.CreateVm())
        {
            var notPow2 = Assert.ThrowsExactly<ArgumentException>(() => vm.EnableDirtyRing(6000));
            StringAssert.Contains(notPow2.Message, "power of two");
        }

        using (KvmVm vm = kvm.CreateVm())
        {
            vm.CreateVcpu(0);
            var late = Assert.ThrowsExactly<InvalidOperationException>(() => vm.EnableDirtyRing(65536));
            StringAssert.Contains(late.Message, "before the first vCPU");
        }
    }

    [TestMethod]
    public void GuestTouchingUnbackedMemory_FaultsTheVcpuWithTheAddress()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions
        {
            Regions = [new GuestMemoryRegionSpec(0, 2 * MiB), new GuestMemoryRegionSpec(8 * MiB, 2 * MiB)],
        });

        // The program checks only that its ranges are backed; write beyond the low region by hand.
        GuestProgram program = GuestPrograms.Sweep(MiB, 2 * MiB);
        vm.Load(program);
        byte[] code = program.Code.ToArray();

        // Patch "cmp edi, end" so the sweep runs on into the hole at 2 MiB.
        int at = FindImmediate(code, (uint)(2 * MiB));
        BitConverter.TryWriteBytes(code.AsSpan(at, 4), (uint)(4 * MiB));
        code.CopyTo(vm.Memory.GetSpan(program.LoadAddress, code.Length));
        vm.Start();
        Assert.IsTrue(SpinWait.SpinUntil(() => vm.GetStatus()[0].Fault is not null, TimeSpan.FromSeconds(10)), "no fault reported");
        StringAssert.Contains(vm.GetStatus()[0].Fault, "0x200000");
        vm.Pause();
    }

    private static int FindImmediate(byte[] code, uint value)
    {
        byte[] needle = BitConverter.GetBytes(value);
        int at = code.AsSpan().IndexOf(needle);
        Assert.IsGreaterThanOrEqualTo(0, at, "immediate not found in the program");
        return at;
    }

    private static double Rate(MicroVm vm, int milliseconds)
    {
        long before = vm.PagesWritten;
        var clock = Stopwatch.StartNew();
        Thread.Sleep(milliseconds);
        return (vm.PagesWritten - before) / clock.Elapsed.TotalSeconds;
    }

    /// <summary>A 16 MiB verifier paused after two passes, with its saved vCPU state and pass count.</summary>
    private static MicroVm PausedVerifier(out byte[] blob, out uint passes)
    {
        MicroVm source = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        try
        {
            source.Load(GuestPrograms.Verifier(MiB, 9 * MiB));
            source.Start();
            WaitForPass(source, 2);
            source.Pause();
            blob = VcpuState.Serialize(source.SaveVcpuState());
            passes = source.GetStatus()[0].Passes;
            return source;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }
}
