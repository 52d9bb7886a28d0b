using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Memory;
using MigrateKit.Tracking;
using MigrateKit.Vmm;
using static MigrateKit.IntegrationTests.TestSupport.TestVms;

namespace MigrateKit.IntegrationTests.Tracking;

/// <summary>Dirty-page tracking against real KVM: what a harvest reports is exactly what the guest wrote.</summary>
[TestClass]
[TestCategory("Kvm")]
public sealed class DirtyTrackingTests
{
    private const ulong Start = 0x10_0000;
    private const ulong End = 0x10_0000 + (2 * MiB);

    [TestInitialize]
    public void RequireKvm() => KvmRequirement.Require();

    [TestMethod]
    public void Harvest_Bitmap_ReportsExactlyThePagesTheGuestWrote()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        AssertStrideSweepIsReportedExactly(vm);
    }

    [TestMethod]
    public void Harvest_BitmapWithManualProtect_ReportsExactlyThePagesTheGuestWrote()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB, ManualDirtyLogProtect = true });
        AssertStrideSweepIsReportedExactly(vm);
    }

    [TestMethod]
    public void Harvest_Ring_ReportsExactlyThePagesTheGuestWrote()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB, DirtyRingBytes = 64 * 1024 });
        AssertStrideSweepIsReportedExactly(vm);
    }

    [TestMethod]
    public void Harvest_RingSmallerThanTheWorkingSet_AbsorbsRingFullExitsAndLosesNothing()
    {
        // 512 pages of working set against the smallest ring KVM accepts here: the ring fills
        // many times per pass, and every ring-full exit must be absorbed without losing a page.
        using MicroVm vm = CreateWithSmallestRing(16 * MiB);
        int entries = vm.Vm.DirtyRingBytes / 16;
        ulong end = Start + (ulong)Math.Max(512, entries * 4) * 4096;
        vm.Load(GuestPrograms.Sweep(Start, end));
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        WaitForPass(vm, 3);
        vm.Pause();
        DirtyBitmap[] dirty = Bitmaps(tracker);
        tracker.Harvest(dirty);

        Assert.IsGreaterThan(0L, vm.DirtyRingFullExits, $"a ring of {entries} entries never filled while {(end - Start) / 4096} pages were written per pass");
        AssertSamePages(SweepPages(Start, end, 4096), Pages(dirty[0]), "pages reported through a ring that filled");
    }

    [TestMethod]
    public void Harvest_RandomWrites_ReportsExactlyThePagesOfTheGuestsSequence()
    {
        // The guest picks pages with xorshift32; replaying the generator here gives the exact set
        // after n writes. A kick can land between a write and its pace exit, so n or n + 1.
        const uint seed = 0x1234_5678;
        const ulong end = Start + (4 * MiB);
        uint pages = (uint)((end - Start) / 4096);
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        vm.Load(GuestPrograms.RandomWrites(Start, end, seed));
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        SpinWait.SpinUntil(() => vm.PagesWritten > 300, TimeSpan.FromSeconds(30));
        vm.Pause();
        long written = vm.PagesWritten;
        DirtyBitmap[] dirty = Bitmaps(tracker);
        tracker.Harvest(dirty);
        List<ulong> actual = Pages(dirty[0]);

        List<ulong> exact = ReplayXorshift(seed, pages, written, Start);
        List<ulong> oneMore = ReplayXorshift(seed, pages, written + 1, Start);
        Assert.IsTrue(actual.SequenceEqual(exact) || actual.SequenceEqual(oneMore),
            $"after {written} writes: expected {exact.Count} (or {oneMore.Count}) pages, got {actual.Count}");
    }

    [TestMethod]
    public void Harvest_AfterPause_ReportsNothingMore()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        vm.Load(GuestPrograms.Sweep(Start, End));
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        WaitForPass(vm, 2);
        vm.Pause();
        DirtyBitmap[] dirty = Bitmaps(tracker);
        tracker.Harvest(dirty);
        long writtenAtPause = vm.PagesWritten;
        uint passAtPause = vm.GetStatus()[0].Passes;

        Thread.Sleep(300);
        DirtyBitmap[] after = Bitmaps(tracker);
        HarvestResult second = tracker.Harvest(after);

        Assert.AreEqual(0UL, second.DirtyPages, "pages were written while the VM was paused");
        Assert.AreEqual(writtenAtPause, vm.PagesWritten);
        Assert.AreEqual(passAtPause, vm.GetStatus()[0].Passes);
        Assert.AreEqual(MicroVmState.Paused, vm.State);
    }

    [TestMethod]
    public void ManualProtect_ClearingASubRange_LeavesTheRestReportedNextTime()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB, ManualDirtyLogProtect = true });
        vm.Load(GuestPrograms.Sweep(Start, End));
        using var tracker = (KvmDirtyLogTracker)vm.CreateTracker();
        tracker.Start();
        vm.Start();
        WaitForPass(vm, 2);
        vm.Pause();

        DirtyBitmap[] seen = Bitmaps(tracker);
        tracker.Peek(seen);
        List<ulong> all = SweepPages(Start, End, 4096);
        AssertSamePages(all, Pages(seen[0]), "first peek");

        // Take (clear) the first 128 pages of the working set only.
        ulong firstPage = Start / 4096;
        tracker.Clear(0, seen[0], firstPage, 128);
        DirtyBitmap[] again = Bitmaps(tracker);
        tracker.Peek(again);
        AssertSamePages(all.Where(p => p >= firstPage + 128).ToList(), Pages(again[0]), "peek after clearing 128 pages");

        // The guest writes them again: they come back.
        vm.Resume();
        WaitForPass(vm, vm.GetStatus()[0].Passes + 2);
        vm.Pause();
        tracker.Peek(again);
        AssertSamePages(all, Pages(again[0]), "peek after the guest rewrote everything");
        tracker.Stop();
    }

    [TestMethod]
    public void ManualProtect_UnalignedClear_IsRejectedWithTheReason()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB, ManualDirtyLogProtect = true });
        using var tracker = (KvmDirtyLogTracker)vm.CreateTracker();
        tracker.Start();
        DirtyBitmap[] bitmaps = Bitmaps(tracker);

        var first = Assert.ThrowsExactly<ArgumentException>(() => tracker.Clear(0, bitmaps[0], 10, 64));
        StringAssert.Contains(first.Message, "multiple of 64");
        var count = Assert.ThrowsExactly<ArgumentException>(() => tracker.Clear(0, bitmaps[0], 64, 10));
        StringAssert.Contains(count.Message, "not a multiple of 64");
    }

    [TestMethod]
    public void ManualProtectInitiallySet_FirstPeekReportsEveryPage()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 4 * MiB, ManualDirtyLogProtect = true, DirtyLogInitiallySet = true });
        using var tracker = (KvmDirtyLogTracker)vm.CreateTracker();
        tracker.Start();
        DirtyBitmap[] seen = Bitmaps(tracker);
        tracker.Peek(seen);
        Assert.AreEqual(vm.Memory.TotalPages, seen[0].Count());

        // Once cleared, an idle guest reports nothing.
        tracker.Clear(0, seen[0], 0, seen[0].PageCount);
        tracker.Peek(seen);
        Assert.AreEqual(0UL, seen[0].Count());
    }

    [TestMethod]
    public void LoggingSwitchedOnLate_ReportsOnlyWritesMadeAfterwards()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        vm.Load(GuestPrograms.Sweep(Start, End));
        vm.Start();
        WaitForPass(vm, 2);
        vm.Pause();

        // Everything so far was written with logging off: none of it may be reported.
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        DirtyBitmap[] dirty = Bitmaps(tracker);
        Assert.AreEqual(0UL, tracker.Harvest(dirty).DirtyPages, "writes made while logging was off were reported");

        vm.Resume();
        WaitForPass(vm, vm.GetStatus()[0].Passes + 2);
        vm.Pause();
        tracker.Harvest(dirty);
        AssertSamePages(SweepPages(Start, End, 4096), Pages(dirty[0]), "writes after logging was switched on");
    }

    [TestMethod]
    public void SeveralRegions_OneNotAtAddressZero_AreTrackedPerRegion()
    {
        const ulong high = 0x4000_0000;
        var options = new MicroVmOptions
        {
            Regions = [new GuestMemoryRegionSpec(0, 2 * MiB), new GuestMemoryRegionSpec(high, 8 * MiB)],
        };
        using MicroVm vm = MicroVm.Create(options);
        Assert.AreEqual(2, vm.Slots.Count);
        vm.Load(GuestPrograms.Sweep(high + MiB, high + (3 * MiB), 8192));
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        WaitForPass(vm, 2);
        vm.Pause();
        DirtyBitmap[] dirty = Bitmaps(tracker);
        tracker.Harvest(dirty);

        Assert.AreEqual(0UL, dirty[0].Count(), "the low region was never written");
        AssertSamePages(SweepPages(high + MiB, high + (3 * MiB), 8192, high), Pages(dirty[1]), "high region");
    }

    [TestMethod]
    public void ThreeGiBGuest_WritesNearTheTopAreReported()
    {
        const ulong size = 3UL << 30;
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = size });
        ulong start = size - (4 * MiB);
        vm.Load(GuestPrograms.Sweep(start, size));
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        WaitForPass(vm, 2);
        vm.Pause();
        DirtyBitmap[] dirty = Bitmaps(tracker);
        tracker.Harvest(dirty);
        AssertSamePages(SweepPages(start, size, 4096), Pages(dirty[0]), "top 4 MiB of a 3 GiB guest");
    }

    [TestMethod]
    public void Ring_FeedsOneTrackerAtATime_TheRingTrackerOwnsWhatItCollects()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB, DirtyRingBytes = 64 * 1024 });
        using var first = new KvmDirtyRingTracker(vm.Vm);
        using var second = new KvmDirtyRingTracker(vm.Vm);
        first.Start();

        // A second tracker would see only part of the writes: refused, and left untouched.
        InvalidOperationException refused = Assert.ThrowsExactly<InvalidOperationException>(second.Start);
        StringAssert.Contains(refused.Message, "Another dirty-ring tracker");
        Assert.IsFalse(second.IsTracking);

        // Once the first stops, the second takes over and reports the guest's writes from then on.
        first.Stop();
        second.Start();
        vm.Load(GuestPrograms.Sweep(MiB, 3 * MiB));
        vm.Start();
        Assert.IsTrue(vm.WaitForPass(1, TimeSpan.FromSeconds(30)), "the guest finished no pass");
        vm.Pause();
        DirtyBitmap[] dirty = Bitmaps(second);
        second.Harvest(dirty);
        CollectionAssert.IsSubsetOf(Enumerable.Range(256, 512).Select(p => (ulong)p).ToList(), Pages(dirty[0]), "a page the guest wrote is missing");
    }

    [TestMethod]
    public void TwoVcpus_WithRings_EachRingReportsItsOwnWrites()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 32 * MiB, VcpuCount = 2, DirtyRingBytes = 64 * 1024 });
        vm.Load(GuestPrograms.Sweep(4 * MiB, 6 * MiB, loadAddress: 0x1000), vcpu: 0);
        vm.Load(GuestPrograms.Sweep(8 * MiB, 9 * MiB, 8192, loadAddress: 0x2000), vcpu: 1);
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        WaitForPass(vm, 2, 0);
        WaitForPass(vm, 2, 1);
        vm.Pause();
        DirtyBitmap[] dirty = Bitmaps(tracker);
        tracker.Harvest(dirty);
        List<ulong> expected = SweepPages(4 * MiB, 6 * MiB, 4096).Concat(SweepPages(8 * MiB, 9 * MiB, 8192)).Order().ToList();
        AssertSamePages(expected, Pages(dirty[0]), "two vCPUs");
    }

    private static void AssertStrideSweepIsReportedExactly(MicroVm vm)
    {
        // Every third page: anything reported in between is a false positive.
        const uint stride = 3 * 4096;
        vm.Load(GuestPrograms.Sweep(Start, End, stride));
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        WaitForPass(vm, 2);
        vm.Pause();

        DirtyBitmap[] dirty = Bitmaps(tracker);
        HarvestResult first = tracker.Harvest(dirty);
        List<ulong> expected = SweepPages(Start, End, stride);
        AssertSamePages(expected, Pages(dirty[0]), "first harvest");
        Assert.AreEqual((ulong)expected.Count, first.DirtyPages);

        // Re-armed: nothing while paused, everything again after the guest's next passes.
        DirtyBitmap[] next = Bitmaps(tracker);
        Assert.AreEqual(0UL, tracker.Harvest(next).DirtyPages, "harvest while paused");
        vm.Resume();
        WaitForPass(vm, vm.GetStatus()[0].Passes + 2);
        vm.Pause();
        tracker.Harvest(next);
        AssertSamePages(expected, Pages(next[0]), "harvest after more passes");
    }

    private static MicroVm CreateWithSmallestRing(ulong memory)
    {
        Exception? last = null;
        for (int bytes = 4096; bytes <= 1 << 20; bytes *= 2)
        {
            try
            {
                return MicroVm.Create(new MicroVmOptions { MemorySize = memory, DirtyRingBytes = bytes });
            }
            catch (Kvm.KvmException ex)
            {
                last = ex;
            }
        }

        Assert.Fail($"KVM accepted no dirty ring size: {last?.Message}");
        return null!;
    }

    private static List<ulong> ReplayXorshift(uint seed, uint pages, long writes, ulong start)
    {
        var set = new SortedSet<ulong>();
        uint x = seed;
        for (long i = 0; i < writes; i++)
        {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ulong page = ((ulong)x * pages) >> 32;
            set.Add((start / 4096) + page);
        }

        return set.ToList();
    }
}
