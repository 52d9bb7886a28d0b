using System.Buffers;
using System.Collections.Generic;

namespace MigrateKit.Transport;

/// <summary>Receives the frames a <see cref="PageStreamReader"/> decodes.</summary>
/// <remarks>
/// Sequences passed to a handler are valid only during the call. Throwing from a handler ends
/// the read with that exception.
/// </remarks>
public interface IPageStreamHandler
{
    /// <summary>A Hello (already checked: magic, version, page size).</summary>
    void OnHello(MigrationHello hello);

    /// <summary>A HelloAck.</summary>
    void OnHelloAck(HelloAck ack);

    /// <summary>One run of a Pages frame: <paramref name="count"/> pages starting at <paramref name="firstPage"/>, <c>count × 4096</c> bytes of data.</summary>
    void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data);

    /// <summary>One run of a ZeroPages frame.</summary>
    void OnZeroPages(int region, ulong firstPage, ulong count);

    /// <summary>
    /// One page of an EncodedPages frame, checked for its form's length but not decoded. Refused as
    /// a protocol violation unless implemented.
    /// </summary>
    void OnEncodedPage(int region, ulong page, PageEncoding encoding, ReadOnlySequence<byte> data) => throw NotExpected("EncodedPages");

    /// <summary>A RoundEnd.</summary>
    void OnRoundEnd(RoundEnd roundEnd);

    /// <summary>A RoundAck: the destination applied every frame up to the RoundEnd of <paramref name="round"/>. Ignored unless implemented.</summary>
    void OnRoundAck(int round)
    {
    }

    /// <summary>A DeviceState frame's bytes.</summary>
    void OnDeviceState(ReadOnlySequence<byte> state);

    /// <summary>A Digests frame.</summary>
    void OnDigests(IReadOnlyList<RegionDigest> digests);

    /// <summary>A Complete frame.</summary>
    void OnComplete();

    /// <summary>An Ack frame.</summary>
    void OnAck(CompletionAck ack);

    /// <summary>An Error frame.</summary>
    void OnError(MigrationError error);

    /// <summary>A Ready frame (sent by a destination). Refused as a protocol violation unless implemented.</summary>
    void OnReady(DestinationReady ready) => throw NotExpected("Ready");

    /// <summary>A Commit frame (sent by a source). Refused as a protocol violation unless implemented.</summary>
    void OnCommit() => throw NotExpected("Commit");

    /// <summary>A Resume frame (a source's reconnection). Refused as a protocol violation unless implemented.</summary>
    void OnResume(MigrationResume resume) => throw NotExpected("Resume");

    /// <summary>A Query frame (a source or an operator asking about a session). Refused as a protocol violation unless implemented.</summary>
    void OnQuery(SessionQuery query) => throw NotExpected("Query");

    /// <summary>A Status frame (a destination's answer to a Query). Refused as a protocol violation unless implemented.</summary>
    void OnStatus(SessionStatus status) => throw NotExpected("Status");

    /// <summary>A Done frame (sent by a version 3 source after the Ack). Refused as a protocol violation unless implemented.</summary>
    void OnDone() => throw NotExpected("Done");

    private static MigrationProtocolException NotExpected(string frame) =>
        new(frame, "type", $"{frame} frames are not expected here.");
}
