using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CsCheck;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// A migration to a listening receiver whose first link is cut at a random byte, in either
/// direction: before Hello, in a round, in the switchover, between Commit and Ack; the link is
/// reset and black-holed, or closed (as by a proxy), even inside a frame. The engine reconnects
/// (Resume, or a Commit query). Wherever the cut falls, the VM ends running on exactly one side,
/// with the source's memory where it completed, and past the handshake the migration completes:
/// a destination that did not hear the source's Done after its Ack keeps answering the query.
/// </summary>
[TestClass]
public sealed class LinkCutPropertyTests
{
    [TestMethod]
    public async Task ALinkCutOrClosedAnywhere_LeavesTheVmOnOneSide_AndPastTheHandshakeCompletes()
    {
        Outcome whole = await MigrateAsync(null);
        Assert.AreEqual(MigrationStatus.Completed, whole.Report.Status, whole.Report.Reason);
        long toDestination = whole.Bytes[0];
        long toSource = whole.Bytes[1];

        // A byte drawn evenly from the whole stream (a fraction of it would favour its ends).
        Gen<LinkCut> cuts = Gen.Select(Gen.Bool, Gen.Bool, (towardsSource, closes) => (towardsSource, closes))
            .SelectMany(c => Gen.Long[0, c.towardsSource ? toSource : toDestination].Select(at => new LinkCut(c.towardsSource, at, c.closes)));
        await cuts.SampleAsync(async cut => Check(cut, await MigrateAsync(cut)), iter: 240, threads: 1);
    }

    [TestMethod]
    public async Task AnUncutLink_EndsTheReceiveWithTheSourcesDone_WithoutWaitingForAQuery()
    {
        // A destination clock that never moves: the receive cannot end by waiting out its linger.
        Outcome o = await MigrateAsync(null, new FakeTimeProvider());

        Assert.AreEqual(MigrationStatus.Completed, o.Report.Status, o.Report.Reason);
        Assert.AreEqual(MigrationStatus.Completed, o.Received?.Status, o.Received?.Reason);
    }

    private static void Check(LinkCut cut, Outcome o)
    {
        string where = $"{(cut.Closes ? "closed" : "cut")} {(cut.TowardsSource ? "towards the source" : "towards the destination")} at byte {cut.At}: {o.Report.Status}, {o.Report.Reason}";
        Assert.IsFalse(o.Started && !o.SourcePaused, $"the VM runs on both sides ({where})");

        // Past the handshake a lost link, even one closed inside a frame or while the Ack is on its
        // way, costs a reconnection or a query, not the migration.
        Assert.IsTrue(
            o.Report.Status == MigrationStatus.Completed || o.Report.FailedPhase == MigrationPhase.Handshake,
            $"the migration failed after the handshake ({where}, in {o.Report.FailedPhase}{(o.Report.OutcomeUnknown ? ", outcome unknown" : string.Empty)})");
        if (o.Report.Status == MigrationStatus.Completed)
        {
            Assert.IsTrue(o.Started, $"completed, but the destination never started the VM ({where})");
        }
        else if (!o.Started)
        {
            Assert.IsTrue(!o.SourcePaused || o.Report.OutcomeUnknown, $"the VM runs nowhere and the report does not say the outcome is unknown ({where})");
        }
    }

    /// <param name="cut">Where the first link is cut; null for none.</param>
    /// <param name="destinationClock">The receiver's clock; with one, the receive must end by itself.</param>
    private static async Task<Outcome> MigrateAsync(LinkCut? cut, TimeProvider? destinationClock = null)
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        var targets = new BuiltTargets();
        var receiver = new MigrationReceiver(targets.Create, new MigrationReceiverOptions { TimeProvider = destinationClock ?? TimeProvider.System });
        string folder = Directory.CreateTempSubdirectory("mk-cut-").FullName;
        string address = "unix:" + Path.Combine(folder, "sock");
        var relays = new List<LinkRelay>();
        try
        {
            await using MigrationListener listener = MigrationListener.Listen(address);
            using var stop = new CancellationTokenSource();
            Task<ReceiveResult> receiving = Task.Run(() => receiver.ReceiveAsync(listener, stop.Token));

            // As a receiving process that exits: once the receive ends, nothing listens there, and a
            // source's query is refused at once rather than left in an unaccepted backlog.
            _ = receiving.ContinueWith(_ => listener.DisposeAsync().AsTask(), TaskScheduler.Default).Unwrap();
            var options = new MigrationOptions
            {
                MaxDowntime = TimeSpan.FromMilliseconds(100),
                AllowThrottling = false,
                Encodings = PageEncodings.None,
                ReconnectDelay = TimeSpan.FromMilliseconds(10),
                ResponseTimeout = TimeSpan.FromSeconds(5),
            };
            var engine = new PreCopyEngine(h.Source.Object, h.Tracker, options);
            MigrationReport report = await engine.MigrateAsync(async ct =>
            {
                IMigrationConnection socket = await MigrationConnector.ConnectAsync(address, cancellationToken: ct);
                var relay = new LinkRelay(socket, relays.Count == 0 ? cut : null);
                relays.Add(relay);
                return relay.Source;
            }).WaitAsync(EngineHarness.Timeout);

            // A moment for a destination that would act after the source's end (it must not), then the
            // receive is stopped: a session left waiting is released.
            ReceiveResult? received = null;
            if (destinationClock is null)
            {
                await Task.WhenAny(receiving, Task.Delay(TimeSpan.FromMilliseconds(50)));
                await stop.CancelAsync();
            }

            try
            {
                received = await receiving.WaitAsync(EngineHarness.Timeout);
            }
            catch (OperationCanceledException)
            {
                // Stopped here.
            }

            TestTarget? started = Enumerable.Range(0, targets.Count).Select(i => targets[i]).SingleOrDefault(t => t.Started);
            if (report.Status == MigrationStatus.Completed && started is not null)
            {
                EngineHarness.AssertSameMemory(h.Memory, started.Memory, $"completed after a cut {cut}");
            }

            return new Outcome(report, started is not null, h.Paused, [relays[0].Bytes[0], relays[0].Bytes[1]], received);
        }
        finally
        {
            foreach (LinkRelay relay in relays)
            {
                await relay.DisposeAsync();
            }

            targets.DisposeAll();
            Directory.Delete(folder, recursive: true);
        }
    }

    private sealed record Outcome(MigrationReport Report, bool Started, bool SourcePaused, long[] Bytes, ReceiveResult? Received);
}
