using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// <see cref="PreCopyEngine.MigrateAsync(Func{CancellationToken, Task{IMigrationConnection}}, IProgress{MigrationProgress}?, CancellationToken)"/>
/// against a listening receiver on a Unix socket: each connection the engine opens runs through a
/// relay the test can drop, as a lost link.
/// </summary>
[TestClass]
public sealed class PreCopyEngineResumeTests
{
    [TestMethod]
    public async Task ALinkDroppedInRound2_Reconnects_AndTheMigrationCompletesWithTheSameMemory()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        await using var destination = Destination.Listen();
        DropInRound2(h, destination);

        MigrationReport report = await Migrate(h, destination, Options(attempts: 3));
        ReceiveResult received = await destination.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual(1, report.Reconnections);
        Assert.AreEqual(2, destination.Connects);
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);
        Assert.AreEqual(1, received.Reconnections);
        Assert.AreEqual(report.SessionId, received.SessionId?.ToString("N"));
        Assert.IsTrue(destination.Target.Started);
        EngineHarness.AssertSameMemory(h.Memory, destination.Target.Memory);
        Assert.IsTrue(h.Paused, "the VM runs on the destination only; the source stays paused");
    }

    [TestMethod]
    public async Task ALinkDroppedWithNoReconnectAttempts_FailsWithTheSourceRunning()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        await using var destination = Destination.Listen();
        DropInRound2(h, destination);

        MigrationReport report = await Migrate(h, destination, Options(attempts: 0));

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual(0, report.Reconnections);
        Assert.AreEqual(1, destination.Connects);
        Assert.IsFalse(h.Paused, "the source runs");
        Assert.IsFalse(destination.Target.Started);
    }

    [TestMethod]
    public async Task AnAckLostAfterCommit_IsResolvedByAQuery_AndTheMigrationCompletes()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        await using var destination = Destination.Listen(servesAgain: true);
        destination.OnTarget = target => target.BeforeStart = destination.DropLatest;

        MigrationReport report = await Migrate(h, destination, Options(attempts: 3));

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.IsFalse(report.OutcomeUnknown);
        // The migration's connection, then the query's: again if the first query reached the receive that was ending.
        Assert.IsGreaterThanOrEqualTo(2, destination.Connects);
        Assert.AreEqual(1, report.Reconnections, "one reconnection (the query), however many attempts it took");
        Assert.IsTrue(destination.Target.Started);
        Assert.IsTrue(h.Paused, "the source never resumes after Commit");
        Assert.DoesNotContain("Resume", h.Calls.Reverse().TakeWhile(c => c != "Pause").ToArray(), "no Resume after the switchover's Pause");
    }

    [TestMethod]
    public async Task ADestinationError_IsNeverRetried()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        await using var destination = Destination.Listen();
        destination.OnTarget = target => target.RestoreFailure = new InvalidOperationException("the device model refuses this state");

        MigrationReport report = await Migrate(h, destination, Options(attempts: 5));
        ReceiveResult received = await destination.Receiving;

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.Contains("the device model refuses this state", report.Reason!);
        Assert.AreEqual(0, report.Reconnections);
        Assert.AreEqual(1, destination.Connects);
        Assert.IsFalse(h.Paused, "the source resumed");
        Assert.AreEqual(MigrationStatus.Failed, received.Status);
        Assert.IsTrue(destination.Target.Disposed);
        Assert.IsFalse(destination.Target.Started);
    }

    // The second harvest comes after round 1, before round 2 is sent.
    private static void DropInRound2(EngineHarness h, Destination destination) =>
        h.Tracker.BeforeHarvest = n =>
        {
            if (n == 1)
            {
                destination.DropLatest();
            }
        };

    /// <summary>The harness's options (page counts decide the rounds), with quick reconnections.</summary>
    private static MigrationOptions Options(int attempts) => new()
    {
        MaxDowntime = TimeSpan.FromMilliseconds(100),
        BandwidthLimit = 1L << 20,
        AllowThrottling = false,
        ReconnectAttempts = attempts,
        ReconnectDelay = TimeSpan.FromMilliseconds(10),
        ResponseTimeout = TimeSpan.FromSeconds(10),
    };

    private static Task<MigrationReport> Migrate(EngineHarness h, Destination destination, MigrationOptions options)
    {
        var engine = new PreCopyEngine(h.Source.Object, h.Tracker, options);
        return engine.MigrateAsync(destination.ConnectAsync).WaitAsync(EngineHarness.Timeout);
    }

    /// <summary>A listening receiver on a Unix socket in a temporary folder, and the relays of the connections made to it.</summary>
    private sealed class Destination : IAsyncDisposable
    {
        private readonly string _folder;
        private readonly MigrationListener _listener;
        private readonly CancellationTokenSource _stop = new();
        private readonly List<LinkRelay> _relays = [];
        private readonly List<TestTarget> _targets = [];
        private readonly Task<ReceiveResult> _serving;

        private Destination(bool servesAgain)
        {
            _folder = Directory.CreateTempSubdirectory("mk-resume-").FullName;
            Address = "unix:" + Path.Combine(_folder, "sock");
            _listener = MigrationListener.Listen(Address);
            var receiver = new MigrationReceiver(hello =>
            {
                var target = new TestTarget(hello);
                OnTarget?.Invoke(target);
                lock (_targets)
                {
                    _targets.Add(target);
                }

                return target;
            });
            _serving = Task.Run(() => ServeAsync(receiver, servesAgain));
        }

        public string Address { get; }

        public Action<TestTarget>? OnTarget { get; set; }

        public Task<ReceiveResult> Receiving => _serving.WaitAsync(EngineHarness.Timeout);

        public TestTarget Target
        {
            get
            {
                lock (_targets)
                {
                    return _targets.Single();
                }
            }
        }

        public int Connects
        {
            get
            {
                lock (_relays)
                {
                    return _relays.Count;
                }
            }
        }

        public static Destination Listen(bool servesAgain = false) => new(servesAgain);

        public async Task<IMigrationConnection> ConnectAsync(CancellationToken ct)
        {
            var relay = new LinkRelay(await MigrationConnector.ConnectAsync(Address, cancellationToken: ct));
            lock (_relays)
            {
                _relays.Add(relay);
            }

            return relay.Source;
        }

        /// <summary>Drops the newest connection as a lost link would: both of the source's directions fail.</summary>
        public void DropLatest()
        {
            LinkRelay relay;
            lock (_relays)
            {
                relay = _relays[^1];
            }

            relay.DropAsync().GetAwaiter().GetResult();
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _serving.WaitAsync(EngineHarness.Timeout);
            }
            catch (OperationCanceledException)
            {
                // Stopped while it served.
            }

            foreach (LinkRelay relay in _relays)
            {
                await relay.DisposeAsync();
            }

            _targets.ForEach(t => t.Dispose());
            await _listener.DisposeAsync();
            _stop.Dispose();
            Directory.Delete(_folder, recursive: true);
        }

        // After the migration's receive ends, the same receiver goes on answering (queries about the finished session).
        private async Task<ReceiveResult> ServeAsync(MigrationReceiver receiver, bool servesAgain)
        {
            ReceiveResult first = await receiver.ReceiveAsync(_listener, _stop.Token);
            while (servesAgain && !_stop.IsCancellationRequested)
            {
                await receiver.ReceiveAsync(_listener, _stop.Token);
            }

            return first;
        }
    }
}
