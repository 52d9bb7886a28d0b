using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Benchmarks;

/// <summary>
/// The page path of the stream: framing 1 MiB of guest pages (256 pages in one Pages frame,
/// copied from guest memory and hashed for the digest) and decoding them again, through a Pipe,
/// without a socket. One operation moves 1 MiB of page data.
/// </summary>
public class PageStreamBenchmarks
{
    private readonly PageRun[] _runs = [new PageRun(0, 256)];
    private GuestMemoryLayout _memory = null!;
    private RegionDigestAccumulator _digest = null!;
    private Pipe _pipe = null!;
    private PageStreamWriter _writer = null!;
    private PageStreamReader _reader = null!;
    private CountingHandler _handler = null!;

    /// <summary>Whether the writer bounds its waits for the connection, as the engine's does.</summary>
    [Params(false, true)]
    public bool StallTimeout { get; set; }

    /// <summary>Maps 1 MiB of random guest memory and a pipe.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 1 << 20)]);
        new Random(1).NextBytes(_memory.Regions[0].GetSpan(0, 1 << 20));
        _digest = new RegionDigestAccumulator(256);
        _pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 64 << 20, resumeWriterThreshold: 32 << 20, minimumSegmentSize: 64 * 1024, useSynchronizationContext: false));
        _writer = StallTimeout ? new PageStreamWriter(_pipe.Writer).BoundStalls(TimeSpan.FromSeconds(30), () => 0) : new PageStreamWriter(_pipe.Writer);
        _reader = new PageStreamReader(_pipe.Reader);
        _handler = new CountingHandler();
        _writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        _writer.FlushAsync().AsTask().GetAwaiter().GetResult();
        _reader.ReadAsync(_handler).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Unmaps the memory.</summary>
    [GlobalCleanup]
    public void Cleanup() => _memory.Dispose();

    /// <summary>Frames 256 pages (copy + XxHash3 per page) and flushes them into the pipe.</summary>
    [Benchmark]
    public long AppendPages1MiB()
    {
        _writer.AppendPages(0, _memory.Regions[0], _runs, _digest);
        _writer.FlushAsync().AsTask().GetAwaiter().GetResult();
        ReadResult read = _pipe.Reader.ReadAsync().AsTask().GetAwaiter().GetResult();
        long length = read.Buffer.Length;
        _pipe.Reader.AdvanceTo(read.Buffer.End);
        return length;
    }

    /// <summary>Frames 256 pages and decodes them back through the reader and a handler.</summary>
    [Benchmark]
    public long RoundTrip1MiB()
    {
        _writer.AppendPages(0, _memory.Regions[0], _runs, _digest);
        _writer.FlushAsync().AsTask().GetAwaiter().GetResult();
        _reader.ReadAsync(_handler).AsTask().GetAwaiter().GetResult();
        return _handler.Pages;
    }

    /// <summary>Counts the pages it is handed; every other frame is ignored.</summary>
    internal sealed class CountingHandler : IPageStreamHandler
    {
        public long Pages { get; private set; }

        public void OnHello(MigrationHello hello)
        {
        }

        public void OnHelloAck(HelloAck ack)
        {
        }

        public void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data) => Pages += count;

        public void OnZeroPages(int region, ulong firstPage, ulong count)
        {
        }

        public void OnRoundEnd(RoundEnd roundEnd)
        {
        }

        public void OnDeviceState(ReadOnlySequence<byte> state)
        {
        }

        public void OnDigests(IReadOnlyList<RegionDigest> digests)
        {
        }

        public void OnComplete()
        {
        }

        public void OnAck(CompletionAck ack)
        {
        }

        public void OnError(MigrationError error)
        {
        }
    }
}
