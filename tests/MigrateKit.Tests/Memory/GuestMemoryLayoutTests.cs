using System;
using System.Collections.Generic;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;

namespace MigrateKit.Tests.Memory;

/// <summary>GuestMemoryLayout: up-front validation, mapping (no KVM needed) and lookups.</summary>
[TestClass]
public sealed class GuestMemoryLayoutTests
{
    private const ulong Page = GuestMemoryLayout.PageSize;
    private const ulong MiB = 1UL << 20;

    [TestMethod]
    public void NoRegions_Throws()
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => new GuestMemoryLayout([]));
        Assert.AreEqual("regions", ex.ParamName);
        Assert.Contains("at least one region", ex.Message);
    }

    [TestMethod]
    public unsafe void RegionsFromTwoMiB_StartOnATwoMiBBoundary_AndAreWholeAndZero()
    {
        using var layout = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 2 * MiB), new GuestMemoryRegionSpec(4 * MiB, 6 * MiB + Page), new GuestMemoryRegionSpec(16 * MiB, MiB)]);
        Assert.AreEqual(0UL, (ulong)layout.Regions[0].Pointer % (2 * MiB));
        Assert.AreEqual(0UL, (ulong)layout.Regions[1].Pointer % (2 * MiB));
        Assert.AreEqual(0UL, (ulong)layout.Regions[2].Pointer % Page);
        foreach (GuestMemoryRegion region in layout.Regions)
        {
            // Every byte is mapped and zero; writing the last page proves the trim left it.
            Assert.IsLessThan(0, region.GetSpan(0, (int)region.Size).IndexOfAnyExcept((byte)0));
            region.GetPage(region.PageCount - 1).Fill(9);
        }
    }

    [TestMethod]
    public void NullRegions_Throws() =>
        Assert.ThrowsExactly<ArgumentNullException>(() => new GuestMemoryLayout(null!));

    [TestMethod]
    [DataRow(0UL, DisplayName = "zero")]
    [DataRow(1UL, DisplayName = "one byte")]
    [DataRow(4095UL, DisplayName = "just under a page")]
    [DataRow(4097UL, DisplayName = "a page and a byte")]
    [DataRow(3UL * 4096 / 2, DisplayName = "a page and a half")]
    public void SizeNotAPageMultiple_Throws(ulong size)
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => new GuestMemoryLayout([new GuestMemoryRegionSpec(0, size)]));
        Assert.AreEqual("regions", ex.ParamName);
        Assert.Contains("Region 0", ex.Message);
        Assert.Contains($"size {size}", ex.Message);
    }

    [TestMethod]
    public void Create_WithZeroSize_Throws() =>
        Assert.ThrowsExactly<ArgumentException>(() => GuestMemoryLayout.Create(0));

    [TestMethod]
    [DataRow(1UL)]
    [DataRow(0x800UL)]
    [DataRow(0x100_0FFFUL)]
    public void UnalignedAddress_Throws(ulong address)
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() =>
            new GuestMemoryLayout([new GuestMemoryRegionSpec(0, Page), new GuestMemoryRegionSpec(address + MiB, Page)]));
        Assert.Contains("Region 1", ex.Message);
        Assert.Contains("not aligned", ex.Message);
        Assert.Contains($"0x{address + MiB:x}", ex.Message);
    }

    [TestMethod]
    public void RegionWrappingPastTheAddressSpace_Throws()
    {
        ulong address = ulong.MaxValue - Page + 1 - Page;
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => new GuestMemoryLayout([new GuestMemoryRegionSpec(address, 4 * Page)]));
        Assert.Contains("wraps", ex.Message);
    }

    [TestMethod]
    [DataRow(0x10_0000UL, 0x10_0000UL, 0x10_0000UL, 0x1000UL, DisplayName = "same start")]
    [DataRow(0x10_0000UL, 0x10_0000UL, 0x1F_F000UL, 0x2000UL, DisplayName = "last page shared")]
    [DataRow(0x10_0000UL, 0x10_0000UL, 0x0F_F000UL, 0x2000UL, DisplayName = "first page shared")]
    [DataRow(0x10_0000UL, 0x10_0000UL, 0x0UL, 0x100_0000UL, DisplayName = "contains the other")]
    [DataRow(0x10_0000UL, 0x10_0000UL, 0x18_0000UL, 0x1000UL, DisplayName = "inside the other")]
    public void OverlappingRegions_Throw(ulong firstAddress, ulong firstSize, ulong secondAddress, ulong secondSize)
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() =>
            new GuestMemoryLayout([new GuestMemoryRegionSpec(firstAddress, firstSize), new GuestMemoryRegionSpec(secondAddress, secondSize)]));
        Assert.AreEqual("regions", ex.ParamName);
        Assert.Contains("Region 1", ex.Message);
        Assert.Contains("overlaps region 0", ex.Message);
    }

    [TestMethod]
    public void OverlapWithAnEarlierRegionThanTheLast_IsFound()
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => new GuestMemoryLayout(
        [
            new GuestMemoryRegionSpec(0, MiB),
            new GuestMemoryRegionSpec(4 * MiB, MiB),
            new GuestMemoryRegionSpec(MiB - Page, Page * 2),
        ]));
        Assert.Contains("Region 2", ex.Message);
        Assert.Contains("overlaps region 0", ex.Message);
    }

    [TestMethod]
    public void AdjacentRegions_AreValid_AndLookupsFindTheRightOne()
    {
        using var layout = new GuestMemoryLayout(
        [
            new GuestMemoryRegionSpec(MiB, MiB),
            new GuestMemoryRegionSpec(0, MiB),
            new GuestMemoryRegionSpec(8 * MiB, 4 * Page),
        ]);

        Assert.HasCount(3, layout.Regions);
        Assert.AreEqual(2 * MiB + (4 * Page), layout.TotalSize);
        Assert.AreEqual(layout.TotalSize / Page, layout.TotalPages);
        for (int i = 0; i < layout.Regions.Count; i++)
        {
            Assert.AreEqual(i, layout.Regions[i].Index);
        }

        GuestMemoryRegion r1 = layout.Regions[0];
        Assert.AreEqual(MiB, r1.GuestPhysicalAddress);
        Assert.AreEqual(MiB, r1.Size);
        Assert.AreEqual(2 * MiB, r1.End);
        Assert.AreEqual(256UL, r1.PageCount);
        Assert.IsTrue(r1.Contains(MiB));
        Assert.IsTrue(r1.Contains((2 * MiB) - 1));
        Assert.IsFalse(r1.Contains(2 * MiB));
        Assert.IsFalse(r1.Contains(MiB - 1));

        AssertTranslates(layout, 0, 1, 0);
        AssertTranslates(layout, MiB - 1, 1, MiB - 1);
        AssertTranslates(layout, MiB, 0, 0);
        AssertTranslates(layout, (2 * MiB) - 1, 0, MiB - 1);
        AssertTranslates(layout, (8 * MiB) + 5, 2, 5);

        Assert.IsFalse(layout.TryTranslate(2 * MiB, out _, out _));
        Assert.IsFalse(layout.TryTranslate((8 * MiB) + (4 * Page), out _, out _));
        Assert.IsFalse(layout.TryTranslate(ulong.MaxValue, out _, out _));
    }

    [TestMethod]
    public void NewMemory_IsZeroFilled()
    {
        using GuestMemoryLayout layout = GuestMemoryLayout.Create(64 * Page);
        GuestMemoryRegion region = layout.Regions[0];
        for (ulong page = 0; page < region.PageCount; page++)
        {
            Assert.AreEqual(-1, region.GetPage(page).IndexOfAnyExcept((byte)0), $"page {page}");
        }
    }

    [TestMethod]
    public void PageWrites_AreSeenThroughEveryView()
    {
        using var layout = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * Page), new GuestMemoryRegionSpec(MiB, 16 * Page)]);
        GuestMemoryRegion high = layout.Regions[1];

        Span<byte> page3 = high.GetPage(3);
        Assert.AreEqual((int)Page, page3.Length);
        for (int i = 0; i < page3.Length; i++)
        {
            page3[i] = (byte)(i * 7);
        }

        Span<byte> viaLayout = layout.GetSpan(MiB + (3 * Page), (int)Page);
        Assert.IsTrue(viaLayout.SequenceEqual(page3));
        Assert.AreEqual(unchecked((byte)(100 * 7)), layout.GetSpan(MiB + (3 * Page) + 100, 1)[0]);

        // Writing through the layout is visible in the region's page, and nowhere else.
        layout.GetSpan(MiB + (4 * Page) - 4, 8).Fill(0xAB);
        Assert.AreEqual(0xAB, high.GetPage(3)[(int)Page - 1]);
        Assert.AreEqual(0xAB, high.GetPage(4)[3]);
        Assert.AreEqual(0, high.GetPage(4)[4]);
        Assert.AreEqual(-1, layout.Regions[0].GetSpan(0, (int)(16 * Page)).IndexOfAnyExcept((byte)0));
    }

    [TestMethod]
    public void LargeMapping_OnlyTouchedPagesMatter()
    {
        // MAP_NORESERVE: a gigabyte maps without committing it.
        using GuestMemoryLayout layout = GuestMemoryLayout.Create(1UL << 30);
        GuestMemoryRegion region = layout.Regions[0];
        Assert.AreEqual((1UL << 30) / Page, region.PageCount);
        region.GetPage(region.PageCount - 1)[^1] = 42;
        Assert.AreEqual(42, layout.GetSpan((1UL << 30) - 1, 1)[0]);
    }

    [TestMethod]
    public void GetPage_OutsideTheRegion_Throws()
    {
        using GuestMemoryLayout layout = GuestMemoryLayout.Create(4 * Page);
        GuestMemoryRegion region = layout.Regions[0];
        ArgumentOutOfRangeException ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => region.GetPage(4));
        Assert.AreEqual("page", ex.ParamName);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => region.GetPage(ulong.MaxValue));
    }

    [TestMethod]
    [DataRow(0UL, -1)]
    [DataRow(0UL, 4 * 4096 + 1)]
    [DataRow(4 * 4096UL, 1)]
    [DataRow(4 * 4096UL + 1, 0)]
    [DataRow(3 * 4096UL + 1, 4096)]
    [DataRow(ulong.MaxValue, 1)]
    public void RegionGetSpan_LeavingTheRegion_Throws(ulong offset, int length)
    {
        using GuestMemoryLayout layout = GuestMemoryLayout.Create(4 * Page);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => layout.Regions[0].GetSpan(offset, length));
    }

    [TestMethod]
    public void RegionGetSpan_UpToTheEnd_Works()
    {
        using GuestMemoryLayout layout = GuestMemoryLayout.Create(4 * Page);
        Assert.AreEqual((int)Page, layout.Regions[0].GetSpan(3 * Page, (int)Page).Length);
        Assert.AreEqual(0, layout.Regions[0].GetSpan(4 * Page, 0).Length);
    }

    [TestMethod]
    public void LayoutGetSpan_OutsideOrAcrossRegions_Throws()
    {
        using var layout = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 4 * Page), new GuestMemoryRegionSpec(4 * Page, 4 * Page)]);
        ArgumentOutOfRangeException ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => layout.GetSpan(8 * Page, 1));
        Assert.AreEqual("guestPhysicalAddress", ex.ParamName);
        Assert.Contains("0x8000", ex.Message);

        // Adjacent regions are still separate mappings: a span may not straddle them.
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => layout.GetSpan((4 * Page) - 1, 2));
    }

    [TestMethod]
    public void AfterDispose_RegionAccess_Throws()
    {
        var layout = GuestMemoryLayout.Create(4 * Page);
        GuestMemoryRegion region = layout.Regions[0];
        layout.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => region.GetPage(0));
        Assert.ThrowsExactly<ObjectDisposedException>(() => layout.GetSpan(0, 1));

        // A second Dispose is harmless.
        layout.Dispose();
    }

    [TestMethod]
    public void Specs_KeepTheOrderGiven()
    {
        var specs = new List<GuestMemoryRegionSpec> { new(16 * Page, Page), new(0, 2 * Page), new(8 * Page, 3 * Page) };
        using var layout = new GuestMemoryLayout(specs);
        for (int i = 0; i < specs.Count; i++)
        {
            Assert.AreEqual(specs[i].GuestPhysicalAddress, layout.Regions[i].GuestPhysicalAddress);
            Assert.AreEqual(specs[i].Size, layout.Regions[i].Size);
        }
    }

    private static void AssertTranslates(GuestMemoryLayout layout, ulong address, int expectedRegion, ulong expectedOffset)
    {
        Assert.IsTrue(layout.TryTranslate(address, out GuestMemoryRegion region, out ulong offset), $"0x{address:x}");
        Assert.AreEqual(expectedRegion, region.Index, $"region of 0x{address:x}");
        Assert.AreEqual(expectedOffset, offset, $"offset of 0x{address:x}");
    }
}
