using System;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;
using static MigrateKit.Tests.Transport.TransportTestSupport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class FrameRejectionTests
{
    private static readonly byte[] ValidHello = Frame(FrameType.Hello, HelloPayload());

    [TestMethod]
    public async Task PayloadLengthOverLimit_IsRejectedFromTheHeaderAlone()
    {
        var pipe = new Pipe();
        var reader = new PageStreamReader(pipe.Reader);

        await pipe.Writer.WriteAsync(ValidHello);
        var handler = new RecordingHandler();
        Assert.IsTrue(await reader.ReadAsync(handler));

        // Only the 8-byte header; the pipe stays open and no payload follows.
        byte[] header = Frame((byte)FrameType.DeviceState, [], length: (uint)new PageStreamOptions().MaxFramePayload + 1);
        Assert.HasCount(MigrationProtocol.FrameHeaderSize, header);
        await pipe.Writer.WriteAsync(header);
        Task<bool> second = reader.ReadAsync(handler).AsTask();
        MigrationProtocolException ex = await Assert.ThrowsExactlyAsync<MigrationProtocolException>(() => second.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.AreEqual("DeviceState", ex.Frame);
        Assert.AreEqual("length", ex.Field);
        Assert.HasCount(1, handler.Frames);
    }

    [TestMethod]
    public async Task HugeLengthInFirstHeader_IsRejectedWithoutWaiting()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Frame((byte)FrameType.Hello, [], length: uint.MaxValue));
        var reader = new PageStreamReader(pipe.Reader);
        MigrationProtocolException ex = await Assert.ThrowsExactlyAsync<MigrationProtocolException>(() => reader.ReadAsync(new RecordingHandler()).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.AreEqual("Hello", ex.Frame);
        Assert.AreEqual("length", ex.Field);
    }

    [TestMethod]
    public async Task LengthLimit_FollowsTheReaderOptions()
    {
        var options = new PageStreamOptions { MaxFramePayload = 64 * 1024, MaxPagesPerFrame = 8, PauseWriterThreshold = 128 * 1024, ResumeWriterThreshold = 64 * 1024 };
        await ExpectAsync(options, "DeviceState", "length", ValidHello, Frame((byte)FrameType.DeviceState, new byte[(64 * 1024) + 1]));
    }

    [TestMethod]
    [DataRow((byte)0)]
    [DataRow((byte)19)]
    [DataRow((byte)255)]
    public async Task UnknownType_IsRejected(byte type)
    {
        await ExpectAsync("header", "type", ValidHello, Frame(type, new byte[4]));
    }

    [TestMethod]
    public async Task UnknownTypeAsFirstFrame_IsRejected()
    {
        await ExpectAsync("header", "type", Frame(42, []));
    }

    [TestMethod]
    public async Task NonZeroFlags_AreRejected()
    {
        await ExpectAsync("Complete", "flags", ValidHello, Frame((byte)FrameType.Complete, [], flags: 1));
    }

    [TestMethod]
    public async Task NonZeroReservedHeaderField_IsRejected()
    {
        await ExpectAsync("Complete", "reserved", ValidHello, Frame((byte)FrameType.Complete, [], reserved: 0x0100));
    }

    [TestMethod]
    [DataRow(FrameType.Pages)]
    [DataRow(FrameType.ZeroPages)]
    [DataRow(FrameType.RoundEnd)]
    [DataRow(FrameType.DeviceState)]
    [DataRow(FrameType.Digests)]
    [DataRow(FrameType.Complete)]
    [DataRow(FrameType.Ack)]
    public async Task FirstFrameNotHello_IsRejected(FrameType type)
    {
        await ExpectAsync(type.ToString(), "type", Frame(type, []));
    }

    [TestMethod]
    public async Task HelloAckAsFirstFrame_IsAccepted()
    {
        byte[] ack = new byte[16];
        ack[0] = (byte)MigrationProtocol.Version;
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(Concat(Frame(FrameType.HelloAck, ack), Frame(FrameType.Complete, [])));
        await pipe.Writer.CompleteAsync();
        var frames = await ReadAllAsync(pipe.Reader);
        Assert.AreEqual(new HelloAckFrame(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero)), frames[0]);
        Assert.IsInstanceOfType<CompleteFrame>(frames[1]);
    }

    [TestMethod]
    public async Task BadMagic_IsRejected()
    {
        await ExpectAsync("Hello", "magic", Frame(FrameType.Hello, HelloPayload(magic: 0x54544547))); // "GETT": an HTTP client
    }

    [TestMethod]
    public async Task BadMagic_IsCheckedBeforeVersion()
    {
        await ExpectAsync("Hello", "magic", Frame(FrameType.Hello, HelloPayload(magic: 1, version: 99)));
    }

    [TestMethod]
    [DataRow((ushort)0, (ushort)0)]
    [DataRow((ushort)1, (ushort)1)]
    [DataRow((ushort)1, (ushort)0)]
    [DataRow((ushort)4, (ushort)4)]
    [DataRow(ushort.MaxValue, ushort.MaxValue)]
    public async Task HelloWhoseVersionsMissOurs_IsRejected(ushort version, ushort minVersion)
    {
        MigrationProtocolException ex = await ExpectAsync("Hello", "version", Frame(FrameType.Hello, HelloPayload(version: version, minVersion: minVersion)));
        StringAssert.Contains(ex.Message, $"this side speaks {MigrationProtocol.MinimumVersion} to {MigrationProtocol.Version}");
    }

    [TestMethod]
    public async Task HelloWhoseOldestVersionIsAboveItsVersion_IsRejected()
    {
        await ExpectAsync("Hello", "minVersion", Frame(FrameType.Hello, HelloPayload(version: 2, minVersion: 3)));
    }

    [TestMethod]
    [DataRow((ushort)2, (ushort)2)]
    [DataRow((ushort)3, (ushort)2)]
    [DataRow((ushort)9, (ushort)3)]
    [DataRow(ushort.MaxValue, (ushort)2)]
    public async Task HelloWhoseVersionsMeetOurs_IsAccepted_WithItsRange(ushort version, ushort minVersion)
    {
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(Frame(FrameType.Hello, HelloPayload(version: version, minVersion: minVersion)));
        await pipe.Writer.CompleteAsync();

        MigrationHello hello = ((HelloFrame)(await ReadAllAsync(pipe.Reader)).Single()).Hello;

        Assert.AreEqual(version, hello.Version);
        Assert.AreEqual(minVersion, hello.MinimumVersion);
    }

    [TestMethod]
    public async Task UnsupportedVersion_IsCheckedBeforePageSize()
    {
        await ExpectAsync("Hello", "version", Frame(FrameType.Hello, HelloPayload(version: 1, pageSize: 65536)));
    }

    [TestMethod]
    [DataRow((ushort)0)]
    [DataRow((ushort)1)]
    [DataRow((ushort)4)]
    public async Task UnsupportedHelloAckVersion_IsRejected(ushort version)
    {
        byte[] ack = new byte[16];
        BinaryPrimitives.WriteUInt16LittleEndian(ack, version);
        await ExpectAsync("HelloAck", "version", Frame(FrameType.HelloAck, ack));
    }

    [TestMethod]
    [DataRow(0u)]
    [DataRow(16384u)]
    [DataRow(65536u)]
    public async Task WrongPageSize_IsRejected(uint pageSize)
    {
        await ExpectAsync("Hello", "pageSize", Frame(FrameType.Hello, HelloPayload(pageSize: pageSize)));
    }

    [TestMethod]
    public async Task HelloWithoutVcpus_IsRejected()
    {
        await ExpectAsync("Hello", "vcpuCount", Frame(FrameType.Hello, HelloPayload(vcpus: 0)));
    }

    [TestMethod]
    public async Task HelloWithInconsistentLength_IsRejected()
    {
        byte[] payload = HelloPayload();
        await ExpectAsync("Hello", "length", Frame(FrameType.Hello, payload.AsSpan(0, payload.Length - 1)));
        await ExpectAsync("Hello", "length", Frame(FrameType.Hello, payload.AsSpan(0, 20)));
    }

    [TestMethod]
    [DataRow(0x1000UL)]
    [DataRow(0UL)]
    public async Task HelloWithOverlappingRegions_IsAViolation(ulong secondAt)
    {
        // It reached the destination's factory, whose layout refused it as an argument error (DestinationFailure).
        byte[] one = HelloPayload();
        byte[] payload = [.. one.AsSpan(0, 56), .. new byte[16], .. one.AsSpan(56)];
        BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(16), 2);
        BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(56), secondAt);
        BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(64), 16 * (ulong)Page);
        MigrationProtocolException e = await ExpectAsync("Hello", "regions", Frame(FrameType.Hello, payload));
        StringAssert.Contains(e.Message, $"Region 1 (at 0x{secondAt:x}) overlaps region 0 (0x0 + 0x10000).");
    }

    [TestMethod]
    public async Task HelloWithUnalignedRegion_IsRejected()
    {
        byte[] payload = HelloPayload();
        BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(40), 0x800);
        await ExpectAsync("Hello", "regions", Frame(FrameType.Hello, payload));
    }

    [TestMethod]
    public async Task HelloWithAnAllZeroSessionId_IsRejected()
    {
        byte[] payload = HelloPayload();
        payload.AsSpan(24, 16).Clear();
        await ExpectAsync("Hello", "sessionId", Frame(FrameType.Hello, payload));
    }

    [TestMethod]
    public async Task PagesLengthMismatch_IsRejected()
    {
        // One run of two pages, but only one page of data.
        byte[] payload = PagesPayload(region: 0, (0, 2u));
        await ExpectAsync("Pages", "length", ValidHello, Frame(FrameType.Pages, payload.AsSpan(0, payload.Length - Page)));

        // One page too many.
        await ExpectAsync("Pages", "length", ValidHello, Frame(FrameType.Pages, Concat(payload, new byte[Page])));
    }

    [TestMethod]
    public async Task PagesLengthMismatch_CallsNoHandlerForEarlierRuns()
    {
        byte[] payload = PagesPayload(region: 0, (0, 1u), (5, 1u));
        var pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(Concat(ValidHello, Frame(FrameType.Pages, payload.AsSpan(0, payload.Length - 1))));
        await pipe.Writer.CompleteAsync();
        var reader = new PageStreamReader(pipe.Reader);
        var handler = new RecordingHandler();
        await Assert.ThrowsExactlyAsync<MigrationProtocolException>(async () =>
        {
            while (await reader.ReadAsync(handler))
            {
            }
        });
        Assert.HasCount(1, handler.Frames); // only the Hello
    }

    [TestMethod]
    public async Task EmptyPagesRun_IsRejected()
    {
        await ExpectAsync("Pages", "count", ValidHello, Frame(FrameType.Pages, PagesPayload(region: 0, (0, 1u), (3, 0u))));
    }

    [TestMethod]
    public async Task EmptyZeroPagesRun_IsRejected()
    {
        byte[] payload = new byte[8 + 16];
        BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(8), 7);
        await ExpectAsync("ZeroPages", "count", ValidHello, Frame(FrameType.ZeroPages, payload));
    }

    [TestMethod]
    public async Task PagesWithoutRuns_IsRejected()
    {
        byte[] payload = new byte[8 + 16];
        await ExpectAsync("Pages", "runCount", ValidHello, Frame(FrameType.Pages, payload));
    }

    [TestMethod]
    public async Task PagesWithNegativeRegion_IsRejected()
    {
        byte[] payload = PagesPayload(region: -1, (0, 1u));
        await ExpectAsync("Pages", "region", ValidHello, Frame(FrameType.Pages, payload));
    }

    [TestMethod]
    public async Task PagesRunWithReservedBits_IsRejected()
    {
        byte[] payload = PagesPayload(region: 0, (0, 1u));
        payload[8 + 12] = 1;
        await ExpectAsync("Pages", "reserved", ValidHello, Frame(FrameType.Pages, payload));
    }

    [TestMethod]
    public async Task WrongFixedSizes_AreRejected()
    {
        await ExpectAsync("RoundEnd", "length", ValidHello, Frame(FrameType.RoundEnd, new byte[23]));
        await ExpectAsync("Ack", "length", ValidHello, Frame(FrameType.Ack, new byte[9]));
        await ExpectAsync("Complete", "length", ValidHello, Frame(FrameType.Complete, new byte[1]));
        await ExpectAsync("HelloAck", "length", Frame(FrameType.HelloAck, new byte[15]));
    }

    [TestMethod]
    public async Task NegativeDurations_AreRejected()
    {
        byte[] ack = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(ack, -1);
        await ExpectAsync("Ack", "resumeDuration", ValidHello, Frame(FrameType.Ack, ack));
    }

    [TestMethod]
    [DataRow(864_000_000_001L)]
    [DataRow(long.MaxValue)]
    public async Task DurationsOverADay_AreRejected(long ticks)
    {
        // A destination's answers feed the forecast's sums; a duration beyond any migration's would overflow them.
        byte[] ack = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(ack, ticks);
        await ExpectAsync("Ack", "resumeDuration", ValidHello, Frame(FrameType.Ack, ack));
        byte[] helloAck = new byte[16];
        helloAck[0] = (byte)MigrationProtocol.Version;
        BinaryPrimitives.WriteInt64LittleEndian(helloAck.AsSpan(8), ticks);
        await ExpectAsync("HelloAck", "resumeCostEstimate", Frame(FrameType.HelloAck, helloAck));
    }

    [TestMethod]
    public async Task ADurationOfADay_IsAccepted()
    {
        byte[] ack = new byte[16];
        ack[0] = (byte)MigrationProtocol.Version;
        BinaryPrimitives.WriteInt64LittleEndian(ack.AsSpan(8), TimeSpan.FromDays(1).Ticks);
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(Frame(FrameType.HelloAck, ack));
        await pipe.Writer.CompleteAsync();
        var frames = await ReadAllAsync(pipe.Reader);
        Assert.AreEqual(new HelloAckFrame(new HelloAck(MigrationProtocol.Version, TimeSpan.FromDays(1))), frames[0]);
    }

    [TestMethod]
    public async Task DigestsWithWrongCount_AreRejected()
    {
        byte[] payload = new byte[8 + 16];
        BinaryPrimitives.WriteInt32LittleEndian(payload, 2);
        await ExpectAsync("Digests", "count", ValidHello, Frame(FrameType.Digests, payload));
    }

    [TestMethod]
    public async Task TruncatedStream_IsRejected()
    {
        byte[] complete = Frame(FrameType.RoundEnd, new byte[24]);

        // Inside a header.
        await ExpectAsync("stream", "length", ValidHello, complete.AsSpan(0, 5).ToArray());

        // Header complete, payload cut short.
        await ExpectAsync("stream", "length", ValidHello, complete.AsSpan(0, 20).ToArray());

        // Inside the very first frame.
        await ExpectAsync("stream", "length", ValidHello.AsSpan(0, ValidHello.Length - 1).ToArray());
    }

    [TestMethod]
    [DataRow(-1)]
    [DataRow(4097)]
    [DataRow(10)]
    [DataRow(2)]
    public async Task ErrorWithBadMessageLength_IsRejected(int declared)
    {
        byte[] payload = new byte[8 + 5];
        BinaryPrimitives.WriteUInt16LittleEndian(payload, (ushort)MigrationErrorCode.DestinationFailure);
        BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(4), declared);
        "oops!"u8.CopyTo(payload.AsSpan(8));
        await ExpectAsync("Error", "messageLength", Frame(FrameType.Error, payload));
    }

    [TestMethod]
    public async Task ErrorShorterThanItsFixedPart_IsRejected()
    {
        await ExpectAsync("Error", "length", Frame(FrameType.Error, new byte[7]));
    }

    [TestMethod]
    public async Task CleanEofBetweenFrames_ReturnsFalse()
    {
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(ValidHello);
        var reader = new PageStreamReader(pipe.Reader);
        var handler = new RecordingHandler();
        Assert.IsTrue(await reader.ReadAsync(handler));
        await pipe.Writer.CompleteAsync();
        Assert.IsFalse(await reader.ReadAsync(handler));
        Assert.HasCount(1, handler.Frames);
    }

    [TestMethod]
    public async Task CleanEofBeforeAnyFrame_ReturnsFalse()
    {
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.CompleteAsync();
        Assert.IsFalse(await new PageStreamReader(pipe.Reader).ReadAsync(new RecordingHandler()));
    }

    [TestMethod]
    public async Task FramesBeforeAViolation_AreDispatchedInOrder()
    {
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(Concat(ValidHello, Frame(FrameType.Complete, []), Frame((byte)FrameType.Complete, [], flags: 0x80)));
        await pipe.Writer.CompleteAsync();
        var reader = new PageStreamReader(pipe.Reader);
        var handler = new RecordingHandler();
        MigrationProtocolException ex = await Assert.ThrowsExactlyAsync<MigrationProtocolException>(async () =>
        {
            while (await reader.ReadAsync(handler))
            {
            }
        });
        Assert.AreEqual("flags", ex.Field);
        Assert.HasCount(2, handler.Frames);
        Assert.AreEqual(2, reader.FramesRead);
    }

    private static byte[] PagesPayload(int region, params (ulong First, uint Count)[] runs)
    {
        long pages = 0;
        foreach ((ulong _, uint count) in runs)
        {
            pages += count;
        }

        var payload = new byte[8 + (runs.Length * 16) + (pages * Page)];
        BinaryPrimitives.WriteInt32LittleEndian(payload, region);
        BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(4), runs.Length);
        for (int i = 0; i < runs.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(8 + (i * 16)), runs[i].First);
            BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(16 + (i * 16)), runs[i].Count);
        }

        return payload;
    }

    private static Task<MigrationProtocolException> ExpectAsync(string frame, string field, params byte[][] stream) => ExpectAsync(null, frame, field, stream);

    private static async Task<MigrationProtocolException> ExpectAsync(PageStreamOptions? options, string frame, string field, params byte[][] stream) =>
        (await ExpectRejectedAsync(options, frame, field, stream)).Error;
}
