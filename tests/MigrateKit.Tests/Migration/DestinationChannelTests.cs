using System;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class DestinationChannelTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly Pipe _fromDestination = TransportTestSupport.UnboundedPipe();
    private readonly FakeTimeProvider _time = new();
    private readonly CancellationTokenSource _work = new();
    private readonly CancellationTokenSource _reading = new();
    private PageStreamWriter _destination = null!;
    private DestinationChannel _channel = null!;
    private Task _readLoop = null!;

    [TestInitialize]
    public void Setup()
    {
        _destination = new PageStreamWriter(_fromDestination.Writer);
        var options = new MigrationOptions { ResponseTimeout = Timeout, TimeProvider = _time };
        _channel = new DestinationChannel(new PageStreamReader(_fromDestination.Reader), options, () => MigrationPhase.Send);
        _readLoop = _channel.StartReading(_work, _reading.Token);
    }

    [TestCleanup]
    public async Task Cleanup()
    {
        await _reading.CancelAsync();
        await _readLoop.WaitAsync(EngineHarness.Timeout);
        _work.Dispose();
        _reading.Dispose();
    }

    [TestMethod]
    public async Task AfterTheRehearsal_WaitingForReady_CompilesNothingOnTheReadersThread()
    {
        var options = new MigrationOptions { ResponseTimeout = Timeout };
        DestinationChannel.Rehearse(options);
        var pipe = new Pipe();
        var channel = new DestinationChannel(new PageStreamReader(pipe.Reader), options, () => MigrationPhase.Switchover);
        IPageStreamHandler handler = channel;
        var sent = new DestinationReady(TimeSpan.FromMilliseconds(3));
        channel.MarkCompleteSent();

        // What the switchover does between the destination's Ready and the Commit: start the wait,
        // deliver the frame. Compiled on first use, this cost milliseconds inside the downtime.
        long before = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: true);
        Task<DestinationReady> waiting = channel.WaitForReadyAsync(CancellationToken.None);
        handler.OnReady(sent);
        long compiled = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: true) - before;

        Assert.AreEqual(0L, compiled, "methods compiled while waiting for Ready");
        Assert.AreEqual(sent, await waiting.WaitAsync(Timeout));
        await pipe.Writer.CompleteAsync();
        await pipe.Reader.CompleteAsync();
    }

    /// <summary>The handshake every other answer follows.</summary>
    private Task HelloAckAsync() => SendAsync(w => w.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero)));

    private async Task SendAsync(Action<PageStreamWriter> frames)
    {
        frames(_destination);
        await _destination.FlushAsync();
    }

    [TestMethod]
    public async Task WaitForHelloAck_ReturnsTheDestinationsAnswer()
    {
        Task<HelloAck> waiting = _channel.WaitForHelloAckAsync(CancellationToken.None);
        await SendAsync(w => w.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.FromMilliseconds(7))));

        HelloAck ack = await waiting.WaitAsync(EngineHarness.Timeout);

        Assert.AreEqual(new HelloAck(MigrationProtocol.Version, TimeSpan.FromMilliseconds(7)), ack);
    }

    [TestMethod]
    public async Task WaitForRoundAck_WaitsForThatRoundOrALaterOne_AndNotForOneAlreadyAcknowledged()
    {
        await HelloAckAsync();
        _channel.MarkRoundEndSent(3);
        Task<bool> round2 = _channel.WaitForRoundAckAsync(2, CancellationToken.None);
        await SendAsync(w => w.AppendRoundAck(1));
        await SendAsync(w => w.AppendRoundAck(3));

        Assert.IsTrue(await round2.WaitAsync(EngineHarness.Timeout), "round 2 had to be waited for");
        Assert.IsFalse(await _channel.WaitForRoundAckAsync(3, CancellationToken.None), "round 3 is already acknowledged");
        Assert.IsFalse(await _channel.WaitForRoundAckAsync(0, CancellationToken.None));
    }

    [TestMethod]
    public async Task Waits_EndAtTheResponseTimeout_OnTheOptionsClock_NamingWhatWasAwaited()
    {
        Task<CompletionAck> waiting = _channel.WaitForCompletionAckAsync(CancellationToken.None);
        Task<bool> round = _channel.WaitForRoundAckAsync(4, CancellationToken.None);

        _time.Advance(Timeout - TimeSpan.FromTicks(1));
        Assert.IsFalse(waiting.IsCompleted);
        Assert.IsFalse(round.IsCompleted);
        _time.Advance(TimeSpan.FromTicks(1));

        MigrationException ack = await Assert.ThrowsExactlyAsync<MigrationException>(() => waiting);
        Assert.AreEqual(MigrationPhase.Send, ack.Phase);
        Assert.Contains("the destination sent no", ack.Message);
        Assert.EndsWith("final Ack within 30 s", ack.Message);
        MigrationException roundAck = await Assert.ThrowsExactlyAsync<MigrationException>(() => round);
        Assert.EndsWith("the destination sent no RoundAck of round 4 within 30 s", roundAck.Message);
        Assert.IsNull(_channel.Failure, "a timeout is the waiter's, not a lost destination");
    }

    [TestMethod]
    public async Task DestinationError_FailsEveryWait_CancelsTheWork_AndMeansItGaveUp()
    {
        Task<HelloAck> hello = _channel.WaitForHelloAckAsync(CancellationToken.None);
        Task<CompletionAck> ack = _channel.WaitForCompletionAckAsync(CancellationToken.None);
        _channel.MarkCompleteSent();
        Assert.IsFalse(_channel.MayRunTheVm, "before Commit the destination never starts the VM");
        _channel.MarkCommitSent();
        Assert.IsTrue(_channel.MayRunTheVm, "Commit sent and no answer yet");

        await SendAsync(w => w.AppendError(new MigrationError(MigrationErrorCode.DestinationFailure, "no vCPU for you")));

        MigrationException error = await Assert.ThrowsExactlyAsync<MigrationException>(() => hello.WaitAsync(EngineHarness.Timeout));
        Assert.EndsWith("the destination reported DestinationFailure: no vCPU for you", error.Message);
        Assert.AreSame(error, await Assert.ThrowsExactlyAsync<MigrationException>(() => ack));
        Assert.AreSame(error, _channel.Failure);
        Assert.IsTrue(_work.IsCancellationRequested);
        Assert.IsFalse(_channel.MayRunTheVm, "a destination that refused runs nothing");
    }

    [TestMethod]
    public async Task HangUpBeforeTheAck_IsAFailure()
    {
        Task<HelloAck> hello = _channel.WaitForHelloAckAsync(CancellationToken.None);
        _channel.MarkCompleteSent();

        await _fromDestination.Writer.CompleteAsync();

        MigrationException error = await Assert.ThrowsExactlyAsync<MigrationException>(() => hello.WaitAsync(EngineHarness.Timeout));
        Assert.EndsWith("the destination closed the connection", error.Message);
        Assert.IsTrue(_work.IsCancellationRequested);
        Assert.IsFalse(_channel.MayRunTheVm);
    }

    [TestMethod]
    public async Task HangUpAfterTheAck_IsTheNormalEnd()
    {
        await HelloAckAsync();
        _channel.MarkCompleteSent();
        await SendAsync(w => w.AppendReady(new DestinationReady(TimeSpan.FromMilliseconds(1))));
        DestinationReady ready = await _channel.WaitForReadyAsync(CancellationToken.None).WaitAsync(EngineHarness.Timeout);
        Assert.AreEqual(TimeSpan.FromMilliseconds(1), ready.PrepareDuration);
        _channel.MarkCommitSent();
        await SendAsync(w => w.AppendAck(new CompletionAck(TimeSpan.FromMilliseconds(3))));
        await _fromDestination.Writer.CompleteAsync();

        CompletionAck ack = await _channel.WaitForCompletionAckAsync(CancellationToken.None).WaitAsync(EngineHarness.Timeout);
        await _readLoop.WaitAsync(EngineHarness.Timeout);

        Assert.AreEqual(TimeSpan.FromMilliseconds(3), ack.ResumeDuration);
        Assert.IsTrue(_channel.Acknowledged);
        Assert.IsTrue(_channel.MayRunTheVm);
        Assert.IsNull(_channel.Failure);
        Assert.IsFalse(_work.IsCancellationRequested);
    }

    [TestMethod]
    public async Task AFrameOnlyASourceSends_FailsTheChannel()
    {
        Task<HelloAck> hello = _channel.WaitForHelloAckAsync(CancellationToken.None);

        await SendAsync(w => w.AppendHello(new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, GuestMemoryLayout.PageSize)], 1, "x")));

        MigrationException error = await Assert.ThrowsExactlyAsync<MigrationException>(() => hello.WaitAsync(EngineHarness.Timeout));
        Assert.Contains("reading from the destination failed", error.Message);
        Assert.IsInstanceOfType<MigrationProtocolException>(error.InnerException);
    }

    [TestMethod]
    public async Task AnAckBeforeCommitWasSent_IsAViolation_AndLeavesTheVmWithTheSource()
    {
        await HelloAckAsync();
        _channel.MarkCompleteSent();

        await SendAsync(w => w.AppendAck(new CompletionAck(TimeSpan.Zero)));

        MigrationProtocolException violation = await ViolationAsync();
        Assert.AreEqual("Ack", violation.Frame);
        Assert.Contains("before Commit was sent", violation.Message);
        Assert.IsFalse(_channel.Acknowledged);
        Assert.IsFalse(_channel.MayRunTheVm);
    }

    [TestMethod]
    public async Task AReadyBeforeCompleteWasSent_IsAViolation()
    {
        await HelloAckAsync();

        await SendAsync(w => w.AppendReady(new DestinationReady(TimeSpan.Zero)));

        MigrationProtocolException violation = await ViolationAsync();
        Assert.AreEqual("Ready", violation.Frame);
        Assert.Contains("before Complete was sent", violation.Message);
    }

    [TestMethod]
    public async Task HangUpAfterCommit_LeavesTheOutcomeUnknown_ALinkFailureNotARefusal()
    {
        await HelloAckAsync();
        _channel.MarkCompleteSent();
        await SendAsync(w => w.AppendReady(new DestinationReady(TimeSpan.Zero)));
        _channel.MarkCommitSent();

        await _fromDestination.Writer.CompleteAsync();

        await Assert.ThrowsExactlyAsync<MigrationException>(() => _channel.WaitForCompletionAckAsync(CancellationToken.None).WaitAsync(EngineHarness.Timeout));
        Assert.IsTrue(_channel.MayRunTheVm, "the destination may have started the VM before the link broke");
        Assert.IsTrue(Reconnector.IsLinkFailure(_channel.Failure!), _channel.Failure!.ToString());
        _channel.MarkReleased();
        Assert.IsFalse(_channel.MayRunTheVm, "a destination found to have released the VM runs nothing");
    }

    [TestMethod]
    public async Task ARoundAckForARoundNotYetEnded_IsAViolation()
    {
        await HelloAckAsync();
        _channel.MarkRoundEndSent(0);

        await SendAsync(w => w.AppendRoundAck(1));

        MigrationProtocolException violation = await ViolationAsync();
        Assert.AreEqual("RoundAck", violation.Frame);
        Assert.Contains("RoundAck of round 1 arrived, but the last RoundEnd sent was of round 0", violation.Message);
    }

    [TestMethod]
    public async Task ARoundAckForARoundAcknowledgedAlready_IsAViolation()
    {
        await HelloAckAsync();
        _channel.MarkRoundEndSent(1);

        await SendAsync(w =>
        {
            w.AppendRoundAck(1);
            w.AppendRoundAck(1);
        });

        MigrationProtocolException violation = await ViolationAsync();
        Assert.Contains("round 1 was acknowledged already", violation.Message);
    }

    [TestMethod]
    public async Task ASecondHelloAck_IsAViolation()
    {
        await HelloAckAsync();

        await HelloAckAsync();

        MigrationProtocolException violation = await ViolationAsync();
        Assert.AreEqual("HelloAck", violation.Frame);
    }

    [TestMethod]
    public async Task ARoundAckBeforeTheHelloAck_IsAViolation()
    {
        Task<HelloAck> hello = _channel.WaitForHelloAckAsync(CancellationToken.None);
        _channel.MarkRoundEndSent(0);

        await SendAsync(w => w.AppendRoundAck(0));

        MigrationProtocolException violation = await ViolationAsync();
        Assert.AreEqual("RoundAck", violation.Frame);
        await Assert.ThrowsExactlyAsync<MigrationException>(() => hello.WaitAsync(EngineHarness.Timeout));
    }

    /// <summary>Waits for the channel to fail and returns the violation that failed it (the work is cancelled too).</summary>
    private async Task<MigrationProtocolException> ViolationAsync()
    {
        await _readLoop.WaitAsync(EngineHarness.Timeout);
        Assert.IsTrue(_work.IsCancellationRequested);
        MigrationException failure = Assert.IsInstanceOfType<MigrationException>(_channel.Failure);
        Assert.Contains("reading from the destination failed", failure.Message);
        return Assert.IsInstanceOfType<MigrationProtocolException>(failure.InnerException);
    }

    [TestMethod]
    public async Task Stopping_EndsTheReadLoopQuietly()
    {
        Assert.IsFalse(_channel.MayRunTheVm);

        await _reading.CancelAsync();
        await _readLoop.WaitAsync(EngineHarness.Timeout);

        Assert.IsNull(_channel.Failure);
        Assert.IsFalse(_work.IsCancellationRequested);
    }
}
