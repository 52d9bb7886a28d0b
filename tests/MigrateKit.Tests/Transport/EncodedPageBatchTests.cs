using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;
using static MigrateKit.Tests.Transport.TransportTestSupport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class EncodedPageBatchTests
{
    [TestMethod]
    public async Task Batch_RoundTrips_AndTheDestinationEndsWithTheSourcesBytes_AndDigest()
    {
        var cache = new SentPageCache(16 * Page);
        var batch = new EncodedPageBatch(new PageEncoder(cache, PageCompression.FastLevel), new PageStreamOptions());
        byte[] random = new byte[Page];
        new Random(7).NextBytes(random);
        byte[][] pages = [Filled(0x11), random, Filled(0x22)];
        var sourceDigest = new RegionDigestAccumulator(8);

        // First send: compressible pages compressed, the random one raw; then one byte of each changes: deltas.
        byte[] first = await WrittenBytesAsync(w => Send(batch, w, pages, sourceDigest, hello: true));
        foreach (byte[] p in pages)
        {
            p[100]++;
        }

        byte[] second = await WrittenBytesAsync(w => Send(batch, w, pages, sourceDigest, hello: false));

        List<ReceivedFrame> frames = await ReadAllAsync(PipeOf(first, second));
        EncodedPageFrame[] received = frames.OfType<EncodedPageFrame>().ToArray();
        Assert.AreSequenceEqual(
            new[] { PageEncoding.Compressed, PageEncoding.Raw, PageEncoding.Compressed, PageEncoding.Delta, PageEncoding.Delta, PageEncoding.Delta },
            received.Select(f => f.Encoding).ToArray());
        Assert.IsTrue(received.Skip(3).All(f => f.Data.Length < 16), "a one-byte change is a delta of a few bytes");

        var destination = new byte[3][];
        var destinationDigest = new RegionDigestAccumulator(8);
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = new byte[Page];
        }

        foreach (EncodedPageFrame f in received)
        {
            Assert.AreEqual(2, f.Region);
            PageEncoder.Decode(f.Encoding, f.Data, destination[f.Page]);
            destinationDigest.Update(f.Page, destination[f.Page]);
        }

        for (int i = 0; i < pages.Length; i++)
        {
            Assert.AreSequenceEqual(pages[i], destination[i], $"page {i}");
        }

        Assert.AreEqual(sourceDigest.Value, destinationDigest.Value);
    }

    [TestMethod]
    public async Task Batch_IsFullForAnotherRegion_AndAtThePageLimit_AndRefusesToOverflow_UntilAppended()
    {
        var batch = new EncodedPageBatch(new PageEncoder(null, null), new PageStreamOptions { MaxPagesPerFrame = 2 });
        byte[] page = Filled(1);
        Assert.IsFalse(batch.IsFullFor(0));
        batch.Add(0, 0, page, null, out _);
        Assert.IsTrue(batch.IsFullFor(1), "one frame carries one region");
        Assert.IsFalse(batch.IsFullFor(0));
        batch.Add(0, 1, page, null, out int length);
        Assert.AreEqual(Page, length);
        Assert.IsTrue(batch.IsFullFor(0));
        Assert.ThrowsExactly<InvalidOperationException>(() => batch.Add(0, 2, page, null, out _));
        await WrittenBytesAsync(batch.AppendTo, new PageStreamOptions { MaxPagesPerFrame = 2 });
        Assert.AreEqual(0, batch.Count);
        Assert.IsFalse(batch.IsFullFor(1));
    }

    [TestMethod]
    public void Batch_NeedsAFrameThatHoldsOneRawPage()
    {
        var options = new PageStreamOptions { MaxFramePayload = 4096, MaxPagesPerFrame = 1, PauseWriterThreshold = 8192, ResumeWriterThreshold = 4096 };
        Assert.ThrowsExactly<ArgumentException>(() => new EncodedPageBatch(new PageEncoder(null, null), options));
    }

    [TestMethod]
    [DataRow((byte)4, (byte)0, 10, "encoding")]
    [DataRow((byte)0, (byte)0, 100, "length")]
    [DataRow((byte)1, (byte)0, 1, "length")]
    [DataRow((byte)3, (byte)0, 0, "length")]
    [DataRow((byte)2, (byte)0, 4096, "length")]
    [DataRow((byte)2, (byte)1, 3, "reserved")]
    public async Task Entry_WithABadFormOrLength_IsRejected(byte encoding, byte reserved, int length, string field)
    {
        byte[] payload = EncodedPayload(region: 0, count: 1, Entry(5, encoding, reserved, (ushort)length, new byte[length]));
        await ExpectRejectedAsync(null, "EncodedPages", field, HelloFrame(), Frame(FrameType.EncodedPages, payload));
    }

    [TestMethod]
    public async Task Frame_WhoseEntriesDoNotFillThePayloadExactly_IsRejected_BeforeAnyPageIsHandled()
    {
        byte[] one = Entry(5, (byte)PageEncoding.Delta, 0, 2, [0, 1]);
        (RecordingHandler handler, _) = await ExpectRejectedAsync(null, "EncodedPages", "length", HelloFrame(), Frame(FrameType.EncodedPages, EncodedPayload(0, 1, [.. one, 0])));
        Assert.IsFalse(handler.Frames.OfType<EncodedPageFrame>().Any());
        await ExpectRejectedAsync(null, "EncodedPages", "length", HelloFrame(), Frame(FrameType.EncodedPages, EncodedPayload(0, 2, one)));
        await ExpectRejectedAsync(null, "EncodedPages", "length", HelloFrame(), Frame(FrameType.EncodedPages, EncodedPayload(0, 1, one[..13])));
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(-1)]
    public async Task PageCount_BelowOne_IsRejected(int count)
    {
        byte[] payload = EncodedPayload(0, count, Entry(5, (byte)PageEncoding.Delta, 0, 0, []));
        await ExpectRejectedAsync(null, "EncodedPages", "pageCount", HelloFrame(), Frame(FrameType.EncodedPages, payload));
    }

    [TestMethod]
    public async Task NegativeRegion_IsRejected() =>
        await ExpectRejectedAsync(null, "EncodedPages", "region", HelloFrame(), Frame(FrameType.EncodedPages, EncodedPayload(-1, 1, Entry(5, (byte)PageEncoding.Delta, 0, 0, []))));

    [TestMethod]
    public async Task Writer_RefusesAnEmptyOrOversizedFrame()
    {
        await Assert.ThrowsExactlyAsync<ArgumentException>(() => WrittenBytesAsync(w => w.AppendEncodedPages(0, 0, [])));
        await Assert.ThrowsExactlyAsync<ArgumentException>(() => WrittenBytesAsync(w => w.AppendEncodedPages(0, 1, new byte[4])));
        await Assert.ThrowsExactlyAsync<ArgumentException>(() => WrittenBytesAsync(w => w.AppendEncodedPages(0, 257, new byte[257 * 12])));
    }

    private static void Send(EncodedPageBatch batch, PageStreamWriter writer, byte[][] pages, RegionDigestAccumulator digest, bool hello)
    {
        if (hello)
        {
            writer.AppendHello(new MigrationHello(MigrationProtocol.Version, [new(0, 8 * (ulong)Page)], 1, "batch"));
        }

        for (int i = 0; i < pages.Length; i++)
        {
            batch.Add(2, (ulong)i, pages[i], digest, out _);
        }

        batch.AppendTo(writer);
    }

    private static byte[] HelloFrame() => Frame(FrameType.Hello, HelloPayload());

    private static byte[] Filled(byte value)
    {
        var page = new byte[Page];
        page.AsSpan().Fill(value);
        return page;
    }

    private static System.IO.Pipelines.PipeReader PipeOf(params byte[][] parts) =>
        System.IO.Pipelines.PipeReader.Create(new System.Buffers.ReadOnlySequence<byte>(parts.SelectMany(p => p).ToArray()));

    private static byte[] Entry(ulong page, byte encoding, byte reserved, ushort length, byte[] data)
    {
        var entry = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(entry, page);
        entry[8] = encoding;
        entry[9] = reserved;
        BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(10), length);
        data.CopyTo(entry, 12);
        return entry;
    }

    private static byte[] EncodedPayload(int region, int count, byte[] entries)
    {
        var payload = new byte[8 + entries.Length];
        BinaryPrimitives.WriteInt32LittleEndian(payload, region);
        BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(4), count);
        entries.CopyTo(payload, 8);
        return payload;
    }
}
