using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Threading.Tasks;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;
using static MigrateKit.Tests.Transport.TransportTestSupport;

namespace MigrateKit.Tests.Transport;

/// <summary>
/// PageStreamReader on arbitrary bytes: frames or a <see cref="MigrationProtocolException"/>, nothing else,
/// in bounded time and bounded allocation.
/// </summary>
[TestClass]
public sealed class PageStreamReaderPropertyTests
{
    // Small limits so a generated length field can actually reach them.
    private static readonly PageStreamOptions Options = new()
    {
        MaxFramePayload = 64 << 10,
        MaxPagesPerFrame = 8,
        PauseWriterThreshold = 128 << 10,
        ResumeWriterThreshold = 64 << 10,
    };

    // The reader may copy one frame's payload and decode its fields; anything beyond that plus
    // fixed overhead means it allocated from a declared size rather than from bytes received.
    private static readonly long AllocationBound = (2L * Options.MaxFramePayload) + (64 << 10);

    private static readonly TimeSpan PerInputTimeout = TimeSpan.FromSeconds(5);

    private static byte[]? s_valid;

    private static byte[]? s_session;

    [TestMethod]
    public void RandomBytes_YieldFramesOrAProtocolViolation()
    {
        Gen.Byte.Array[0, 2048].Sample(AssertReadsCleanly, iter: 10_000, threads: 1);
    }

    [TestMethod]
    public void MutatedValidStreams_YieldFramesOrAProtocolViolation()
    {
        byte[] valid = ValidStream();
        Gen<byte[]> mutated = ByteMutations.Of(valid);
        mutated.Sample(AssertReadsCleanly, iter: 10_000, threads: 1);
    }

    [TestMethod]
    public void TheUnmutatedValidStream_DecodesEveryFrame()
    {
        Assert.AreEqual(8, Drain(ValidStream()).Frames);
    }

    [TestMethod]
    public void MutatedSessionStreams_YieldFramesOrAProtocolViolation()
    {
        ByteMutations.Of(SessionStream()).Sample(AssertReadsCleanly, iter: 10_000, threads: 1);
    }

    [TestMethod]
    public void TheUnmutatedSessionStream_DecodesEveryFrame()
    {
        Assert.AreEqual(9, Drain(SessionStream()).Frames);
    }

    private static void AssertReadsCleanly(byte[] input)
    {
        Task<(long Frames, long Allocated, Exception? Error)> run = Task.Run(() => Drain(input));
        Assert.IsTrue(run.Wait(PerInputTimeout), $"The reader hung on {Convert.ToHexString(input)}.");
        (long _, long allocated, Exception? error) = run.Result;
        if (error is not null and not MigrationProtocolException)
        {
            Assert.Fail($"{error.GetType().Name} on {Convert.ToHexString(input)}: {error}");
        }

        Assert.IsLessThanOrEqualTo(AllocationBound, allocated, $"Allocated {allocated} bytes on a {input.Length}-byte input {Convert.ToHexString(input)}.");
    }

    /// <summary>Reads everything from a completed pipe; every await completes synchronously, so the thread's allocation counter sees all of it.</summary>
    private static (long Frames, long Allocated, Exception? Error) Drain(byte[] input)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        pipe.Writer.Write(input);
        pipe.Writer.Complete();
        var reader = new PageStreamReader(pipe.Reader, Options);
        var handler = new CountingHandler();
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            while (reader.ReadAsync(handler).AsTask().GetAwaiter().GetResult())
            {
            }

            return (reader.FramesRead, GC.GetAllocatedBytesForCurrentThread() - before, null);
        }
        catch (Exception ex)
        {
            return (reader.FramesRead, GC.GetAllocatedBytesForCurrentThread() - before, ex);
        }
    }

    /// <summary>Hello, Pages, ZeroPages, RoundEnd, DeviceState, Digests, Complete and Error, as a source writes them.</summary>
    private static byte[] ValidStream()
    {
        if (s_valid is null)
        {
            using GuestMemoryLayout memory = RandomMemory(4, seed: 3);
            s_valid = WrittenBytesAsync(
                w =>
                {
                    w.AppendHello(new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, 4 * (ulong)Page)], 1, "vm"));
                    w.AppendPages(0, memory.Regions[0], [new PageRun(1, 1)]);
                    w.AppendZeroPages(0, [new PageRun(2, 2)]);
                    w.AppendRoundEnd(new RoundEnd(1, 3, 3 * Page));
                    w.AppendDeviceState([1, 2, 3, 4]);
                    w.AppendDigests([new RegionDigest(0, 42)]);
                    w.AppendComplete();
                    w.AppendError(new MigrationError(MigrationErrorCode.ProtocolViolation, "bye"));
                },
                Options).GetAwaiter().GetResult();
        }

        return s_valid;
    }

    /// <summary>The session frames: Resume, HelloAck, RoundAck, Ready, Commit, Ack, Done, Query and Status (the reader takes them in any order after a first frame that may open a stream).</summary>
    private static byte[] SessionStream()
    {
        Guid session = TestSession;
        return s_session ??= WrittenBytesAsync(
            w =>
            {
                w.AppendResume(new MigrationResume(MigrationProtocol.Version, session, 4));
                w.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.FromTicks(9)));
                w.AppendRoundAck(3);
                w.AppendReady(new DestinationReady(TimeSpan.FromTicks(12)));
                w.AppendCommit();
                w.AppendAck(new CompletionAck(TimeSpan.FromTicks(34)));
                w.AppendDone();
                w.AppendQuery(new SessionQuery(MigrationProtocol.Version, session, SessionQueryAction.Commit));
                w.AppendStatus(new SessionStatus(DestinationSessionState.Started, "runs"));
            },
            Options).GetAwaiter().GetResult();
    }

    /// <summary>Counts frames without keeping them, so what the reader allocates is what gets measured.</summary>
    private sealed class CountingHandler : IPageStreamHandler
    {
        public int Count { get; private set; }

        public void OnHello(MigrationHello hello) => Count++;

        public void OnHelloAck(HelloAck ack) => Count++;

        public void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data) => Count++;

        public void OnZeroPages(int region, ulong firstPage, ulong count) => Count++;

        public void OnRoundEnd(RoundEnd roundEnd) => Count++;

        public void OnDeviceState(ReadOnlySequence<byte> state) => Count++;

        public void OnDigests(IReadOnlyList<RegionDigest> digests) => Count++;

        public void OnComplete() => Count++;

        public void OnAck(CompletionAck ack) => Count++;

        public void OnError(MigrationError error) => Count++;

        public void OnRoundAck(int round) => Count++;

        public void OnReady(DestinationReady ready) => Count++;

        public void OnCommit() => Count++;

        public void OnResume(MigrationResume resume) => Count++;

        public void OnQuery(SessionQuery query) => Count++;

        public void OnStatus(SessionStatus status) => Count++;

        public void OnDone() => Count++;
    }
}
