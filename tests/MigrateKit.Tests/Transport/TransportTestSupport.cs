using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

/// <summary>One decoded frame (or one run of a Pages/ZeroPages frame), as a handler saw it.</summary>
internal abstract record ReceivedFrame;

internal sealed record HelloFrame(MigrationHello Hello) : ReceivedFrame;

internal sealed record HelloAckFrame(HelloAck Ack) : ReceivedFrame;

internal sealed record PagesRun(int Region, ulong FirstPage, int Count, byte[] Data) : ReceivedFrame;

internal sealed record ZeroRun(int Region, ulong FirstPage, ulong Count) : ReceivedFrame;

internal sealed record EncodedPageFrame(int Region, ulong Page, PageEncoding Encoding, byte[] Data) : ReceivedFrame;

internal sealed record RoundEndFrame(RoundEnd RoundEnd) : ReceivedFrame;

internal sealed record RoundAckFrame(int Round) : ReceivedFrame;

internal sealed record DeviceStateFrame(byte[] State) : ReceivedFrame;

internal sealed record DigestsFrame(IReadOnlyList<RegionDigest> Digests) : ReceivedFrame;

internal sealed record CompleteFrame : ReceivedFrame;

internal sealed record AckFrame(CompletionAck Ack) : ReceivedFrame;

internal sealed record ErrorFrame(MigrationError Error) : ReceivedFrame;

internal sealed record ReadyFrame(DestinationReady Ready) : ReceivedFrame;

internal sealed record CommitFrame : ReceivedFrame;

internal sealed record DoneFrame : ReceivedFrame;

internal sealed record ResumeFrame(MigrationResume Resume) : ReceivedFrame;

internal sealed record QueryFrame(SessionQuery Query) : ReceivedFrame;

internal sealed record StatusFrame(SessionStatus Status) : ReceivedFrame;

/// <summary>Records every callback, copying sequences (they are only valid during the call).</summary>
internal sealed class RecordingHandler : IPageStreamHandler
{
    public List<ReceivedFrame> Frames { get; } = [];

    public void OnHello(MigrationHello hello) => Frames.Add(new HelloFrame(hello));

    public void OnHelloAck(HelloAck ack) => Frames.Add(new HelloAckFrame(ack));

    public void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data) => Frames.Add(new PagesRun(region, firstPage, count, data.ToArray()));

    public void OnZeroPages(int region, ulong firstPage, ulong count) => Frames.Add(new ZeroRun(region, firstPage, count));

    public void OnEncodedPage(int region, ulong page, PageEncoding encoding, ReadOnlySequence<byte> data) => Frames.Add(new EncodedPageFrame(region, page, encoding, data.ToArray()));

    public void OnRoundEnd(RoundEnd roundEnd) => Frames.Add(new RoundEndFrame(roundEnd));

    public void OnRoundAck(int round) => Frames.Add(new RoundAckFrame(round));

    public void OnDeviceState(ReadOnlySequence<byte> state) => Frames.Add(new DeviceStateFrame(state.ToArray()));

    public void OnDigests(IReadOnlyList<RegionDigest> digests) => Frames.Add(new DigestsFrame(digests));

    /// <summary>Runs when a Complete frame arrives (a destination that answers it).</summary>
    public Action? CompleteReceived { get; init; }

    public bool Completed { get; private set; }

    public void OnComplete()
    {
        Frames.Add(new CompleteFrame());
        Completed = true;
        CompleteReceived?.Invoke();
    }

    public void OnAck(CompletionAck ack) => Frames.Add(new AckFrame(ack));

    public void OnError(MigrationError error) => Frames.Add(new ErrorFrame(error));

    /// <summary>Runs when a Commit frame arrives (a destination that answers it).</summary>
    public Action? CommitReceived { get; init; }

    public bool Committed { get; private set; }

    public void OnReady(DestinationReady ready) => Frames.Add(new ReadyFrame(ready));

    public void OnCommit()
    {
        Frames.Add(new CommitFrame());
        Committed = true;
        CommitReceived?.Invoke();
    }

    public void OnResume(MigrationResume resume) => Frames.Add(new ResumeFrame(resume));

    public void OnQuery(SessionQuery query) => Frames.Add(new QueryFrame(query));

    public void OnStatus(SessionStatus status) => Frames.Add(new StatusFrame(status));

    public void OnDone() => Frames.Add(new DoneFrame());
}

internal static class TransportTestSupport
{
    public const int Page = MigrationProtocol.PageSize;

    /// <summary>A pipe that never pauses its writer, so tests can write everything before reading.</summary>
    public static Pipe UnboundedPipe() => new(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));

    /// <summary>Maps one region of <paramref name="pages"/> pages and fills it with random bytes.</summary>
    public static GuestMemoryLayout RandomMemory(ulong pages, int seed, ulong gpa = 0)
    {
        var layout = new GuestMemoryLayout([new GuestMemoryRegionSpec(gpa, pages * (ulong)Page)]);
        var random = new Random(seed);
        GuestMemoryRegion region = layout.Regions[0];
        for (ulong p = 0; p < pages; p++)
        {
            random.NextBytes(region.GetPage(p));
        }

        return layout;
    }

    /// <summary>The bytes a writer produces for <paramref name="write"/>.</summary>
    public static async Task<byte[]> WrittenBytesAsync(Action<PageStreamWriter> write, PageStreamOptions? options = null)
    {
        Pipe pipe = UnboundedPipe();
        using (var writer = new PageStreamWriter(pipe.Writer, options))
        {
            write(writer);
            await writer.FlushAsync();
        }

        await pipe.Writer.CompleteAsync();
        var all = new ArrayBufferWriter<byte>();
        while (true)
        {
            ReadResult read = await pipe.Reader.ReadAsync();
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                all.Write(segment.Span);
            }

            pipe.Reader.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                break;
            }
        }

        return all.WrittenSpan.ToArray();
    }

    /// <summary>Reads frames until a clean EOF, returning what the handler saw.</summary>
    public static async Task<List<ReceivedFrame>> ReadAllAsync(PipeReader input, PageStreamOptions? options = null)
    {
        var reader = new PageStreamReader(input, options);
        var handler = new RecordingHandler();
        while (await reader.ReadAsync(handler))
        {
        }

        return handler.Frames;
    }

    /// <summary>A frame header followed by a payload; the length field defaults to the payload's length.</summary>
    public static byte[] Frame(byte type, ReadOnlySpan<byte> payload, uint? length = null, byte flags = 0, ushort reserved = 0)
    {
        var bytes = new byte[MigrationProtocol.FrameHeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, length ?? (uint)payload.Length);
        bytes[4] = type;
        bytes[5] = flags;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(6), reserved);
        payload.CopyTo(bytes.AsSpan(MigrationProtocol.FrameHeaderSize));
        return bytes;
    }

    public static byte[] Frame(FrameType type, ReadOnlySpan<byte> payload) => Frame((byte)type, payload);

    /// <summary>The session id of <see cref="HelloPayload"/>.</summary>
    public static readonly Guid TestSession = Guid.Parse("5e551075e551075e551075e551075e55");

    /// <summary>A valid Hello payload (one region of 16 pages, 1 vCPU, name "src") with the given overrides.</summary>
    public static byte[] HelloPayload(uint magic = MigrationProtocol.HelloMagic, ushort version = MigrationProtocol.Version, uint pageSize = MigrationProtocol.PageSize, int vcpus = 1, ushort minVersion = MigrationProtocol.MinimumVersion)
    {
        byte[] name = "src"u8.ToArray();
        var p = new byte[40 + 16 + name.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(p, magic);
        BinaryPrimitives.WriteUInt16LittleEndian(p.AsSpan(4), version);
        BinaryPrimitives.WriteUInt16LittleEndian(p.AsSpan(6), minVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(8), pageSize);
        BinaryPrimitives.WriteInt32LittleEndian(p.AsSpan(12), vcpus);
        BinaryPrimitives.WriteInt32LittleEndian(p.AsSpan(16), 1);
        BinaryPrimitives.WriteInt32LittleEndian(p.AsSpan(20), name.Length);
        TestSession.TryWriteBytes(p.AsSpan(24, 16));
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(40), 0);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(48), 16 * (ulong)Page);
        name.CopyTo(p.AsSpan(56));
        return p;
    }

    /// <summary>A valid Resume or Query payload (32 bytes): magic, version, reserved, <see cref="TestSession"/>, then <paramref name="tail"/> at offset 24.</summary>
    public static byte[] SessionPayload(ReadOnlySpan<byte> tail, uint magic = MigrationProtocol.HelloMagic, ushort version = MigrationProtocol.Version, ushort reserved = 0)
    {
        var p = new byte[24 + tail.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(p, magic);
        BinaryPrimitives.WriteUInt16LittleEndian(p.AsSpan(4), version);
        BinaryPrimitives.WriteUInt16LittleEndian(p.AsSpan(6), reserved);
        TestSession.TryWriteBytes(p.AsSpan(8, 16));
        tail.CopyTo(p.AsSpan(24));
        return p;
    }

    /// <summary>
    /// Reads <paramref name="stream"/> to its end and asserts that it is refused with (<paramref name="frame"/>, <paramref name="field"/>);
    /// returns what was handled before the refusal, and the refusal.
    /// </summary>
    public static async Task<(RecordingHandler Handler, MigrationProtocolException Error)> ExpectRejectedAsync(PageStreamOptions? options, string frame, string field, params byte[][] stream)
    {
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(Concat(stream));
        await pipe.Writer.CompleteAsync();
        var reader = new PageStreamReader(pipe.Reader, options);
        var handler = new RecordingHandler();
        MigrationProtocolException ex = await Assert.ThrowsExactlyAsync<MigrationProtocolException>(async () =>
        {
            while (await reader.ReadAsync(handler))
            {
            }
        });
        Assert.AreEqual(frame, ex.Frame, ex.Message);
        Assert.AreEqual(field, ex.Field, ex.Message);
        Assert.AreEqual(frame == "stream", ex.StreamCut, "only a stream that ends inside a frame is a cut link: " + ex.Message);
        return (handler, ex);
    }

    public static byte[] Concat(params byte[][] parts)
    {
        var all = new List<byte>();
        foreach (byte[] part in parts)
        {
            all.AddRange(part);
        }

        return all.ToArray();
    }
}
