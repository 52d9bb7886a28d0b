using System;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Memory;
using MigrateKit.Tracking;

namespace MigrateKit.IntegrationTests.Tracking;

/// <summary>Exact write tracking of process memory with userfaultfd write-protection and PAGEMAP_SCAN, on the real kernel.</summary>
[TestClass]
[TestCategory("WriteProtect")]
public sealed class WriteProtectTrackerTests
{
    private const ulong MiB = 1UL << 20;

    [TestInitialize]
    public void Require() => WriteTrackingRequirement.Require();

    [TestMethod]
    public void Harvest_ReportsExactlyThePagesWritten_IncludingNeverTouchedOnes()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 64 * MiB), new GuestMemoryRegionSpec(1UL << 32, 8 * MiB)]);
        memory.Regions[0].GetPage(5)[0] = 1; // touched before tracking: not reported
        using var tracker = new WriteProtectTracker(memory);
        tracker.Start();
        var random = new Random(7);
        ulong[] pages0 = Enumerable.Range(0, 3000).Select(_ => (ulong)random.Next(0, 16384)).Distinct().ToArray();
        ulong[] pages1 = [0, 63, 64, 2047];
        foreach (ulong p in pages0)
        {
            memory.Regions[0].GetPage(p)[random.Next(4096)] = 0xAB;
        }

        foreach (ulong p in pages1)
        {
            memory.Regions[1].GetPage(p)[0] = 0xCD;
        }

        DirtyBitmap[] into = memory.Regions.Select(r => new DirtyBitmap(r.PageCount)).ToArray();
        HarvestResult result = tracker.Harvest(into);

        Assert.AreEqual((ulong)(pages0.Length + pages1.Length), result.DirtyPages);
        CollectionAssert.AreEquivalent(pages0, Set(into[0]));
        CollectionAssert.AreEquivalent(pages1, Set(into[1]));
    }

    [TestMethod]
    public void Harvest_ReArmsTracking_SoEveryLaterWriteIsSeenAgain()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * MiB)]);
        using var tracker = new WriteProtectTracker(memory);
        tracker.Start();
        DirtyBitmap bits = new(memory.Regions[0].PageCount);
        for (int round = 0; round < 5; round++)
        {
            ulong[] written = [(ulong)round, 100, 4095];
            foreach (ulong p in written)
            {
                memory.Regions[0].GetPage(p)[1] = (byte)round;
            }

            bits.ClearAll();
            Assert.AreEqual(3UL, tracker.Harvest([bits]).DirtyPages, $"round {round}");
            CollectionAssert.AreEquivalent(written, Set(bits));
        }

        bits.ClearAll();
        Assert.AreEqual(0UL, tracker.Harvest([bits]).DirtyPages, "nothing written since the last harvest");
    }

    [TestMethod]
    public void HarvestFinal_OnlyReads_SoLaterHarvestsReportItsPagesAgain_UntilAHarvestRearmsThem()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * MiB)]);
        using var tracker = new WriteProtectTracker(memory);
        IDirtyPageTracker asTracker = tracker;
        Assert.IsFalse(asTracker.FinalHarvestRearms);
        tracker.Start();
        DirtyBitmap bits = new(memory.Regions[0].PageCount);
        memory.Regions[0].GetPage(7)[0] = 1;
        memory.Regions[0].GetPage(4000)[0] = 1;

        Assert.AreEqual(2UL, tracker.HarvestFinal([bits]).DirtyPages);
        CollectionAssert.AreEquivalent(new ulong[] { 7, 4000 }, Set(bits));

        // The guest runs on (a failed switchover): its pages are reported again with the new write.
        memory.Regions[0].GetPage(9)[0] = 1;
        bits.ClearAll();
        Assert.AreEqual(3UL, tracker.HarvestFinal([bits]).DirtyPages, "a final harvest re-arms nothing");
        bits.ClearAll();
        Assert.AreEqual(3UL, tracker.Harvest([bits]).DirtyPages);
        CollectionAssert.AreEquivalent(new ulong[] { 7, 9, 4000 }, Set(bits));

        bits.ClearAll();
        Assert.AreEqual(0UL, tracker.HarvestFinal([bits]).DirtyPages, "the harvest re-armed them");
        memory.Regions[0].GetPage(7)[1] = 2;
        bits.ClearAll();
        Assert.AreEqual(1UL, tracker.Harvest([bits]).DirtyPages, "a write after the re-arm is seen");

        DirtyBitmap[] into = [bits];
        long before = GC.GetAllocatedBytesForCurrentThread();
        tracker.HarvestFinal(into);
        tracker.Harvest(into);
        Assert.AreEqual(0L, GC.GetAllocatedBytesForCurrentThread() - before, "harvests allocate nothing");
    }

    [TestMethod]
    public void StoppedTracker_RejectsHarvests_AndBadTargetsAreNamed()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 4 * MiB)]);
        using var tracker = new WriteProtectTracker(memory);
        Assert.ThrowsExactly<InvalidOperationException>(() => tracker.Harvest([new DirtyBitmap(1024)]));
        tracker.Start();
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => tracker.Harvest([new DirtyBitmap(10)]));
        StringAssert.Contains(ex.Message, "1024");
        StringAssert.StartsWith(Assert.ThrowsExactly<ArgumentException>(() => tracker.Harvest([null!])).Message, "Bitmap 0 is null");
        tracker.Stop();
        memory.Regions[0].GetPage(0)[0] = 1; // writable again after Stop
        Assert.IsFalse(tracker.IsTracking);
    }

    private static ulong[] Set(DirtyBitmap bitmap)
    {
        var pages = new System.Collections.Generic.List<ulong>();
        foreach (ulong p in bitmap.EnumerateSetPages())
        {
            pages.Add(p);
        }

        return pages.ToArray();
    }
}
