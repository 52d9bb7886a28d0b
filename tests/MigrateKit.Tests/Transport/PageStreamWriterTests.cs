using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;
using static MigrateKit.Tests.Transport.TransportTestSupport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class PageStreamWriterTests
{
    private const int FullFramePayload = 8 + 16 + (256 * MigrationProtocol.PageSize);

    [TestMethod]
    public void AppendPages_RejectsRunsOutsideTheRegion()
    {
        using GuestMemoryLayout memory = RandomMemory(16, seed: 1);
        GuestMemoryRegion region = memory.Regions[0];
        using var writer = new PageStreamWriter(UnboundedPipe().Writer);

        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendPages(0, region, [new PageRun(16, 1)]));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendPages(0, region, [new PageRun(15, 2)]));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendPages(0, region, [new PageRun(0, 1), new PageRun(ulong.MaxValue, 2)]));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendPages(0, region, [new PageRun(8, ulong.MaxValue)]));
        Assert.AreEqual(0, writer.BytesWritten);
    }

    [TestMethod]
    public void AppendPages_RejectsEmptyAndOversizedFrames()
    {
        using GuestMemoryLayout memory = RandomMemory(300, seed: 2);
        GuestMemoryRegion region = memory.Regions[0];
        using var writer = new PageStreamWriter(UnboundedPipe().Writer);

        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendPages(0, region, ReadOnlySpan<PageRun>.Empty));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendPages(0, region, [new PageRun(3, 0)]));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendPages(0, region, [new PageRun(0, 257)]));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendPages(0, region, [new PageRun(0, 200), new PageRun(200, 57)]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => writer.AppendPages(-1, region, [new PageRun(0, 1)]));
        Assert.AreEqual(0, writer.BytesWritten);

        writer.AppendPages(0, region, [new PageRun(0, 256)]);
        Assert.AreEqual(MigrationProtocol.FrameHeaderSize + FullFramePayload, writer.BytesWritten);
    }

    [TestMethod]
    [DataRow(-1L)]
    [DataRow(864_000_000_001L)]
    [DataRow(long.MaxValue)]
    public void DurationsAReaderWouldRefuse_AreNotWritten(long ticks)
    {
        TimeSpan duration = TimeSpan.FromTicks(ticks);
        using var writer = new PageStreamWriter(UnboundedPipe().Writer);

        Assert.AreEqual("ack", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, duration))).ParamName);
        Assert.AreEqual("ack", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => writer.AppendAck(new CompletionAck(duration))).ParamName);
        Assert.AreEqual("ready", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => writer.AppendReady(new DestinationReady(duration))).ParamName);
        Assert.AreEqual(0, writer.BytesWritten);

        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.FromDays(1)));
        Assert.AreEqual(MigrationProtocol.FrameHeaderSize + 16, writer.BytesWritten);
    }

    [TestMethod]
    public void AppendPages_RespectsMaxPagesPerFrameOption()
    {
        using GuestMemoryLayout memory = RandomMemory(16, seed: 3);
        using var writer = new PageStreamWriter(UnboundedPipe().Writer, new PageStreamOptions { MaxPagesPerFrame = 4 });
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendPages(0, memory.Regions[0], [new PageRun(0, 5)]));
        writer.AppendPages(0, memory.Regions[0], [new PageRun(0, 4)]);
    }

    [TestMethod]
    public void OtherAppends_RejectInvalidArguments()
    {
        using var writer = new PageStreamWriter(UnboundedPipe().Writer);

        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendZeroPages(0, ReadOnlySpan<PageRun>.Empty));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendZeroPages(0, [new PageRun(0, 1), new PageRun(5, 0)]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => writer.AppendZeroPages(-2, [new PageRun(0, 1)]));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendHello(new MigrationHello(MigrationProtocol.Version, [], 1, "x")));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendHello(new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, 4096)], 1, new string('a', 4097))));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendDigests([]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => writer.AppendDigests([new RegionDigest(0, 1), new RegionDigest(-1, 2)]));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendDeviceState(new byte[(2 << 20) + 1]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => writer.AppendRoundEnd(new RoundEnd(-1, 0, 0)));
        Assert.AreEqual(0, writer.BytesWritten);
    }

    [TestMethod]
    public async Task RejectedAppends_LeaveNothingOnTheWire()
    {
        byte[] bytes = await WrittenBytesAsync(w =>
        {
            w.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
            Assert.ThrowsExactly<ArgumentException>(() => w.AppendZeroPages(0, [new PageRun(0, 1), new PageRun(5, 0)]));
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => w.AppendDigests([new RegionDigest(0, 1), new RegionDigest(-1, 2)]));
            w.AppendComplete();
        });

        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(bytes);
        await pipe.Writer.CompleteAsync();
        List<ReceivedFrame> frames = await ReadAllAsync(pipe.Reader);
        Assert.HasCount(2, frames);
        Assert.IsInstanceOfType<HelloAckFrame>(frames[0]);
        Assert.IsInstanceOfType<CompleteFrame>(frames[1]);
        Assert.HasCount(8 + 16 + 8, bytes);
    }

    [TestMethod]
    public void Options_DefaultsAreValid()
    {
        var options = new PageStreamOptions();
        options.Validate();
        Assert.AreEqual(2 << 20, options.MaxFramePayload);
        Assert.AreEqual(256, options.MaxPagesPerFrame);
        Assert.IsNull(options.BandwidthLimit);
    }

    [TestMethod]
    public void Options_ValidateRejectsBadValues()
    {
        AssertInvalid(new PageStreamOptions { MaxFramePayload = 8 + 16 + 4095 }, nameof(PageStreamOptions.MaxFramePayload));
        AssertInvalid(new PageStreamOptions { MaxFramePayload = -1 }, nameof(PageStreamOptions.MaxFramePayload));
        AssertInvalid(new PageStreamOptions { MaxPagesPerFrame = 0 }, nameof(PageStreamOptions.MaxPagesPerFrame));
        AssertInvalid(new PageStreamOptions { MaxPagesPerFrame = 512 }, nameof(PageStreamOptions.MaxPagesPerFrame));
        AssertInvalid(new PageStreamOptions { MaxFramePayload = 8 + 16 + 4096, MaxPagesPerFrame = 2 }, nameof(PageStreamOptions.MaxPagesPerFrame));
        AssertInvalid(new PageStreamOptions { ResumeWriterThreshold = -1 }, nameof(PageStreamOptions.PauseWriterThreshold));
        AssertInvalid(new PageStreamOptions { PauseWriterThreshold = 3 << 20, ResumeWriterThreshold = 4 << 20 }, nameof(PageStreamOptions.PauseWriterThreshold));
        AssertInvalid(new PageStreamOptions { PauseWriterThreshold = 1 << 20, ResumeWriterThreshold = 1 << 19 }, nameof(PageStreamOptions.PauseWriterThreshold));
        AssertInvalid(new PageStreamOptions { BandwidthLimit = 4095 }, nameof(PageStreamOptions.BandwidthLimit));
        AssertInvalid(new PageStreamOptions { BandwidthLimit = 0 }, nameof(PageStreamOptions.BandwidthLimit));
        AssertInvalid(new PageStreamOptions { BandwidthLimit = -5 }, nameof(PageStreamOptions.BandwidthLimit));
        Assert.ThrowsExactly<ArgumentNullException>(() => new PageStreamOptions { TimeProvider = null! }.Validate());

        // The smallest accepted values.
        new PageStreamOptions { MaxFramePayload = 8 + 16 + 4096, MaxPagesPerFrame = 1, BandwidthLimit = 4096 }.Validate();

        // Writers and readers validate their options.
        Assert.ThrowsExactly<ArgumentException>(() => new PageStreamWriter(UnboundedPipe().Writer, new PageStreamOptions { MaxPagesPerFrame = 0 }));
        Assert.ThrowsExactly<ArgumentException>(() => new PageStreamReader(UnboundedPipe().Reader, new PageStreamOptions { MaxPagesPerFrame = 0 }));
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public async Task AppendPagesFlushAndReadDispatch_AllocateNothingAfterWarmup(bool stallTimeout)
    {
        const int frames = 64;
        using GuestMemoryLayout memory = RandomMemory(1024, seed: 4);
        GuestMemoryRegion region = memory.Regions[0];
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 64 << 20, resumeWriterThreshold: 32 << 20, minimumSegmentSize: 4 << 20, useSynchronizationContext: false));
        using PageStreamWriter writer = stallTimeout ? new PageStreamWriter(pipe.Writer).BoundStalls(TimeSpan.FromSeconds(30), () => 0) : new PageStreamWriter(pipe.Writer);
        var reader = new PageStreamReader(pipe.Reader);
        var handler = new CountingHandler();
        PageRun[][] runs =
        [
            [new PageRun(0, 256)],
            [new PageRun(256, 100), new PageRun(400, 100), new PageRun(600, 56)],
            [new PageRun(768, 256)],
        ];

        async ValueTask RoundTripAsync(int i)
        {
            writer.AppendPages(0, region, runs[i % runs.Length]);
            ValueTask flush = writer.FlushAsync();
            Assert.IsTrue(flush.IsCompletedSuccessfully);
            await flush;
            ValueTask<bool> read = reader.ReadAsync(handler);
            Assert.IsTrue(read.IsCompletedSuccessfully);
            Assert.IsTrue(await read);
        }

        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        for (int i = 0; i < 32; i++)
        {
            await RoundTripAsync(i);
        }

        handler.Reset();
        int thread = Environment.CurrentManagedThreadId;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < frames; i++)
        {
            await RoundTripAsync(i);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.AreEqual(thread, Environment.CurrentManagedThreadId, "the loop must have run synchronously on one thread");
        Assert.AreEqual(0L, allocated, $"{allocated} bytes allocated for {frames} frames of 256 pages");
        Assert.AreEqual(frames * 256L, handler.Pages);
        Assert.AreEqual(ExpectedChecksum(region, runs, frames), handler.Checksum);
    }

    [TestMethod]
    public async Task Flush_WaitsWhileNobodyReadsAndCompletesAfterTheReaderConsumes()
    {
        var options = new PageStreamOptions
        {
            MaxFramePayload = FullFramePayload + 4096,
            PauseWriterThreshold = 2 << 20,
            ResumeWriterThreshold = (2 << 20) - 4096,
        };
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair(options);
        await using IMigrationConnection s = source;
        await using IMigrationConnection d = destination;
        using GuestMemoryLayout memory = RandomMemory(256, seed: 5);
        using var writer = new PageStreamWriter(source.Output, options);

        // Under the threshold: the flush completes at once.
        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        writer.AppendPages(0, memory.Regions[0], [new PageRun(0, 256)]);
        ValueTask first = writer.FlushAsync();
        Assert.IsTrue(first.IsCompletedSuccessfully);
        await first;

        // Over it (three frames, about 3 MiB): the flush waits for the reader.
        writer.AppendPages(0, memory.Regions[0], [new PageRun(0, 256)]);
        writer.AppendPages(0, memory.Regions[0], [new PageRun(0, 256)]);
        Task flush = writer.FlushAsync().AsTask();
        await Task.WhenAny(flush, Task.Delay(300));
        Assert.IsFalse(flush.IsCompleted, "the flush completed while nobody read");

        var reader = new PageStreamReader(destination.Input, options);
        var handler = new RecordingHandler();
        Assert.IsTrue(await reader.ReadAsync(handler));
        await flush.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.HasCount(4, handler.Frames);
        Assert.AreEqual(24 + (3 * (MigrationProtocol.FrameHeaderSize + FullFramePayload)), reader.BytesRead);
    }

    [TestMethod]
    public async Task BandwidthLimit_HoldsTheRateOverATransfer()
    {
        await MeasureRateAsync(idleBeforeTransfer: TimeSpan.Zero);
    }

    [TestMethod]
    public async Task BandwidthLimit_IdleTimeBeforeATransferBuysNoExtraBurst()
    {
        await MeasureRateAsync(idleBeforeTransfer: TimeSpan.FromMilliseconds(300));
    }

    private static async Task MeasureRateAsync(TimeSpan idleBeforeTransfer)
    {
        const long rate = 20L << 20;
        const int frames = 10;

        // On a fake clock that jumps to each pacing timer, the measured time is exactly what the
        // limiter asked to wait: no scheduling noise, no JIT warm-up, no real waiting.
        var clock = new SteppingClock();
        var options = new PageStreamOptions { BandwidthLimit = rate, TimeProvider = clock };

        // The bucket starts full with max(rate / 20, 64 KiB) tokens.
        long burst = Math.Max(rate / 20, 64 * 1024);
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair(options);
        await using IMigrationConnection s = source;
        await using IMigrationConnection d = destination;
        using GuestMemoryLayout memory = RandomMemory(256, seed: 6);
        using var writer = new PageStreamWriter(source.Output, options);

        var reader = new PageStreamReader(destination.Input, options);
        var handler = new CountingHandler();
        Task draining = Task.Run(async () =>
        {
            while (await reader.ReadAsync(handler))
            {
            }
        });

        clock.Advance(idleBeforeTransfer);

        // The first flush takes tokens from the full bucket at once; from then on every byte beyond
        // the bucket's capacity must wait for its share of time: the last flush may start no
        // earlier than (bytes - burst) / rate after the first.
        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        writer.AppendPages(0, memory.Regions[0], [new PageRun(0, 256)]);
        await clock.RunAsync(writer.FlushAsync().AsTask(), TimeSpan.FromSeconds(10));
        long start = clock.GetTimestamp();
        Task transfer = Task.Run(async () =>
        {
            for (int i = 1; i < frames; i++)
            {
                writer.AppendPages(0, memory.Regions[0], [new PageRun(0, 256)]);
                await writer.FlushAsync();
            }
        });
        await clock.RunAsync(transfer, TimeSpan.FromSeconds(10));

        double seconds = clock.GetElapsedTime(start).TotalSeconds;
        await source.Output.CompleteAsync();
        await draining.WaitAsync(TimeSpan.FromSeconds(10));

        long bytes = writer.BytesWritten;
        Assert.AreEqual(24 + (frames * (long)(MigrationProtocol.FrameHeaderSize + FullFramePayload)), bytes);
        Assert.AreEqual(bytes, reader.BytesRead);
        double expected = (bytes - burst) / (double)rate;
        double measuredRate = (bytes - burst) / seconds;
        string detail = $"{bytes} bytes took {seconds * 1000:F1} ms, expected {expected * 1000:F1} ms: {measuredRate / (1 << 20):F2} MiB/s against a {rate / (1 << 20)} MiB/s limit";

        // The limit is a ceiling: never above it (2 % for the limiter's rounding), and on a fake
        // clock nothing but the limiter makes the transfer slower.
        Assert.IsLessThanOrEqualTo(rate * 1.02, measuredRate, detail);
        Assert.IsGreaterThanOrEqualTo(rate * 0.95, measuredRate, detail);
    }

    private static void AssertInvalid(PageStreamOptions options, string parameter)
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);
        Assert.AreEqual(parameter, ex.ParamName, ex.Message);
    }

    private static long ExpectedChecksum(GuestMemoryRegion region, PageRun[][] runs, int frames)
    {
        var expected = new CountingHandler();
        for (int i = 0; i < frames; i++)
        {
            foreach (PageRun run in runs[i % runs.Length])
            {
                expected.OnPages(0, run.FirstPage, (int)run.Count, new ReadOnlySequence<byte>(region.GetSpan(run.FirstPage * (ulong)Page, (int)run.Count * Page).ToArray()));
            }
        }

        return expected.Checksum;
    }

    /// <summary>Counts pages and sums a few bytes of each, without allocating.</summary>
    private sealed class CountingHandler : IPageStreamHandler
    {
        public long Pages { get; private set; }

        public long Checksum { get; private set; }

        public void Reset() => (Pages, Checksum) = (0, 0);

        public void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data)
        {
            Assert.AreEqual((long)count * Page, data.Length);
            Span<byte> probe = stackalloc byte[2];
            for (int i = 0; i < count; i++)
            {
                ReadOnlySequence<byte> page = data.Slice((long)i * Page, Page);
                page.Slice(0, 1).CopyTo(probe);
                page.Slice(Page - 1, 1).CopyTo(probe[1..]);
                Checksum += ((long)(firstPage + (ulong)i) * 31) + probe[0] + (probe[1] << 8);
            }

            Pages += count;
        }

        public void OnHello(MigrationHello hello) => throw new AssertFailedException("unexpected Hello");

        public void OnHelloAck(HelloAck ack) => Assert.AreEqual(MigrationProtocol.Version, ack.Version);

        public void OnZeroPages(int region, ulong firstPage, ulong count) => throw new AssertFailedException("unexpected ZeroPages");

        public void OnRoundEnd(RoundEnd roundEnd) => throw new AssertFailedException("unexpected RoundEnd");

        public void OnDeviceState(ReadOnlySequence<byte> state) => throw new AssertFailedException("unexpected DeviceState");

        public void OnDigests(IReadOnlyList<RegionDigest> digests) => throw new AssertFailedException("unexpected Digests");

        public void OnComplete() => throw new AssertFailedException("unexpected Complete");

        public void OnAck(CompletionAck ack) => throw new AssertFailedException("unexpected Ack");

        public void OnError(MigrationError error) => throw new AssertFailedException("unexpected Error");
    }
}
