using System.Buffers;
using System.Collections.Generic;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>A handler for a stream that must carry nothing more: any frame is a violation.</summary>
internal sealed class RefuseEverything : IPageStreamHandler
{
    public void OnHello(MigrationHello hello) => throw Refused("Hello");

    public void OnHelloAck(HelloAck ack) => throw Refused("HelloAck");

    public void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data) => throw Refused("Pages");

    public void OnZeroPages(int region, ulong firstPage, ulong count) => throw Refused("ZeroPages");

    public void OnRoundEnd(RoundEnd roundEnd) => throw Refused("RoundEnd");

    public void OnDeviceState(ReadOnlySequence<byte> state) => throw Refused("DeviceState");

    public void OnDigests(IReadOnlyList<RegionDigest> digests) => throw Refused("Digests");

    public void OnComplete() => throw Refused("Complete");

    public void OnAck(CompletionAck ack) => throw Refused("Ack");

    public void OnError(MigrationError error) => throw Refused("Error");

    private static MigrationProtocolException Refused(string frame) => new(frame, "type", $"{frame} arrived after the migration ended.");
}
