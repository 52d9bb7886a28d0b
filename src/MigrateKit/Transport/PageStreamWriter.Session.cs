using System;
using System.Buffers.Binary;
using System.Text;

namespace MigrateKit.Transport;

/// <summary>The frames of the commit step and sessions: Ready, Commit, Ack, Done, Resume, Query and Status.</summary>
public sealed partial class PageStreamWriter
{
    /// <summary>Bytes of a Hello before its region table: the fixed fields and the session id.</summary>
    internal const int HelloFixedSize = 40;

    /// <summary>Bytes of a Resume or Query frame.</summary>
    internal const int SessionFrameSize = 32;

    /// <summary>Appends a <see cref="FrameType.Ready"/> frame: the destination waits, paused, for Commit.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The prepare duration is negative or over a day.</exception>
    public void AppendReady(DestinationReady ready)
    {
        long ticks = DurationTicks(ready.PrepareDuration, nameof(ready));
        Span<byte> s = Begin(FrameType.Ready, 8);
        BinaryPrimitives.WriteInt64LittleEndian(s, ticks);
        Commit(8);
    }

    /// <summary>Appends a <see cref="FrameType.Commit"/> frame: the destination may start the VM.</summary>
    public void AppendCommit()
    {
        Begin(FrameType.Commit, 0);
        Commit(0);
    }

    /// <summary>Appends an <see cref="FrameType.Ack"/> frame: the VM runs on the destination.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The resume duration is negative or over a day.</exception>
    public void AppendAck(CompletionAck ack)
    {
        long ticks = DurationTicks(ack.ResumeDuration, nameof(ack));
        Span<byte> s = Begin(FrameType.Ack, 8);
        BinaryPrimitives.WriteInt64LittleEndian(s, ticks);
        Commit(8);
    }

    /// <summary>Appends a <see cref="FrameType.Done"/> frame (version 3): the source has the Ack.</summary>
    public void AppendDone()
    {
        Begin(FrameType.Done, 0);
        Commit(0);
    }

    /// <summary>Appends a <see cref="FrameType.Resume"/> frame, the first frame of a reconnection.</summary>
    /// <exception cref="ArgumentException">The session id is empty or the round negative.</exception>
    public void AppendResume(MigrationResume resume)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(resume.NextRound, nameof(resume));
        Span<byte> s = BeginSessionFrame(FrameType.Resume, resume.Version, resume.SessionId, nameof(resume));
        BinaryPrimitives.WriteInt32LittleEndian(s[24..], resume.NextRound);
        s.Slice(28, 4).Clear();
        Commit(SessionFrameSize);
    }

    /// <summary>Appends a <see cref="FrameType.Query"/> frame, the first frame of a connection that asks about a session.</summary>
    /// <exception cref="ArgumentException">The session id is empty or the action unknown.</exception>
    public void AppendQuery(SessionQuery query)
    {
        if (!Enum.IsDefined(query.Action))
        {
            throw new ArgumentException($"Unknown query action {(byte)query.Action}.", nameof(query));
        }

        Span<byte> s = BeginSessionFrame(FrameType.Query, query.Version, query.SessionId, nameof(query));
        s[24] = (byte)query.Action;
        s.Slice(25, 7).Clear();
        Commit(SessionFrameSize);
    }

    /// <summary>Appends a <see cref="FrameType.Status"/> frame; a message over 4096 UTF-8 bytes is cut at a character boundary.</summary>
    /// <exception cref="ArgumentException">The state is unknown.</exception>
    public void AppendStatus(SessionStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        if (!Enum.IsDefined(status.State))
        {
            throw new ArgumentException($"Unknown session state {(byte)status.State}.", nameof(status));
        }

        string message = Truncated(status.Message);
        int bytes = Encoding.UTF8.GetByteCount(message);
        int payload = 8 + bytes;
        Span<byte> s = Begin(FrameType.Status, payload);
        s[0] = (byte)status.State;
        s.Slice(1, 3).Clear();
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], bytes);
        Encoding.UTF8.GetBytes(message, s[8..]);
        Commit(payload);
    }

    private Span<byte> BeginSessionFrame(FrameType type, ushort version, Guid session, string paramName)
    {
        CheckSessionId(session, paramName);
        Span<byte> s = Begin(type, SessionFrameSize);
        BinaryPrimitives.WriteUInt32LittleEndian(s, MigrationProtocol.HelloMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], version);
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], 0);
        session.TryWriteBytes(s.Slice(8, 16));
        return s;
    }

    private static void CheckSessionId(Guid session, string paramName)
    {
        if (session == Guid.Empty)
        {
            throw new ArgumentException("A session id is never all zero.", paramName);
        }
    }

    /// <summary>A message cut to the protocol's 4096 UTF-8 bytes at a character boundary.</summary>
    private static string Truncated(string? text)
    {
        string message = text ?? string.Empty;
        while (Encoding.UTF8.GetByteCount(message) > MigrationProtocol.MaxStringBytes)
        {
            int cut = message.Length * 3 / 4;
            message = message[..(cut > 0 && char.IsHighSurrogate(message[cut - 1]) ? cut - 1 : cut)];
        }

        return message;
    }

    // A reader refuses these (PageStreamReader.Duration); refusing them here names the writer's caller.
    private static long DurationTicks(TimeSpan duration, string name) =>
        MigrationProtocol.IsWireDuration(duration)
            ? duration.Ticks
            : throw new ArgumentOutOfRangeException(name, duration, $"A duration on the wire is between zero and {MigrationProtocol.MaxDuration.TotalHours:0} hours.");
}
