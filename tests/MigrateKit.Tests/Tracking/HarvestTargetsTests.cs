using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Tracking;

namespace MigrateKit.Tests.Tracking;

[TestClass]
public sealed class HarvestTargetsTests
{
    private static readonly GuestMemoryLayout Memory = new([new GuestMemoryRegionSpec(0, 16 * GuestMemoryLayout.PageSize), new GuestMemoryRegionSpec(1UL << 30, 8 * GuestMemoryLayout.PageSize)]);

    [ClassCleanup]
    public static void Cleanup() => Memory.Dispose();

    [TestMethod]
    public void OneBitmapPerRegionOfItsSize_IsAccepted()
    {
        HarvestTargets.Check([new DirtyBitmap(16), new DirtyBitmap(8)], Memory.Regions);
    }

    [TestMethod]
    public void ANullBitmap_IsNamed_NotANullReference()
    {
        DirtyBitmap[] into = [new DirtyBitmap(16), null!];
        ArgumentException e = Assert.ThrowsExactly<ArgumentException>(() => HarvestTargets.Check(into, Memory.Regions));
        Assert.AreEqual("into", e.ParamName);
        StringAssert.StartsWith(e.Message, "Bitmap 1 is null; region 1 needs one of 8 pages.");
    }

    [TestMethod]
    public void AMissingOrMisfittingBitmap_IsNamed()
    {
        DirtyBitmap[] into = [new DirtyBitmap(16)];
        StringAssert.StartsWith(Assert.ThrowsExactly<ArgumentException>(() => HarvestTargets.Check(into, Memory.Regions)).Message, "Expected 2 bitmaps (one per region), got 1.");
        into = [new DirtyBitmap(16), new DirtyBitmap(9)];
        StringAssert.StartsWith(Assert.ThrowsExactly<ArgumentException>(() => HarvestTargets.Check(into, Memory.Regions)).Message, "Bitmap 1 covers 9 pages; region 1 has 8.");
        Assert.AreEqual("into", Assert.ThrowsExactly<ArgumentNullException>(() => HarvestTargets.Check(null!, Memory.Regions)).ParamName);
    }
}
