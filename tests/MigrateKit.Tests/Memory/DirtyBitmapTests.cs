using System;
using System.Collections.Generic;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;

namespace MigrateKit.Tests.Memory;

/// <summary>DirtyBitmap against a bool[] reference model, plus its edges and argument checks.</summary>
[TestClass]
public sealed class DirtyBitmapTests
{
    // Sizes around word boundaries, a few vector widths (4 words = one Vector256) and odd tails.
    private static readonly ulong[] Sizes = [0, 1, 2, 63, 64, 65, 127, 128, 129, 191, 255, 256, 257, 300, 511, 1000, 1024, 4097, 10_000];

    [TestMethod]
    public void NewBitmap_IsEmpty_WithWordsRoundedUp()
    {
        foreach (ulong size in Sizes)
        {
            var bitmap = new DirtyBitmap(size);
            Assert.AreEqual(size, bitmap.PageCount);
            Assert.AreEqual((int)((size + 63) / 64), bitmap.WordCount, $"size {size}");
            Assert.AreEqual(bitmap.WordCount, bitmap.Words.Length);
            Assert.IsTrue(bitmap.IsEmpty);
            Assert.AreEqual(0UL, bitmap.Count());
            Assert.IsEmpty(SetPages(bitmap));
            Assert.IsEmpty(Runs(bitmap));
        }
    }

    [TestMethod]
    public void SetTestClear_AtBoundaryPages()
    {
        var bitmap = new DirtyBitmap(200);
        ulong[] pages = [0, 1, 62, 63, 64, 65, 127, 128, 191, 192, 199];
        foreach (ulong page in pages)
        {
            Assert.IsFalse(bitmap.Test(page));
            bitmap.Set(page);
            Assert.IsTrue(bitmap.Test(page), $"page {page}");
            Assert.IsTrue(bitmap[page]);
        }

        Assert.AreEqual((ulong)pages.Length, bitmap.Count());
        Assert.AreSequenceEqual(pages, SetPages(bitmap).ToArray());
        Assert.AreEqual(1UL << 63 | 1UL << 62 | 3UL, bitmap.Words[0]);
        Assert.AreEqual(3UL | 1UL << 63, bitmap.Words[1]);

        foreach (ulong page in pages)
        {
            bitmap.Clear(page);
            Assert.IsFalse(bitmap.Test(page), $"page {page}");
        }

        Assert.IsTrue(bitmap.IsEmpty);
    }

    [TestMethod]
    public void SetTwice_CountsOnce_AndClearOfClearPageIsNoOp()
    {
        var bitmap = new DirtyBitmap(70);
        bitmap.Set(64);
        bitmap.Set(64);
        Assert.AreEqual(1UL, bitmap.Count());
        bitmap.Clear(3);
        Assert.AreEqual(1UL, bitmap.Count());
        Assert.IsTrue(bitmap.Test(64));
    }

    [TestMethod]
    public void OutOfRangePages_AreIgnoredAndTestFalse()
    {
        // Page 70 lies in the last word's storage, past PageCount; 1000 lies past the storage.
        var bitmap = new DirtyBitmap(70);
        bitmap.Set(70);
        bitmap.Set(127);
        bitmap.Set(1000);
        bitmap.Set(ulong.MaxValue);
        Assert.IsTrue(bitmap.IsEmpty);
        Assert.AreEqual(0UL, bitmap.Words[1]);
        Assert.IsFalse(bitmap.Test(70));
        Assert.IsFalse(bitmap.Test(ulong.MaxValue));
        Assert.IsFalse(bitmap[1000]);

        bitmap.SetAll();
        bitmap.Clear(70);
        bitmap.Clear(ulong.MaxValue);
        Assert.AreEqual(70UL, bitmap.Count());
    }

    [TestMethod]
    public void EmptyBitmap_OfZeroPages_SupportsEveryOperation()
    {
        var bitmap = new DirtyBitmap(0);
        var other = new DirtyBitmap(0);
        bitmap.Set(0);
        bitmap.SetRange(0, 10);
        bitmap.SetAll();
        bitmap.TrimTail();
        bitmap.Or(other);
        bitmap.AndNot(other);
        Assert.AreEqual(0, bitmap.WordCount);
        Assert.IsTrue(bitmap.IsEmpty);
        Assert.AreEqual(0UL, bitmap.Count());
        Assert.IsEmpty(SetPages(bitmap));
        Assert.IsEmpty(Runs(bitmap));
    }

    [TestMethod]
    public void SetAll_SetsExactlyPageCountBits_AndOneRun()
    {
        foreach (ulong size in Sizes)
        {
            var bitmap = new DirtyBitmap(size);
            bitmap.SetAll();
            Assert.AreEqual(size, bitmap.Count(), $"size {size}");
            Assert.AreEqual(size == 0, bitmap.IsEmpty);
            if (size % 64 != 0)
            {
                Assert.AreEqual((1UL << (int)(size % 64)) - 1, bitmap.Words[^1], $"tail of size {size}");
            }

            List<PageRun> runs = Runs(bitmap);
            if (size == 0)
            {
                Assert.IsEmpty(runs);
            }
            else
            {
                Assert.AreSequenceEqual(new[] { new PageRun(0, size) }, runs.ToArray());
                Assert.AreEqual(size, runs[0].End);
            }

            List<ulong> pages = SetPages(bitmap);
            Assert.HasCount((int)size, pages);
            if (size > 0)
            {
                Assert.AreEqual(0UL, pages[0]);
                Assert.AreEqual(size - 1, pages[^1]);
            }

            bitmap.ClearAll();
            Assert.IsTrue(bitmap.IsEmpty);
        }
    }

    [TestMethod]
    public void TrimTail_ClearsRawBitsPastPageCount()
    {
        var bitmap = new DirtyBitmap(100);
        bitmap.Words.Fill(ulong.MaxValue);
        bitmap.TrimTail();
        Assert.AreEqual(100UL, bitmap.Count());
        Assert.AreEqual((1UL << 36) - 1, bitmap.Words[1]);

        // A multiple of 64 has no tail to trim.
        var exact = new DirtyBitmap(128);
        exact.Words.Fill(ulong.MaxValue);
        exact.TrimTail();
        Assert.AreEqual(128UL, exact.Count());
    }

    [TestMethod]
    public void Runs_CoalesceAcrossWordBoundaries()
    {
        var bitmap = new DirtyBitmap(300);
        bitmap.SetRange(60, 10);   // 60..69, across the word 0 / word 1 boundary
        bitmap.Set(127);
        bitmap.Set(128);           // 127..128, across word 1 / word 2
        bitmap.SetRange(192, 64);  // exactly word 3
        bitmap.Set(299);           // the last page
        PageRun[] expected = [new(60, 10), new(127, 2), new(192, 64), new(299, 1)];
        Assert.AreSequenceEqual(expected, Runs(bitmap).ToArray());
    }

    [TestMethod]
    public void Runs_SpanningManyFullWords_AreOneRun()
    {
        var bitmap = new DirtyBitmap(10_000);
        bitmap.SetRange(1, 9_998);
        Assert.AreSequenceEqual(new[] { new PageRun(1, 9_998) }, Runs(bitmap).ToArray());
        Assert.AreEqual(9_998UL, bitmap.Count());
    }

    [TestMethod]
    public void Runs_AreSplitAtMaxRunPages()
    {
        var bitmap = new DirtyBitmap(200);
        bitmap.SetRange(10, 25);
        bitmap.SetRange(100, 3);
        PageRun[] expected = [new(10, 10), new(20, 10), new(30, 5), new(100, 3)];
        Assert.AreSequenceEqual(expected, Runs(bitmap, 10).ToArray());

        PageRun[] single = [new(10, 1), new(11, 1)];
        var two = new DirtyBitmap(64);
        two.SetRange(10, 2);
        Assert.AreSequenceEqual(single, Runs(two, 1).ToArray());
    }

    [TestMethod]
    public void EnumerateRuns_WithZeroMax_Throws()
    {
        var bitmap = new DirtyBitmap(10);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => bitmap.EnumerateRuns(0));
    }

    [TestMethod]
    public void SetRangeAndClearRange_AreClippedToTheBitmap()
    {
        var bitmap = new DirtyBitmap(100);
        bitmap.SetRange(90, ulong.MaxValue);
        Assert.AreSequenceEqual(new[] { new PageRun(90, 10) }, Runs(bitmap).ToArray());
        bitmap.SetRange(100, 5);
        bitmap.SetRange(5, 0);
        Assert.AreEqual(10UL, bitmap.Count());
        bitmap.ClearRange(95, ulong.MaxValue);
        Assert.AreSequenceEqual(new[] { new PageRun(90, 5) }, Runs(bitmap).ToArray());
        Assert.AreEqual(0UL, bitmap.Words[1] >> 36);
    }

    [TestMethod]
    public void RandomOperations_MatchReferenceModel()
    {
        for (int seed = 0; seed < 60; seed++)
        {
            var random = new Random(seed);
            ulong size = seed < Sizes.Length ? Sizes[seed] : (ulong)random.Next(1, 5000);
            var bitmap = new DirtyBitmap(size);
            var model = new bool[size];
            int operations = random.Next(1, 400);
            for (int i = 0; i < operations; i++)
            {
                ApplyRandomOperation(random, bitmap, model);
            }

            AssertMatches(model, bitmap, $"seed {seed}, size {size}");
        }
    }

    [TestMethod]
    public void Or_And_AndNot_CopyFrom_MatchReferenceModel()
    {
        for (int seed = 0; seed < 60; seed++)
        {
            var random = new Random(1000 + seed);
            ulong size = seed < Sizes.Length ? Sizes[seed] : (ulong)random.Next(1, 5000);
            double densityA = random.NextDouble();
            double densityB = random.NextDouble();
            (DirtyBitmap a, bool[] modelA) = RandomBitmap(random, size, densityA);
            (DirtyBitmap b, bool[] modelB) = RandomBitmap(random, size, densityB);
            string what = $"seed {seed}, size {size}";

            var or = new DirtyBitmap(size);
            or.CopyFrom(a);
            AssertMatches(modelA, or, "copy " + what);
            or.Or(b);
            AssertMatches(Combine(modelA, modelB, (x, y) => x | y), or, "or " + what);

            var and = new DirtyBitmap(size);
            and.CopyFrom(a);
            and.And(b);
            AssertMatches(Combine(modelA, modelB, (x, y) => x & y), and, "and " + what);

            var andNot = new DirtyBitmap(size);
            andNot.CopyFrom(a);
            andNot.AndNot(b);
            AssertMatches(Combine(modelA, modelB, (x, y) => x & !y), andNot, "and-not " + what);

            // The operands are unchanged.
            AssertMatches(modelA, a, "a after " + what);
            AssertMatches(modelB, b, "b after " + what);
        }
    }

    [TestMethod]
    public void RandomRuns_WithMaxRunPages_MatchReferenceModel()
    {
        for (int seed = 0; seed < 40; seed++)
        {
            var random = new Random(5000 + seed);
            ulong size = (ulong)random.Next(1, 3000);
            (DirtyBitmap bitmap, bool[] model) = RandomBitmap(random, size, random.NextDouble());
            ulong max = (ulong)random.Next(1, 200);
            Assert.AreSequenceEqual(ReferenceRuns(model, max).ToArray(), Runs(bitmap, max).ToArray(), $"seed {seed}, size {size}, max {max}");
        }
    }

    [TestMethod]
    public void CountWords_CountsEveryBitOfArbitraryWords()
    {
        var random = new Random(7);
        for (int length = 0; length < 40; length++)
        {
            var words = new ulong[length];
            ulong expected = 0;
            for (int i = 0; i < length; i++)
            {
                words[i] = (ulong)random.NextInt64() ^ ((ulong)random.Next() << 40);
                for (int bit = 0; bit < 64; bit++)
                {
                    expected += (words[i] >> bit) & 1;
                }
            }

            Assert.AreEqual(expected, DirtyBitmap.CountWords(words), $"length {length}");
        }
    }

    [TestMethod]
    public void CountChunks_CountsThe512PageChunksThatHoldASetPage_TheLastOnePartial()
    {
        // 2.5 chunks: pages 0-511, 512-1023 and the 256 of 1024-1279.
        var bitmap = new DirtyBitmap(1280);
        Assert.AreEqual(0UL, bitmap.CountChunks());

        bitmap.Set(0);
        bitmap.Set(511);
        Assert.AreEqual(1UL, bitmap.CountChunks(), "two pages of one chunk");

        bitmap.Set(1279);
        Assert.AreEqual(2UL, bitmap.CountChunks(), "the partial last chunk counts");

        bitmap.Set(512);
        bitmap.SetRange(600, 100);
        Assert.AreEqual(3UL, bitmap.CountChunks());

        bitmap.SetAll();
        Assert.AreEqual(3UL, bitmap.CountChunks());
    }

    [TestMethod]
    public void CombiningBitmapsOfDifferentSizes_Throws()
    {
        var a = new DirtyBitmap(128);
        var b = new DirtyBitmap(127);
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => a.Or(b));
        Assert.AreEqual("other", ex.ParamName);
        Assert.Contains("128", ex.Message);
        Assert.Contains("127", ex.Message);
        Assert.ThrowsExactly<ArgumentException>(() => a.And(b));
        Assert.ThrowsExactly<ArgumentException>(() => a.AndNot(b));
        Assert.ThrowsExactly<ArgumentException>(() => a.CopyFrom(b));
        Assert.ThrowsExactly<ArgumentNullException>(() => a.Or(null!));
        Assert.ThrowsExactly<ArgumentNullException>(() => a.CopyFrom(null!));
    }

    [TestMethod]
    public void TooManyPages_Throws()
    {
        // Page counts whose word count would not fit an array, including ones where (n + 63) wraps.
        ulong[] counts = [((ulong)Array.MaxLength + 1) * 64, ulong.MaxValue - 62, ulong.MaxValue];
        foreach (ulong count in counts)
        {
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new DirtyBitmap(count), $"{count} pages");
        }
    }

    [TestMethod]
    public void EnumerationAndCount_DoNotAllocate()
    {
        var bitmap = new DirtyBitmap(100_000);
        var random = new Random(3);
        for (int i = 0; i < 5_000; i++)
        {
            bitmap.SetRange((ulong)random.Next(100_000), (ulong)random.Next(1, 20));
        }

        // Warm up so that the JIT's tiering is not what gets measured.
        ulong checksum = 0;
        for (int i = 0; i < 3; i++)
        {
            checksum += Walk(bitmap);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        ulong measured = Walk(bitmap);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.AreEqual(0L, allocated);
        Assert.AreEqual(checksum / 3, measured);
        Assert.IsGreaterThan(0UL, measured);
    }

    private static ulong Walk(DirtyBitmap bitmap)
    {
        ulong sum = 0;
        foreach (ulong page in bitmap.EnumerateSetPages())
        {
            sum += page;
        }

        foreach (PageRun run in bitmap.EnumerateRuns())
        {
            sum += run.FirstPage + run.Count;
        }

        foreach (PageRun run in bitmap.EnumerateRuns(7))
        {
            sum += run.Count;
        }

        return sum + bitmap.Count();
    }

    private static void ApplyRandomOperation(Random random, DirtyBitmap bitmap, bool[] model)
    {
        ulong size = (ulong)model.Length;

        // Pages up to a word past the end exercise the out-of-range paths too.
        ulong page = (ulong)random.NextInt64((long)size + 65);
        ulong count = (ulong)random.Next(0, 150);
        switch (random.Next(8))
        {
            case 0:
            case 1:
                bitmap.Set(page);
                SetModel(model, page, 1, true);
                break;
            case 2:
                bitmap.Clear(page);
                SetModel(model, page, 1, false);
                break;
            case 3:
            case 4:
                bitmap.SetRange(page, count);
                SetModel(model, page, count, true);
                break;
            case 5:
                bitmap.ClearRange(page, count);
                SetModel(model, page, count, false);
                break;
            case 6:
                if (random.Next(20) == 0)
                {
                    bitmap.SetAll();
                    Array.Fill(model, true);
                }
                else
                {
                    bitmap.SetRange(page, ulong.MaxValue - (ulong)random.Next(3));
                    SetModel(model, page, ulong.MaxValue, true);
                }

                break;
            default:
                if (random.Next(20) == 0)
                {
                    bitmap.ClearAll();
                    Array.Fill(model, false);
                }
                else
                {
                    bitmap.ClearRange(page, ulong.MaxValue);
                    SetModel(model, page, ulong.MaxValue, false);
                }

                break;
        }
    }

    private static void SetModel(bool[] model, ulong first, ulong count, bool value)
    {
        for (ulong p = first; p < (ulong)model.Length && p - first < count; p++)
        {
            model[p] = value;
        }
    }

    private static (DirtyBitmap Bitmap, bool[] Model) RandomBitmap(Random random, ulong size, double density)
    {
        var bitmap = new DirtyBitmap(size);
        var model = new bool[size];
        for (ulong p = 0; p < size; p++)
        {
            if (random.NextDouble() < density)
            {
                bitmap.Set(p);
                model[p] = true;
            }
        }

        return (bitmap, model);
    }

    private static bool[] Combine(bool[] a, bool[] b, Func<bool, bool, bool> op)
    {
        var result = new bool[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            result[i] = op(a[i], b[i]);
        }

        return result;
    }

    private static void AssertMatches(bool[] model, DirtyBitmap bitmap, string what)
    {
        var expectedPages = new List<ulong>();
        for (int i = 0; i < model.Length; i++)
        {
            Assert.AreEqual(model[i], bitmap.Test((ulong)i), $"{what}: page {i}");
            if (model[i])
            {
                expectedPages.Add((ulong)i);
            }
        }

        Assert.AreEqual((ulong)expectedPages.Count, bitmap.Count(), what);
        Assert.AreEqual(expectedPages.Count == 0, bitmap.IsEmpty, what);
        Assert.AreSequenceEqual(expectedPages.ToArray(), SetPages(bitmap).ToArray(), what);
        Assert.AreSequenceEqual(ReferenceRuns(model, ulong.MaxValue).ToArray(), Runs(bitmap).ToArray(), what);

        // Bits past PageCount stay clear.
        ulong tail = bitmap.PageCount & 63;
        if (tail != 0)
        {
            Assert.AreEqual(0UL, bitmap.Words[^1] >> (int)tail, $"{what}: tail bits");
        }
    }

    private static List<PageRun> ReferenceRuns(bool[] model, ulong maxRun)
    {
        var runs = new List<PageRun>();
        int i = 0;
        while (i < model.Length)
        {
            if (!model[i])
            {
                i++;
                continue;
            }

            int start = i;
            while (i < model.Length && model[i] && (ulong)(i - start) < maxRun)
            {
                i++;
            }

            runs.Add(new PageRun((ulong)start, (ulong)(i - start)));
        }

        return runs;
    }

    private static List<ulong> SetPages(DirtyBitmap bitmap)
    {
        var pages = new List<ulong>();
        foreach (ulong page in bitmap.EnumerateSetPages())
        {
            pages.Add(page);
        }

        return pages;
    }

    private static List<PageRun> Runs(DirtyBitmap bitmap, ulong maxRun = ulong.MaxValue)
    {
        var runs = new List<PageRun>();
        foreach (PageRun run in bitmap.EnumerateRuns(maxRun))
        {
            Assert.IsGreaterThan(0UL, run.Count);
            runs.Add(run);
        }

        return runs;
    }

    [TestMethod]
    public void EnumerateRunsIn_YieldsTheSetRunsCutToTheRange()
    {
        var bitmap = new DirtyBitmap(1000);
        bitmap.SetRange(10, 20);   // 10..29
        bitmap.SetRange(62, 4);    // 62..65, across a word boundary
        bitmap.Set(500);
        bitmap.SetRange(990, 10);  // to the end

        static string Runs(DirtyBitmap b, ulong first, ulong count)
        {
            var runs = new List<string>();
            foreach (PageRun r in b.EnumerateRunsIn(first, count))
            {
                runs.Add($"{r.FirstPage}+{r.Count}");
            }

            return string.Join(" ", runs);
        }

        Assert.AreEqual("10+20 62+4 500+1 990+10", Runs(bitmap, 0, 1000));
        Assert.AreEqual("15+15 62+2", Runs(bitmap, 15, 49), "runs are cut at both ends of the range");
        Assert.AreEqual("", Runs(bitmap, 66, 434), "nothing set in the range");
        Assert.AreEqual("500+1", Runs(bitmap, 500, 1));
        Assert.AreEqual("995+5", Runs(bitmap, 995, ulong.MaxValue), "a count past the end (even one that would wrap) stops at the page count");
        Assert.AreEqual("", Runs(bitmap, 2000, 10), "a range past the end is empty");
    }
}
