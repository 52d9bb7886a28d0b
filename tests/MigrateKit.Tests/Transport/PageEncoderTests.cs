using System;
using System.Linq;
using CsCheck;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class PageEncoderTests
{
    private const int Page = MigrationProtocol.PageSize;

    private readonly byte[] _wire = new byte[Page];

    [TestMethod]
    public void TextPage_GoesCompressedFirstThenAsADelta()
    {
        var encoder = new PageEncoder(new SentPageCache(16 * Page), PageCompression.FastLevel);
        (byte[] previous, byte[] current) = SamplePages.Create(SamplePageKind.Text);
        byte[] destination = new byte[Page];

        Assert.AreEqual(PageEncoding.Compressed, EncodeAndApply(encoder, previous, destination));
        Assert.AreEqual(PageEncoding.Delta, EncodeAndApply(encoder, current, destination));

        CollectionAssert.AreEqual(current, destination);
        Assert.AreEqual(1, encoder.Pages(PageEncoding.Delta));
        Assert.IsLessThan(200, encoder.Bytes(PageEncoding.Delta));
        Assert.AreEqual(1, encoder.Pages(PageEncoding.Compressed));
    }

    [TestMethod]
    public void RandomPage_GoesRawAndIsCachedForADeltaNextTime()
    {
        var encoder = new PageEncoder(new SentPageCache(16 * Page), PageCompression.FastLevel);
        (byte[] previous, byte[] current) = SamplePages.Create(SamplePageKind.OneByte);
        byte[] destination = new byte[Page];

        Assert.AreEqual(PageEncoding.Raw, EncodeAndApply(encoder, previous, destination));
        Assert.AreEqual(PageEncoding.Delta, EncodeAndApply(encoder, current, destination));

        CollectionAssert.AreEqual(current, destination);
        Assert.AreEqual((long)Page, encoder.Bytes(PageEncoding.Raw));
        Assert.AreEqual(4, encoder.Bytes(PageEncoding.Delta));
    }

    [TestMethod]
    public void WithoutNewCopies_AnUncachedPageGoesWholeAndTakesNoSlot_WhileACachedOneStillMovesWithItsDelta()
    {
        var cache = new SentPageCache(16 * Page);
        var encoder = new PageEncoder(cache, null);
        (byte[] previous, byte[] current) = SamplePages.Create(SamplePageKind.OneByte);
        byte[] destination = new byte[Page];
        EncodeAndApply(encoder, previous, destination);
        byte[] other = SamplePages.Create(SamplePageKind.Random).Current;

        encoder.KeepNewCopies = false;
        PageEncoding uncached = encoder.Encode(0, 6, other, _wire, out int length, out ReadOnlySpan<byte> sent);
        Assert.AreSequenceEqual(other, sent.ToArray());
        Assert.AreSequenceEqual(other, _wire.AsSpan(0, length).ToArray());
        PageEncoding cached = EncodeAndApply(encoder, current, destination);

        Assert.AreEqual(PageEncoding.Raw, uncached);
        Assert.IsFalse(cache.TryPeek(0, 6, out _));
        Assert.AreEqual(PageEncoding.Delta, cached);
        CollectionAssert.AreEqual(current, destination);
        Assert.IsTrue(cache.TryPeek(0, 5, out ReadOnlySpan<byte> copy));
        Assert.AreSequenceEqual(current, copy.ToArray());
        Assert.AreEqual(1, cache.Count);
    }

    [TestMethod]
    public void FirstWrites_TimeOnlyTheCopiesIntoNeverWrittenSlots()
    {
        // Each read of the clock moves it a millisecond: a timed copy reads it twice.
        var time = new FakeTimeProvider { AutoAdvanceAmount = TimeSpan.FromMilliseconds(1) };
        var encoder = new PageEncoder(new SentPageCache(2 * Page), null, time);
        byte[][] pages = [.. Enumerable.Range(1, 3).Select(i => Enumerable.Repeat((byte)i, Page).ToArray())];

        encoder.Encode(0, 0, pages[0], _wire, out _, out _);
        encoder.Encode(0, 1, pages[1], _wire, out _, out _);
        Assert.AreEqual(TimeSpan.FromMilliseconds(2), encoder.FirstWrites, "two copies into the two never-written slots");

        encoder.Encode(0, 2, pages[2], _wire, out _, out _);
        pages[1][7]++;
        encoder.Encode(0, 1, pages[1], _wire, out _, out _);
        Assert.AreEqual(TimeSpan.FromMilliseconds(2), encoder.FirstWrites, "an evicted page's slot and a delta are not timed");
    }

    [TestMethod]
    public void ZeroPage_CostsNothingAndDropsTheCachedCopy()
    {
        var cache = new SentPageCache(16 * Page);
        var encoder = new PageEncoder(cache, null);
        byte[] destination = new byte[Page];
        EncodeAndApply(encoder, SamplePages.Create(SamplePageKind.Random).Current, destination);

        PageEncoding encoding = encoder.Encode(0, 5, new byte[Page], _wire, out int length, out ReadOnlySpan<byte> sent);

        Assert.AreEqual(PageEncoding.Zero, encoding);
        Assert.AreEqual(0, length);
        Assert.IsFalse(sent.ContainsAnyExcept((byte)0));
        Assert.AreEqual(0, cache.Count);
    }

    [TestMethod]
    public void WithoutACacheOrCompression_PagesGoRaw()
    {
        var encoder = new PageEncoder(null, null);
        (byte[] previous, byte[] current) = SamplePages.Create(SamplePageKind.Text);
        byte[] destination = new byte[Page];

        Assert.AreEqual(PageEncoding.Raw, EncodeAndApply(encoder, previous, destination));
        Assert.AreEqual(PageEncoding.Raw, EncodeAndApply(encoder, current, destination));
        CollectionAssert.AreEqual(current, destination);
    }

    [TestMethod]
    [DataRow(-1)]
    [DataRow(13)]
    public void CompressionLevelOutOfRange_IsAnArgumentError(int level)
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new PageEncoder(null, level));
    }

    [TestMethod]
    public void ShortDestination_IsAnArgumentError()
    {
        var encoder = new PageEncoder(null, null);

        Assert.ThrowsExactly<ArgumentException>(() => encoder.Encode(0, 0, new byte[Page], new byte[Page - 1], out _, out _));
    }

    [TestMethod]
    public void Encode_AllocatesNothing()
    {
        var encoder = new PageEncoder(new SentPageCache(4 * Page), PageCompression.FastLevel);
        (byte[] previous, byte[] current) = SamplePages.Create(SamplePageKind.Counters);
        byte[] random = SamplePages.Create(SamplePageKind.Random).Current;
        encoder.Encode(0, 0, previous, _wire, out _, out _);
        encoder.Encode(0, 1, random, _wire, out _, out _);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong page = 0; page < 8; page++)
        {
            encoder.Encode(0, page, page % 2 == 0 ? current : random, _wire, out _, out _);
            encoder.Encode(0, page, previous, _wire, out _, out _);
        }

        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [TestMethod]
    [DataRow((byte)PageEncoding.Raw, Page - 1, "length")]
    [DataRow((byte)PageEncoding.Zero, 1, "length")]
    [DataRow((byte)9, 0, "encoding")]
    public void PayloadNotMatchingItsEncoding_IsRejected(byte encoding, int length, string field)
    {
        MigrationProtocolException ex = Assert.ThrowsExactly<MigrationProtocolException>(() => PageEncoder.Decode((PageEncoding)encoding, new byte[length], new byte[Page]));

        Assert.AreEqual(field, ex.Field);
    }

    [TestMethod]
    public void AnySequenceOfPageVersions_ArrivesExactly()
    {
        // Four pages, a cache of two: hits, misses, evictions; versions edited, replaced, zeroed.
        Gen<(int Page, int Change, int Seed)> step = Gen.Select(Gen.Int[0, 3], Gen.Int[0, 4], Gen.Int);
        Gen.Select(step.Array[1, 40], Gen.Bool).Sample(
            run =>
            {
                ((int Page, int Change, int Seed)[] steps, bool compress) = run;
                var encoder = new PageEncoder(new SentPageCache(2 * Page), compress ? PageCompression.FastLevel : null);
                byte[][] source = Enumerable.Range(0, 4).Select(_ => new byte[Page]).ToArray();
                byte[][] destination = Enumerable.Range(0, 4).Select(_ => new byte[Page]).ToArray();
                foreach ((int page, int change, int seed) in steps)
                {
                    Change(source[page], change, seed);
                    PageEncoding encoding = encoder.Encode(1, (ulong)page, source[page], _wire, out int length, out ReadOnlySpan<byte> sent);
                    CollectionAssert.AreEqual(source[page], sent.ToArray(), "The bytes handed out are not the page sent.");
                    PageEncoder.Decode(encoding, _wire.AsSpan(0, length), destination[page]);
                    CollectionAssert.AreEqual(source[page], destination[page], $"{encoding} page {page} arrived wrong.");
                }
            },
            iter: 1_000,
            threads: 1);
    }

    private static void Change(byte[] page, int change, int seed)
    {
        var random = new Random(seed);
        switch (change)
        {
            case 0:
                page[random.Next(Page)] ^= (byte)random.Next(1, 256);
                break;
            case 1:
                random.NextBytes(page);
                break;
            case 2:
                Array.Clear(page);
                break;
            case 3:
                SamplePages.Create(SamplePageKind.Text, seed).Current.CopyTo(page);
                break;
            default:
                // Rewritten with the same bytes.
                break;
        }
    }

    private PageEncoding EncodeAndApply(PageEncoder encoder, byte[] contents, byte[] destination)
    {
        PageEncoding encoding = encoder.Encode(0, 5, contents, _wire, out int length, out _);
        PageEncoder.Decode(encoding, _wire.AsSpan(0, length), destination);
        return encoding;
    }
}
