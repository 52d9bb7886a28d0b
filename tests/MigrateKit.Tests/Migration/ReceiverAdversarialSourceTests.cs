using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CsCheck;
using Microsoft.Extensions.Logging;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// A listening receiver against sources that misbehave at random: frames out of order or out of
/// range, wrong digests, lost links, and Resumes and Queries for sessions that are live, gone or
/// unknown. Whatever they send, the destination starts at most one VM, only with the source's
/// memory and state, never after telling a source that the VM was discarded, and fails only with
/// the protocol's own errors.
/// </summary>
[TestClass]
public sealed class ReceiverAdversarialSourceTests
{
    private const ulong Pages = ScriptedSource.Pages;

    // Long enough for a destination's answer on a loaded machine; a missing answer only ends the step.
    private static readonly TimeSpan AnswerWait = TimeSpan.FromSeconds(2);

    private static readonly Gen<Step> Steps = Gen.Frequency(
        (6, Gen.Int[0, 3].Select(round => new Step(StepKind.FullRound, Round: round))),
        (2, Gen.Select(Gen.Int[0, (int)Pages - 1], Gen.Int[1, (int)Pages], (first, count) => new Step(StepKind.Pages, first, count))),
        (1, Gen.Select(Gen.Int[0, (int)Pages + 4], Gen.Int[1, 8], (first, count) => new Step(StepKind.ZeroPages, first, count))),
        (1, Gen.Const(new Step(StepKind.UnknownRegion))),
        (1, Gen.Int[-1, 4].Select(round => new Step(StepKind.RoundEnd, Round: round))),
        (5, Gen.Const(new Step(StepKind.Switchover))),
        (1, Gen.Const(new Step(StepKind.WrongDigest))),
        (1, Gen.Const(new Step(StepKind.CompleteAlone))),
        (5, Gen.Bool.Select(done => new Step(StepKind.Commit, Count: done ? 1 : 0))),
        (1, Gen.Const(new Step(StepKind.Hello))),
        (1, Gen.Const(new Step(StepKind.Abort))),
        (1, Gen.Const(new Step(StepKind.Ready))),
        (1, Gen.Const(new Step(StepKind.Ack))),
        (1, Gen.Const(new Step(StepKind.Done))));

    // What a source means to send (rounds, switchover, Commit), cut short, with steps dropped or
    // out-of-place ones slipped in: random frames alone seldom get as far as a Ready.
    private static readonly Gen<Step[]> Scripts = Gen.Select(
        Gen.Bool,
        Gen.Int[1, 4],
        Gen.Int[0, 6],
        Steps.Array[0, 2],
        Gen.Int[0, 4],
        (twoRounds, kept, dropped, extras, at) =>
        {
            List<Step> steps = [new(StepKind.FullRound), .. twoRounds ? [new Step(StepKind.FullRound, Round: 1)] : Array.Empty<Step>(), new(StepKind.Switchover), new(StepKind.Commit, Count: 1)];
            steps = steps.Take(kept + (twoRounds ? 1 : 0)).Where((_, i) => i != dropped).ToList();
            steps.InsertRange(Math.Min(at, steps.Count), extras);
            return steps.ToArray();
        });

    private static readonly Gen<Link> Links = Gen.Select(
        Gen.Frequency(
            (5, Gen.Const(Opening.Hello)), (3, Gen.Const(Opening.Resume)), (1, Gen.Const(Opening.QueryAsk)),
            (2, Gen.Const(Opening.QueryCommit)), (2, Gen.Const(Opening.QueryAbort)), (1, Gen.Const(Opening.Pages))),
        Gen.Int[-1, 2],
        Gen.Int[0, 3],
        Gen.Frequency((3, Scripts), (1, Steps.Array[0, 8])),
        Gen.Frequency((2, Gen.Const(Ending.Close)), (1, Gen.Const(Ending.Reset)), (1, Gen.Const(Ending.CloseInsideAFrame))),
        (opening, session, nextRound, steps, ending) => new Link(opening, session, nextRound, steps, ending));

    [TestMethod]
    public async Task RandomSources_NeverStartTwoVms_NorAWrongOne_NorOneReportedDiscarded()
    {
        await Links.Array[1, 4].SampleAsync(ServeAsync, iter: 400, threads: 1, print: Describe);
    }

    private static async Task ServeAsync(Link[] links)
    {
        using var vm = new ScriptedVm();
        var targets = new BuiltTargets();
        bool startedTwice = false;
        var logger = new ListLogger<MigrationReceiver>();
        var receiver = new MigrationReceiver(
            hello =>
            {
                TestTarget target = targets.Create(hello);
                target.BeforeStart = () => startedTwice |= target.Started;
                return target;
            },
            new MigrationReceiverOptions(),
            logger);

        string folder = Directory.CreateTempSubdirectory("mk-adversary-").FullName;
        string address = "unix:" + Path.Combine(folder, "sock");
        var sessions = new List<Guid>();
        var served = new List<Served>();
        ReceiveResult? result = null;
        try
        {
            await using MigrationListener listener = MigrationListener.Listen(address);
            using var stop = new CancellationTokenSource();
            Task<ReceiveResult> receiving = Task.Run(() => receiver.ReceiveAsync(listener, stop.Token));
            foreach (Link link in links)
            {
                if (receiving.IsCompleted)
                {
                    // A migration ended the receive: nobody answers on this address any more.
                    break;
                }

                served.Add(await RunAsync(address, vm, link, sessions, receiving));
            }

            await stop.CancelAsync();
            try
            {
                result = await receiving.WaitAsync(EngineHarness.Timeout);
            }
            catch (OperationCanceledException)
            {
                // Stopped here, as intended.
            }

            Check(vm, targets, startedTwice, served, result, logger.Entries);
        }
        finally
        {
            targets.DisposeAll();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void Check(ScriptedVm vm, BuiltTargets targets, bool startedTwice, List<Served> served, ReceiveResult? result, Logged[] logs)
    {
        Assert.IsFalse(startedTwice, "a target was started twice");
        TestTarget[] all = Enumerable.Range(0, targets.Count).Select(i => targets[i]).ToArray();
        TestTarget[] started = all.Where(t => t.Started).ToArray();
        Assert.IsLessThanOrEqualTo(1, started.Length, "more than one VM started");
        foreach (TestTarget t in started)
        {
            Assert.IsTrue(vm.SameMemory(t), "a VM started with memory that is not the source's");
            CollectionAssert.AreEqual(ScriptedVm.State, t.RestoredState, "a VM started without the source's device state");
        }

        foreach (TestTarget t in all.Where(t => !t.Started))
        {
            Assert.IsTrue(t.Disposed, $"session {t.Hello.SessionId:N} was never started and never released; links: {string.Join(" | ", served.Select(s => $"{s.Session:N}: {string.Join(", ", s.Replies)}"))}; result {result?.Status} {result?.Reason}; log: {string.Join(" / ", logs.Select(l => l.Message))}");
        }

        foreach (Served s in served)
        {
            TestTarget? mine = all.FirstOrDefault(t => t.Hello.SessionId == s.Session);
            foreach (ReceivedFrame frame in s.Replies)
            {
                switch (frame)
                {
                    case StatusFrame { Status.State: DestinationSessionState.Discarded }:
                        Assert.IsFalse(mine?.Started ?? false, $"session {s.Session:N} was reported discarded but its VM started");
                        break;
                    case StatusFrame { Status.State: DestinationSessionState.Started }:
                    case AckFrame:
                        Assert.IsTrue(mine?.Started ?? false, $"{frame} for session {s.Session:N}, whose VM did not start");
                        break;
                }
            }

            int error = s.Replies.FindIndex(f => f is ErrorFrame);
            Assert.IsTrue(error < 0 || error == s.Replies.Count - 1, $"frames after an Error: {string.Join(", ", s.Replies)}");
        }

        if (result is { Status: MigrationStatus.Completed })
        {
            Assert.AreEqual(1, started.Length, "the receive completed without a started VM");
            Assert.AreSame(started[0], result.Target);
        }

        BugChecks.AssertNoBugs(logs.Select(l => l.Exception).Append(result?.Error), "the receiver");
    }

    private static async Task<Served> RunAsync(string address, ScriptedVm vm, Link link, List<Guid> sessions, Task receiving)
    {
        Guid session = link.Opening == Opening.Hello ? Guid.NewGuid()
            : link.Session >= 0 && link.Session < sessions.Count ? sessions[link.Session] : Guid.NewGuid();
        if (link.Opening == Opening.Hello)
        {
            sessions.Add(session);
        }

        IMigrationConnection connection = await MigrationConnector.ConnectAsync(address).WaitAsync(EngineHarness.Timeout);
        var peer = new Peer(connection, receiving);
        bool open = await peer.SendAsync(w =>
        {
            switch (link.Opening)
            {
                case Opening.Hello:
                    w.AppendHello(vm.Hello with { SessionId = session });
                    break;
                case Opening.Resume:
                    w.AppendResume(new MigrationResume(MigrationProtocol.Version, session, link.NextRound));
                    break;
                case Opening.Pages:
                    w.AppendPages(0, vm.Region, [new PageRun(0, 1)]);
                    break;
                default:
                    SessionQueryAction action = link.Opening switch
                    {
                        Opening.QueryCommit => SessionQueryAction.Commit,
                        Opening.QueryAbort => SessionQueryAction.Abort,
                        _ => SessionQueryAction.Ask,
                    };
                    w.AppendQuery(new SessionQuery(MigrationProtocol.Version, session, action));
                    break;
            }
        });

        foreach (Step step in link.Steps)
        {
            if (!open || !await StepAsync(peer, vm, step))
            {
                break;
            }
        }

        if (link.Ending == Ending.Reset)
        {
            await connection.DisposeAsync();
            await peer.Ended.WaitAsync(EngineHarness.Timeout);
        }
        else
        {
            if (link.Ending == Ending.CloseInsideAFrame)
            {
                await WriteQuietlyAsync(connection, TransportTestSupport.Frame(FrameType.Pages, new byte[24 + 4096]).AsMemory(0, 100));
            }

            await connection.Output.CompleteAsync();
            // Once the receive is over (this link's migration ended it, or an earlier one did and
            // nobody accepted this connection), the listener serves no one: only the receive's end counts.
            Task ended = await Task.WhenAny(peer.Ended, receiving, Task.Delay(EngineHarness.Timeout));
            Assert.IsTrue(ended == peer.Ended || ended == receiving, $"the destination kept a connection open after its source hung up: {link.Opening} {string.Join(" ", link.Steps.Select(s => s.ToString()))}, answered {string.Join(", ", peer.Replies)}");
            await connection.DisposeAsync();
        }

        return new Served(session, peer.Replies);
    }

    // A link the destination already closed takes no more bytes; that is no failure here.
    private static async Task WriteQuietlyAsync(IMigrationConnection connection, ReadOnlyMemory<byte> bytes)
    {
        try
        {
            await connection.Output.WriteAsync(bytes).AsTask().WaitAsync(AnswerWait);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or TimeoutException or OperationCanceledException)
        {
            // Gone already.
        }
    }

    // One step of a source; false once the link is unusable.
    private static async Task<bool> StepAsync(Peer peer, ScriptedVm vm, Step step)
    {
        ulong digest = RegionDigestAccumulator.Compute(vm.Region);
        switch (step.Kind)
        {
            case StepKind.FullRound:
                return await peer.SendAsync(w =>
                {
                    w.AppendPages(0, vm.Region, [new PageRun(0, Pages)]);
                    w.AppendRoundEnd(new RoundEnd(step.Round, Pages, 0));
                });
            case StepKind.Pages:
                ulong first = (ulong)step.First;
                ulong count = Math.Min((ulong)step.Count, Pages - first);
                return await peer.SendAsync(w => w.AppendPages(0, vm.Region, [new PageRun(first, count)]));
            case StepKind.ZeroPages:
                return await peer.SendAsync(w => w.AppendZeroPages(0, [new PageRun((ulong)step.First, (ulong)step.Count)]));
            case StepKind.UnknownRegion:
                return await peer.SendAsync(w => w.AppendPages(3, vm.Region, [new PageRun(0, 1)]));
            case StepKind.RoundEnd:
                return await peer.SendAsync(w => w.AppendRoundEnd(new RoundEnd(Math.Max(step.Round, 0), 0, 0)));
            case StepKind.Switchover or StepKind.WrongDigest:
                bool sent = await peer.SendAsync(w =>
                {
                    w.AppendDeviceState(ScriptedVm.State);
                    w.AppendDigests([new RegionDigest(0, step.Kind == StepKind.WrongDigest ? ~digest : digest)]);
                    w.AppendComplete();
                });
                return sent && await peer.AnswerAsync(f => f is ReadyFrame);
            case StepKind.CompleteAlone:
                return await peer.SendAsync(w => w.AppendComplete()) && await peer.AnswerAsync(f => f is ReadyFrame);
            case StepKind.Commit:
                if (!await peer.SendAsync(w => w.AppendCommit()) || !await peer.AnswerAsync(f => f is AckFrame))
                {
                    return false;
                }

                // As a source does: Done tells the destination the Ack arrived (or, left out, as a
                // proxy that closes the link under it: the destination cannot tell), then it closes its side.
                if (step.Count == 1)
                {
                    await peer.SendAsync(w => w.AppendDone());
                }

                await peer.Connection.Output.CompleteAsync();
                return false;
            case StepKind.Hello:
                return await peer.SendAsync(w => w.AppendHello(vm.Hello));
            case StepKind.Abort:
                return await peer.SendAsync(w => w.AppendError(new MigrationError(MigrationErrorCode.SourceAborted, "aborted by the test")));
            case StepKind.Ready:
                return await peer.SendAsync(w => w.AppendReady(new DestinationReady(TimeSpan.Zero)));
            case StepKind.Done:
                return await peer.SendAsync(w => w.AppendDone());
            default:
                return await peer.SendAsync(w => w.AppendAck(new CompletionAck(TimeSpan.Zero)));
        }
    }

    private static string Describe(Link[] links) => string.Join(" | ", links.Select(l =>
        $"{l.Opening}({l.Session},{l.NextRound}) {string.Join(" ", l.Steps.Select(s => s.ToString()))} {l.Ending}"));

    private enum Opening
    {
        Hello,
        Resume,
        QueryAsk,
        QueryCommit,
        QueryAbort,
        Pages,
    }

    private enum StepKind
    {
        FullRound,
        Pages,
        ZeroPages,
        UnknownRegion,
        RoundEnd,
        Switchover,
        WrongDigest,
        CompleteAlone,
        Commit,
        Hello,
        Abort,
        Ready,
        Ack,
        Done,
    }

    private sealed record Step(StepKind Kind, int First = 0, int Count = 0, int Round = 0)
    {
        public override string ToString() => Kind switch
        {
            StepKind.FullRound or StepKind.RoundEnd => $"{Kind}({Round})",
            StepKind.Pages or StepKind.ZeroPages => $"{Kind}({First}+{Count})",
            StepKind.Commit when Count == 1 => "Commit+Done",
            _ => Kind.ToString(),
        };
    }

    private sealed record Link(Opening Opening, int Session, int NextRound, Step[] Steps, Ending Ending);

    /// <summary>How a source lets go of its connection: closed between frames, reset, or closed inside a frame (as by a proxy).</summary>
    private enum Ending
    {
        Close,
        Reset,
        CloseInsideAFrame,
    }

    private sealed record Served(Guid Session, List<ReceivedFrame> Replies);

    /// <summary>A source's end of one connection: frames out, and every answer collected as it arrives.</summary>
    private sealed class Peer
    {
        private readonly PageStreamWriter _writer;
        private readonly RecordingHandler _handler = new();
        private readonly List<ReceivedFrame> _replies = [];

        private readonly Task _receiving;

        public Peer(IMigrationConnection connection, Task receiving)
        {
            Connection = connection;
            _receiving = receiving;
            _writer = new PageStreamWriter(connection.Output);
            Ended = Task.Run(() => ReadAsync(new PageStreamReader(connection.Input)));
        }

        public IMigrationConnection Connection { get; }

        /// <summary>Ends when the destination closes its side or the link breaks.</summary>
        public Task Ended { get; }

        public List<ReceivedFrame> Replies
        {
            get
            {
                lock (_replies)
                {
                    return [.. _replies];
                }
            }
        }

        public async Task<bool> SendAsync(Action<PageStreamWriter> frames)
        {
            try
            {
                frames(_writer);
                await _writer.FlushAsync().AsTask().WaitAsync(AnswerWait);
                return !Ended.IsCompleted;
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or TimeoutException or ObjectDisposedException or OperationCanceledException)
            {
                return false;
            }
        }

        /// <summary>Waits for an answer that <paramref name="expected"/> accepts; false on an Error, the end of the stream or silence.</summary>
        public async Task<bool> AnswerAsync(Func<ReceivedFrame, bool> expected)
        {
            long deadline = Environment.TickCount64 + (long)AnswerWait.TotalMilliseconds;
            while (Environment.TickCount64 < deadline)
            {
                List<ReceivedFrame> replies = Replies;
                if (replies.Any(expected))
                {
                    return true;
                }

                if (Ended.IsCompleted || _receiving.IsCompleted || replies.Any(f => f is ErrorFrame))
                {
                    return false;
                }

                await Task.Delay(1);
            }

            return false;
        }

        private async Task ReadAsync(PageStreamReader reader)
        {
            try
            {
                bool more = true;
                while (more)
                {
                    more = await reader.ReadAsync(_handler);
                    lock (_replies)
                    {
                        _replies.AddRange(_handler.Frames.Skip(_replies.Count));
                    }
                }
            }
            catch (Exception)
            {
                // A destination that refused the source may reset the link rather than close it:
                // whatever this end's read ends with, the destination's side is what is checked.
            }
        }
    }
}
