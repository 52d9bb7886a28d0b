using System;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;
using Moq;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class SwitchoverTests : IDisposable
{
    private const ulong Page = GuestMemoryLayout.PageSize;
    private static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(30);
    private static readonly byte[] State = [1, 2, 3];

    private readonly List<string> _calls = [];
    private readonly FakeTimeProvider _time = new();
    private readonly Pipe _fromDestination = TransportTestSupport.UnboundedPipe();
    private readonly CancellationTokenSource _work = new();
    private readonly CancellationTokenSource _reading = new();
    private readonly Mock<IMigrationSource> _source = new(MockBehavior.Strict);
    private readonly MigrationOptions _options;
    private GuestMemoryLayout _memory = null!;
    private RegionSet _regions = null!;
    private DestinationChannel _channel = null!;
    private SourceRecovery _recovery = null!;
    private Task _readLoop = Task.CompletedTask;

    public SwitchoverTests()
    {
        _options = new MigrationOptions { ResponseTimeout = ResponseTimeout, TimeProvider = _time };
        _source.Setup(s => s.Pause()).Returns(() =>
        {
            _calls.Add("Pause");
            return TimeSpan.FromMilliseconds(1);
        });
        _source.Setup(s => s.Resume()).Callback(() => _calls.Add("Resume"));
        _source.Setup(s => s.SaveDeviceState()).Returns(() =>
        {
            _calls.Add("SaveDeviceState");
            return State;
        });
    }

    public void Dispose()
    {
        _reading.Cancel();
        _readLoop.Wait(EngineHarness.Timeout);
        _memory?.Dispose();
        _work.Dispose();
        _reading.Dispose();
    }

    [TestMethod]
    [DataRow(5.0, 2.0, 3.0, DisplayName = "Ready 5 ms after Complete, 2 ms of checks: 3 ms still arriving")]
    [DataRow(1.0, 2.0, 0.0, DisplayName = "checks reported longer than the wait: nothing arriving")]
    [DataRow(12.0, 0.0, 9.0, DisplayName = "never more than the whole wait")]
    public void Parts_GiveTheTransferWhatWasStillArrivingBeforeReady(double readyWait, double prepare, double arriving)
    {
        // Pause 1, harvest 2, 20 ms sending, then 9 ms from Complete to the Ack: a 32 ms downtime.
        DowntimeParts parts = Switchover.Parts(Ms(1), Ms(2), Ms(32), Ms(9), Ms(readyWait), Ms(prepare));

        Assert.AreEqual(new DowntimeParts(1, 2, 20 + arriving, 9 - arriving), parts);
        Assert.AreEqual(32.0, parts.PauseMs + parts.HarvestMs + parts.TransferMs + parts.ResumeMs, 1e-9, "the parts add up to the downtime");
    }

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    /// <summary>
    /// A paused-source switchover over <paramref name="toDestination"/>: pages 1, 2 and 5 pending (2
    /// deferred); pages 1 to 3 hold data; the final harvest finds page 3 dirty.
    /// </summary>
    private Switchover Create(Pipe toDestination, ulong pages = 16)
    {
        _memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, pages * Page)]);
        for (ulong p = 1; p <= 3; p++)
        {
            _memory.Regions[0].GetPage(p).Fill((byte)p);
        }

        _regions = new RegionSet(_memory.Regions, _options);
        EngineRegion region = _regions.Regions[0];
        region.Pending.Set(1);
        region.Pending.Set(2);
        region.Pending.Set(5);
        region.Deferred.Set(2);

        var writer = new PageStreamWriter(toDestination.Writer);
        writer.AppendHello(new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, pages * Page)], 1, "vm"));
        var sender = new RoundSender(writer, _time, (_, _) => { }, () => MigrationPhase.Switchover);
        _channel = new DestinationChannel(new PageStreamReader(_fromDestination.Reader), _options, () => MigrationPhase.Switchover);
        _readLoop = _channel.StartReading(_work, _reading.Token);
        _recovery = new SourceRecovery(_source.Object, _regions);
        var tracker = new ScriptedTracker(_memory, _ => [new PageWrite(0, 3, 3)], () => true, _calls.Add);
        return new Switchover(_source.Object, _recovery, _regions, sender, _channel, _options, () => _regions.Harvest(tracker).Result.DirtyPages);
    }

    /// <summary>Reads what the source sends; answers Complete with <paramref name="answer"/> (nothing when null).</summary>
    /// <summary>
    /// A destination that answers Complete with <paramref name="answer"/>, or (when
    /// <paramref name="ready"/>) with Ready and then the source's Commit with <paramref name="answer"/>.
    /// </summary>
    private Task<List<ReceivedFrame>> DestinationAsync(Pipe toDestination, Action<PageStreamWriter>? answer, bool ready = true)
    {
        var writer = new PageStreamWriter(_fromDestination.Writer);
        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        return Task.Run(async () =>
        {
            var handler = new RecordingHandler
            {
                CompleteReceived = () =>
                {
                    if (ready)
                    {
                        writer.AppendReady(new DestinationReady(TimeSpan.FromMilliseconds(2)));
                    }
                    else
                    {
                        answer?.Invoke(writer);
                    }
                },
                CommitReceived = () => answer?.Invoke(writer),
            };
            var reader = new PageStreamReader(toDestination.Reader);
            while (!handler.Completed && await reader.ReadAsync(handler))
            {
            }

            await writer.FlushAsync();
            while (ready && !handler.Committed && await reader.ReadAsync(handler))
            {
            }

            await writer.FlushAsync();
            return handler.Frames;
        });
    }

    private (int, ulong)[] PendingPages()
    {
        var pages = new List<(int, ulong)>();
        foreach (ulong p in _regions.Regions[0].Pending.EnumerateSetPages())
        {
            pages.Add((0, p));
        }

        return pages.ToArray();
    }

    [TestMethod]
    public async Task RunAsync_PausesHarvestsAndSendsEveryPendingPage_TheDeferredOnesToo_ThenTheStateAndComplete()
    {
        Pipe toDestination = TransportTestSupport.UnboundedPipe();
        Switchover switchover = Create(toDestination);
        Task<List<ReceivedFrame>> destination = DestinationAsync(toDestination, w => w.AppendAck(new CompletionAck(TimeSpan.FromMilliseconds(4))));

        SwitchoverResult result = await switchover.RunAsync(CancellationToken.None).WaitAsync(EngineHarness.Timeout);
        List<ReceivedFrame> frames = await destination.WaitAsync(EngineHarness.Timeout);

        Assert.AreSequenceEqual(new[] { "Pause", "Harvest", "SaveDeviceState" }, _calls.ToArray());
        Assert.IsTrue(_recovery.Paused, "the source stays paused: the destination runs the VM");
        Assert.AreSequenceEqual(new[] { (0, 1UL, 3) }, frames.OfType<PagesRun>().Select(r => (r.Region, r.FirstPage, r.Count)).ToArray());
        Assert.AreSequenceEqual(new[] { new ZeroRun(0, 5, 1) }, frames.OfType<ZeroRun>().ToArray());
        Assert.AreSequenceEqual(State, frames.OfType<DeviceStateFrame>().Single().State);
        Assert.AreEqual(_regions.Regions[0].Digest.Value, frames.OfType<DigestsFrame>().Single().Digests.Single().Digest);
        Assert.IsInstanceOfType<CompleteFrame>(frames[^2]);
        Assert.IsInstanceOfType<CommitFrame>(frames[^1], "Commit only after the destination was ready");

        Assert.AreEqual(1UL, result.DirtyPages);
        Assert.AreEqual(1UL, result.DeferredPages, "the hot page held back until now");
        Assert.AreEqual(1UL, result.ZeroPages);
        Assert.AreEqual(0UL, result.PagesBefore);
        Assert.AreEqual(TimeSpan.FromMilliseconds(1), result.PauseLatency);
        Assert.AreEqual(TimeSpan.FromMilliseconds(1), result.Downtime, "no time passed on the fake clock but the pause's own");
        Assert.AreEqual(TimeSpan.FromMilliseconds(4), result.ResumeDuration);
        Assert.AreEqual(new DowntimeParts(1, 0, 0, 0), result.ActualParts);

        // Delivered: nothing is pending, nothing returns.
        _regions.ReturnUndelivered();
        Assert.IsEmpty(PendingPages());
        Assert.IsTrue(_channel.Acknowledged);
    }

    [TestMethod]
    public async Task RunAsync_LeavesEveryPageInFlight_WhenTheDestinationRefuses()
    {
        Pipe toDestination = TransportTestSupport.UnboundedPipe();
        Switchover switchover = Create(toDestination);
        Task<List<ReceivedFrame>> destination = DestinationAsync(toDestination, w => w.AppendError(new MigrationError(MigrationErrorCode.DigestMismatch, "no")), ready: false);

        MigrationException error = await Assert.ThrowsExactlyAsync<MigrationException>(() => switchover.RunAsync(CancellationToken.None).WaitAsync(EngineHarness.Timeout));
        await destination.WaitAsync(EngineHarness.Timeout);

        Assert.Contains("DigestMismatch", error.Message);
        Assert.IsFalse(_channel.MayRunTheVm);
        Assert.IsEmpty(PendingPages(), "in flight, not yet returned");
        Assert.IsTrue(_recovery.LeaveAfterFailure(_channel.MayRunTheVm));
        Assert.AreSequenceEqual(new[] { (0, 1UL), (0, 2UL), (0, 3UL), (0, 5UL) }, PendingPages());
    }

    [TestMethod]
    public async Task RunAsync_GivesUp_WhenTheDestinationTakesNoMoreDataForTheResponseTimeout()
    {
        // Nobody reads: the send blocks on a full pipe until the deadline on the fake clock.
        var toDestination = new Pipe(new PipeOptions(pauseWriterThreshold: 64 * 1024, resumeWriterThreshold: 32 * 1024, useSynchronizationContext: false));
        Switchover switchover = Create(toDestination, pages: 64);
        for (ulong p = 0; p < 64; p++)
        {
            _memory.Regions[0].GetPage(p).Fill(9);
            _regions.Regions[0].Pending.Set(p);
        }

        Task<SwitchoverResult> running = switchover.RunAsync(CancellationToken.None);
        Assert.IsFalse(running.IsCompleted);
        _time.Advance(ResponseTimeout);

        MigrationException error = await Assert.ThrowsExactlyAsync<MigrationException>(() => running.WaitAsync(EngineHarness.Timeout));
        Assert.AreEqual(MigrationPhase.Switchover, error.Phase);
        Assert.EndsWith("the destination took no more data for 30 s during the switchover", error.Message);
        Assert.IsInstanceOfType<OperationCanceledException>(error.InnerException);
        Assert.IsFalse(_channel.MayRunTheVm, "Complete was never sent");
        _source.Verify(s => s.SaveDeviceState(), Times.Never());
    }

    [TestMethod]
    public async Task RunAsync_WaitsForReadyNoLongerThanTheResponseTimeout_AndThenTheSourceMayResume()
    {
        // Nobody answers Complete: the Ready wait ends on the fake clock, and without Commit the destination never starts the VM.
        Pipe toDestination = TransportTestSupport.UnboundedPipe();
        Switchover switchover = Create(toDestination);
        var writer = new PageStreamWriter(_fromDestination.Writer);
        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        await writer.FlushAsync();

        Task<SwitchoverResult> running = switchover.RunAsync(CancellationToken.None);
        Assert.IsFalse(running.IsCompleted);
        _time.Advance(ResponseTimeout);

        MigrationException error = await Assert.ThrowsExactlyAsync<MigrationException>(() => running.WaitAsync(EngineHarness.Timeout));
        Assert.EndsWith("Ready within 30 s", error.Message);
        Assert.IsFalse(_channel.CommitSent);
        Assert.IsFalse(_channel.MayRunTheVm, "no Commit was sent: the destination cannot run the VM");
        Assert.IsTrue(_recovery.LeaveAfterFailure(_channel.MayRunTheVm));
        Assert.IsFalse(_recovery.Paused);
        Assert.AreSequenceEqual(new[] { (0, 1UL), (0, 2UL), (0, 3UL), (0, 5UL) }, PendingPages());
    }

    [TestMethod]
    public async Task RunAsync_WaitsForTheAckNoLongerThanTheResponseTimeout_AndThenTheDestinationMayRunTheVm()
    {
        // Ready comes, Commit is sent, the Ack never does: the wait ends on the fake clock and the outcome is unknown.
        Pipe toDestination = TransportTestSupport.UnboundedPipe();
        Switchover switchover = Create(toDestination);
        Task<List<ReceivedFrame>> destination = DestinationAsync(toDestination, answer: null);

        Task<SwitchoverResult> running = switchover.RunAsync(CancellationToken.None);
        Assert.IsInstanceOfType<CommitFrame>((await destination.WaitAsync(EngineHarness.Timeout))[^1]);
        Assert.IsFalse(running.IsCompleted);

        // The Ack wait starts on the thread that read Ready, maybe after the Commit arrived here:
        // the clock moves in steps until it ends, so an early step cannot be missed.
        MigrationException error = await Assert.ThrowsExactlyAsync<MigrationException>(() => _time.AdvanceUntilDoneAsync(running, TimeSpan.FromSeconds(1)));
        Assert.EndsWith("final Ack within 30 s", error.Message);
        Assert.IsTrue(_channel.CommitSent);
        Assert.IsTrue(_channel.MayRunTheVm, "Commit was sent and never answered");
        Assert.IsFalse(_recovery.LeaveAfterFailure(_channel.MayRunTheVm));
        Assert.IsTrue(_recovery.Paused);
        Assert.AreSequenceEqual(new[] { (0, 1UL), (0, 2UL), (0, 3UL), (0, 5UL) }, PendingPages());
    }
}
