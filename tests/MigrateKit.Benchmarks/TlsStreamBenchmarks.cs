using System;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Tasks;
using BenchmarkDotNet.Attributes;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Benchmarks;

/// <summary>
/// What mutual TLS costs the page stream: 16 MiB of Pages frames (64 frames of 256 pages, framed
/// and hashed as the engine does) sent over a loopback TCP connection and decoded on the other
/// side, in plain text and over TLS 1.3. One operation moves 16 MiB of page data.
/// </summary>
public class TlsStreamBenchmarks
{
    private const int Frames = 64;
    private const int PagesPerFrame = 256;
    private readonly PageRun[] _runs = [new PageRun(0, PagesPerFrame)];
    private GuestMemoryLayout _memory = null!;
    private RegionDigestAccumulator _digest = null!;
    private MigrationListener _listener = null!;
    private IMigrationConnection _source = null!;
    private IMigrationConnection _destination = null!;
    private PageStreamWriter _writer = null!;
    private PageStreamReader _reader = null!;
    private PageStreamBenchmarks.CountingHandler _handler = null!;

    /// <summary>Whether the connection runs mutual TLS.</summary>
    [Params(false, true)]
    public bool Tls { get; set; }

    /// <summary>Maps 1 MiB of random guest memory and opens the connection.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 1 << 20)]);
        new Random(1).NextBytes(_memory.Regions[0].GetSpan(0, 1 << 20));
        _digest = new RegionDigestAccumulator(PagesPerFrame);
        (MigrationTlsOptions? source, MigrationTlsOptions? destination) = Tls ? CreateTls() : (null, null);
        _listener = MigrationListener.Listen("tcp:127.0.0.1:0", destination, null);
        Task<IMigrationConnection> accepting = _listener.AcceptAsync();
        _source = MigrationConnector.ConnectAsync(_listener.LocalAddress, source, null).GetAwaiter().GetResult();
        _destination = accepting.GetAwaiter().GetResult();
        _writer = new PageStreamWriter(_source.Output);
        _reader = new PageStreamReader(_destination.Input);
        _handler = new PageStreamBenchmarks.CountingHandler();

        // A stream opens with a Hello or HelloAck: send one so Pages frames are accepted.
        _writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        _writer.FlushAsync().AsTask().GetAwaiter().GetResult();
        _reader.ReadAsync(_handler).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Closes the connection and unmaps the memory.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _writer.Dispose();
        _source.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _destination.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _memory.Dispose();
    }

    /// <summary>Sends 64 Pages frames while the other side decodes them.</summary>
    [Benchmark]
    public long MovePages16MiB()
    {
        long target = _handler.Pages + (Frames * PagesPerFrame);
        Task receiving = Task.Run(async () =>
        {
            while (_handler.Pages < target)
            {
                await _reader.ReadAsync(_handler);
            }
        });
        for (int i = 0; i < Frames; i++)
        {
            _writer.AppendPages(0, _memory.Regions[0], _runs, _digest);
            _writer.FlushAsync().AsTask().GetAwaiter().GetResult();
        }

        receiving.GetAwaiter().GetResult();
        return _handler.Pages;
    }

    private static (MigrationTlsOptions Source, MigrationTlsOptions Destination) CreateTls()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        X509Certificate2 authority = MigrationTlsCertificates.CreateAuthority("benchmark CA", now.AddHours(-1), now.AddDays(1));
        MigrationTlsOptions For(string name) => new()
        {
            Certificate = MigrationTlsCertificates.CreateIssued(authority, name, now.AddHours(-1), now.AddDays(1)),
            CertificateAuthority = authority,
        };
        return (For("source"), For("destination"));
    }
}
