using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Threading;
using MigrateKit.Memory;

namespace MigrateKit.Transport;

/// <summary>
/// Runs every frame type once through a writer and a reader on a scratch pipe. The switchover
/// is the first time a process writes or reads DeviceState, Digests, Complete and Ack; without
/// a rehearsal their JIT compilation (several milliseconds) lands inside the downtime.
/// </summary>
internal static class StreamRehearsal
{
    private static int _done;

    /// <summary>Rehearses once per process (compiled code stays); later calls return at once.</summary>
    internal static void Run(GuestMemoryRegion region, ReadOnlySpan<byte> deviceState)
    {
        if (Interlocked.Exchange(ref _done, 1) != 0)
        {
            return;
        }

        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        using (var writer = new PageStreamWriter(pipe.Writer))
        {
            writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
            writer.AppendPages(region.Index, region, [new PageRun(0, 1)]);
            writer.AppendZeroPages(region.Index, [new PageRun(0, 1)]);
            writer.AppendRoundEnd(new RoundEnd(0, 1, 0));
            writer.AppendRoundAck(0);
            writer.AppendDeviceState(deviceState);
            // An array, as the switchover sends: its IReadOnlyList code is generic over a struct, never shared.
            writer.AppendDigests(new[] { new RegionDigest(region.Index, 0) });
            writer.AppendComplete();
            writer.AppendReady(new DestinationReady(TimeSpan.Zero));
            writer.AppendCommit();
            writer.AppendAck(new CompletionAck(TimeSpan.Zero));
            writer.FlushAsync().AsTask().GetAwaiter().GetResult();
        }

        pipe.Writer.Complete();
        var reader = new PageStreamReader(pipe.Reader);
        var sink = new Sink();
        while (reader.ReadAsync(sink).AsTask().GetAwaiter().GetResult())
        {
        }

        pipe.Reader.Complete();
    }

    private sealed class Sink : IPageStreamHandler
    {
        public void OnHello(MigrationHello hello)
        {
        }

        public void OnHelloAck(HelloAck ack)
        {
        }

        public void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data)
        {
        }

        public void OnZeroPages(int region, ulong firstPage, ulong count)
        {
        }

        public void OnRoundEnd(RoundEnd roundEnd)
        {
        }

        public void OnRoundAck(int round)
        {
        }

        public void OnDeviceState(ReadOnlySequence<byte> state)
        {
        }

        public void OnDigests(IReadOnlyList<RegionDigest> digests)
        {
            // Read as the destination's session copies them (count, then each by index).
            var copy = new RegionDigest[digests.Count];
            for (int i = 0; i < copy.Length; i++)
            {
                copy[i] = digests[i];
            }
        }

        public void OnComplete()
        {
        }

        public void OnAck(CompletionAck ack)
        {
        }

        public void OnReady(DestinationReady ready)
        {
        }

        public void OnCommit()
        {
        }

        public void OnError(MigrationError error)
        {
        }
    }
}
