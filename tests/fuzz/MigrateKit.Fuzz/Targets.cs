using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO.Pipelines;
using MigrateKit.Guests;
using MigrateKit.Kvm;
using MigrateKit.Memory;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.Fuzz;

/// <summary>The fuzz targets: each decodes one input and lets only an undocumented exception escape (a crash to afl).</summary>
internal static class Targets
{
    /// <summary>A decoder under test and the valid inputs it starts from.</summary>
    internal sealed record Target(Action<byte[]> Run, Func<IEnumerable<(string Name, byte[] Bytes)>> Seeds);

    private const ulong MiB = 1UL << 20;

    private static PageStreamOptions? s_streamOptions;

    /// <summary>Small limits so a mutated length field reaches them.</summary>
    /// <remarks>
    /// Created on first use, not in a static initializer: instrumented code that runs before
    /// SharpFuzz's fork server starts writes its coverage through a null map and crashes.
    /// </remarks>
    private static PageStreamOptions StreamOptions => s_streamOptions ??= new()
    {
        MaxFramePayload = 64 << 10,
        MaxPagesPerFrame = 8,
        PauseWriterThreshold = 128 << 10,
        ResumeWriterThreshold = 64 << 10,
    };

    public static IReadOnlyDictionary<string, Target> All { get; } = new Dictionary<string, Target>
    {
        ["page-stream"] = new(ReadPageStream, PageStreamSeeds),
        ["vcpu-state"] = new(DecodeVcpuState, VcpuStateSeeds),
        ["host-device-state"] = new(DecodeHostDeviceState, HostDeviceStateSeeds),
        ["page-delta"] = new(DecodePageDelta, PageDeltaSeeds),
        ["compressed-page"] = new(DecompressPage, CompressedPageSeeds),
    };

    private static void ReadPageStream(byte[] input)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        pipe.Writer.Write(input);
        pipe.Writer.Complete();
        var reader = new PageStreamReader(pipe.Reader, StreamOptions);
        try
        {
            // The pipe is complete, so every read finishes synchronously.
            while (reader.ReadAsync(new DiscardingHandler()).AsTask().GetAwaiter().GetResult())
            {
            }
        }
        catch (MigrationProtocolException)
        {
            // The documented rejection.
        }
    }

    private static void DecodeVcpuState(byte[] input)
    {
        try
        {
            VcpuState.Deserialize(input);
        }
        catch (FormatException)
        {
            // The documented rejection.
        }
    }

    private static void DecodeHostDeviceState(byte[] input)
    {
        try
        {
            // What HostVm applies to a received state before it runs it.
            (HostWorkload w, HostWorkerState state) = HostDeviceState.Read(input);
            HostDeviceState.CheckWorkload(w);
            HostDeviceState.CheckFits(w, state);
        }
        catch (FormatException)
        {
            // The documented rejection.
        }
    }

    private static void DecodePageDelta(byte[] input)
    {
        try
        {
            PageDelta.Decode(input, new byte[MigrationProtocol.PageSize]);
        }
        catch (MigrationProtocolException)
        {
            // The documented rejection.
        }
    }

    private static void DecompressPage(byte[] input)
    {
        try
        {
            PageCompression.Decompress(input, new byte[MigrationProtocol.PageSize]);
        }
        catch (MigrationProtocolException)
        {
            // The documented rejection.
        }
    }

    private static IEnumerable<(string, byte[])> PageDeltaSeeds()
    {
        byte[] previous = SeedPage();
        byte[] current = (byte[])previous.Clone();
        current[0] ^= 1;
        yield return ("first-byte", Encoded(previous, current));
        current[3000] ^= 0xFF;
        current[4095] ^= 0x10;
        for (int i = 200; i < 340; i += 3)
        {
            current[i] ^= 0x55;
        }

        yield return ("runs", Encoded(previous, current));
    }

    private static IEnumerable<(string, byte[])> CompressedPageSeeds()
    {
        byte[] destination = new byte[MigrationProtocol.PageSize];
        yield return ("words", destination[..PageCompression.TryCompress(SeedPage(), destination, PageCompression.FastLevel)]);
        yield return ("zeros", destination[..PageCompression.TryCompress(new byte[MigrationProtocol.PageSize], destination, PageCompression.FastLevel)]);
    }

    /// <summary>Repeated words with a slowly changing twist: a compressible page, and a base to make deltas against.</summary>
    private static byte[] SeedPage()
    {
        byte[] page = new byte[MigrationProtocol.PageSize];
        for (int i = 0; i < page.Length; i++)
        {
            page[i] = (byte)("migrate page "[i % 13] ^ (i / 13 % 4));
        }

        return page;
    }

    private static byte[] Encoded(byte[] previous, byte[] current)
    {
        byte[] destination = new byte[MigrationProtocol.PageSize];
        return destination[..PageDelta.Encode(previous, current, destination)];
    }

    private static IEnumerable<(string, byte[])> PageStreamSeeds()
    {
        const int page = MigrationProtocol.PageSize;
        var hello = new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, 4 * (ulong)page), new GuestMemoryRegionSpec(1UL << 32, 2 * (ulong)page)], 2, "seed")
        {
            // Fixed, so regenerating the corpus gives the same files.
            SessionId = Guid.Parse("5eed5eed-0000-4000-8000-5eed5eed5eed"),
        };
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 4 * (ulong)page)]);
        memory.Regions[0].GetPage(1).Fill(0x5A);
        yield return ("hello", Written(w => w.AppendHello(hello)));
        yield return ("session", Written(w =>
        {
            w.AppendHello(hello);
            w.AppendPages(0, memory.Regions[0], [new PageRun(1, 1)]);
            w.AppendZeroPages(0, [new PageRun(2, 2)]);
            w.AppendRoundEnd(new RoundEnd(1, 3, 3 * page));
            w.AppendDeviceState([1, 2, 3, 4]);
            w.AppendDigests([new RegionDigest(0, 42), new RegionDigest(1, 7)]);
            w.AppendComplete();
            w.AppendCommit();
            w.AppendDone();
        }));
        yield return ("destination", Written(w =>
        {
            w.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.FromMilliseconds(2)));
            w.AppendRoundAck(1);
            w.AppendReady(new DestinationReady(TimeSpan.FromMilliseconds(1)));
            w.AppendAck(new CompletionAck(TimeSpan.FromMilliseconds(1)));
        }));
        yield return ("resume", Written(w =>
        {
            w.AppendResume(new MigrationResume(MigrationProtocol.Version, hello.SessionId, 3));
            w.AppendZeroPages(0, [new PageRun(0, 1)]);
            w.AppendRoundEnd(new RoundEnd(3, 0, 0));
        }));
        yield return ("encoded", Written(w =>
        {
            // One page of each form: compressed (a run of one byte), raw (no pattern), then a delta of it.
            var batch = new EncodedPageBatch(new PageEncoder(new SentPageCache(4L * page), PageCompression.FastLevel), StreamOptions);
            byte[] noise = new byte[page];
            new Random(5).NextBytes(noise);
            w.AppendHello(hello);
            batch.Add(0, 1, memory.Regions[0].GetPage(1), null, out _);
            batch.Add(0, 3, noise, null, out _);
            batch.AppendTo(w);
            noise[17]++;
            batch.Add(0, 3, noise, null, out _);
            batch.AppendTo(w);
        }));
        yield return ("query", Written(w => w.AppendQuery(new SessionQuery(MigrationProtocol.Version, hello.SessionId, SessionQueryAction.Commit))));
        yield return ("status", Written(w => w.AppendStatus(new SessionStatus(DestinationSessionState.Started, "started"))));
        yield return ("error", Written(w => w.AppendError(new MigrationError(MigrationErrorCode.ProtocolViolation, "no"))));
    }

    private static IEnumerable<(string, byte[])> VcpuStateSeeds()
    {
        var regs = new KvmRegisters { Rip = 0x1000, Rflags = 2, Rsp = 0x8000 };
        yield return ("none", VcpuState.Serialize([]));
        yield return ("one", VcpuState.Serialize([new VcpuState(0, regs, default)]));
        yield return ("two", VcpuState.Serialize([new VcpuState(0, regs, default), new VcpuState(1, default, default, Running: false)]));
    }

    private static IEnumerable<(string, byte[])> HostDeviceStateSeeds()
    {
        HostWorkload hotCold = HostWorkload.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(2 * MiB, 6 * MiB), 7);
        yield return ("hot-cold", HostDeviceState.Write(hotCold, new HostWorkerState { Pass = 2, Position = 3, Rng = 5 }, started: true));
        yield return ("halted", HostDeviceState.Write(hotCold, new HostWorkerState { Pass = 1, Position = 0, Rng = 1, Halted = true, Failures = 1, FirstFailedPage = 300 }, started: true));
    }

    private static byte[] Written(Action<PageStreamWriter> write)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        using (var writer = new PageStreamWriter(pipe.Writer, StreamOptions))
        {
            write(writer);
            writer.FlushAsync().AsTask().GetAwaiter().GetResult();
        }

        pipe.Writer.Complete();
        pipe.Reader.TryRead(out ReadResult read);
        byte[] bytes = read.Buffer.ToArray();
        pipe.Reader.AdvanceTo(read.Buffer.End);
        return bytes;
    }

    /// <summary>Takes every frame and keeps nothing.</summary>
    private sealed class DiscardingHandler : IPageStreamHandler
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

        // Decoded as a receiver would, so every form's checks run on what the fuzzer makes.
        public void OnEncodedPage(int region, ulong page, PageEncoding encoding, ReadOnlySequence<byte> data) =>
            PageEncoder.Decode(encoding, data.ToArray(), new byte[MigrationProtocol.PageSize]);

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

        public void OnRoundAck(int round)
        {
        }

        public void OnReady(DestinationReady ready)
        {
        }

        public void OnCommit()
        {
        }

        public void OnResume(MigrationResume resume)
        {
        }

        public void OnQuery(SessionQuery query)
        {
        }

        public void OnStatus(SessionStatus status)
        {
        }

        public void OnDone()
        {
        }
    }
}
