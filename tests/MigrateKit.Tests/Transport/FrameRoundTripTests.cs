using System;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Transport;
using static MigrateKit.Tests.Transport.TransportTestSupport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class FrameRoundTripTests
{
    [TestMethod]
    public async Task EveryFrameType_RoundTripsFieldByField()
    {
        using GuestMemoryLayout memory = RandomMemory(32, seed: 1);
        GuestMemoryRegion region = memory.Regions[0];
        var hello = new MigrationHello(
            MigrationProtocol.Version,
            [new GuestMemoryRegionSpec(0, 32 * (ulong)Page), new GuestMemoryRegionSpec(0x1_0000_0000, 4 * (ulong)Page)],
            VcpuCount: 4,
            SourceName: "source-vm \u00e9\u4e2d");
        var helloAck = new HelloAck(MigrationProtocol.Version, TimeSpan.FromTicks(123_456_789));
        var roundEnd = new RoundEnd(7, 1234, 9_876_543_210);
        byte[] deviceState = new byte[5000];
        new Random(2).NextBytes(deviceState);
        RegionDigest[] digests = [new RegionDigest(0, 0xDEADBEEF_CAFEF00D), new RegionDigest(1, ulong.MaxValue)];
        var ack = new CompletionAck(TimeSpan.FromMilliseconds(3.5));
        var error = new MigrationError(MigrationErrorCode.DigestMismatch, "region 1 differs \u2603");

        Pipe pipe = UnboundedPipe();
        long expectedBytes;
        using (var writer = new PageStreamWriter(pipe.Writer))
        {
            writer.AppendHello(hello);
            writer.AppendHelloAck(helloAck);
            writer.AppendPages(0, region, [new PageRun(3, 2)]);
            writer.AppendZeroPages(0, [new PageRun(10, 5)]);
            writer.AppendRoundEnd(roundEnd);
            writer.AppendDeviceState(deviceState);
            writer.AppendDeviceState([]);
            writer.AppendDigests(digests);
            writer.AppendComplete();
            writer.AppendAck(ack);
            writer.AppendError(error);
            expectedBytes = writer.BytesWritten;
            Assert.AreEqual(writer.BytesWritten, writer.UnflushedBytes);
            await writer.FlushAsync();
            Assert.AreEqual(0, writer.UnflushedBytes);
            Assert.AreEqual(expectedBytes, writer.BytesWritten);
        }

        await pipe.Writer.CompleteAsync();
        var reader = new PageStreamReader(pipe.Reader);
        var handler = new RecordingHandler();
        while (await reader.ReadAsync(handler))
        {
        }

        Assert.AreEqual(11, reader.FramesRead);
        Assert.AreEqual(expectedBytes, reader.BytesRead);
        List<ReceivedFrame> f = handler.Frames;
        Assert.HasCount(11, f);

        MigrationHello gotHello = ((HelloFrame)f[0]).Hello;
        Assert.AreEqual(hello.Version, gotHello.Version);
        Assert.AreEqual(hello.VcpuCount, gotHello.VcpuCount);
        Assert.AreEqual(hello.SourceName, gotHello.SourceName);
        CollectionAssert.AreEqual(hello.Regions.ToArray(), gotHello.Regions.ToArray());

        Assert.AreEqual(helloAck, ((HelloAckFrame)f[1]).Ack);

        var pages = (PagesRun)f[2];
        Assert.AreEqual(0, pages.Region);
        Assert.AreEqual(3UL, pages.FirstPage);
        Assert.AreEqual(2, pages.Count);
        CollectionAssert.AreEqual(region.GetSpan(3 * (ulong)Page, 2 * Page).ToArray(), pages.Data);

        Assert.AreEqual(new ZeroRun(0, 10, 5), f[3]);
        Assert.AreEqual(roundEnd, ((RoundEndFrame)f[4]).RoundEnd);
        CollectionAssert.AreEqual(deviceState, ((DeviceStateFrame)f[5]).State);
        Assert.IsEmpty(((DeviceStateFrame)f[6]).State);
        CollectionAssert.AreEqual(digests, ((DigestsFrame)f[7]).Digests.ToArray());
        Assert.IsInstanceOfType<CompleteFrame>(f[8]);
        Assert.AreEqual(ack, ((AckFrame)f[9]).Ack);
        MigrationError gotError = ((ErrorFrame)f[10]).Error;
        Assert.AreEqual(error.Code, gotError.Code);
        Assert.AreEqual(error.Message, gotError.Message);
    }

    [TestMethod]
    public async Task HeaderAndFixedPayloads_HaveTheDocumentedLayout()
    {
        byte[] bytes = await WrittenBytesAsync(w =>
        {
            w.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.FromTicks(0x12_0304_0506))); // 2.1 h: durations stay within a day
            w.AppendComplete();
        });

        byte[] expected =
        [
            16, 0, 0, 0, (byte)FrameType.HelloAck, 0, 0, 0,
            3, 0, 0, 0, 0, 0, 0, 0, 6, 5, 4, 3, 0x12, 0, 0, 0,
            0, 0, 0, 0, (byte)FrameType.Complete, 0, 0, 0,
        ];
        CollectionAssert.AreEqual(expected, bytes);
    }

    [TestMethod]
    public async Task PagesFrame_HeaderLengthCoversRunTableAndData()
    {
        using GuestMemoryLayout memory = RandomMemory(8, seed: 3);
        byte[] bytes = await WrittenBytesAsync(w => w.AppendPages(0, memory.Regions[0], [new PageRun(1, 2), new PageRun(5, 1)]));

        int payload = 8 + (2 * 16) + (3 * Page);
        Assert.HasCount(MigrationProtocol.FrameHeaderSize + payload, bytes);
        Assert.AreEqual(payload, BitConverter.ToInt32(bytes, 0));
        Assert.AreEqual((byte)FrameType.Pages, bytes[4]);
    }

    [TestMethod]
    public async Task MultiRunPagesFrame_DeliversEachRunWithByteExactData()
    {
        using GuestMemoryLayout memory = RandomMemory(300, seed: 4);
        GuestMemoryRegion region = memory.Regions[0];
        PageRun[] runs = [new PageRun(0, 1), new PageRun(2, 3), new PageRun(40, 100), new PageRun(299, 1), new PageRun(150, 151 - 150)];
        PageRun[] secondFrame = [new PageRun(160, 128), new PageRun(10, 128)];

        Pipe pipe = UnboundedPipe();
        using (var writer = new PageStreamWriter(pipe.Writer))
        {
            writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
            writer.AppendPages(0, region, runs);
            writer.AppendPages(0, region, secondFrame);
            await writer.FlushAsync();
        }

        await pipe.Writer.CompleteAsync();
        List<ReceivedFrame> frames = await ReadAllAfterHelloAckAsync(pipe.Reader);

        PageRun[] all = [.. runs, .. secondFrame];
        Assert.HasCount(all.Length, frames);
        for (int i = 0; i < all.Length; i++)
        {
            var got = (PagesRun)frames[i];
            Assert.AreEqual(0, got.Region);
            Assert.AreEqual(all[i].FirstPage, got.FirstPage);
            Assert.AreEqual((int)all[i].Count, got.Count);
            byte[] source = region.GetSpan(all[i].FirstPage * (ulong)Page, (int)all[i].Count * Page).ToArray();
            Assert.IsTrue(source.AsSpan().SequenceEqual(got.Data), $"run {i} data differs from guest memory");
        }
    }

    [TestMethod]
    public async Task Digest_FromWriterEqualsComputeAndReceiverSide()
    {
        const ulong pages = 512;
        using GuestMemoryLayout memory = RandomMemory(pages, seed: 5);
        GuestMemoryRegion region = memory.Regions[0];
        var sent = new RegionDigestAccumulator(pages);

        Pipe pipe = UnboundedPipe();
        using (var writer = new PageStreamWriter(pipe.Writer))
        {
            // Every page once, in frames of up to 256 pages, in a scrambled run order.
            writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
            writer.AppendPages(0, region, [new PageRun(256, 200), new PageRun(0, 56)], sent);
            writer.AppendPages(0, region, [new PageRun(456, 56), new PageRun(56, 200)], sent);
            await writer.FlushAsync();
        }

        await pipe.Writer.CompleteAsync();
        List<ReceivedFrame> frames = await ReadAllAfterHelloAckAsync(pipe.Reader);

        var received = new RegionDigestAccumulator(pages);
        foreach (PagesRun run in frames.Cast<PagesRun>())
        {
            for (int i = 0; i < run.Count; i++)
            {
                received.Update(run.FirstPage + (ulong)i, run.Data.AsSpan(i * Page, Page));
            }
        }

        ulong computed = RegionDigestAccumulator.Compute(region);
        Assert.AreEqual(computed, sent.Value);
        Assert.AreEqual(computed, received.Value);
        Assert.AreNotEqual(new RegionDigestAccumulator(pages).Value, computed);
    }

    [TestMethod]
    public async Task Digest_TracksResentPagesAndZeroRuns()
    {
        const ulong pages = 64;
        using GuestMemoryLayout memory = RandomMemory(pages, seed: 6);
        GuestMemoryRegion region = memory.Regions[0];
        var sent = new RegionDigestAccumulator(pages);
        var received = new RegionDigestAccumulator(pages);

        Pipe pipe = UnboundedPipe();
        using (var writer = new PageStreamWriter(pipe.Writer))
        {
            writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
            writer.AppendPages(0, region, [new PageRun(0, pages)], sent);

            // The guest dirties pages 5..9 (new data) and zeroes pages 20..29.
            new Random(7).NextBytes(region.GetSpan(5 * (ulong)Page, 5 * Page));
            region.GetSpan(20 * (ulong)Page, 10 * Page).Clear();
            writer.AppendPages(0, region, [new PageRun(5, 5)], sent);
            writer.AppendZeroPages(0, [new PageRun(20, 10)]);
            for (ulong p = 20; p < 30; p++)
            {
                sent.UpdateZero(p);
            }

            await writer.FlushAsync();
        }

        await pipe.Writer.CompleteAsync();
        List<ReceivedFrame> frames = await ReadAllAfterHelloAckAsync(pipe.Reader);
        Assert.HasCount(3, frames);
        foreach (ReceivedFrame frame in frames)
        {
            switch (frame)
            {
                case PagesRun run:
                    for (int i = 0; i < run.Count; i++)
                    {
                        received.Update(run.FirstPage + (ulong)i, run.Data.AsSpan(i * Page, Page));
                    }

                    break;
                case ZeroRun zero:
                    for (ulong p = zero.FirstPage; p < zero.FirstPage + zero.Count; p++)
                    {
                        received.UpdateZero(p);
                    }

                    break;
                default:
                    Assert.Fail($"unexpected {frame}");
                    break;
            }
        }

        ulong computed = RegionDigestAccumulator.Compute(region);
        Assert.AreEqual(computed, sent.Value);
        Assert.AreEqual(computed, received.Value);
    }

    [TestMethod]
    public async Task ZeroPagesFrame_CarriesManyRunsWithLargeCounts()
    {
        PageRun[] runs = [new PageRun(0, 1), new PageRun(100, 1UL << 40), new PageRun(ulong.MaxValue - 10, 10)];
        byte[] bytes = await WrittenBytesAsync(w => w.AppendZeroPages(3, runs));
        Assert.HasCount(MigrationProtocol.FrameHeaderSize + 8 + (runs.Length * 16), bytes);

        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(Concat(Frame(FrameType.HelloAck, new byte[16] { 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }), bytes));
        await pipe.Writer.CompleteAsync();
        List<ReceivedFrame> frames = await ReadAllAsync(pipe.Reader);

        Assert.HasCount(4, frames);
        for (int i = 0; i < runs.Length; i++)
        {
            Assert.AreEqual(new ZeroRun(3, runs[i].FirstPage, runs[i].Count), frames[i + 1]);
        }
    }

    [TestMethod]
    public async Task Reader_HandlesFramesSplitAcrossWritesByteByByte()
    {
        using GuestMemoryLayout memory = RandomMemory(4, seed: 8);
        byte[] bytes = await WrittenBytesAsync(w =>
        {
            w.AppendHello(new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, 4 * (ulong)Page)], 1, "x"));
            w.AppendPages(0, memory.Regions[0], [new PageRun(0, 4)]);
            w.AppendComplete();
        });

        Pipe pipe = UnboundedPipe();
        var reader = new PageStreamReader(pipe.Reader);
        var handler = new RecordingHandler();
        Task<List<ReceivedFrame>> reading = Task.Run(async () =>
        {
            while (await reader.ReadAsync(handler))
            {
            }

            return handler.Frames;
        });

        // Drip the stream in small, uneven pieces so headers and payloads straddle reads.
        int at = 0;
        int step = 1;
        while (at < bytes.Length)
        {
            int n = Math.Min(step, bytes.Length - at);
            await pipe.Writer.WriteAsync(bytes.AsMemory(at, n));
            at += n;
            step = step * 3 % 4097 + 1;
        }

        await pipe.Writer.CompleteAsync();
        List<ReceivedFrame> frames = await reading.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.HasCount(3, frames);
        Assert.IsInstanceOfType<HelloFrame>(frames[0]);
        CollectionAssert.AreEqual(memory.Regions[0].GetSpan(0, 4 * Page).ToArray(), ((PagesRun)frames[1]).Data);
        Assert.IsInstanceOfType<CompleteFrame>(frames[2]);
    }

    [TestMethod]
    public async Task ErrorFrame_LongMessageIsCutToTheLimit()
    {
        string message = new('\u00e9', 5000); // 10000 UTF-8 bytes
        Pipe pipe = UnboundedPipe();
        using (var writer = new PageStreamWriter(pipe.Writer))
        {
            writer.AppendError(new MigrationError(MigrationErrorCode.SourceAborted, message));
            await writer.FlushAsync();
        }

        await pipe.Writer.CompleteAsync();
        List<ReceivedFrame> frames = await ReadAllAsync(pipe.Reader);
        MigrationError got = ((ErrorFrame)frames.Single()).Error;
        Assert.AreEqual(MigrationErrorCode.SourceAborted, got.Code);
        Assert.IsLessThanOrEqualTo(MigrationProtocol.MaxStringBytes, System.Text.Encoding.UTF8.GetByteCount(got.Message));
        Assert.IsTrue(message.StartsWith(got.Message, StringComparison.Ordinal));
        Assert.IsGreaterThan(0, got.Message.Length);
    }

    private static async Task<List<ReceivedFrame>> ReadAllAfterHelloAckAsync(PipeReader input)
    {
        List<ReceivedFrame> frames = await ReadAllAsync(input);
        Assert.IsInstanceOfType<HelloAckFrame>(frames[0]);
        frames.RemoveAt(0);
        return frames;
    }

    [TestMethod]
    public async Task ErrorFrame_IsAcceptedAsFirstFrameAndUnknownCodesSurvive()
    {
        Pipe pipe = UnboundedPipe();
        using (var writer = new PageStreamWriter(pipe.Writer))
        {
            writer.AppendError(new MigrationError((MigrationErrorCode)999, "newer peer"));
            await writer.FlushAsync();
        }

        await pipe.Writer.CompleteAsync();
        List<ReceivedFrame> frames = await ReadAllAsync(pipe.Reader);
        Assert.AreEqual((MigrationErrorCode)999, ((ErrorFrame)frames.Single()).Error.Code);
    }
}
