using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Transport;
using static MigrateKit.Tests.Transport.TransportTestSupport;

namespace MigrateKit.Tests.Transport;

/// <summary>Protocol v2's frames (PageStreamWriter.Session, PageStreamReader.Session): round trips, the layout PROTOCOL.md §3 draws, and the writer's argument checks.</summary>
[TestClass]
public sealed class SessionFrameRoundTripTests
{
    private static readonly Guid Session = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");

    [TestMethod]
    public async Task V2Frames_RoundTripFieldByField()
    {
        var hello = new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, 8 * (ulong)Page)], 2, "vm") { SessionId = Session };
        var ready = new DestinationReady(TimeSpan.FromTicks(0x12_0304_0506));
        var resume = new MigrationResume(MigrationProtocol.Version, Session, 7);
        var query = new SessionQuery(MigrationProtocol.Version, Session, SessionQueryAction.Abort);
        var status = new SessionStatus(DestinationSessionState.Discarded, "released \u2603");

        Pipe pipe = UnboundedPipe();
        long written;
        using (var writer = new PageStreamWriter(pipe.Writer))
        {
            writer.AppendHello(hello);
            writer.AppendReady(ready);
            writer.AppendCommit();
            writer.AppendDone();
            writer.AppendResume(resume);
            writer.AppendQuery(query);
            writer.AppendStatus(status);
            written = writer.BytesWritten;
            await writer.FlushAsync();
        }

        await pipe.Writer.CompleteAsync();
        var reader = new PageStreamReader(pipe.Reader);
        var handler = new RecordingHandler();
        while (await reader.ReadAsync(handler))
        {
        }

        Assert.AreEqual(written, reader.BytesRead);
        List<ReceivedFrame> f = handler.Frames;
        Assert.HasCount(7, f);
        Assert.AreEqual(Session, ((HelloFrame)f[0]).Hello.SessionId);
        Assert.AreEqual(MigrationProtocol.MinimumVersion, ((HelloFrame)f[0]).Hello.MinimumVersion);
        Assert.AreEqual(new ReadyFrame(ready), f[1]);
        Assert.IsInstanceOfType<CommitFrame>(f[2]);
        Assert.IsInstanceOfType<DoneFrame>(f[3]);
        Assert.AreEqual(new ResumeFrame(resume), f[4]);
        Assert.AreEqual(new QueryFrame(query), f[5]);
        Assert.AreEqual(status, ((StatusFrame)f[6]).Status);
    }

    [TestMethod]
    [DataRow(SessionQueryAction.Ask)]
    [DataRow(SessionQueryAction.Commit)]
    [DataRow(SessionQueryAction.Abort)]
    public async Task EveryQueryAction_RoundTripsAsTheFirstFrame(SessionQueryAction action)
    {
        List<ReceivedFrame> frames = await RoundTripAsync(w => w.AppendQuery(new SessionQuery(MigrationProtocol.Version, Session, action)));
        Assert.AreEqual(new QueryFrame(new SessionQuery(MigrationProtocol.Version, Session, action)), frames.Single());
    }

    [TestMethod]
    [DataRow(DestinationSessionState.Unknown)]
    [DataRow(DestinationSessionState.Receiving)]
    [DataRow(DestinationSessionState.Ready)]
    [DataRow(DestinationSessionState.Started)]
    [DataRow(DestinationSessionState.Discarded)]
    public async Task EveryStatusState_RoundTripsAsTheFirstFrame(DestinationSessionState state)
    {
        List<ReceivedFrame> frames = await RoundTripAsync(w => w.AppendStatus(new SessionStatus(state, "")));
        Assert.AreEqual(new SessionStatus(state, ""), ((StatusFrame)frames.Single()).Status);
    }

    [TestMethod]
    public async Task Hello_CarriesTheSessionIdAtOffset24_AndTheRegionsAt40()
    {
        var hello = new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0x2000, 3 * (ulong)Page)], 1, "ab") { SessionId = Session };
        byte[] bytes = await WrittenBytesAsync(w => w.AppendHello(hello));

        byte[] payload = bytes[MigrationProtocol.FrameHeaderSize..];
        Assert.HasCount(40 + 16 + 2, payload);
        Assert.AreEqual((uint)payload.Length, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        Assert.AreEqual((byte)FrameType.Hello, bytes[4]);
        CollectionAssert.AreEqual("MKMG"u8.ToArray(), payload[..4]);
        Assert.AreEqual(MigrationProtocol.Version, BinaryPrimitives.ReadUInt16LittleEndian(payload.AsSpan(4)));
        Assert.AreEqual(MigrationProtocol.MinimumVersion, BinaryPrimitives.ReadUInt16LittleEndian(payload.AsSpan(6)));
        Assert.AreEqual(1, BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(16)));
        Assert.AreEqual(2, BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(20)));
        CollectionAssert.AreEqual(Session.ToByteArray(), payload[24..40]);
        Assert.AreEqual(0x2000UL, BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(40)));
        Assert.AreEqual(3UL * Page, BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(48)));
        CollectionAssert.AreEqual("ab"u8.ToArray(), payload[56..]);
    }

    [TestMethod]
    public async Task ReadyCommitResumeQueryStatus_HaveTheDocumentedLayout()
    {
        byte[] bytes = await WrittenBytesAsync(w =>
        {
            w.AppendReady(new DestinationReady(TimeSpan.FromTicks(0x12_0304_0506))); // 2.1 h: durations stay within a day
            w.AppendCommit();
            w.AppendDone();
            w.AppendResume(new MigrationResume(MigrationProtocol.Version, Session, 0x0A0B0C0D));
            w.AppendQuery(new SessionQuery(MigrationProtocol.Version, Session, SessionQueryAction.Commit));
            w.AppendStatus(new SessionStatus(DestinationSessionState.Started, "ok"));
        });

        byte[] id = Session.ToByteArray();
        byte[] sessionHead = [0x4D, 0x4B, 0x4D, 0x47, 3, 0, 0, 0, .. id];
        byte[] expected =
        [
            8, 0, 0, 0, (byte)FrameType.Ready, 0, 0, 0, 6, 5, 4, 3, 0x12, 0, 0, 0,
            0, 0, 0, 0, (byte)FrameType.Commit, 0, 0, 0,
            0, 0, 0, 0, 18, 0, 0, 0,
            32, 0, 0, 0, (byte)FrameType.Resume, 0, 0, 0, .. sessionHead, 0x0D, 0x0C, 0x0B, 0x0A, 0, 0, 0, 0,
            32, 0, 0, 0, (byte)FrameType.Query, 0, 0, 0, .. sessionHead, 1, 0, 0, 0, 0, 0, 0, 0,
            10, 0, 0, 0, (byte)FrameType.Status, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, (byte)'o', (byte)'k',
        ];
        CollectionAssert.AreEqual(expected, bytes);
    }

    [TestMethod]
    public void Writer_RefusesAnEmptySessionId_ANegativeRound_AndUnknownActionsOrStates()
    {
        using var writer = new PageStreamWriter(UnboundedPipe().Writer);
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendResume(new MigrationResume(MigrationProtocol.Version, Guid.Empty, 0)));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => writer.AppendResume(new MigrationResume(MigrationProtocol.Version, Session, -1)));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendQuery(new SessionQuery(MigrationProtocol.Version, Guid.Empty, SessionQueryAction.Ask)));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendQuery(new SessionQuery(MigrationProtocol.Version, Session, (SessionQueryAction)3)));
        Assert.ThrowsExactly<ArgumentException>(() => writer.AppendStatus(new SessionStatus((DestinationSessionState)5, "")));
        Assert.ThrowsExactly<ArgumentNullException>(() => writer.AppendStatus(null!));
        Assert.AreEqual(0, writer.BytesWritten, "a refused frame writes nothing");
    }

    [TestMethod]
    [DataRow("\u00e9", 5000)] // 2-byte characters
    [DataRow("\U0001F600", 2000)] // surrogate pairs, 4 bytes each
    [DataRow("a", 4097)]
    public async Task Status_LongMessageIsCutToTheLimitAtACharacterBoundary(string unit, int repeat)
    {
        string message = string.Concat(Enumerable.Repeat(unit, repeat));
        List<ReceivedFrame> frames = await RoundTripAsync(w => w.AppendStatus(new SessionStatus(DestinationSessionState.Ready, message)));

        string got = ((StatusFrame)frames.Single()).Status.Message;
        Assert.IsLessThanOrEqualTo(MigrationProtocol.MaxStringBytes, Encoding.UTF8.GetByteCount(got));
        Assert.IsGreaterThan(0, got.Length);
        Assert.IsTrue(message.StartsWith(got, StringComparison.Ordinal), "the cut message is a prefix");
        Assert.IsFalse(char.IsHighSurrogate(got[^1]), "no half of a surrogate pair is left at the end");
        Assert.AreEqual(0, got.Length % unit.Length, "cut between characters");
    }

    [TestMethod]
    public async Task Status_MessageOfExactlyTheLimitIsKeptWhole()
    {
        string message = new('x', MigrationProtocol.MaxStringBytes);
        List<ReceivedFrame> frames = await RoundTripAsync(w => w.AppendStatus(new SessionStatus(DestinationSessionState.Unknown, message)));
        Assert.AreEqual(message, ((StatusFrame)frames.Single()).Status.Message);
    }

    private static async Task<List<ReceivedFrame>> RoundTripAsync(Action<PageStreamWriter> write)
    {
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(await WrittenBytesAsync(write));
        await pipe.Writer.CompleteAsync();
        return await ReadAllAsync(pipe.Reader);
    }
}
