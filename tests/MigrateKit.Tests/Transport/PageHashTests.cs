using System;
using System.IO.Hashing;
using System.Runtime.Intrinsics.X86;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class PageHashTests
{
    private const int Page = MigrationProtocol.PageSize;

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void Hash_EqualsXxHash3_OnRandomPages(bool vectorized)
    {
        var random = new Random(14);
        var page = new byte[Page];
        for (int i = 0; i < 200; i++)
        {
            random.NextBytes(page);
            Assert.AreEqual(XxHash3.HashToUInt64(page), PageHash.Hash(page, vectorized), $"page {i}");
        }
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void Hash_EqualsXxHash3_OnUniformPagesAndOneByteChangedAnywhere(bool vectorized)
    {
        var page = new byte[Page];
        Assert.AreEqual(XxHash3.HashToUInt64(page), PageHash.Hash(page, vectorized));
        page.AsSpan().Fill(0xFF);
        Assert.AreEqual(XxHash3.HashToUInt64(page), PageHash.Hash(page, vectorized));

        // Every stripe, block edge and the overlapping last stripe: a byte there must count.
        page.AsSpan().Clear();
        ulong zero = XxHash3.HashToUInt64(page);
        foreach (int at in (int[])[0, 7, 63, 64, 1023, 1024, 2048, 3071, 3072, 3900, 4031, 4032, 4095])
        {
            page[at] = 0x5A;
            ulong changed = XxHash3.HashToUInt64(page);
            Assert.AreNotEqual(zero, changed);
            Assert.AreEqual(changed, PageHash.Hash(page, vectorized), $"byte {at}");
            page[at] = 0;
        }
    }

    [TestMethod]
    public void Hash_UsesTheVectorPathWhereTheMachineHasIt_WithTheSameResult()
    {
        var page = new byte[Page];
        new Random(3).NextBytes(page);
        Assert.AreEqual(PageHash.Hash(page, vectorized: false), PageHash.Hash(page));
        Assert.AreEqual(Avx2.IsSupported, Avx2.IsSupported && PageHash.Hash(page, vectorized: true) == PageHash.Hash(page));
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(Page - 1)]
    [DataRow(Page + 1)]
    public void Hash_RejectsAnythingButOnePage(int length) =>
        Assert.ThrowsExactly<ArgumentException>(() => PageHash.Hash(new byte[length]));
}
