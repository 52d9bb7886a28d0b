using System;
using System.Collections.Generic;
using MigrateKit.Memory;

namespace MigrateKit.Transport;

/// <summary>Constants of the MigrateKit page-stream protocol (see <c>docs/PROTOCOL.md</c>).</summary>
public static class MigrationProtocol
{
    /// <summary>
    /// The newest protocol version this library speaks. Version 3 added <see cref="FrameType.Done"/>,
    /// the source's word that the Ack arrived; with a version 2 peer a clean end of stream stands for it.
    /// </summary>
    public const ushort Version = 3;

    /// <summary>
    /// The oldest protocol version this library accepts from a peer. Version 1 had no commit step
    /// (a lost Ack could leave the VM running on both sides), so it is refused.
    /// </summary>
    public const ushort MinimumVersion = 2;

    /// <summary>Bytes in every frame header: payload length (u32), type (u8), flags (u8), reserved (u16).</summary>
    public const int FrameHeaderSize = 8;

    /// <summary>The page size every page frame carries.</summary>
    public const int PageSize = (int)GuestMemoryLayout.PageSize;

    /// <summary>"MKMG" little-endian: the first four payload bytes of a Hello.</summary>
    internal const uint HelloMagic = 0x474D4B4D;

    /// <summary>Upper bound for strings carried in frames (VM name, error message), in UTF-8 bytes.</summary>
    internal const int MaxStringBytes = 4096;

    /// <summary>Upper bound for regions announced in one Hello.</summary>
    internal const int MaxRegions = 1024;

    /// <summary>
    /// Upper bound for durations carried in frames (resume cost, prepare and resume times): no
    /// migration step takes a day, and a larger value would overflow the forecast's sums.
    /// </summary>
    internal static readonly TimeSpan MaxDuration = TimeSpan.FromDays(1);

    /// <summary>Whether a duration may be carried in a frame: zero to <see cref="MaxDuration"/>.</summary>
    internal static bool IsWireDuration(TimeSpan duration) => duration >= TimeSpan.Zero && duration <= MaxDuration;

    /// <summary>The version two peers speak: the newer of the two that both accept.</summary>
    internal static ushort Negotiate(ushort peerVersion) => peerVersion < Version ? peerVersion : Version;
}

/// <summary>The type byte of a frame header.</summary>
public enum FrameType : byte
{
    /// <summary>Source → destination: protocol version, page size, memory regions, vCPU count.</summary>
    Hello = 1,

    /// <summary>Destination → source: accepted version and the destination's resume-cost estimate.</summary>
    HelloAck = 2,

    /// <summary>Page runs of one region with their data.</summary>
    Pages = 3,

    /// <summary>Runs of all-zero pages of one region, without data.</summary>
    ZeroPages = 4,

    /// <summary>The end of one pre-copy round.</summary>
    RoundEnd = 5,

    /// <summary>Opaque device state (vCPU registers for a MicroVm).</summary>
    DeviceState = 6,

    /// <summary>Per-region memory digests the destination must match.</summary>
    Digests = 7,

    /// <summary>The source has sent everything; the destination may resume.</summary>
    Complete = 8,

    /// <summary>Destination → source: the VM runs on the destination.</summary>
    Ack = 9,

    /// <summary>Either direction: the sender gives up, with a code and a message.</summary>
    Error = 10,

    /// <summary>Destination → source: every frame up to a round's RoundEnd has been applied.</summary>
    RoundAck = 11,

    /// <summary>Destination → source: digests matched and the device state is restored; the VM waits, paused, for Commit.</summary>
    Ready = 12,

    /// <summary>Source → destination: start the VM. After sending it the source never resumes on its own.</summary>
    Commit = 13,

    /// <summary>Source → destination, first frame of a new connection: continue an interrupted session.</summary>
    Resume = 14,

    /// <summary>First frame of a new connection: ask what became of a session, and optionally resolve it.</summary>
    Query = 15,

    /// <summary>Destination → querier: the state of the session asked about.</summary>
    Status = 16,

    /// <summary>Pages of one region, each in its own encoding (raw, delta against the copy last sent, compressed).</summary>
    EncodedPages = 17,

    /// <summary>Source → destination, after the Ack (version 3): the Ack arrived, the source lets go of its copy.</summary>
    Done = 18,
}

/// <summary>Why a peer sent an <see cref="FrameType.Error"/> frame.</summary>
public enum MigrationErrorCode : ushort
{
    /// <summary>No more specific code applies.</summary>
    Unknown = 0,

    /// <summary>The peer received a frame that breaks the protocol.</summary>
    ProtocolViolation = 1,

    /// <summary>The peer speaks no protocol version this side accepts.</summary>
    UnsupportedVersion = 2,

    /// <summary>The destination could not create or fill the VM.</summary>
    DestinationFailure = 3,

    /// <summary>The destination's memory does not match the source's digests.</summary>
    DigestMismatch = 4,

    /// <summary>The source aborted the migration (policy, cancellation or a local failure).</summary>
    SourceAborted = 5,

    /// <summary>A Resume named a session the destination does not hold, or one that cannot continue.</summary>
    SessionUnavailable = 6,
}

/// <summary>The first frame of a migration: what the destination must build.</summary>
/// <param name="Version">The sender's protocol version.</param>
/// <param name="Regions">Guest-physical memory regions, in order.</param>
/// <param name="VcpuCount">How many vCPUs the VM has.</param>
/// <param name="SourceName">A name for logs (at most 4096 UTF-8 bytes).</param>
public sealed record MigrationHello(ushort Version, IReadOnlyList<GuestMemoryRegionSpec> Regions, int VcpuCount, string SourceName)
{
    /// <summary>
    /// Names the migration across reconnections (Resume) and for a later Query; random, never all
    /// zero on the wire. A Hello created without one gets a new one.
    /// </summary>
    public Guid SessionId { get; init; } = Guid.NewGuid();

    /// <summary>The oldest protocol version the sender accepts; the destination answers with the newest version both speak.</summary>
    public ushort MinimumVersion { get; init; } = MigrationProtocol.MinimumVersion;
}

/// <summary>The destination's answer to <see cref="MigrationHello"/>.</summary>
/// <param name="Version">The protocol version the destination will speak.</param>
/// <param name="ResumeCostEstimate">How long the destination expects restoring device state and starting vCPUs to take.</param>
public readonly record struct HelloAck(ushort Version, TimeSpan ResumeCostEstimate);

/// <summary>Marks the end of a pre-copy round.</summary>
/// <param name="Round">The round number (0-based).</param>
/// <param name="PagesSent">Pages sent with data in the round.</param>
/// <param name="BytesSent">Bytes put on the wire in the round, headers included.</param>
public readonly record struct RoundEnd(int Round, ulong PagesSent, ulong BytesSent);

/// <summary>The digest of one region's memory (see <see cref="RegionDigestAccumulator"/>).</summary>
/// <param name="Region">The region index.</param>
/// <param name="Digest">The digest value.</param>
public readonly record struct RegionDigest(int Region, ulong Digest);

/// <summary>The destination's final acknowledgement.</summary>
/// <param name="ResumeDuration">How long restoring device state and starting the vCPUs took.</param>
public readonly record struct CompletionAck(TimeSpan ResumeDuration);

/// <summary>The destination's answer to Complete: the VM is built, checked and paused, waiting for Commit.</summary>
/// <param name="PrepareDuration">From Complete to Ready on the destination: the digest check and the device-state restore.</param>
public readonly record struct DestinationReady(TimeSpan PrepareDuration);

/// <summary>The first frame of a reconnection: the source continues an interrupted session.</summary>
/// <param name="Version">The sender's protocol version.</param>
/// <param name="SessionId">The session the Hello opened.</param>
/// <param name="NextRound">The round the source sends next.</param>
public readonly record struct MigrationResume(ushort Version, Guid SessionId, int NextRound);

/// <summary>What a <see cref="SessionQuery"/> asks the destination to do besides answering.</summary>
public enum SessionQueryAction : byte
{
    /// <summary>Only report the session's state.</summary>
    Ask = 0,

    /// <summary>Start the VM if it is ready and paused (the source committed), then report.</summary>
    Commit = 1,

    /// <summary>Discard the VM if it has not started (the source will run it), then report.</summary>
    Abort = 2,
}

/// <summary>The first frame of a connection that asks what became of a session.</summary>
/// <param name="Version">The sender's protocol version.</param>
/// <param name="SessionId">The session asked about.</param>
/// <param name="Action">What to do besides answering.</param>
public readonly record struct SessionQuery(ushort Version, Guid SessionId, SessionQueryAction Action);

/// <summary>A session's state as its destination knows it.</summary>
public enum DestinationSessionState : byte
{
    /// <summary>The destination does not know the session (never seen, or forgotten). It proves nothing about the VM.</summary>
    Unknown = 0,

    /// <summary>Pre-copy was under way when the connection was lost; the destination keeps what it received for a Resume.</summary>
    Receiving = 1,

    /// <summary>The VM is built, checked and paused on the destination; it starts only on Commit.</summary>
    Ready = 2,

    /// <summary>The VM runs on the destination: the source must not resume.</summary>
    Started = 3,

    /// <summary>The destination released the VM without ever starting it: the source may resume.</summary>
    Discarded = 4,
}

/// <summary>The destination's answer to a <see cref="SessionQuery"/>.</summary>
/// <param name="State">What the destination knows of the session.</param>
/// <param name="Message">A human-readable detail (at most 4096 UTF-8 bytes on the wire).</param>
public sealed record SessionStatus(DestinationSessionState State, string Message);

/// <summary>An error a peer reports before it hangs up.</summary>
/// <param name="Code">What kind of failure.</param>
/// <param name="Message">A human-readable explanation (at most 4096 UTF-8 bytes on the wire).</param>
public sealed record MigrationError(MigrationErrorCode Code, string Message);

/// <summary>
/// A frame broke the protocol: wrong magic or version, an unknown type, a length over the
/// limit, a non-zero reserved field or inconsistent contents; or the stream ended inside a frame
/// (<see cref="StreamCut"/>). The stream cannot continue after it.
/// </summary>
public sealed class MigrationProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="frame">The frame (type name) at fault.</param>
    /// <param name="field">The field at fault.</param>
    /// <param name="message">What is wrong.</param>
    public MigrationProtocolException(string frame, string field, string message)
        : base($"Protocol violation in {frame}.{field}: {message}")
    {
        Frame = frame;
        Field = field;
    }

    // Not worded as a violation: it is reported as the lost link it almost always is.
    private MigrationProtocolException(long arrived)
        : base($"The stream ended inside a frame ({arrived} bytes of it arrived).")
    {
        Frame = "stream";
        Field = "length";
        StreamCut = true;
    }

    /// <summary>The frame at fault, for example <c>Hello</c> or <c>Pages</c>.</summary>
    public string Frame { get; }

    /// <summary>The field at fault, for example <c>version</c> or <c>length</c>.</summary>
    public string Field { get; }

    /// <summary>
    /// Whether the stream ended inside a frame (<see cref="Frame"/> <c>stream</c>): the link was cut
    /// mid-frame, by a proxy that closed it or a peer that died while writing. Nothing of the partial
    /// frame was delivered; the engine and the receiver treat this as a lost link, as after a reset.
    /// </summary>
    public bool StreamCut { get; }

    internal static MigrationProtocolException Cut(long arrived) => new(arrived);
}
