using System;
using System.Collections.Generic;
using System.Linq;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class SentPageCacheTests
{
    private const int Page = MigrationProtocol.PageSize;

    [TestMethod]
    public void PutPage_IsFoundWithItsBytes()
    {
        var cache = new SentPageCache(4 * Page);
        cache.Put(1, 7, Filled(0x5A));

        Assert.IsTrue(cache.TryGet(1, 7, out Span<byte> copy));
        CollectionAssert.AreEqual(Filled(0x5A), copy.ToArray());
        Assert.AreEqual(1, cache.Hits);
        Assert.AreEqual(0, cache.Misses);
    }

    [TestMethod]
    public void NextSlotNeverWritten_UntilEverySlotWasWritten_ThroughAClear()
    {
        using var cache = new SentPageCache(2 * Page);
        Assert.IsTrue(cache.NextSlotNeverWritten);
        cache.Put(0, 1, Filled(1));
        Assert.IsTrue(cache.NextSlotNeverWritten);
        cache.Put(0, 2, Filled(2));
        Assert.IsFalse(cache.NextSlotNeverWritten, "both slots written");

        cache.Clear();
        Assert.IsFalse(cache.NextSlotNeverWritten, "a cleared slot's memory stays touched");
        cache.Put(0, 3, Filled(3));
        cache.Put(0, 4, Filled(4));
        Assert.IsTrue(cache.TryPeek(0, 4, out ReadOnlySpan<byte> copy) && copy[0] == 4);
        Assert.IsFalse(cache.NextSlotNeverWritten);
    }

    [TestMethod]
    public void SamePageIndexInAnotherRegion_IsAnotherPage()
    {
        var cache = new SentPageCache(4 * Page);
        cache.Put(0, 7, Filled(1));
        cache.Put(1, 7, Filled(2));

        Assert.IsTrue(cache.TryGet(0, 7, out Span<byte> first));
        Assert.AreEqual(1, first[0]);
        Assert.IsTrue(cache.TryGet(1, 7, out Span<byte> second));
        Assert.AreEqual(2, second[0]);
        Assert.IsFalse(cache.TryGet(2, 7, out Span<byte> none));
        Assert.IsTrue(none.IsEmpty);
        Assert.AreEqual(1, cache.Misses);
    }

    [TestMethod]
    public void PutAgain_ReplacesTheCopyWithoutGrowing()
    {
        var cache = new SentPageCache(4 * Page);
        cache.Put(0, 3, Filled(1));
        cache.Put(0, 3, Filled(2));

        Assert.AreEqual(1, cache.Count);
        Assert.IsTrue(cache.TryGet(0, 3, out Span<byte> copy));
        Assert.AreEqual(2, copy[Page - 1]);
    }

    [TestMethod]
    public void CopyUpdatedInPlace_IsWhatTheNextLookupSees()
    {
        var cache = new SentPageCache(4 * Page);
        cache.Put(0, 3, Filled(1));
        Assert.IsTrue(cache.TryGet(0, 3, out Span<byte> copy));
        Filled(9).CopyTo(copy);

        Assert.IsTrue(cache.TryGet(0, 3, out Span<byte> again));
        Assert.AreEqual(9, again[100]);
    }

    [TestMethod]
    public void FullCache_EvictsTheLeastRecentlyUsedPage()
    {
        var cache = new SentPageCache(3 * Page);
        cache.Put(0, 1, Filled(1));
        cache.Put(0, 2, Filled(2));
        cache.Put(0, 3, Filled(3));

        // Page 1 is used again, so page 2 is now the oldest, then page 3.
        Assert.IsTrue(cache.TryGet(0, 1, out _));
        cache.Put(0, 4, Filled(4));
        cache.Put(0, 5, Filled(5));

        Assert.AreEqual(2, cache.Evictions);
        Assert.AreEqual(3, cache.Count);
        Assert.IsFalse(cache.TryGet(0, 2, out _));
        Assert.IsFalse(cache.TryGet(0, 3, out _));
        foreach (ulong page in new ulong[] { 1, 4, 5 })
        {
            Assert.IsTrue(cache.TryGet(0, page, out Span<byte> copy), $"page {page}");
            Assert.AreEqual((byte)page, copy[0]);
        }
    }

    [TestMethod]
    public void RemovedPage_IsGoneAndItsSlotReused()
    {
        var cache = new SentPageCache(2 * Page);
        cache.Put(0, 1, Filled(1));
        cache.Put(0, 2, Filled(2));

        Assert.IsTrue(cache.Remove(0, 1));
        Assert.IsFalse(cache.Remove(0, 1));
        cache.Put(0, 3, Filled(3));

        Assert.AreEqual(0, cache.Evictions);
        Assert.IsFalse(cache.TryGet(0, 1, out _));
        Assert.IsTrue(cache.TryGet(0, 2, out _));
        Assert.IsTrue(cache.TryGet(0, 3, out _));
    }

    [TestMethod]
    public void Clear_DropsEveryPage()
    {
        var cache = new SentPageCache(2 * Page);
        cache.Put(0, 1, Filled(1));
        cache.Put(0, 2, Filled(2));

        cache.Clear();
        cache.Put(0, 3, Filled(3));

        Assert.AreEqual(1, cache.Count);
        Assert.IsFalse(cache.TryGet(0, 1, out _));
        Assert.IsTrue(cache.TryGet(0, 3, out _));
    }

    [TestMethod]
    public void Capacity_IsRoundedDownToWholePagesAndNeverExceeded()
    {
        var cache = new SentPageCache((5 * Page) + 100);
        for (ulong page = 0; page < 1000; page++)
        {
            cache.Put(0, page, Filled((byte)page));
        }

        Assert.AreEqual(5, cache.Capacity);
        Assert.AreEqual(5L * Page, cache.CapacityBytes);
        Assert.AreEqual(5, cache.Count);
        Assert.AreEqual(995, cache.Evictions);
    }

    [TestMethod]
    public void DefaultCapacity_Is64MiB()
    {
        Assert.AreEqual(64L << 20, new SentPageCache().CapacityBytes);
    }

    [TestMethod]
    [DataRow(0L)]
    [DataRow(Page - 1L)]
    [DataRow(SentPageCache.MaxCapacityBytes + Page)]
    public void CapacityOutOfRange_IsAnArgumentError(long capacityBytes)
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SentPageCache(capacityBytes));
    }

    [TestMethod]
    public void PutOfAnythingButOnePage_IsAnArgumentError()
    {
        var cache = new SentPageCache(Page);

        Assert.ThrowsExactly<ArgumentException>(() => cache.Put(0, 0, new byte[Page - 1]));
    }

    [TestMethod]
    public void HitsMissesAndEvictions_AllocateNothing()
    {
        var cache = new SentPageCache(64 * Page);
        byte[] page = Filled(1);
        for (ulong i = 0; i < 200; i++)
        {
            cache.Put(0, i, page);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong i = 0; i < 1000; i++)
        {
            if (!cache.TryGet(0, i % 150, out _))
            {
                cache.Put(0, i % 150, page);
            }

            cache.Remove(0, i % 7);
        }

        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.IsGreaterThan(0, cache.Evictions);
    }

    [TestMethod]
    public void AnySequenceOfOperations_BehavesLikeAReferenceLru()
    {
        // Few keys over two regions and a small capacity, so collisions, evictions and removals all happen.
        Gen<(int Op, int Region, ulong Page)> operation = Gen.Select(Gen.Int[0, 2], Gen.Int[0, 1], Gen.ULong[0, 40], (op, region, page) => (op, region, page));
        Gen.Select(Gen.Int[1, 12], operation.Array[0, 400]).Sample(
            run =>
            {
                (int capacity, (int Op, int Region, ulong Page)[] operations) = run;
                var cache = new SentPageCache((long)capacity * Page);
                var reference = new LinkedList<(int, ulong)>();
                for (int i = 0; i < operations.Length; i++)
                {
                    (int op, int region, ulong page) = operations[i];
                    var key = (region, page);
                    byte stamp = (byte)i;
                    switch (op)
                    {
                        case 0:
                            bool hit = cache.TryGet(region, page, out Span<byte> copy);
                            Assert.AreEqual(reference.Contains(key), hit, $"lookup {i} of {key}");
                            if (hit)
                            {
                                reference.Remove(key);
                                reference.AddFirst(key);
                                Assert.AreEqual(page, (ulong)copy[1], "The copy belongs to another page.");
                            }

                            break;
                        case 1:
                            byte[] contents = Filled(stamp);
                            contents[1] = (byte)page;
                            cache.Put(region, page, contents);
                            if (!reference.Remove(key) && reference.Count == capacity)
                            {
                                reference.RemoveLast();
                            }

                            reference.AddFirst(key);
                            break;
                        default:
                            Assert.AreEqual(reference.Remove(key), cache.Remove(region, page), $"removal {i} of {key}");
                            break;
                    }

                    Assert.AreEqual(reference.Count, cache.Count);
                }

                foreach ((int region, ulong page) in reference.ToList())
                {
                    Assert.IsTrue(cache.TryGet(region, page, out _), $"({region}, {page}) was lost.");
                }
            },
            iter: 2_000,
            threads: 1);
    }

    private static byte[] Filled(byte value) => Enumerable.Repeat(value, Page).ToArray();
}

/// <summary>SentPageCache's memory: native slabs, allocated as pages arrive and returned by Dispose.</summary>
[TestClass]
public sealed class SentPageCacheMemoryTests
{
    [TestMethod]
    public void Disposed_TheCacheHoldsNothing_AndRefusesNewCopies()
    {
        var cache = new SentPageCache(64L << 20);
        byte[] page = new byte[MigrationProtocol.PageSize];
        page[9] = 7;
        cache.Put(0, 3, page);
        Assert.IsTrue(cache.TryGet(0, 3, out Span<byte> copy));
        Assert.AreEqual(7, copy[9]);

        cache.Dispose();
        Assert.AreEqual(0, cache.Count);
        Assert.IsFalse(cache.TryGet(0, 3, out _));
        Assert.ThrowsExactly<ObjectDisposedException>(() => cache.Put(0, 3, page));
        cache.Dispose();
    }
}
