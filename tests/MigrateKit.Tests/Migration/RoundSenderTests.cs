using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class RoundSenderTests
{
    private const ulong Page = GuestMemoryLayout.PageSize;

    private readonly Pipe _pipe = TransportTestSupport.UnboundedPipe();
    private readonly List<(long Bytes, TimeSpan Elapsed)> _flushes = [];
    private PageStreamWriter _writer = null!;
    private RoundSender _sender = null!;
    private long _preamble;

    [TestInitialize]
    public async Task Setup()
    {
        // A stream starts with a handshake frame; the sender's frames follow it.
        _writer = new PageStreamWriter(_pipe.Writer);
        _writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        await _writer.FlushAsync();
        _preamble = _writer.BytesWritten;
        _sender = new RoundSender(_writer, new FakeTimeProvider(), (bytes, elapsed) => _flushes.Add((bytes, elapsed)), () => MigrationPhase.Send);
    }

    private long SenderBytes => (long)_sender.BytesWritten - _preamble;

    private static EngineRegion Region(GuestMemoryLayout memory, int index = 0) => new(index, memory.Regions[index], new MigrationOptions());

    private static DirtyBitmap Plan(ulong pageCount, params ulong[] pages)
    {
        var plan = new DirtyBitmap(pageCount);
        foreach (ulong p in pages)
        {
            plan.Set(p);
        }

        return plan;
    }

    private async Task<List<ReceivedFrame>> FramesAsync()
    {
        await _pipe.Writer.CompleteAsync();
        List<ReceivedFrame> frames = await TransportTestSupport.ReadAllAsync(_pipe.Reader);
        Assert.IsInstanceOfType<HelloAckFrame>(frames[0]);
        return frames[1..];
    }

    [TestMethod]
    public async Task SendAsync_SendsDataRunsAndZeroRuns_AndCountsTheirPages()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * Page)]);
        foreach (ulong p in new ulong[] { 0, 1, 3 })
        {
            memory.Regions[0].GetPage(p).Fill((byte)(p + 1));
        }

        EngineRegion region = Region(memory);
        await _sender.SendAsync(region, Plan(16, 0, 1, 2, 3, 5), CancellationToken.None);

        List<ReceivedFrame> frames = await FramesAsync();
        PagesRun[] data = frames.OfType<PagesRun>().ToArray();
        Assert.AreSequenceEqual(new[] { (0, 0UL, 2), (0, 3UL, 1) }, data.Select(r => (r.Region, r.FirstPage, r.Count)).ToArray());
        Assert.IsTrue(data[0].Data.Take((int)Page).All(b => b == 1) && data[0].Data.Skip((int)Page).All(b => b == 2), "the pages' bytes");
        Assert.AreSequenceEqual(new[] { new ZeroRun(0, 2, 1), new ZeroRun(0, 5, 1) }, frames.OfType<ZeroRun>().ToArray());
        Assert.AreEqual(3UL, _sender.RoundPages);
        Assert.AreEqual(2UL, _sender.RoundZeroPages);
        Assert.AreEqual(3UL, _sender.PagesSent);
    }

    [TestMethod]
    public async Task Use_KeepsTheBytesOfEarlierConnections_AndSizesFramesToTheNewOne()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * Page)]);
        memory.Regions[0].GetSpan(0, (int)(16 * Page)).Fill(7);
        EngineRegion region = Region(memory);
        await _sender.SendAsync(region, Plan(16, 0, 1), CancellationToken.None);
        ulong first = _sender.BytesWritten;

        // A reconnection: a new stream whose frames hold at most 4 pages.
        var options = new PageStreamOptions { MaxFramePayload = 64 << 10, MaxPagesPerFrame = 4, PauseWriterThreshold = 128 << 10, ResumeWriterThreshold = 64 << 10 };
        Pipe second = TransportTestSupport.UnboundedPipe();
        using var writer = new PageStreamWriter(second.Writer, options);
        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        _sender.Use(writer);
        Assert.AreEqual(first + (ulong)writer.BytesWritten, _sender.BytesWritten, "nothing is lost or counted twice at the switch");

        await _sender.SendAsync(region, Plan(16, 2, 3, 4, 5, 6, 7, 8, 9, 10), CancellationToken.None);
        Assert.AreEqual(first + (ulong)writer.BytesWritten, _sender.BytesWritten);
        Assert.AreEqual(11UL, _sender.PagesSent);
        await second.Writer.CompleteAsync();
        int[] counts = (await TransportTestSupport.ReadAllAsync(second.Reader, options)).OfType<PagesRun>().Select(r => r.Count).ToArray();
        Assert.AreEqual(9, counts.Sum());
        Assert.IsTrue(counts.All(c => c <= 4), "frames follow the new connection's limit");
    }

    [TestMethod]
    public async Task SendAsync_DigestsEveryPageItSends_DataAndZero()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * Page)]);
        memory.Regions[0].GetPage(3).Fill(3);
        memory.Regions[0].GetPage(9).Fill(9);
        EngineRegion region = Region(memory);
        var all = new DirtyBitmap(16);
        all.SetAll();

        await _sender.SendAsync(region, all, CancellationToken.None);

        Assert.AreEqual(RegionDigestAccumulator.Compute(memory.Regions[0]), region.Digest.Value);
    }

    [TestMethod]
    public async Task SendAsync_TreatsPagesTheHostNeverPopulatedAsZero_WhenAskedTo()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * Page)]);
        memory.Regions[0].GetPage(1).Fill(7);
        EngineRegion region = Region(memory);
        region.UsePopulated = true; // and nothing is marked populated

        await _sender.SendAsync(region, Plan(16, 0, 1), CancellationToken.None);

        List<ReceivedFrame> frames = await FramesAsync();
        Assert.AreSequenceEqual(new ReceivedFrame[] { new ZeroRun(0, 0, 2) }, frames.ToArray());
        Assert.AreEqual(0UL, _sender.RoundPages);
        Assert.AreEqual(2UL, _sender.RoundZeroPages);
    }

    [TestMethod]
    public async Task SendAsync_FlushesAboutEveryMiB_AndReportsEveryFlush()
    {
        using GuestMemoryLayout memory = TransportTestSupport.RandomMemory(600, seed: 3);
        var plan = new DirtyBitmap(600);
        plan.SetAll();

        await _sender.SendAsync(Region(memory), plan, CancellationToken.None);

        // 600 pages are about 2.4 MiB: three flushes, none far over the threshold.
        Assert.HasCount(3, _flushes);
        Assert.IsTrue(_flushes.All(f => f.Bytes < RoundSender.FlushThreshold + (256 * (long)(Page + 16))), string.Join(", ", _flushes));
        Assert.AreEqual(SenderBytes, _flushes.Sum(f => f.Bytes));
        Assert.AreEqual(600UL, _sender.PagesSent);
        Assert.AreEqual(600UL, (await FramesAsync()).OfType<PagesRun>().Aggregate(0UL, (s, r) => s + (ulong)r.Count));
    }

    [TestMethod]
    public async Task SendPlanAsync_SendsEachRegionsPlan()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * Page), new GuestMemoryRegionSpec(0x1000_0000, 8 * Page)]);
        memory.Regions[1].GetPage(6).Fill(9);
        EngineRegion[] regions = [Region(memory, 0), Region(memory, 1)];
        regions[0].Plan.Set(4);
        regions[1].Plan.Set(6);

        await _sender.SendPlanAsync(regions, CancellationToken.None);

        List<ReceivedFrame> frames = await FramesAsync();
        Assert.AreEqual(new ZeroRun(0, 4, 1), frames.OfType<ZeroRun>().Single());
        PagesRun data = frames.OfType<PagesRun>().Single();
        Assert.AreEqual((1, 6UL, 1), (data.Region, data.FirstPage, data.Count));
    }

    [TestMethod]
    public async Task EndRoundAsync_SaysHowManyPagesAndBytesTheRoundSent_AndFlushes()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * Page)]);
        memory.Regions[0].GetPage(2).Fill(1);
        await _sender.SendAsync(Region(memory), Plan(16, 2), CancellationToken.None);
        int flushes = _flushes.Count;

        await _sender.EndRoundAsync(4, 1234, CancellationToken.None);

        Assert.AreEqual(flushes + 1, _flushes.Count);
        Assert.AreEqual(new RoundEndFrame(new RoundEnd(4, 1, 1234)), (await FramesAsync()).Last());
    }

    [TestMethod]
    public async Task BeginRound_StartsTheRoundsCounts_AndKeepsTheTotal()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * Page)]);
        memory.Regions[0].GetPage(2).Fill(1);
        await _sender.SendAsync(Region(memory), Plan(16, 2, 3), CancellationToken.None);

        _sender.BeginRound();

        Assert.AreEqual(0UL, _sender.RoundPages);
        Assert.AreEqual(0UL, _sender.RoundZeroPages);
        Assert.AreEqual(1UL, _sender.PagesSent);
    }

    [TestMethod]
    public async Task AppendCompletion_SendsTheDeviceStateTheDigestsAndComplete()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 16 * Page), new GuestMemoryRegionSpec(0x1000_0000, 8 * Page)]);
        EngineRegion[] regions = [Region(memory, 0), Region(memory, 1)];
        regions[1].Digest.UpdateZero(3);
        byte[] state = [1, 2, 3];

        _sender.AppendCompletion(state, regions);
        await _sender.FlushAsync(CancellationToken.None);

        List<ReceivedFrame> frames = await FramesAsync();
        Assert.HasCount(3, frames);
        Assert.AreSequenceEqual(state, ((DeviceStateFrame)frames[0]).State);
        Assert.AreSequenceEqual(new[] { new RegionDigest(0, regions[0].Digest.Value), new RegionDigest(1, regions[1].Digest.Value) }, ((DigestsFrame)frames[1]).Digests.ToArray());
        Assert.IsInstanceOfType<CompleteFrame>(frames[2]);
        Assert.AreEqual(SenderBytes, _flushes.Single().Bytes);
    }

    [TestMethod]
    [DataRow(MigrationPhase.Send, "round 3")]
    [DataRow(MigrationPhase.Switchover, "the switchover")]
    public async Task SendAsync_ToADestinationThatTakesNoData_FailsAfterTheStallTimeout_NamingThePhase(MigrationPhase phase, string during)
    {
        // Nobody reads the connection: the send stops on a full pipe until the deadline on the fake clock.
        var time = new FakeTimeProvider();
        var options = new PageStreamOptions { PauseWriterThreshold = 4 << 20, ResumeWriterThreshold = 2 << 20, TimeProvider = time };
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair(options);
        await using IMigrationConnection s = source;
        await using IMigrationConnection d = destination;
        using PageStreamWriter writer = PageStreamWriter.ForConnection(source, options, TimeSpan.FromSeconds(30));
        var sender = new RoundSender(writer, time, (_, _) => { }, () => phase);
        using GuestMemoryLayout memory = TransportTestSupport.RandomMemory(2048, seed: 3);
        var all = new DirtyBitmap(2048);
        all.SetAll();
        for (int round = 0; round <= 3; round++)
        {
            sender.BeginRound();
        }

        Task sending = sender.SendAsync(Region(memory), all, CancellationToken.None);
        TestSupport.FakeClock.AdvanceUntil(time, () => sending.IsCompleted, TimeSpan.FromSeconds(1), "the send ends");

        MigrationException error = await Assert.ThrowsExactlyAsync<MigrationException>(() => sending);
        Assert.AreEqual(phase, error.Phase);
        Assert.EndsWith($"the destination took no data for 30 s during {during}", error.Message);
        Assert.IsInstanceOfType<TimeoutException>(error.InnerException);
    }

    [TestMethod]
    public async Task SendHelloAsync_ToADestinationThatTakesNoData_FailsDuringTheHandshake()
    {
        // A pipe already over its pause threshold: the Hello's flush has to wait, and nobody reads.
        var time = new FakeTimeProvider();
        var options = new PageStreamOptions { TimeProvider = time };
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair(options);
        await using IMigrationConnection s = source;
        await using IMigrationConnection d = destination;
        source.Output.Write(new byte[options.PauseWriterThreshold]);
        using PageStreamWriter writer = PageStreamWriter.ForConnection(source, options, TimeSpan.FromSeconds(5));
        var sender = new RoundSender(writer, time, (_, _) => { }, () => MigrationPhase.Handshake);

        Task sending = sender.SendHelloAsync(new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, 16 * Page)], 1, "vm"), CancellationToken.None).AsTask();
        TestSupport.FakeClock.AdvanceUntil(time, () => sending.IsCompleted, TimeSpan.FromSeconds(1), "the send ends");

        MigrationException error = await Assert.ThrowsExactlyAsync<MigrationException>(() => sending);
        Assert.AreEqual(MigrationPhase.Handshake, error.Phase);
        Assert.EndsWith("the destination took no data for 5 s during the handshake", error.Message);
    }
}

/// <summary>The round sender with an encoder: pages go in EncodedPages frames, and the cheap set follows the deltas.</summary>
[TestClass]
public sealed class RoundSenderEncodingTests
{
    private const ulong Page = GuestMemoryLayout.PageSize;

    private readonly Pipe _pipe = TransportTestSupport.UnboundedPipe();
    private readonly PageEncoder _encoder = new(new SentPageCache(64 * (long)Page), PageCompression.FastLevel);
    private RoundSender _sender = null!;

    [TestInitialize]
    public async Task Setup()
    {
        var writer = new PageStreamWriter(_pipe.Writer);
        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        await writer.FlushAsync();
        _sender = new RoundSender(new FakeTimeProvider(), (_, _) => { }, () => MigrationPhase.Send, _encoder);
        _sender.Use(writer);
    }

    [TestMethod]
    public async Task ResentPagesGoAsDeltas_SmallOnesMarkTheirPageCheap_AndTheDestinationEndsWithTheSameBytes()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 8 * Page)]);
        var random = new Random(3);
        foreach (ulong p in new ulong[] { 1, 2 })
        {
            random.NextBytes(memory.Regions[0].GetPage(p));
        }

        EngineRegion region = new(0, memory.Regions[0], new MigrationOptions());
        _sender.BeginRound();
        await _sender.SendAsync(region, Plan(8, 1, 2), CancellationToken.None);
        Assert.AreEqual(2UL, _sender.RoundEncoding.RawPages);
        Assert.IsFalse(region.Cheap.Test(1));

        memory.Regions[0].GetPage(1)[7]++;
        random.NextBytes(memory.Regions[0].GetPage(2));
        _sender.BeginRound();
        await _sender.SendAsync(region, Plan(8, 1, 2), CancellationToken.None);
        Assert.AreEqual(1UL, _sender.RoundEncoding.DeltaPages);
        Assert.AreEqual(0UL, _sender.RoundCheapPages, "page 1 was not marked cheap when it went: its bytes count with the other pages'");
        Assert.IsTrue(region.Cheap.Test(1), "a one-byte delta makes its page cheap");
        Assert.IsFalse(region.Cheap.Test(2), "a rewritten random page is not");

        // The round's bytes are split by the mark the pages had when they went, as the forecast
        // priced them: a cheap page rewritten whole still counts as cheap, and loses the mark.
        random.NextBytes(memory.Regions[0].GetPage(1));
        _sender.BeginRound();
        await _sender.SendAsync(region, Plan(8, 1), CancellationToken.None);
        Assert.AreEqual(1UL, _sender.RoundCheapPages);
        Assert.IsGreaterThan((ulong)Page, _sender.RoundCheapBytes);
        Assert.IsFalse(region.Cheap.Test(1));

        await _pipe.Writer.CompleteAsync();
        var destination = new byte[8][];
        foreach (EncodedPageFrame f in (await TransportTestSupport.ReadAllAsync(_pipe.Reader)).OfType<EncodedPageFrame>())
        {
            destination[f.Page] ??= new byte[Page];
            PageEncoder.Decode(f.Encoding, f.Data, destination[f.Page]);
        }

        Assert.IsTrue(destination[1].AsSpan().SequenceEqual(memory.Regions[0].GetPage(1)));
        Assert.IsTrue(destination[2].AsSpan().SequenceEqual(memory.Regions[0].GetPage(2)));
        Assert.AreEqual(RegionDigestAccumulator.Compute(memory.Regions[0]), region.Digest.Value);
    }

    [TestMethod]
    public async Task TheSwitchoversRound_SendsAnUncachedPageWithoutCachingIt_AndTheNextRoundCachesAgain()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 8 * Page)]);
        new Random(6).NextBytes(memory.Regions[0].GetPage(3));
        EngineRegion region = new(0, memory.Regions[0], new MigrationOptions());
        var destination = new byte[Page];

        _sender.BeginRound(final: true);
        await _sender.SendAsync(region, Plan(8, 3), CancellationToken.None);
        memory.Regions[0].GetPage(3)[9]++;
        _sender.BeginRound();
        await _sender.SendAsync(region, Plan(8, 3), CancellationToken.None);
        Assert.AreEqual(1UL, _sender.RoundEncoding.CacheMisses, "the switchover's round took no copy to delta against");
        memory.Regions[0].GetPage(3)[9]++;
        _sender.BeginRound();
        await _sender.SendAsync(region, Plan(8, 3), CancellationToken.None);
        Assert.AreEqual(1UL, _sender.RoundEncoding.DeltaPages, "a later round takes copies again");

        await _pipe.Writer.CompleteAsync();
        foreach (EncodedPageFrame f in (await TransportTestSupport.ReadAllAsync(_pipe.Reader)).OfType<EncodedPageFrame>())
        {
            PageEncoder.Decode(f.Encoding, f.Data, destination);
        }

        Assert.IsTrue(destination.AsSpan().SequenceEqual(memory.Regions[0].GetPage(3)));
    }

    [TestMethod]
    public async Task EachBuild_ReportsItsFirstWritesIntoTheCache_NoneWhenItsPagesAreCached()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 8 * Page)]);
        new Random(8).NextBytes(memory.Regions[0].GetPage(5));
        EngineRegion region = new(0, memory.Regions[0], new MigrationOptions());
        var firstWrites = new List<TimeSpan>();
        _sender.OnBuilt((_, _, _, first) => firstWrites.Add(first));

        await _sender.SendAsync(region, Plan(8, 5), CancellationToken.None);
        memory.Regions[0].GetPage(5)[3]++;
        await _sender.SendAsync(region, Plan(8, 5), CancellationToken.None);

        Assert.HasCount(2, firstWrites);
        Assert.IsGreaterThan(TimeSpan.Zero, firstWrites[0], "the first copy went into a never-written slot");
        Assert.AreEqual(TimeSpan.Zero, firstWrites[1], "a delta against the copy writes no new slot");
    }

    [TestMethod]
    public async Task APageSentAsZero_LosesItsCachedCopy_AndItsCheapMark()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 8 * Page)]);
        memory.Regions[0].GetPage(4).Fill(9);
        EngineRegion region = new(0, memory.Regions[0], new MigrationOptions());
        await _sender.SendAsync(region, Plan(8, 4), CancellationToken.None);
        region.Cheap.Set(4);

        memory.Regions[0].GetPage(4).Clear();
        await _sender.SendAsync(region, Plan(8, 4), CancellationToken.None);
        Assert.IsFalse(region.Cheap.Test(4));

        memory.Regions[0].GetPage(4).Fill(9);
        _sender.BeginRound();
        await _sender.SendAsync(region, Plan(8, 4), CancellationToken.None);
        Assert.AreEqual(1UL, _sender.RoundEncoding.CacheMisses, "no delta against a copy the destination no longer holds");
    }

    [TestMethod]
    public async Task HotPagesWhoseDeltaWouldBeSmall_ArePricedCheap_OthersNot()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 8 * Page)]);
        new Random(1).NextBytes(memory.Regions[0].GetPage(1));
        new Random(2).NextBytes(memory.Regions[0].GetPage(2));
        var region = new EngineRegion(0, memory.Regions[0], new MigrationOptions { HotPageWindow = 1, HotPageThreshold = 1 });
        await _sender.SendAsync(region, Plan(8, 1, 2, 3), CancellationToken.None);

        memory.Regions[0].GetPage(1)[100] ^= 0xFF;
        new Random(4).NextBytes(memory.Regions[0].GetPage(2));
        new Random(5).NextBytes(memory.Regions[0].GetPage(3));
        region.Heat.Update(Plan(8, 1, 2, 3));
        region.Harvested.CopyFrom(Plan(8, 1, 2, 3));
        Assert.AreEqual(3UL, _sender.PriceHotPages([region]).Pages, "each hot page not yet cheap is priced");

        Assert.IsTrue(region.Cheap.Test(1));
        Assert.IsFalse(region.Cheap.Test(2), "a delta of a rewritten page is not small");
        Assert.IsFalse(region.Cheap.Test(3), "a page never sent has no copy to delta against");
        Assert.AreEqual(2UL, _sender.PriceHotPages([region]).Pages, "a cheap page is not priced again");

        // Each build reports its data pages and how many of them went marked cheap.
        var builds = new List<(ulong Pages, ulong Cheap)>();
        _sender.OnBuilt((pages, cheap, _, _) => builds.Add((pages, cheap)));
        await _sender.SendAsync(region, Plan(8, 1, 2, 3), CancellationToken.None);
        CollectionAssert.AreEqual(new[] { (3UL, 1UL) }, builds);
    }

    [TestMethod]
    public async Task ANewConnection_ForgetsEveryCopy_AndEveryCheapMark()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 8 * Page)]);
        memory.Regions[0].GetPage(1).Fill(3);
        var region = new EngineRegion(0, memory.Regions[0], new MigrationOptions());
        await _sender.SendAsync(region, Plan(8, 1), CancellationToken.None);
        region.Cheap.Set(1);

        _sender.Use(new PageStreamWriter(TransportTestSupport.UnboundedPipe().Writer));
        region.Plan.CopyFrom(Plan(8, 1));
        _sender.BeginRound();
        await _sender.SendPlanAsync([region], CancellationToken.None);

        Assert.AreEqual(1UL, _sender.RoundEncoding.CacheMisses, "frames lost with the old connection may have carried the copy");
        Assert.AreEqual(0UL, _sender.RoundEncoding.DeltaPages);
    }

    private static DirtyBitmap Plan(ulong pageCount, params ulong[] pages)
    {
        var plan = new DirtyBitmap(pageCount);
        foreach (ulong p in pages)
        {
            plan.Set(p);
        }

        return plan;
    }
}
