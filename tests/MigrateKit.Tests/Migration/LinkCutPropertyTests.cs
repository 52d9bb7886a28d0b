using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// A migration to a listening receiver whose first link is cut at a random byte, in either
/// direction: before Hello, in a round, in the switchover, between Commit and Ack; the link is
/// reset and black-holed, or closed (as by a proxy), even inside a frame. The engine reconnects
/// (Resume, or a Commit query). Wherever the cut falls, the VM ends running on exactly one side,
/// with the source's memory where it completed. Past the handshake the migration completes; only
/// where the source cannot learn whether its Commit arrived does the VM stay paused on the source,
/// with the outcome reported unknown.
/// </summary>
[TestClass]
public sealed class LinkCutPropertyTests
{
    [TestMethod]
    public async Task ALinkCutOrClosedAnywhere_LeavesTheVmOnOneSide_AndPastTheHandshakeCompletesOrReportsTheOutcomeUnknown()
    {
        Outcome whole = await MigrateAsync(null);
        Assert.AreEqual(MigrationStatus.Completed, whole.Report.Status, whole.Report.Reason);
        long toDestination = whole.Bytes[0];
        long toSource = whole.Bytes[1];

        // A byte drawn evenly from the whole stream (a fraction of it would favour its ends).
        Gen<Cut> cuts = Gen.Select(Gen.Bool, Gen.Bool, (towardsSource, closes) => (towardsSource, closes))
            .SelectMany(c => Gen.Long[0, c.towardsSource ? toSource : toDestination].Select(at => new Cut(c.towardsSource, at, c.closes)));
        await cuts.SampleAsync(async cut => Check(cut, await MigrateAsync(cut)), iter: 120, threads: 1);
    }

    private static void Check(Cut cut, Outcome o)
    {
        string where = $"{(cut.Closes ? "closed" : "cut")} {(cut.TowardsSource ? "towards the source" : "towards the destination")} at byte {cut.At}: {o.Report.Status}, {o.Report.Reason}";
        Assert.IsFalse(o.Started && !o.SourcePaused, $"the VM runs on both sides ({where})");

        // Past the handshake a lost link, even one closed inside a frame, costs a reconnection, not
        // the migration; only where the source cannot learn whether its Commit arrived is it left open.
        Assert.IsTrue(
            o.Report.Status == MigrationStatus.Completed || o.Report.FailedPhase == MigrationPhase.Handshake || o.Report.OutcomeUnknown,
            $"the migration failed after the handshake ({where}, in {o.Report.FailedPhase})");
        if (o.Report.Status == MigrationStatus.Completed)
        {
            Assert.IsTrue(o.Started, $"completed, but the destination never started the VM ({where})");
        }
        else if (!o.Started)
        {
            Assert.IsTrue(!o.SourcePaused || o.Report.OutcomeUnknown, $"the VM runs nowhere and the report does not say the outcome is unknown ({where})");
        }
    }

    private static async Task<Outcome> MigrateAsync(Cut? cut)
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        var targets = new BuiltTargets();
        var receiver = new MigrationReceiver(targets.Create, new MigrationReceiverOptions());
        string folder = Directory.CreateTempSubdirectory("mk-cut-").FullName;
        string address = "unix:" + Path.Combine(folder, "sock");
        var relays = new List<CuttingRelay>();
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
                var relay = new CuttingRelay(socket, relays.Count == 0 ? cut : null);
                relays.Add(relay);
                return relay.Source;
            }).WaitAsync(EngineHarness.Timeout);

            // A moment for a destination that would act after the source's end (it must not), then the
            // receive is stopped: a session left waiting is released.
            await Task.WhenAny(receiving, Task.Delay(TimeSpan.FromMilliseconds(50)));
            await stop.CancelAsync();
            try
            {
                await receiving.WaitAsync(EngineHarness.Timeout);
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

            return new Outcome(report, started is not null, h.Paused, [relays[0].Bytes[0], relays[0].Bytes[1]]);
        }
        finally
        {
            foreach (CuttingRelay relay in relays)
            {
                await relay.DisposeAsync();
            }

            targets.DisposeAll();
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Where the first link breaks; <see cref="Closes"/>: both ends read an end of stream (inside a frame or not), else the source sees a reset and the destination silence.</summary>
    private sealed record Cut(bool TowardsSource, long At, bool Closes);

    private sealed record Outcome(MigrationReport Report, bool Started, bool SourcePaused, long[] Bytes);

    /// <summary>
    /// Between the engine and a socket to the receiver: forwards both ways and counts the bytes;
    /// given a cut, forwards that direction up to its byte and then breaks or closes the link on both sides.
    /// </summary>
    private sealed class CuttingRelay : IAsyncDisposable
    {
        private readonly IMigrationConnection _socket;
        private readonly IMigrationConnection _near;
        private readonly Cut? _cut;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _pumps;
        private int _broken;

        public CuttingRelay(IMigrationConnection socket, Cut? cut)
        {
            _socket = socket;
            _cut = cut;
            (Source, _near) = MigrationConnector.CreateInMemoryPair();
            _pumps = Task.WhenAll(PumpAsync(_near.Input, socket.Output, 0), PumpAsync(socket.Input, _near.Output, 1));
        }

        public IMigrationConnection Source { get; }

        /// <summary>Bytes forwarded towards the destination [0] and towards the source [1].</summary>
        public long[] Bytes { get; } = new long[2];

        public async ValueTask DisposeAsync()
        {
            await BreakAsync();
            await _pumps;
            await _socket.DisposeAsync();
            await Source.DisposeAsync();
            _stop.Dispose();
        }

        // Broken: the source sees its link reset; the destination sees it go silent (a black-holed
        // link). Closed: each side reads an end of stream where its direction stopped, as when a
        // proxy closes the link, and the source's later writes fail as they would on a reset.
        private async Task BreakAsync()
        {
            if (Interlocked.Exchange(ref _broken, 1) != 0)
            {
                return;
            }

            await _stop.CancelAsync();
            var lost = new IOException("the test cut the link");
            await _near.Input.CompleteAsync(lost);
            if (_cut is { Closes: true })
            {
                await _near.Output.CompleteAsync();
                await _socket.Output.CompleteAsync();
            }
            else
            {
                await _near.Output.CompleteAsync(lost);
            }
        }

        private async Task PumpAsync(PipeReader from, PipeWriter to, int direction)
        {
            long limit = _cut is { } c && c.TowardsSource == (direction == 1) ? c.At : long.MaxValue;
            try
            {
                while (true)
                {
                    ReadResult read = await from.ReadAsync(_stop.Token);
                    ReadOnlySequence<byte> buffer = read.Buffer;
                    long left = limit - Bytes[direction];
                    bool cutHere = buffer.Length >= left;
                    ReadOnlySequence<byte> passed = cutHere ? buffer.Slice(0, left) : buffer;
                    foreach (ReadOnlyMemory<byte> segment in passed)
                    {
                        await to.WriteAsync(segment, _stop.Token);
                    }

                    Bytes[direction] += passed.Length;
                    from.AdvanceTo(passed.End, buffer.End);
                    if (cutHere)
                    {
                        _ = Task.Run(BreakAsync);
                        return;
                    }

                    if (read.IsCompleted)
                    {
                        await to.CompleteAsync();
                        return;
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
            {
                // Broken by the test, or one side went away: the relay ends with it.
            }
        }
    }
}
