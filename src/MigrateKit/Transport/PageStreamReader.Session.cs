using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace MigrateKit.Transport;

/// <summary>Decoding of the commit step and session frames (Ready, Commit, Done, Resume, Query and Status), and a Hello's versions.</summary>
public sealed partial class PageStreamReader
{
    /// <summary>Frames that may open a stream: the first frame of a migration, a reconnection or a query, their answers, and Error.</summary>
    private static bool CanOpen(FrameType type) =>
        type is FrameType.Hello or FrameType.HelloAck or FrameType.Error or FrameType.Resume or FrameType.Query or FrameType.Status;

    /// <summary>
    /// A Hello names the range of versions its sender speaks (minVer to version); it is accepted when
    /// that range meets this side's, and the destination answers with the newest version in both.
    /// </summary>
    private static void CheckHelloVersions(ushort version, ushort minimum)
    {
        if (version < MigrationProtocol.MinimumVersion)
        {
            CheckVersion("Hello", version);
        }

        if (minimum > version)
        {
            throw new MigrationProtocolException("Hello", "minVersion", $"The oldest version the sender accepts ({minimum}) is above its own version ({version}).");
        }

        if (minimum > MigrationProtocol.Version)
        {
            throw new MigrationProtocolException("Hello", "version", $"Protocol versions {minimum} to {version} are not supported (this side speaks {MigrationProtocol.MinimumVersion} to {MigrationProtocol.Version}).");
        }
    }

    private static void CheckEmpty(ReadOnlySequence<byte> payload, string frame)
    {
        if (!payload.IsEmpty)
        {
            throw new MigrationProtocolException(frame, "length", $"{frame} carries no payload (got {payload.Length} bytes).");
        }
    }

    private static void DispatchSessionFrame(IPageStreamHandler handler, FrameType type, ReadOnlySequence<byte> payload)
    {
        switch (type)
        {
            case FrameType.Ready:
            {
                Span<byte> s = Fixed(payload, "Ready", stackalloc byte[8]);
                handler.OnReady(new DestinationReady(Duration("Ready", "prepareDuration", BinaryPrimitives.ReadInt64LittleEndian(s))));
                break;
            }

            case FrameType.Commit:
                CheckEmpty(payload, "Commit");
                handler.OnCommit();
                break;
            case FrameType.Done:
                CheckEmpty(payload, "Done");
                handler.OnDone();
                break;
            case FrameType.Resume:
            {
                Span<byte> s = SessionFrame(payload, "Resume", stackalloc byte[PageStreamWriter.SessionFrameSize], out ushort version, out Guid session);
                int round = BinaryPrimitives.ReadInt32LittleEndian(s[24..]);
                if (round < 0)
                {
                    throw new MigrationProtocolException("Resume", "nextRound", $"Round {round} is negative.");
                }

                CheckZero("Resume", "reserved", s.Slice(28, 4));
                handler.OnResume(new MigrationResume(version, session, round));
                break;
            }

            case FrameType.Query:
            {
                Span<byte> s = SessionFrame(payload, "Query", stackalloc byte[PageStreamWriter.SessionFrameSize], out ushort version, out Guid session);
                var action = (SessionQueryAction)s[24];
                if (!Enum.IsDefined(action))
                {
                    throw new MigrationProtocolException("Query", "action", $"Unknown query action {s[24]}.");
                }

                CheckZero("Query", "reserved", s.Slice(25, 7));
                handler.OnQuery(new SessionQuery(version, session, action));
                break;
            }

            case FrameType.Status:
                handler.OnStatus(ParseStatus(payload));
                break;
            case FrameType.EncodedPages:
                DispatchEncodedPages(handler, payload);
                break;
        }
    }

    /// <summary>Checks the fixed 32 bytes of a Resume or Query: magic, then version, then the reserved field and the session id.</summary>
    private static Span<byte> SessionFrame(ReadOnlySequence<byte> payload, string frame, Span<byte> into, out ushort version, out Guid session)
    {
        Span<byte> s = Fixed(payload, frame, into);
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(s);
        if (magic != MigrationProtocol.HelloMagic)
        {
            throw new MigrationProtocolException(frame, "magic", $"Expected 0x{MigrationProtocol.HelloMagic:x8} (\"MKMG\"), got 0x{magic:x8}: the peer does not speak this protocol.");
        }

        version = BinaryPrimitives.ReadUInt16LittleEndian(s[4..]);
        CheckVersion(frame, version);
        CheckZero(frame, "reserved", s.Slice(6, 2));
        session = SessionId(frame, s.Slice(8, 16));
        return s;
    }

    private static Guid SessionId(string frame, ReadOnlySpan<byte> bytes)
    {
        var session = new Guid(bytes);
        return session != Guid.Empty ? session : throw new MigrationProtocolException(frame, "sessionId", "A session id is never all zero.");
    }

    private static SessionStatus ParseStatus(ReadOnlySequence<byte> payload)
    {
        if (payload.Length < 8)
        {
            throw new MigrationProtocolException("Status", "length", $"A Status frame is at least 8 bytes (got {payload.Length}).");
        }

        byte[] bytes = payload.ToArray();
        var state = (DestinationSessionState)bytes[0];
        if (!Enum.IsDefined(state))
        {
            throw new MigrationProtocolException("Status", "state", $"Unknown session state {bytes[0]}.");
        }

        CheckZero("Status", "reserved", bytes.AsSpan(1, 3));
        return new SessionStatus(state, Message("Status", bytes));
    }

    /// <summary>The UTF-8 message of an Error or Status frame: an i32 length at offset 4, the bytes from offset 8.</summary>
    private static string Message(string frame, byte[] bytes)
    {
        int length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4));
        if (length is < 0 or > MigrationProtocol.MaxStringBytes || bytes.Length != 8 + length)
        {
            throw new MigrationProtocolException(frame, "messageLength", $"A {length}-byte message does not make a {bytes.Length}-byte frame.");
        }

        // An invalid message is replaced, not fatal: it is only shown to people.
        return Encoding.UTF8.GetString(bytes, 8, length);
    }
}
