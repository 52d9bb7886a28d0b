using System;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;
using static MigrateKit.Tests.Transport.TransportTestSupport;

namespace MigrateKit.Tests.Transport;

/// <summary>The rows of PROTOCOL.md §4 for protocol v2's frames: Hello's session id, Resume, Query, Ready, Commit and Status, and which of them may open a stream.</summary>
[TestClass]
public sealed class SessionFrameRejectionTests
{
    private static readonly byte[] ValidHello = Frame(FrameType.Hello, HelloPayload());

    private static readonly byte[] ResumeTail = [3, 0, 0, 0, 0, 0, 0, 0];

    private static readonly byte[] QueryTail = [0, 0, 0, 0, 0, 0, 0, 0];

    [TestMethod]
    [DataRow(FrameType.Resume)]
    [DataRow(FrameType.Query)]
    public async Task SessionFrameWithAnAllZeroSessionId_IsRejected(FrameType type)
    {
        byte[] payload = SessionPayload(type == FrameType.Resume ? ResumeTail : QueryTail);
        payload.AsSpan(8, 16).Clear();
        await ExpectAsync(type.ToString(), "sessionId", Frame(type, payload));
    }

    [TestMethod]
    [DataRow(FrameType.Resume, 31)]
    [DataRow(FrameType.Resume, 33)]
    [DataRow(FrameType.Query, 0)]
    [DataRow(FrameType.Query, 31)]
    [DataRow(FrameType.Query, 40)]
    public async Task SessionFrameOfAnotherLength_IsRejected(FrameType type, int length)
    {
        byte[] payload = new byte[length];
        SessionPayload(QueryTail).AsSpan(0, Math.Min(32, length)).CopyTo(payload);
        await ExpectAsync(type.ToString(), "length", Frame(type, payload));
    }

    [TestMethod]
    [DataRow(FrameType.Resume)]
    [DataRow(FrameType.Query)]
    public async Task SessionFrame_ChecksMagicFirst_ThenVersion(FrameType type)
    {
        byte[] tail = type == FrameType.Resume ? [0, 0, 0, 0x80, 1, 0, 0, 0] : [9, 1, 0, 0, 0, 0, 0, 0];

        // Bad magic beside a bad version, a bad reserved field and a bad tail: magic is named.
        byte[] payload = SessionPayload(tail, magic: 0x54544547, version: 1, reserved: 1);
        payload.AsSpan(8, 16).Clear();
        await ExpectAsync(type.ToString(), "magic", Frame(type, payload));

        // Then the version, before everything after it.
        payload = SessionPayload(tail, version: 1, reserved: 1);
        await ExpectAsync(type.ToString(), "version", Frame(type, payload));
        await ExpectAsync(type.ToString(), "version", Frame(type, SessionPayload(type == FrameType.Resume ? ResumeTail : QueryTail, version: MigrationProtocol.Version + 1)));
    }

    [TestMethod]
    [DataRow(FrameType.Resume)]
    [DataRow(FrameType.Query)]
    public async Task SessionFrameWithNonZeroReservedHalfword_IsRejected(FrameType type)
    {
        await ExpectAsync(type.ToString(), "reserved", Frame(type, SessionPayload(type == FrameType.Resume ? ResumeTail : QueryTail, reserved: 0x0100)));
    }

    [TestMethod]
    [DataRow(28)]
    [DataRow(31)]
    public async Task ResumeWithNonZeroReservedTail_IsRejected(int offset)
    {
        byte[] payload = SessionPayload(ResumeTail);
        payload[offset] = 1;
        await ExpectAsync("Resume", "reserved", Frame(FrameType.Resume, payload));
    }

    [TestMethod]
    [DataRow(-1)]
    [DataRow(int.MinValue)]
    public async Task ResumeWithANegativeNextRound_IsRejected(int round)
    {
        byte[] tail = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(tail, round);
        await ExpectAsync("Resume", "nextRound", Frame(FrameType.Resume, SessionPayload(tail)));
    }

    [TestMethod]
    [DataRow((byte)3)]
    [DataRow((byte)255)]
    public async Task QueryWithAnUnknownAction_IsRejected(byte action)
    {
        await ExpectAsync("Query", "action", Frame(FrameType.Query, SessionPayload([action, 0, 0, 0, 0, 0, 0, 0])));
    }

    [TestMethod]
    [DataRow(25)]
    [DataRow(31)]
    public async Task QueryWithNonZeroReservedBytes_IsRejected(int offset)
    {
        byte[] payload = SessionPayload(QueryTail);
        payload[offset] = 1;
        await ExpectAsync("Query", "reserved", Frame(FrameType.Query, payload));
    }

    [TestMethod]
    [DataRow(7)]
    [DataRow(9)]
    public async Task ReadyOfAnotherLength_IsRejected(int length)
    {
        await ExpectAsync("Ready", "length", ValidHello, Frame(FrameType.Ready, new byte[length]));
    }

    [TestMethod]
    [DataRow(-1L)]
    [DataRow(long.MaxValue)]
    public async Task ReadyWithADurationOutOfRange_IsRejected(long ticks)
    {
        byte[] payload = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(payload, ticks);
        await ExpectAsync("Ready", "prepareDuration", ValidHello, Frame(FrameType.Ready, payload));
    }

    [TestMethod]
    public async Task CommitWithAPayload_IsRejected()
    {
        await ExpectAsync("Commit", "length", ValidHello, Frame(FrameType.Commit, new byte[1]));
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(7)]
    public async Task StatusShorterThan8Bytes_IsRejected(int length)
    {
        await ExpectAsync("Status", "length", Frame(FrameType.Status, new byte[length]));
    }

    [TestMethod]
    [DataRow((byte)5)]
    [DataRow((byte)255)]
    public async Task StatusWithAnUnknownState_IsRejected(byte state)
    {
        await ExpectAsync("Status", "state", Frame(FrameType.Status, StatusPayload(state, 0, [])));
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(3)]
    public async Task StatusWithNonZeroReservedBytes_IsRejected(int offset)
    {
        byte[] payload = StatusPayload(2, 0, []);
        payload[offset] = 1;
        await ExpectAsync("Status", "reserved", Frame(FrameType.Status, payload));
    }

    [TestMethod]
    [DataRow(-1, 0)]
    [DataRow(4097, 4097)]
    [DataRow(3, 2)]
    [DataRow(2, 3)]
    public async Task StatusWhoseMessageLengthDoesNotMatch_IsRejected(int declared, int actual)
    {
        await ExpectAsync("Status", "messageLength", Frame(FrameType.Status, StatusPayload(3, declared, new byte[actual])));
    }

    [TestMethod]
    public async Task StatusWithInvalidUtf8_IsAcceptedWithTheBytesReplaced()
    {
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(Frame(FrameType.Status, StatusPayload(3, 2, [0xFF, (byte)'a'])));
        await pipe.Writer.CompleteAsync();
        var status = (StatusFrame)(await ReadAllAsync(pipe.Reader))[0];
        Assert.AreEqual(new SessionStatus(DestinationSessionState.Started, "\uFFFDa"), status.Status);
    }

    [TestMethod]
    [DataRow(FrameType.Ready)]
    [DataRow(FrameType.Commit)]
    public async Task ReadyOrCommitAsFirstFrame_IsRejected(FrameType type)
    {
        await ExpectAsync(type.ToString(), "type", Frame(type, type == FrameType.Ready ? new byte[8] : []));
    }

    [TestMethod]
    public async Task ResumeQueryAndStatus_MayOpenAStream()
    {
        foreach (byte[] first in new[] { Frame(FrameType.Resume, SessionPayload(ResumeTail)), Frame(FrameType.Query, SessionPayload(QueryTail)), Frame(FrameType.Status, StatusPayload(0, 0, [])) })
        {
            Pipe pipe = UnboundedPipe();
            await pipe.Writer.WriteAsync(Concat(first, Frame(FrameType.Commit, [])));
            await pipe.Writer.CompleteAsync();
            var frames = await ReadAllAsync(pipe.Reader);
            Assert.HasCount(2, frames);
            Assert.IsInstanceOfType<CommitFrame>(frames[1]);
        }
    }

    [TestMethod]
    public async Task ResumeFrame_CarriesTheSessionAndRound()
    {
        Pipe pipe = UnboundedPipe();
        await pipe.Writer.WriteAsync(Frame(FrameType.Resume, SessionPayload(ResumeTail)));
        await pipe.Writer.CompleteAsync();
        Assert.AreEqual(new ResumeFrame(new MigrationResume(MigrationProtocol.Version, TestSession, 3)), (await ReadAllAsync(pipe.Reader))[0]);
    }

    private static byte[] StatusPayload(byte state, int messageLength, byte[] message)
    {
        var payload = new byte[8 + message.Length];
        payload[0] = state;
        BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(4), messageLength);
        message.CopyTo(payload, 8);
        return payload;
    }

    private static async Task ExpectAsync(string frame, string field, params byte[][] stream) =>
        await ExpectRejectedAsync(null, frame, field, stream);
}
