using System;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class PageDeltaTests
{
    private const int Page = MigrationProtocol.PageSize;

    [TestMethod]
    [DataRow(SamplePageKind.OneByte, 4)]
    [DataRow(SamplePageKind.Counters, 64 * 4)]
    [DataRow(SamplePageKind.Text, 200)]
    public void RealisticPages_RoundTripInFewBytes(SamplePageKind kind, int atMost)
    {
        (byte[] previous, byte[] current) = SamplePages.Create(kind);

        byte[] delta = Encoded(previous, current);

        Assert.IsLessThanOrEqualTo(atMost, delta.Length);
        AssertDecodesTo(previous, delta, current);
    }

    [TestMethod]
    public void RandomPage_IsNotWorthADelta()
    {
        (byte[] previous, byte[] current) = SamplePages.Create(SamplePageKind.Random);

        Assert.AreEqual(-1, PageDelta.Encode(previous, current, new byte[2 * Page]));
    }

    [TestMethod]
    public void IdenticalPages_GiveAnEmptyDeltaThatChangesNothing()
    {
        byte[] page = Filled(0x42);

        Assert.AreEqual(0, PageDelta.Encode(page, page, []));
        AssertDecodesTo(page, [], page);
    }

    [TestMethod]
    public void ChangeAtTheFirstByte_IsARunWithoutSkip()
    {
        byte[] previous = Filled(0);
        byte[] current = Filled(0);
        current[0] = 9;

        byte[] delta = Encoded(previous, current);

        CollectionAssert.AreEqual(new byte[] { 0, 1, 9 }, delta);
        AssertDecodesTo(previous, delta, current);
    }

    [TestMethod]
    public void ChangeAtTheLastByte_SkipsAllButOne()
    {
        byte[] previous = Filled(0);
        byte[] current = Filled(0);
        current[Page - 1] = 9;

        byte[] delta = Encoded(previous, current);

        // 4095 as ULEB128 is FF 1F.
        CollectionAssert.AreEqual(new byte[] { 0xFF, 0x1F, 1, 9 }, delta);
        AssertDecodesTo(previous, delta, current);
    }

    [TestMethod]
    [DataRow(13, new byte[] { 10, 4, 1, 0, 0, 2 }, DisplayName = "a gap of 2 is folded into one run")]
    [DataRow(14, new byte[] { 10, 1, 1, 3, 1, 2 }, DisplayName = "a gap of 3 starts a new run")]
    public void UnchangedGap_IsFoldedOnlyWhenShort(int secondChange, byte[] expected)
    {
        byte[] previous = Filled(0);
        byte[] current = Filled(0);
        current[10] = 1;
        current[secondChange] = 2;

        byte[] delta = Encoded(previous, current);

        CollectionAssert.AreEqual(expected, delta);
        AssertDecodesTo(previous, delta, current);
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    public void EveryFewBytesChanged_RoundTripsOrIsRefusedWithinTheDestination(int unchangedBetween)
    {
        byte[] previous = Filled(0);
        byte[] current = Filled(0);
        for (int i = 0; i < Page; i += unchangedBetween + 1)
        {
            current[i] = 0xFF;
        }

        // Guard bytes past what the encoder may use: a raw page minus one.
        byte[] destination = Enumerable.Repeat((byte)0xEE, 2 * Page).ToArray();
        int written = PageDelta.Encode(previous, current, destination);

        Assert.IsTrue(destination.AsSpan(Page - 1).ToArray().All(b => b == 0xEE), "The encoder wrote past a page's length.");
        if (unchangedBetween <= PageDelta.MaxFoldedGap)
        {
            Assert.AreEqual(-1, written);
        }
        else
        {
            Assert.IsLessThan(Page, written);
            AssertDecodesTo(previous, destination[..written], current);
        }
    }

    [TestMethod]
    public void AllBytesChanged_IsRefusedEvenWithRoomForAPage()
    {
        Assert.AreEqual(-1, PageDelta.Encode(Filled(0), Filled(1), new byte[3 * Page]));
    }

    [TestMethod]
    public void DeltaLongerThanTheDestination_IsRefused()
    {
        (byte[] previous, byte[] current) = SamplePages.Create(SamplePageKind.Text);
        int needed = Encoded(previous, current).Length;

        Assert.AreEqual(-1, PageDelta.Encode(previous, current, new byte[needed - 1]));
        Assert.AreEqual(needed, PageDelta.Encode(previous, current, new byte[needed]));
    }

    [TestMethod]
    public void PagesOfDifferentLengths_AreAnArgumentError()
    {
        Assert.ThrowsExactly<ArgumentException>(() => PageDelta.Encode(new byte[Page], new byte[Page - 1], new byte[Page]));
    }

    [TestMethod]
    public void Encode_AllocatesNothing()
    {
        (byte[] previous, byte[] current) = SamplePages.Create(SamplePageKind.Text);
        byte[] destination = new byte[Page];
        PageDelta.Encode(previous, current, destination);

        long before = GC.GetAllocatedBytesForCurrentThread();
        int written = PageDelta.Encode(previous, current, destination);
        PageDelta.Decode(destination.AsSpan(0, written), previous);

        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [TestMethod]
    [DataRow(new byte[] { 0x80 }, "skip", DisplayName = "skip cut short")]
    [DataRow(new byte[] { 0x80, 0x00, 1, 7 }, "skip", DisplayName = "skip not in its shortest form")]
    [DataRow(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, "skip", DisplayName = "skip over five bytes")]
    [DataRow(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x08 }, "skip", DisplayName = "skip over 31 bits")]
    [DataRow(new byte[] { 0x81, 0x20, 1, 7 }, "skip", DisplayName = "skip past the page")]
    [DataRow(new byte[] { 5 }, "count", DisplayName = "count missing")]
    [DataRow(new byte[] { 5, 0 }, "count", DisplayName = "empty run")]
    [DataRow(new byte[] { 0xFF, 0x1F, 2, 7, 7 }, "count", DisplayName = "run past the page")]
    [DataRow(new byte[] { 0, 1, 7, 0, 1, 8 }, "skip", DisplayName = "runs touching")]
    [DataRow(new byte[] { 5, 3, 7, 7 }, "bytes", DisplayName = "changed bytes cut short")]
    public void MalformedDelta_IsRejectedByNameAndLeavesThePage(byte[] delta, string field)
    {
        byte[] page = Filled(0x11);

        MigrationProtocolException ex = Assert.ThrowsExactly<MigrationProtocolException>(() => PageDelta.Decode(delta, page));

        Assert.AreEqual("PageDelta", ex.Frame);
        Assert.AreEqual(field, ex.Field);
        CollectionAssert.AreEqual(Filled(0x11), page);
    }

    [TestMethod]
    public void LaterRunMalformed_LeavesThePageAsItWas()
    {
        byte[] page = Filled(0x11);

        // A valid first run, then one that passes the end.
        Assert.ThrowsExactly<MigrationProtocolException>(() => PageDelta.Decode(new byte[] { 0, 1, 7, 0xFF, 0x1F, 1, 7 }, page));

        CollectionAssert.AreEqual(Filled(0x11), page);
    }

    internal static byte[] Encoded(byte[] previous, byte[] current)
    {
        byte[] destination = new byte[Page];
        int written = PageDelta.Encode(previous, current, destination);
        Assert.IsGreaterThanOrEqualTo(0, written, "The delta was refused.");
        return destination[..written];
    }

    internal static void AssertDecodesTo(byte[] previous, byte[] delta, byte[] expected)
    {
        byte[] page = (byte[])previous.Clone();
        PageDelta.Decode(delta, page);
        CollectionAssert.AreEqual(expected, page);
    }

    private static byte[] Filled(byte value) => Enumerable.Repeat(value, Page).ToArray();
}
