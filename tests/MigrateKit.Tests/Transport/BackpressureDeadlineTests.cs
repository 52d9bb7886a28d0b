using System;
using System.Buffers;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

/// <summary>The no-progress deadline on a writer's waits for its connection, on a fake clock.</summary>
[TestClass]
public sealed class BackpressureDeadlineTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    private readonly FakeTimeProvider _time = new();

    /// <summary>Small buffers, so a few device-state frames put a flush over the pause threshold.</summary>
    private PageStreamOptions Options(long? bandwidthLimit = null, long pauseWriterThreshold = 64 * 1024) => new()
    {
        MaxFramePayload = 8192,
        MaxPagesPerFrame = 1,
        PauseWriterThreshold = pauseWriterThreshold,
        ResumeWriterThreshold = pauseWriterThreshold / 2,
        BandwidthLimit = bandwidthLimit,
        TimeProvider = _time,
    };

    private static void AppendState(PageStreamWriter writer, int kib)
    {
        byte[] state = new byte[8000];
        for (int i = 0; i < kib * 1024 / state.Length; i++)
        {
            writer.AppendDeviceState(state);
        }
    }

    [TestMethod]
    public async Task Flush_PacingLongerThanTheLimitDoesNotCount_OnlyTheWaitForTheConnectionDoes()
    {
        // Nobody reads and the pipe pauses at 64 KiB: after pacing the flush waits for the connection, and only that wait counts.
        (Exception? error, TimeSpan pacing, TimeSpan took) = await PacedFlushAsync(pauseWriterThreshold: 64 * 1024);

        Assert.IsInstanceOfType<TimeoutException>(error);
        Assert.AreEqual("The connection took no data for 2 s.", error.Message);
        Assert.IsGreaterThanOrEqualTo(pacing + Limit, took, "pacing counted against the limit");
        Assert.IsLessThanOrEqualTo(pacing + Limit + TimeSpan.FromSeconds(1), took);
    }

    [TestMethod]
    public async Task Flush_PacingLongerThanTheLimit_Succeeds_WhenTheConnectionTakesTheData()
    {
        // The pipe takes it all (1 MiB before it pauses): only the pacing is waited for.
        (Exception? error, TimeSpan pacing, TimeSpan took) = await PacedFlushAsync(pauseWriterThreshold: 1 << 20);

        Assert.IsNull(error);
        Assert.IsGreaterThanOrEqualTo(pacing, took, "the limit was kept");
        Assert.IsGreaterThan(Limit * 7, pacing);
    }

    /// <summary>
    /// Flushes 128 KiB at 4 KiB/s, about 15 s of pacing after the bucket's first 64 KiB, over a
    /// connection nobody reads; returns how the flush ended, the pacing, and the fake time it took.
    /// </summary>
    private async Task<(Exception? Error, TimeSpan Pacing, TimeSpan Took)> PacedFlushAsync(long pauseWriterThreshold)
    {
        PageStreamOptions options = Options(bandwidthLimit: 4096, pauseWriterThreshold);
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair(options);
        await using IMigrationConnection s = source;
        await using IMigrationConnection d = destination;
        using PageStreamWriter writer = PageStreamWriter.ForConnection(source, options, Limit);
        AppendState(writer, kib: 128);
        TimeSpan pacing = TimeSpan.FromSeconds((writer.UnflushedBytes - (64 * 1024)) / 4096.0);
        DateTimeOffset start = _time.GetUtcNow();

        Task flush = writer.FlushAsync().AsTask();
        FakeClock.AdvanceUntil(_time, () => flush.IsCompleted, Step, "the flush ends");
        return (flush.Exception?.InnerException, pacing, _time.GetUtcNow() - start);
    }

    [TestMethod]
    public async Task Flush_ThatWaitsLessThanTheLimit_Completes_AndTheNextFlushIsNotCancelled()
    {
        PageStreamOptions options = Options();
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair(options);
        await using IMigrationConnection s = source;
        await using IMigrationConnection d = destination;
        using PageStreamWriter writer = PageStreamWriter.ForConnection(source, options, Limit);
        AppendState(writer, kib: 128);

        Task flush = writer.FlushAsync().AsTask();
        _time.Advance(Limit - Step);
        Assert.IsFalse(flush.IsCompleted, "nobody read yet");
        ReadResult read = await destination.Input.ReadAsync();
        destination.Input.AdvanceTo(read.Buffer.End);
        await flush.WaitAsync(TimeSpan.FromSeconds(10));

        _time.Advance(Limit * 2);
        writer.AppendComplete();
        await writer.FlushAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
    }

    [TestMethod]
    public async Task Wait_GoesOnWhileTheConnectionSendsBytes_AndEndsALimitAfterTheLastOnes()
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 1024, resumeWriterThreshold: 512, useSynchronizationContext: false));
        long sent = 0;
        using var deadline = new BackpressureDeadline(pipe.Writer, Limit, _time, () => Volatile.Read(ref sent));
        pipe.Writer.Write(new byte[4096].AsSpan());
        ValueTask<FlushResult> flushing = pipe.Writer.FlushAsync();
        Assert.IsFalse(flushing.IsCompleted);
        Task<FlushResult> waiting = deadline.WaitAsync(flushing).AsTask();

        // A slow link: some bytes every second for ten limits.
        for (int second = 0; second < 20; second++)
        {
            Interlocked.Add(ref sent, 100);
            _time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(1);
            Assert.IsFalse(waiting.IsCompleted, $"gave up at {second + 1} s while the link still moved");
        }

        // The link stops: within 1.25 limits of the last progress the wait ends.
        DateTimeOffset last = _time.GetUtcNow();
        FakeClock.AdvanceUntil(_time, () => waiting.IsCompleted, Step, "the wait ends");
        await Assert.ThrowsExactlyAsync<TimeoutException>(() => waiting);
        TimeSpan silent = _time.GetUtcNow() - last;
        Assert.IsGreaterThanOrEqualTo(Limit - TimeSpan.FromSeconds(1), silent);
        Assert.IsLessThanOrEqualTo(Limit * 1.25 + Step, silent);
    }

    [TestMethod]
    public void Constructor_RefusesALimitThatIsNotPositive()
    {
        var pipe = new Pipe();
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new BackpressureDeadline(pipe.Writer, TimeSpan.Zero, _time, null));
    }
}
