using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Transport;
using static MigrateKit.Tests.Transport.TransportTestSupport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class RegionDigestAccumulatorTests
{
    [TestMethod]
    public void FreshAccumulator_EqualsComputeOfAZeroRegion()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0x10_0000, 37 * (ulong)Page)]);
        var fresh = new RegionDigestAccumulator(37);
        Assert.AreEqual(37UL, fresh.PageCount);
        Assert.AreEqual(RegionDigestAccumulator.Compute(memory.Regions[0]), fresh.Value);
        Assert.AreNotEqual(new RegionDigestAccumulator(38).Value, fresh.Value);
    }

    [TestMethod]
    public void SwappingTwoPages_ChangesTheDigest()
    {
        using GuestMemoryLayout memory = RandomMemory(8, seed: 1);
        GuestMemoryRegion region = memory.Regions[0];
        ulong before = RegionDigestAccumulator.Compute(region);

        byte[] page2 = region.GetPage(2).ToArray();
        region.GetPage(5).CopyTo(region.GetPage(2));
        page2.CopyTo(region.GetPage(5));
        ulong swapped = RegionDigestAccumulator.Compute(region);
        Assert.AreNotEqual(before, swapped);

        var incremental = new RegionDigestAccumulator(8);
        for (ulong p = 0; p < 8; p++)
        {
            incremental.Update(p, region.GetPage(p));
        }

        Assert.AreEqual(swapped, incremental.Value);
    }

    [TestMethod]
    public void UpdateThenUpdateZero_RestoresTheFreshValue()
    {
        var digest = new RegionDigestAccumulator(16);
        ulong fresh = digest.Value;
        byte[] data = new byte[Page];
        new Random(2).NextBytes(data);

        digest.Update(9, data);
        Assert.AreNotEqual(fresh, digest.Value);
        digest.Update(9, data);
        ulong once = digest.Value;
        digest.Update(3, data);
        Assert.AreNotEqual(once, digest.Value, "the same data at another page gives another term");

        digest.UpdateZero(9);
        digest.UpdateZero(3);
        Assert.AreEqual(fresh, digest.Value);
        digest.Update(4, new byte[Page]);
        Assert.AreEqual(fresh, digest.Value, "explicit zero data equals UpdateZero");
    }

    [TestMethod]
    public void OutOfRangeAndBadArguments_Throw()
    {
        var digest = new RegionDigestAccumulator(4);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => digest.Update(4, new byte[Page]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => digest.UpdateZero(ulong.MaxValue));
        Assert.ThrowsExactly<ArgumentException>(() => digest.Update(0, new byte[Page - 1]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RegionDigestAccumulator(0));
        Assert.ThrowsExactly<ArgumentNullException>(() => RegionDigestAccumulator.Compute(null!));
    }

    [TestMethod]
    public void Digest_MatchesTheDocumentedFormula()
    {
        using GuestMemoryLayout memory = RandomMemory(3, seed: 3);
        GuestMemoryRegion region = memory.Regions[0];
        ulong expected = 0;
        for (ulong p = 0; p < 3; p++)
        {
            ulong hash = System.IO.Hashing.XxHash3.HashToUInt64(region.GetPage(p));
            expected += hash * ((2 * SplitMix64(p)) + 1);
        }

        Assert.AreEqual(expected, RegionDigestAccumulator.Compute(region));
    }

    [TestMethod]
    public void UpdatesAcrossChunks_MatchComputeOfTheRegion()
    {
        // Two whole chunks of 4096 pages and a partial third: updates land in the first and last
        // pages of each, and the untouched middle chunk still counts as zero.
        const ulong pages = (3 * 4096) - 100;
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, pages * (ulong)Page)]);
        GuestMemoryRegion region = memory.Regions[0];
        var digest = new RegionDigestAccumulator(pages);
        var random = new Random(7);
        foreach (ulong p in new ulong[] { 0, 4095, 8192, pages - 1, 0 })
        {
            random.NextBytes(region.GetPage(p));
            digest.Update(p, region.GetPage(p));
        }

        Assert.AreEqual(RegionDigestAccumulator.Compute(region), digest.Value);
        region.GetPage(pages - 1).Clear();
        digest.UpdateZero(pages - 1);
        Assert.AreEqual(RegionDigestAccumulator.Compute(region), digest.Value);
    }

    [TestMethod]
    public void TermsAreAllocatedLazily_PerChunkOfPagesUpdated()
    {
        const ulong pages = 1UL << 24; // 64 GiB of guest memory: 128 MiB of terms if allocated up front.
        long before = GC.GetAllocatedBytesForCurrentThread();
        var digest = new RegionDigestAccumulator(pages);
        long created = GC.GetAllocatedBytesForCurrentThread() - before;
        digest.UpdateZero(pages - 1);
        long updated = GC.GetAllocatedBytesForCurrentThread() - before - created;

        Assert.IsLessThan(64L << 10, created, $"a fresh digest allocated {created} bytes");
        Assert.IsLessThan(64L << 10, updated, $"updating one page allocated {updated} bytes");
        Assert.AreEqual(new RegionDigestAccumulator(pages).Value, digest.Value);
    }

    [TestMethod]
    public void ZeroPages_TakeNoChunk()
    {
        var digest = new RegionDigestAccumulator(3 * 4096);
        byte[] zeros = new byte[Page];
        digest.UpdateZero(0);
        long before = GC.GetAllocatedBytesForCurrentThread();
        digest.UpdateZero(1);
        digest.Update(5000, zeros);
        digest.UpdateZero(3 * 4096 - 1);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.AreEqual(0L, allocated, "a zero page's term is the fresh one: nothing to remember");
        Assert.AreEqual(new RegionDigestAccumulator(3 * 4096).Value, digest.Value);
    }

    [TestMethod]
    public void ARegionsLastPartialChunk_TakesOnlyThePagesItCovers()
    {
        const ulong pages = 4096 + 3;
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, pages * (ulong)Page)]);
        GuestMemoryRegion region = memory.Regions[0];
        new Random(7).NextBytes(region.GetPage(pages - 1));
        var digest = new RegionDigestAccumulator(pages);
        long before = GC.GetAllocatedBytesForCurrentThread();
        digest.Update(pages - 1, region.GetPage(pages - 1));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.IsLessThan(1024L, allocated, $"the last chunk covers 3 pages, and took {allocated} bytes");
        Assert.AreEqual(RegionDigestAccumulator.Compute(region), digest.Value);
    }

    [TestMethod]
    public void APageWrittenThenZeroed_InAChunkTakenLater_MatchesCompute()
    {
        const ulong pages = 2 * 4096;
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, pages * (ulong)Page)]);
        GuestMemoryRegion region = memory.Regions[0];
        var digest = new RegionDigestAccumulator(pages);
        digest.UpdateZero(4100);
        new Random(5).NextBytes(region.GetPage(4100));
        digest.Update(4100, region.GetPage(4100));
        new Random(6).NextBytes(region.GetPage(4101));
        digest.Update(4101, region.GetPage(4101));
        Assert.AreEqual(RegionDigestAccumulator.Compute(region), digest.Value);

        region.GetPage(4100).Clear();
        digest.UpdateZero(4100);
        Assert.AreEqual(RegionDigestAccumulator.Compute(region), digest.Value);
    }

    private static ulong SplitMix64(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
