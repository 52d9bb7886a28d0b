using System;
using System.Collections.Generic;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Memory;

namespace MigrateKit.Tests.Estimation;

/// <summary>PageHeat: a page is hot when dirtied in at least k of the last n rounds.</summary>
[TestClass]
public sealed class PageHeatTests
{
    // 130 pages: two full words and a partial third, so the tail word is covered.
    private const ulong Pages = 130;

    private static DirtyBitmap Dirty(params ulong[] pages)
    {
        var bitmap = new DirtyBitmap(Pages);
        foreach (ulong p in pages)
        {
            bitmap.Set(p);
        }

        return bitmap;
    }

    private static List<ulong> HotPages(PageHeat heat)
    {
        var hot = new List<ulong>();
        foreach (ulong p in heat.HotSet.EnumerateSetPages())
        {
            hot.Add(p);
        }

        return hot;
    }

    [TestMethod]
    public void Defaults_AndEmptyStart()
    {
        var heat = new PageHeat(Pages);
        Assert.AreEqual(4, heat.Window);
        Assert.AreEqual(2, heat.Threshold);
        Assert.AreEqual(0UL, heat.HotCount);
        Assert.AreEqual(0, heat.Rounds);
        Assert.AreEqual(Pages, heat.HotSet.PageCount);
        Assert.IsTrue(heat.HotSet.IsEmpty);
    }

    [TestMethod]
    public void OneDirtyRound_IsNotHot_TwoAre()
    {
        var heat = new PageHeat(Pages, window: 4, threshold: 2);
        heat.Update(Dirty(1, 64, 129));
        Assert.AreEqual(0UL, heat.HotCount);
        Assert.IsFalse(heat.IsHot(1));
        Assert.AreEqual((byte)0b1, heat.History(1));

        heat.Update(Dirty(1, 129));
        Assert.AreEqual(2UL, heat.HotCount);
        Assert.IsTrue(heat.IsHot(1));
        Assert.IsTrue(heat.IsHot(129));
        Assert.IsFalse(heat.IsHot(64));
        Assert.AreEqual((byte)0b11, heat.History(1));
        Assert.AreEqual((byte)0b10, heat.History(64));
        Assert.AreSequenceEqual(new ulong[] { 1, 129 }, HotPages(heat).ToArray());
        Assert.AreEqual(2, heat.Rounds);
    }

    [TestMethod]
    public void DirtyRoundsNeedNotBeConsecutive()
    {
        var heat = new PageHeat(Pages, window: 4, threshold: 2);
        heat.Update(Dirty(7));
        heat.Update(Dirty());
        heat.Update(Dirty());
        Assert.IsFalse(heat.IsHot(7));

        // Dirty in round 1 and 4 of the last four: 2 of 4.
        heat.Update(Dirty(7));
        Assert.IsTrue(heat.IsHot(7));
        Assert.AreEqual((byte)0b1001, heat.History(7));
    }

    [TestMethod]
    public void WindowSlides_OldRoundsAreForgotten()
    {
        var heat = new PageHeat(Pages, window: 4, threshold: 2);
        heat.Update(Dirty(70));
        heat.Update(Dirty(70));
        Assert.IsTrue(heat.IsHot(70));

        // Clean rounds shift the two dirty rounds out of the 4-round window one at a time.
        heat.Update(Dirty());
        Assert.IsTrue(heat.IsHot(70));
        Assert.AreEqual((byte)0b0110, heat.History(70));
        heat.Update(Dirty());
        Assert.IsTrue(heat.IsHot(70));
        Assert.AreEqual((byte)0b1100, heat.History(70));
        heat.Update(Dirty());
        Assert.IsFalse(heat.IsHot(70), "only one dirty round is left in the window");
        Assert.AreEqual((byte)0b1000, heat.History(70));
        Assert.AreEqual(0UL, heat.HotCount);
        heat.Update(Dirty());
        Assert.AreEqual((byte)0, heat.History(70));
    }

    [TestMethod]
    public void ThresholdThreeOfFour()
    {
        var heat = new PageHeat(Pages, window: 4, threshold: 3);
        heat.Update(Dirty(3, 4));
        heat.Update(Dirty(3, 4));
        Assert.AreEqual(0UL, heat.HotCount);
        heat.Update(Dirty(3));
        Assert.IsTrue(heat.IsHot(3));
        Assert.IsFalse(heat.IsHot(4));
        heat.Update(Dirty(4));
        Assert.IsTrue(heat.IsHot(3), "3 of the last 4 rounds");
        Assert.IsTrue(heat.IsHot(4), "rounds 1, 2 and 4");
        heat.Update(Dirty());
        Assert.IsFalse(heat.IsHot(3), "rounds 2 and 3 only");
        Assert.IsFalse(heat.IsHot(4), "rounds 2 and 4 only");
    }

    [TestMethod]
    public void WindowOfOne_HotMeansDirtiedInTheLatestRound()
    {
        var heat = new PageHeat(Pages, window: 1, threshold: 1);
        heat.Update(Dirty(0, 100));
        Assert.AreEqual(2UL, heat.HotCount);
        heat.Update(Dirty(100));
        Assert.IsFalse(heat.IsHot(0));
        Assert.IsTrue(heat.IsHot(100));
        Assert.AreEqual(1UL, heat.HotCount);
    }

    [TestMethod]
    public void WindowOfEight_RemembersEightRounds()
    {
        var heat = new PageHeat(Pages, window: 8, threshold: 2);
        heat.Update(Dirty(5));
        heat.Update(Dirty(5));
        for (int i = 0; i < 6; i++)
        {
            heat.Update(Dirty());
        }

        Assert.IsTrue(heat.IsHot(5));
        Assert.AreEqual((byte)0b1100_0000, heat.History(5));
        heat.Update(Dirty());
        Assert.IsFalse(heat.IsHot(5));
    }

    [TestMethod]
    public void HotCount_CountsAcrossWords()
    {
        var heat = new PageHeat(Pages, window: 2, threshold: 2);
        var all = new DirtyBitmap(Pages);
        all.SetAll();
        heat.Update(all);
        heat.Update(all);
        Assert.AreEqual(Pages, heat.HotCount);
        Assert.AreEqual(Pages, heat.HotSet.Count());
        // Only the pages dirtied again stay hot (2 of 2), at the edges of every word.
        heat.Update(Dirty(0, 63, 64, 127, 128));
        Assert.AreEqual(5UL, heat.HotCount);
        Assert.AreSequenceEqual(new ulong[] { 0, 63, 64, 127, 128 }, HotPages(heat).ToArray());
        heat.Update(Dirty());
        Assert.AreEqual(0UL, heat.HotCount);
        Assert.IsTrue(heat.HotSet.IsEmpty);
    }

    [TestMethod]
    public void Reset_ForgetsEverything()
    {
        var heat = new PageHeat(Pages, window: 4, threshold: 2);
        heat.Update(Dirty(9, 120));
        heat.Update(Dirty(9, 120));
        Assert.AreEqual(2UL, heat.HotCount);

        heat.Reset();
        Assert.AreEqual(0UL, heat.HotCount);
        Assert.AreEqual(0, heat.Rounds);
        Assert.IsFalse(heat.IsHot(9));
        Assert.AreEqual((byte)0, heat.History(9));
        Assert.IsTrue(heat.HotSet.IsEmpty);

        // One more dirty round after the reset is only one round.
        heat.Update(Dirty(9));
        Assert.IsFalse(heat.IsHot(9));
    }

    [TestMethod]
    public void Update_WithAWrongSizedBitmap_Throws()
    {
        var heat = new PageHeat(Pages);
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => heat.Update(new DirtyBitmap(Pages + 1)));
        Assert.AreEqual("dirtied", ex.ParamName);
        Assert.ThrowsExactly<ArgumentNullException>(() => heat.Update(null!));
    }

    [TestMethod]
    [DataRow(0, 1, "window")]
    [DataRow(9, 1, "window")]
    [DataRow(4, 0, "threshold")]
    [DataRow(4, 5, "threshold")]
    public void BadWindowOrThreshold_Throws(int window, int threshold, string param) =>
        Assert.AreEqual(param, Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new PageHeat(Pages, window, threshold)).ParamName);
}
