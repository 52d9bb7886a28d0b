using System;
using System.Numerics;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Memory;

namespace MigrateKit.Tests.Estimation;

/// <summary>
/// PageHeat's word-at-a-time update against a page-by-page model: any window, threshold, size
/// (full words and a tail) and sequence of rounds gives the same histories and hot set.
/// </summary>
[TestClass]
public sealed class PageHeatPropertyTests
{
    [TestMethod]
    public void Update_MatchesAPageByPageModel()
    {
        Gen.Select(Gen.Int[1, 8], Gen.Int[1, 300], Gen.Int[1, 12], Gen.Int[0, 100], Gen.Int)
            .Sample((window, pages, rounds, density, seed) =>
            {
                int threshold = 1 + (int)((uint)seed % (uint)window);
                var heat = new PageHeat((ulong)pages, window, threshold);
                var model = new byte[pages];
                var random = new Random(seed);
                for (int round = 0; round < rounds; round++)
                {
                    var dirty = new DirtyBitmap((ulong)pages);
                    for (int p = 0; p < pages; p++)
                    {
                        bool set = random.Next(100) < density;
                        if (set)
                        {
                            dirty.Set((ulong)p);
                        }

                        model[p] = (byte)(((model[p] << 1) | (set ? 1 : 0)) & ((1 << window) - 1));
                    }

                    heat.Update(dirty);
                    ulong hot = 0;
                    for (int p = 0; p < pages; p++)
                    {
                        bool isHot = BitOperations.PopCount(model[p]) >= threshold;
                        hot += isHot ? 1UL : 0;
                        Assert.AreEqual(model[p], heat.History((ulong)p), $"page {p} after round {round} (window {window}, threshold {threshold})");
                        Assert.AreEqual(isHot, heat.IsHot((ulong)p), $"page {p} after round {round} (window {window}, threshold {threshold})");
                    }

                    Assert.AreEqual(hot, heat.HotCount);
                }
            });
    }
}
