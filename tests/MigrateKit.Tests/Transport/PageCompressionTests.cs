using System;
using System.Linq;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class PageCompressionTests
{
    private const int Page = MigrationProtocol.PageSize;

    [TestMethod]
    [DataRow(SamplePageKind.Counters, 0)]
    [DataRow(SamplePageKind.Counters, 9)]
    [DataRow(SamplePageKind.Text, 0)]
    [DataRow(SamplePageKind.Text, 12)]
    public void CompressiblePages_RoundTripSmaller(SamplePageKind kind, int level)
    {
        byte[] page = SamplePages.Create(kind).Current;

        byte[] compressed = Compressed(page, level);

        Assert.IsLessThan(Page * 3 / 4, compressed.Length);
        AssertDecompressesTo(compressed, page);
    }

    [TestMethod]
    public void HigherLevel_IsNoLarger()
    {
        byte[] page = SamplePages.Create(SamplePageKind.Text).Current;

        Assert.IsLessThanOrEqualTo(Compressed(page, 0).Length, Compressed(page, 9).Length);
    }

    [TestMethod]
    public void RandomPage_IsNotWorthCompressing()
    {
        byte[] page = SamplePages.Create(SamplePageKind.Random).Current;

        Assert.AreEqual(-1, PageCompression.TryCompress(page, new byte[2 * Page], 0));
    }

    [TestMethod]
    public void CompressedFormLongerThanTheDestination_IsRefused()
    {
        byte[] page = SamplePages.Create(SamplePageKind.Text).Current;
        int needed = Compressed(page, 0).Length;

        Assert.AreEqual(-1, PageCompression.TryCompress(page, new byte[needed / 2], 0));
    }

    [TestMethod]
    public void UniformPage_CompressesToAFewBytes()
    {
        byte[] page = Enumerable.Repeat((byte)0x33, Page).ToArray();

        byte[] compressed = Compressed(page, 0);

        Assert.IsLessThan(32, compressed.Length);
        AssertDecompressesTo(compressed, page);
    }

    [TestMethod]
    [DataRow(-1)]
    [DataRow(13)]
    public void LevelOutOfRange_IsAnArgumentError(int level)
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => PageCompression.TryCompress(new byte[Page], new byte[Page], level));
    }

    [TestMethod]
    public void Compress_AllocatesNothing()
    {
        byte[] page = SamplePages.Create(SamplePageKind.Text).Current;
        byte[] compressed = new byte[Page];
        byte[] decompressed = new byte[Page];
        PageCompression.Decompress(compressed.AsSpan(0, PageCompression.TryCompress(page, compressed, 0)), decompressed);

        long before = GC.GetAllocatedBytesForCurrentThread();
        int written = PageCompression.TryCompress(page, compressed, 0);
        PageCompression.Decompress(compressed.AsSpan(0, written), decompressed);

        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [TestMethod]
    public void EmptyOrPageSizedInput_IsRejectedByLength()
    {
        foreach (int length in new[] { 0, Page, Page + 1 })
        {
            MigrationProtocolException ex = Assert.ThrowsExactly<MigrationProtocolException>(() => PageCompression.Decompress(new byte[length], new byte[Page]));
            Assert.AreEqual("CompressedPage", ex.Frame);
            Assert.AreEqual("length", ex.Field);
        }
    }

    [TestMethod]
    public void ValidLz4OfAShorterBlock_IsRejectedAsNotAPage()
    {
        byte[] compressed = Compressed(Enumerable.Repeat((byte)7, Page).ToArray(), 0);
        byte[] half = new byte[Page / 2];
        int written = PageCompression.TryCompress(Enumerable.Repeat((byte)7, Page / 2).ToArray(), half, 0);

        MigrationProtocolException ex = Assert.ThrowsExactly<MigrationProtocolException>(() => PageCompression.Decompress(half.AsSpan(0, written), new byte[Page]));

        Assert.AreEqual("data", ex.Field);
        AssertDecompressesTo(compressed, Enumerable.Repeat((byte)7, Page).ToArray());
    }

    [TestMethod]
    public void TruncatedCompressedPage_IsRejected()
    {
        byte[] compressed = Compressed(SamplePages.Create(SamplePageKind.Text).Current, 0);

        MigrationProtocolException ex = Assert.ThrowsExactly<MigrationProtocolException>(() => PageCompression.Decompress(compressed.AsSpan(0, compressed.Length - 5), new byte[Page]));

        Assert.AreEqual("data", ex.Field);
    }

    [TestMethod]
    public void ArbitraryAndMutatedInput_GivesAPageOrAProtocolViolation()
    {
        byte[] valid = Compressed(SamplePages.Create(SamplePageKind.Counters).Current, 0);
        Gen<byte[]> inputs = Gen.OneOf(Gen.Byte.Array[0, 256], ByteMutations.Of(valid));

        inputs.DecodeOnlyThrows<MigrationProtocolException>(input =>
        {
            byte[] buffer = new byte[Page + 32];
            buffer.AsSpan().Fill(0xA5);
            try
            {
                PageCompression.Decompress(input, buffer.AsSpan(16, Page));
            }
            finally
            {
                Assert.IsTrue(buffer.AsSpan(0, 16).IndexOfAnyExcept((byte)0xA5) < 0 && buffer.AsSpan(16 + Page).IndexOfAnyExcept((byte)0xA5) < 0, $"Decompress wrote outside the page: {Convert.ToHexString(input)}.");
            }
        });
    }

    private static byte[] Compressed(byte[] page, int level)
    {
        byte[] destination = new byte[Page];
        int written = PageCompression.TryCompress(page, destination, level);
        Assert.IsGreaterThan(0, written, "The page was not compressed.");
        return destination[..written];
    }

    private static void AssertDecompressesTo(byte[] compressed, byte[] expected)
    {
        byte[] page = new byte[Page];
        PageCompression.Decompress(compressed, page);
        CollectionAssert.AreEqual(expected, page);
    }
}
