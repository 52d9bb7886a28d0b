using System;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class HotPageDeferralTests
{
    private static DirtyBitmap Bitmap(ulong pageCount, params ulong[] pages)
    {
        var bitmap = new DirtyBitmap(pageCount);
        foreach (ulong p in pages)
        {
            bitmap.Set(p);
        }

        return bitmap;
    }

    private static ulong[] Pages(DirtyBitmap bitmap)
    {
        var pages = new System.Collections.Generic.List<ulong>();
        foreach (ulong p in bitmap.EnumerateSetPages())
        {
            pages.Add(p);
        }

        return pages.ToArray();
    }

    [TestMethod]
    public void Select_DefersEveryHotPage_WhenTheBudgetAllows()
    {
        DirtyBitmap[] hot = [Bitmap(64, 5, 6, 40), Bitmap(16, 3)];
        DirtyBitmap[] deferred = [new DirtyBitmap(64), new DirtyBitmap(16)];

        ulong count = HotPageDeferral.Select(hot, 10, deferred);

        Assert.AreEqual(4UL, count);
        Assert.AreSequenceEqual(new ulong[] { 5, 6, 40 }, Pages(deferred[0]));
        Assert.AreSequenceEqual(new ulong[] { 3 }, Pages(deferred[1]));
    }

    [TestMethod]
    public void Select_KeepsTheLowestHotPages_WhenTheBudgetIsShort()
    {
        // The budget ends inside the run 10..13: its first two pages are kept.
        DirtyBitmap[] hot = [Bitmap(64, 2, 10, 11, 12, 13, 50)];
        DirtyBitmap[] deferred = [new DirtyBitmap(64)];

        ulong count = HotPageDeferral.Select(hot, 3, deferred);

        Assert.AreEqual(3UL, count);
        Assert.AreSequenceEqual(new ulong[] { 2, 10, 11 }, Pages(deferred[0]));
    }

    [TestMethod]
    public void Select_SpendsTheBudgetOnTheRegionsInOrder()
    {
        DirtyBitmap[] hot = [Bitmap(64, 1, 2), Bitmap(16, 0, 1, 2), Bitmap(16, 7)];
        DirtyBitmap[] deferred = [new DirtyBitmap(64), new DirtyBitmap(16), new DirtyBitmap(16)];

        ulong count = HotPageDeferral.Select(hot, 3, deferred);

        Assert.AreEqual(3UL, count);
        Assert.AreSequenceEqual(new ulong[] { 1, 2 }, Pages(deferred[0]));
        Assert.AreSequenceEqual(new ulong[] { 0 }, Pages(deferred[1]));
        Assert.IsTrue(deferred[2].IsEmpty, "nothing is left for the last region");
    }

    [TestMethod]
    public void Select_DefersNothing_WithoutABudget_AndForgetsWhatWasDeferredBefore()
    {
        DirtyBitmap[] hot = [Bitmap(64, 5, 6)];
        DirtyBitmap[] deferred = [Bitmap(64, 5, 6, 30)];

        Assert.AreEqual(0UL, HotPageDeferral.Select(hot, 0, deferred));
        Assert.IsTrue(deferred[0].IsEmpty);
    }

    [TestMethod]
    public void Select_IsTheSameForTheSameHeat()
    {
        DirtyBitmap[] hot = [Bitmap(64, 3, 9, 27), Bitmap(16, 4, 8)];
        DirtyBitmap[] first = [new DirtyBitmap(64), new DirtyBitmap(16)];
        DirtyBitmap[] second = [Bitmap(64, 1), Bitmap(16, 15)];

        HotPageDeferral.Select(hot, 4, first);
        HotPageDeferral.Select(hot, 4, second);

        Assert.IsTrue(first.Zip(second).All(p => Pages(p.First).SequenceEqual(Pages(p.Second))));
        Assert.IsTrue(hot.Zip(new[] { new ulong[] { 3, 9, 27 }, new ulong[] { 4, 8 } }).All(p => Pages(p.First).SequenceEqual(p.Second)), "the heat is not changed");
    }

    [TestMethod]
    public void Select_RejectsListsOfDifferentLengths()
    {
        Assert.ThrowsExactly<ArgumentException>(() => HotPageDeferral.Select([new DirtyBitmap(8)], 1, [new DirtyBitmap(8), new DirtyBitmap(8)]));
    }
}
