using System;
using System.Buffers;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// The receiver's own checks of a Hello: beyond the destination's limits it answers an Error frame
/// naming the limit and builds nothing; within them it builds the target and answers HelloAck.
/// </summary>
[TestClass]
public sealed class MigrationReceiverTests
{
    private const ulong GiB = MigrationReceiverOptionsTests.GiB;
    private const ulong TiB = MigrationReceiverOptionsTests.TiB;

    [TestMethod]
    [DataRow(8, 1, TiB, MigrationLimit.Memory, "Hello announces 8 TiB; this destination accepts at most 32 GiB")]
    [DataRow(100, 1, GiB / 1024, MigrationLimit.Regions, "Hello announces 100 memory regions; this destination accepts at most 64")]
    [DataRow(1, 200, GiB, MigrationLimit.Vcpus, "Hello announces 200 vCPUs; this destination accepts at most 64")]
    [DataRow(1, 1, 2 * GiB, MigrationLimit.ExpectedMemory, "Hello announces 2 GiB; this destination expects exactly 1 GiB")]
    [DataRow(2, 2, GiB / 2, MigrationLimit.ExpectedVcpus, "Hello announces 2 vCPUs; this destination expects exactly 1")]
    public async Task HelloBeyondALimit_IsAnsweredWithAnErrorNamingIt_AndNothingIsBuilt(int regions, int vcpus, ulong regionSize, MigrationLimit limit, string message)
    {
        var options = new MigrationReceiverOptions { MaxMemory = 32 * GiB, ExpectedMemory = limit is MigrationLimit.ExpectedMemory or MigrationLimit.ExpectedVcpus ? GiB : null, ExpectedVcpus = limit == MigrationLimit.ExpectedVcpus ? 1 : null };
        int built = 0;
        var receiver = new MigrationReceiver(hello =>
        {
            built++;
            return new TestTarget(hello);
        }, options);

        (ReceiveResult result, RecordingHandler reply) = await ReceiveHelloAsync(receiver, MigrationReceiverOptionsTests.Hello(regions, vcpus, regionSize));

        Assert.AreEqual(0, built, "the target factory ran for a refused Hello");
        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.IsNull(result.Target);
        Assert.AreEqual(message, result.Reason);
        Assert.AreEqual(limit, Assert.IsInstanceOfType<MigrationLimitException>(result.Error).Limit);
        ErrorFrame error = Assert.IsInstanceOfType<ErrorFrame>(reply.Frames.Single());
        Assert.AreEqual(MigrationErrorCode.DestinationFailure, error.Error.Code);
        Assert.AreEqual(message, error.Error.Message);
    }

    [TestMethod]
    public async Task HelloWithinTheLimits_BuildsTheTarget_AndIsAcknowledged()
    {
        TestTarget? target = null;
        var receiver = new MigrationReceiver(hello => target = new TestTarget(hello), new MigrationReceiverOptions { ExpectedMemory = 2 * (1UL << 20), ExpectedVcpus = 1 });

        (ReceiveResult result, RecordingHandler reply) = await ReceiveHelloAsync(receiver, MigrationReceiverOptionsTests.Hello(2, 1, 1UL << 20));

        Assert.IsNotNull(target);
        Assert.IsTrue(target.Disposed, "the source hung up after HelloAck, so the target is disposed");
        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.IsInstanceOfType<HelloAckFrame>(reply.Frames[0]);
    }

    [TestMethod]
    public async Task PeerThatSaysNothing_IsDroppedAfterTheHandshakeTimeout()
    {
        var clock = new FakeTimeProvider();
        var receiver = new MigrationReceiver(hello => new TestTarget(hello), new MigrationReceiverOptions { HandshakeTimeout = TimeSpan.FromSeconds(30), TimeProvider = clock });
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        {
            ReceiveResult result = await clock.AdvanceUntilDoneAsync(receiver.ReceiveAsync(destination), TimeSpan.FromSeconds(1));

            Assert.AreEqual(MigrationStatus.Failed, result.Status);
            Assert.AreEqual("No Hello arrived within 30 s of the connection.", result.Reason);
            Assert.IsInstanceOfType<TimeoutException>(result.Error);
            Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(30), clock.GetUtcNow() - clock.Start, "dropped before the timeout");
            ErrorFrame error = Assert.IsInstanceOfType<ErrorFrame>((await ReadRepliesAsync(source)).Frames.Single());
            Assert.AreEqual(result.Reason, error.Error.Message);
        }
    }

    [TestMethod]
    public async Task SourceThatFallsSilentAfterItsHello_IsDroppedAfterTheIdleTimeout_AndItsTargetReleased()
    {
        var clock = new FakeTimeProvider();
        TestTarget? target = null;
        var receiver = new MigrationReceiver(hello => target = new TestTarget(hello), new MigrationReceiverOptions { IdleTimeout = TimeSpan.FromSeconds(120), TimeProvider = clock });
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        {
            Task<ReceiveResult> receiving = receiver.ReceiveAsync(destination);
            await SendHelloAsync(source);

            ReceiveResult result = await clock.AdvanceUntilDoneAsync(receiving, TimeSpan.FromSeconds(1));

            Assert.AreEqual(MigrationStatus.Failed, result.Status);
            Assert.AreEqual("The source sent nothing for 120 s.", result.Reason);
            Assert.IsNotNull(target);
            Assert.IsTrue(target.Disposed, "the target of a dropped source is released");
            RecordingHandler reply = await ReadRepliesAsync(source);
            Assert.IsInstanceOfType<HelloAckFrame>(reply.Frames[0]);
            Assert.AreEqual(result.Reason, Assert.IsInstanceOfType<ErrorFrame>(reply.Frames[^1]).Error.Message);
        }
    }

    [TestMethod]
    public async Task AFrameThatTakesLongerThanTheIdleTimeoutToArrive_IsWaitedFor_WhileItsBytesKeepComing()
    {
        var clock = new FakeTimeProvider();
        var receiver = new MigrationReceiver(hello => new TestTarget(hello), new MigrationReceiverOptions { IdleTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock });
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        {
            Task<ReceiveResult> receiving = receiver.ReceiveAsync(destination);
            await SendHelloAsync(source);

            // A frame of 64 pages arrives a tenth at a time, 4 s apart: 36 s in all against an idle timeout of 10 s.
            var frame = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(pauseWriterThreshold: 0));
            using (var framer = new PageStreamWriter(frame.Writer))
            {
                framer.AppendPages(0, TransportTestSupport.RandomMemory(64, 3).Regions[0], [new PageRun(0, 64)]);
                framer.AppendRoundEnd(new RoundEnd(0, 64, 0));
                await framer.FlushAsync();
            }

            byte[] bytes = (await frame.Reader.ReadAsync()).Buffer.ToArray();
            int step = (bytes.Length / 10) + 1;
            for (int at = 0; at < bytes.Length; at += step)
            {
                await source.Output.WriteAsync(bytes.AsMemory(at, Math.Min(step, bytes.Length - at)));
                await Task.Delay(20);
                Assert.IsFalse(receiving.IsCompleted, $"dropped with {at} of {bytes.Length} bytes in: {(receiving.IsCompleted ? receiving.Result.Reason : "")}");
                clock.Advance(TimeSpan.FromSeconds(4));
            }

            // The round arrived whole and was acknowledged; then real silence ends the receive at the idle timeout.
            ReceiveResult result = await clock.AdvanceUntilDoneAsync(receiving, TimeSpan.FromSeconds(1));
            Assert.AreEqual("The source sent nothing for 10 s.", result.Reason);
            RecordingHandler reply = await ReadRepliesAsync(source);
            Assert.IsTrue(reply.Frames.OfType<RoundAckFrame>().Any(a => a.Round == 0), string.Join(", ", reply.Frames));
        }
    }

    [TestMethod]
    public async Task AFactoryThatReturnsNoTarget_FailsTheReceive_WithAMessageNamingIt_NotANullReference()
    {
        MigrationHello hello = MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20);
        (ReceiveResult result, RecordingHandler reply) = await ReceiveHelloAsync(new MigrationReceiver(_ => null!), hello);

        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.AreEqual($"The receiver's createTarget returned null for the Hello of {hello.SourceName}.", result.Reason);
        Assert.IsInstanceOfType<InvalidOperationException>(result.Error);
        Assert.AreEqual(result.Reason, Assert.IsInstanceOfType<ErrorFrame>(reply.Frames[^1]).Error.Message);
    }

    [TestMethod]
    [DataRow(-1L)]
    [DataRow(long.MaxValue)]
    public async Task ATargetWhoseResumeCostIsOutOfRange_FailsTheReceive_NamingIt(long ticks)
    {
        // The estimate reaches the source's forecast; TimeSpan.MaxValue there overflowed it in mid-harvest.
        MigrationHello hello = MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20);
        TestTarget? built = null;
        var receiver = new MigrationReceiver(h => built = new TestTarget(h) { ResumeCost = TimeSpan.FromTicks(ticks) });
        (ReceiveResult result, RecordingHandler reply) = await ReceiveHelloAsync(receiver, hello);

        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        StringAssert.StartsWith(result.Reason, $"The destination VM's EstimateResumeCost returned {TimeSpan.FromTicks(ticks)}: a resume cost is between zero and 24 hours.");
        Assert.IsFalse(reply.Frames.OfType<HelloAckFrame>().Any(), string.Join(", ", reply.Frames));
        Assert.AreEqual(result.Reason, Assert.IsInstanceOfType<ErrorFrame>(reply.Frames[^1]).Error.Message);
        Assert.IsNotNull(built);
        Assert.IsTrue(built.Disposed, "the target is released");
    }

    [TestMethod]
    [DataRow("HelloAck", "HelloAck", "A source does not send HelloAck frames.")]
    [DataRow("RoundAck", "RoundAck", "A source does not send RoundAck frames.")]
    [DataRow("Ack", "Ack", "A source does not send Ack frames.")]
    [DataRow("Complete,RoundEnd", "RoundEnd", "RoundEnd arrived after Complete.")]
    [DataRow("Complete,Complete", "Complete", "Complete arrived after Complete.")]
    [DataRow("Error,ZeroPages", "ZeroPages", "ZeroPages arrived after Error.")]
    [DataRow("Error,Error", "Error", "Error arrived after Error.")]
    public async Task AFrameOutOfTurn_IsAnsweredWithAProtocolViolationNamingIt_AndTheTargetReleased(string followUp, string frame, string message)
    {
        TestTarget? target = null;
        var receiver = new MigrationReceiver(hello => target = new TestTarget(hello));

        (ReceiveResult result, RecordingHandler reply) = await ReceiveFramesAsync(receiver, w =>
        {
            w.AppendHello(MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20));
            foreach (string next in followUp.Split(','))
            {
                AppendFrame(w, next);
            }
        });

        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        MigrationProtocolException violation = Assert.IsInstanceOfType<MigrationProtocolException>(result.Error);
        Assert.AreEqual(frame, violation.Frame);
        Assert.Contains(message, result.Reason!);
        Assert.IsNotNull(target);
        Assert.IsTrue(target.Disposed, "the target of a violating source is released");
        ErrorFrame error = Assert.IsInstanceOfType<ErrorFrame>(reply.Frames[^1]);
        Assert.AreEqual(MigrationErrorCode.ProtocolViolation, error.Error.Code);
        Assert.Contains(message, error.Error.Message);
    }

    [TestMethod]
    public async Task Receiver_ReadsWithTheConnectionsOptions_SoAFrameOverItsLimitIsAViolation()
    {
        var options = new PageStreamOptions { MaxFramePayload = 64 << 10, MaxPagesPerFrame = 8, PauseWriterThreshold = 128 << 10, ResumeWriterThreshold = 64 << 10 };
        var receiver = new MigrationReceiver(hello => new TestTarget(hello));
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair(options);
        await using (source)
        await using (destination)
        {
            Task<ReceiveResult> receiving = receiver.ReceiveAsync(destination);
            using (var writer = new PageStreamWriter(source.Output))
            {
                // Within the defaults (2 MiB), over this connection's 64 KiB.
                writer.AppendHello(MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20));
                writer.AppendDeviceState(new byte[100 << 10]);
                await writer.FlushAsync();
            }

            ReceiveResult result = await receiving.WaitAsync(EngineHarness.Timeout);

            MigrationProtocolException violation = Assert.IsInstanceOfType<MigrationProtocolException>(result.Error);
            Assert.AreEqual("length", violation.Field);
            Assert.Contains("65536-byte limit", violation.Message);
        }
    }

    private static void AppendFrame(PageStreamWriter writer, string frame)
    {
        switch (frame)
        {
            case "HelloAck":
                writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
                break;
            case "RoundAck":
                writer.AppendRoundAck(0);
                break;
            case "Ack":
                writer.AppendAck(new CompletionAck(TimeSpan.Zero));
                break;
            case "Complete":
                writer.AppendComplete();
                break;
            case "RoundEnd":
                writer.AppendRoundEnd(new RoundEnd(0, 0, 0));
                break;
            case "Error":
                writer.AppendError(new MigrationError(MigrationErrorCode.SourceAborted, "gave up"));
                break;
            case "ZeroPages":
                writer.AppendZeroPages(0, [new PageRun(0, 1)]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(frame), frame, "no such frame in these tests");
        }
    }

    // A Hello of one vCPU and 1 MiB, flushed.
    private static async Task SendHelloAsync(IMigrationConnection source)
    {
        using var writer = new PageStreamWriter(source.Output);
        writer.AppendHello(MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20));
        await writer.FlushAsync();
    }

    private static async Task<RecordingHandler> ReadRepliesAsync(IMigrationConnection source)
    {
        var reply = new RecordingHandler();
        var reader = new PageStreamReader(source.Input);
        while (await reader.ReadAsync(reply).AsTask().WaitAsync(EngineHarness.Timeout))
        {
        }

        return reply;
    }

    /// <summary>Sends one Hello, hangs up, and returns the receiver's result and every frame it answered with.</summary>
    private static Task<(ReceiveResult Result, RecordingHandler Reply)> ReceiveHelloAsync(MigrationReceiver receiver, MigrationHello hello) =>
        ReceiveFramesAsync(receiver, w => w.AppendHello(hello));

    /// <summary>Sends <paramref name="frames"/> in one flush, hangs up, and returns the receiver's result and every frame it answered with.</summary>
    private static async Task<(ReceiveResult Result, RecordingHandler Reply)> ReceiveFramesAsync(MigrationReceiver receiver, Action<PageStreamWriter> frames)
    {
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        {
            Task<ReceiveResult> receiving = receiver.ReceiveAsync(destination);
            using (var writer = new PageStreamWriter(source.Output))
            {
                frames(writer);
                await writer.FlushAsync();
            }

            await source.Output.CompleteAsync();
            ReceiveResult result = await receiving.WaitAsync(EngineHarness.Timeout);
            return (result, await ReadRepliesAsync(source));
        }
    }
}
