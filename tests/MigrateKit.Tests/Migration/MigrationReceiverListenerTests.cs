using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// <see cref="MigrationReceiver.ReceiveAsync(MigrationListener, CancellationToken)"/> over a Unix socket
/// in a temporary folder: sessions kept across a lost link, Resume, Query and the reconnect timeout.
/// </summary>
[TestClass]
public sealed class MigrationReceiverListenerTests
{
    [TestMethod]
    [DataRow(false, DisplayName = "closed between frames")]
    [DataRow(true, DisplayName = "closed inside a Pages frame")]
    public async Task ALostLink_KeepsTheSession_AndAResumeOnANewConnectionContinuesIt(bool insideAFrame)
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();
        await using (ScriptedSource first = await listening.ConnectAsync(vm))
        {
            await first.HelloAndRoundAsync(0, 10);
            if (insideAFrame)
            {
                await CloseInsideAsync(first, TransportTestSupport.Frame(FrameType.Pages, new byte[24 + 4096]), 100);
            }
        }

        await using ScriptedSource second = await listening.ConnectAsync(vm);
        await second.SendAsync(w => w.AppendResume(new MigrationResume(MigrationProtocol.Version, vm.SessionId, 1)));
        await second.ExpectAsync<HelloAckFrame>();

        // Only the pages the first connection did not carry: the digests prove the rest was kept.
        await second.RoundAsync(10, ScriptedSource.Pages, 1);
        await second.SwitchoverAsync();
        await second.ExpectAsync<ReadyFrame>();
        await second.SendAsync(w => w.AppendCommit());
        await second.ExpectAsync<AckFrame>();
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.AreEqual(1, result.Reconnections);
        Assert.AreEqual(2, result.Rounds);
        Assert.AreEqual(ScriptedSource.Pages, result.PagesReceived);
        Assert.AreEqual(1, listening.Targets.Count, "one VM across both connections");
        Assert.IsTrue(vm.SameMemory(listening.Targets[0]));
        Assert.IsTrue(listening.Targets[0].Started);
    }

    [TestMethod]
    public async Task ALinkClosedInsideTheCommit_KeepsTheReadySession_AndACommitQueryStartsIt()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();
        await using (ScriptedSource source = await listening.ConnectAsync(vm))
        {
            await source.ReadyAsync();
            await CloseInsideAsync(source, TransportTestSupport.Frame(FrameType.Commit, []), 5);
        }

        Assert.AreEqual(DestinationSessionState.Ready, (await QueryAsync(listening, vm.SessionId, SessionQueryAction.Ask)).State, "kept, paused");
        Assert.AreEqual(DestinationSessionState.Started, (await QueryAsync(listening, vm.SessionId, SessionQueryAction.Commit)).State);
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.IsTrue(listening.Targets[0].Started);
        Assert.IsTrue(vm.SameMemory(listening.Targets[0]));
    }

    [TestMethod]
    public async Task AResumeOfAReadySession_DropsTheSwitchover_AndTheVmStartsOnlyOnTheNextCommit()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();
        await LoseLinkWhenReadyAsync(listening, vm);
        Assert.AreEqual(DestinationSessionState.Ready, (await QueryAsync(listening, vm.SessionId, SessionQueryAction.Ask)).State);

        await using ScriptedSource second = await listening.ConnectAsync(vm);
        await second.SendAsync(w => w.AppendResume(new MigrationResume(MigrationProtocol.Version, vm.SessionId, 1)));
        await second.ExpectAsync<HelloAckFrame>();
        Assert.AreEqual(DestinationSessionState.Receiving, (await QueryAsync(listening, vm.SessionId, SessionQueryAction.Ask)).State, "back to receiving, still paused");

        // The guest changed one page meanwhile: it is sent again, and the new switchover's digests cover it.
        vm.Region.GetPage(3).Fill(0x33);
        await second.RoundAsync(3, 4, 1);
        Assert.IsFalse(listening.Targets[0].Started);
        await CompleteAsync(second, hello: false);
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.IsTrue(vm.SameMemory(listening.Targets[0]));
        Assert.AreEqual(1, listening.Targets.Count);
    }

    [TestMethod]
    public async Task ResumeForAnUnknownSession_IsAnsweredSessionUnavailable_AndTheReceiverGoesOn()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();
        await using (ScriptedSource stranger = await listening.ConnectAsync(vm))
        {
            await stranger.SendAsync(w => w.AppendResume(new MigrationResume(MigrationProtocol.Version, Guid.NewGuid(), 4)));
            ErrorFrame error = await stranger.ExpectAsync<ErrorFrame>();
            Assert.AreEqual(MigrationErrorCode.SessionUnavailable, error.Error.Code);
            Assert.Contains("holds no session", error.Error.Message);
        }

        Assert.IsFalse(listening.Receiving.IsCompleted, "a refused Resume does not end the receive");
        await using ScriptedSource source = await listening.ConnectAsync(vm);
        await CompleteAsync(source);
        Assert.AreEqual(MigrationStatus.Completed, (await listening.Receiving).Status);
    }

    [TestMethod]
    public async Task AWaitingSession_IsReleasedAfterTheReconnectTimeout_NeverStarted()
    {
        var clock = new FakeTimeProvider();
        await using Listening listening = Listen(new MigrationReceiverOptions { ReconnectTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock });
        using var vm = new ScriptedVm();
        await LoseLinkWhenReadyAsync(listening, vm);

        ReceiveResult result = await clock.AdvanceUntilDoneAsync(listening.Receiving, TimeSpan.FromSeconds(1));

        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.AreEqual("the source did not reconnect within 10 s", result.Reason);
        Assert.IsInstanceOfType<TimeoutException>(result.Error);
        Assert.IsNull(result.Target);
        Assert.IsFalse(listening.Targets[0].Started);
        Assert.IsTrue(listening.Targets[0].Disposed);
    }

    [TestMethod]
    public async Task ACommitQueryOnAWaitingReadySession_StartsIt_AndTheReceiveCompletes()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();
        await LoseLinkWhenReadyAsync(listening, vm);

        SessionStatus status = await QueryAsync(listening, vm.SessionId, SessionQueryAction.Commit);
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(DestinationSessionState.Started, status.State);
        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.IsTrue(listening.Targets[0].Started);
        Assert.AreSame(listening.Targets[0], result.Target);
    }

    [TestMethod]
    public async Task ACommitQueryWhileTheSourcesConnectionStillLooksAlive_StartsTheVm_AndALateCommitOnThatConnectionOnlyConfirmsIt()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();
        await using ScriptedSource source = await listening.ConnectAsync(vm);
        await source.ReadyAsync();

        // The source took its link for dead (a black hole) and asked on a new connection.
        Assert.AreEqual(DestinationSessionState.Started, (await QueryAsync(listening, vm.SessionId, SessionQueryAction.Commit)).State);
        Assert.IsTrue(listening.Targets[0].Started);

        // The link was only slow: its Commit arrives after all, and is answered, not refused.
        await source.SendAsync(w => w.AppendCommit());
        await source.ExpectAsync<AckFrame>();
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.AreSame(listening.Targets[0], result.Target, "the running VM is handed out, not lost");
        Assert.AreEqual(1, listening.Targets.Count);
    }

    [TestMethod]
    public async Task ACommitQueryWhileTheSourcesConnectionStillLooksAlive_ThenThatConnectionDrops_TheReceiveCompletesWithTheRunningVm()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();
        ScriptedSource source = await listening.ConnectAsync(vm);
        await source.ReadyAsync();
        Assert.AreEqual(DestinationSessionState.Started, (await QueryAsync(listening, vm.SessionId, SessionQueryAction.Commit)).State);

        await source.DisposeAsync();
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.AreSame(listening.Targets[0], result.Target);
    }

    [TestMethod]
    public async Task AnAbortQueryOnAWaitingSession_DiscardsIt_AndTheReceiveEndsAborted_ThenQueriesAnswerDiscarded()
    {
        var targets = new BuiltTargets();
        var receiver = new MigrationReceiver(targets.Create);
        await using Listening listening = Listen(receiver, targets);
        using var vm = new ScriptedVm();
        await LoseLinkWhenReadyAsync(listening, vm);

        Assert.AreEqual(DestinationSessionState.Ready, (await QueryAsync(listening, vm.SessionId, SessionQueryAction.Ask)).State);
        SessionStatus status = await QueryAsync(listening, vm.SessionId, SessionQueryAction.Abort);
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(DestinationSessionState.Discarded, status.State);
        Assert.AreEqual(MigrationStatus.Aborted, result.Status);
        Assert.AreEqual("aborted by a query", result.Reason);
        Assert.IsFalse(targets[0].Started);
        Assert.IsTrue(targets[0].Disposed);

        // The same receiver, serving again, remembers the finished session; an unknown one is Unknown.
        await using Listening again = Listen(receiver, targets);
        Assert.AreEqual(DestinationSessionState.Discarded, (await QueryAsync(again, vm.SessionId, SessionQueryAction.Commit)).State);
        SessionStatus unknown = await QueryAsync(again, Guid.NewGuid(), SessionQueryAction.Ask);
        Assert.AreEqual(DestinationSessionState.Unknown, unknown.State);
        Assert.Contains("proves nothing", unknown.Message);
        Assert.IsFalse(targets[0].Started, "a Commit query cannot start a discarded session");
    }

    [TestMethod]
    public async Task AnAbortQueryWhileTheSourceStillStreams_StopsItAtItsNextFrame_AndReleasesTheVmThen()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();
        await using ScriptedSource source = await listening.ConnectAsync(vm);
        await source.HelloAndRoundAsync(0, 8);

        Assert.AreEqual(DestinationSessionState.Discarded, (await QueryAsync(listening, vm.SessionId, SessionQueryAction.Abort)).State);
        Assert.IsFalse(listening.Targets[0].Disposed, "the connection that writes into it still holds it");

        await source.SendAsync(w => w.AppendPages(0, vm.Region, [new PageRun(8, 8)]));
        ErrorFrame error = await source.ExpectAsync<ErrorFrame>();
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationErrorCode.DestinationFailure, error.Error.Code);
        Assert.Contains("aborted by a query", error.Error.Message);
        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.IsTrue(listening.Targets[0].Disposed);
        Assert.IsFalse(listening.Targets[0].Started);
    }

    [TestMethod]
    public async Task ANewHelloWhileASessionWaits_ReleasesTheOldOne()
    {
        await using Listening listening = Listen();
        using var oldVm = new ScriptedVm(1);
        using var newVm = new ScriptedVm(2);
        await using (ScriptedSource first = await listening.ConnectAsync(oldVm))
        {
            await first.HelloAndRoundAsync(0, 8);
        }

        await using ScriptedSource second = await listening.ConnectAsync(newVm);
        await second.HelloAndRoundAsync(0, ScriptedSource.Pages);
        Assert.IsTrue(listening.Targets[0].Disposed, "the old session's VM is released");
        Assert.AreEqual(DestinationSessionState.Discarded, (await QueryAsync(listening, oldVm.SessionId, SessionQueryAction.Ask)).State);

        await second.SwitchoverAsync();
        await second.ExpectAsync<ReadyFrame>();
        await second.SendAsync(w => w.AppendCommit());
        await second.ExpectAsync<AckFrame>();
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.AreEqual(newVm.SessionId, result.SessionId);
        Assert.IsFalse(listening.Targets[0].Started);
        Assert.IsTrue(listening.Targets[1].Started);
    }

    [TestMethod]
    public async Task ANewHelloWhileAnotherSourceStreams_IsRefused_AndTheMigrationUnderWayCompletes()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm(1);
        using var other = new ScriptedVm(2);
        await using ScriptedSource first = await listening.ConnectAsync(vm);
        await first.HelloAndRoundAsync(0, 8);

        // Anyone who may connect could otherwise end a live migration by starting one of their own.
        await using (ScriptedSource second = await listening.ConnectAsync(other))
        {
            await second.SendAsync(w => w.AppendHello(other.Hello));
            ErrorFrame refused = await second.ExpectAsync<ErrorFrame>();
            Assert.AreEqual(MigrationErrorCode.DestinationFailure, refused.Error.Code);
            Assert.Contains($"A migration ({vm.Hello.SourceName}) is under way here on a live connection", refused.Error.Message);
            Assert.Contains("migratekit recover --to ADDRESS --session ID --abort, with the session id of its source's report or of this destination's log", refused.Error.Message);

            // The id alone lets a Query abort the migration under way: a peer that was refused never learns it.
            Assert.DoesNotContain(vm.SessionId.ToString("N"), refused.Error.Message);
        }

        await first.RoundAsync(8, ScriptedSource.Pages, 1);
        await first.SwitchoverAsync();
        await first.ExpectAsync<ReadyFrame>();
        await first.SendAsync(w => w.AppendCommit());
        await first.ExpectAsync<AckFrame>();
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.AreEqual(vm.SessionId, result.SessionId);
        Assert.AreEqual(1, listening.Targets.Count, "the refused migration built nothing");
        Assert.IsTrue(listening.Targets[0].Started);
    }

    [TestMethod]
    public async Task JunkThatEndsWhileASourceHasNotSpokenYet_DoesNotCutThatSource()
    {
        // Junk ended the receive whenever no migration was under way, and the receive's end closed every
        // other connection with it: a source connected at that moment lost its Hello.
        var targets = new BuiltTargets();
        var receiver = new MigrationReceiver(targets.Create);
        var refusedPeers = new List<PeerRefusedEventArgs>();
        var refused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        receiver.PeerRefused += (_, e) =>
        {
            refusedPeers.Add(e);
            refused.TrySetResult();
        };
        await using Listening listening = Listen(receiver, targets);
        using var vm = new ScriptedVm();
        await using ScriptedSource first = await listening.ConnectAsync(vm);
        await using (ScriptedSource junk = await listening.ConnectAsync(vm))
        {
            await junk.SendAsync(w => w.AppendPages(0, vm.Region, [new PageRun(0, 1)]));
            Assert.IsInstanceOfType<ErrorFrame>((await junk.RestAsync())[^1]);
        }

        await refused.Task.WaitAsync(EngineHarness.Timeout);
        Assert.IsFalse(listening.Serving.IsCompleted, "the junk ended the receive");
        StringAssert.Contains(refusedPeers.Single().Error.Message, "The first frame must be Hello");
        StringAssert.StartsWith(refusedPeers[0].Address, "unix:");

        await first.ReadyAsync();
        await first.SendAsync(w => w.AppendCommit());
        Assert.IsInstanceOfType<AckFrame>(await first.NextAsync());
        await first.SendAsync(w => w.AppendDone());
        await first.DisposeAsync();
        ReceiveResult result = await listening.Receiving;
        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.IsTrue(vm.SameMemory(targets.Started().Single()));
    }

    [TestMethod]
    public async Task APeerThatSendsNoHello_IsToldWhy_AndTheReceiveGoesOn()
    {
        // PROTOCOL.md §4: it was closed without a word on a listener.
        var clock = new FakeTimeProvider();
        var targets = new BuiltTargets();
        var receiver = new MigrationReceiver(targets.Create, new MigrationReceiverOptions { HandshakeTimeout = TimeSpan.FromSeconds(30), TimeProvider = clock });
        var refused = new TaskCompletionSource<PeerRefusedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        receiver.PeerRefused += (_, e) => refused.TrySetResult(e);
        await using Listening listening = Listen(receiver, targets);
        using var vm = new ScriptedVm();
        await using (ScriptedSource silent = await listening.ConnectAsync(vm))
        {
            Task<List<ReceivedFrame>> replies = silent.RestAsync();
            while (!replies.IsCompleted)
            {
                clock.Advance(TimeSpan.FromSeconds(1));
                await Task.WhenAny(replies, Task.Delay(10));
            }

            ErrorFrame error = Assert.IsInstanceOfType<ErrorFrame>((await replies).Single());
            Assert.AreEqual("No Hello arrived within 30 s of the connection.", error.Error.Message);
        }

        PeerRefusedEventArgs peer = await refused.Task.WaitAsync(EngineHarness.Timeout);
        Assert.IsInstanceOfType<TimeoutException>(peer.Error);
        Assert.IsFalse(listening.Serving.IsCompleted, "a silent peer ended the receive");

        await using ScriptedSource source = await AckedAsync(listening, vm);
        await source.DisposeAsync();
        ReceiveResult result = await clock.AdvanceUntilDoneAsync(listening.Serving, TimeSpan.FromSeconds(1));
        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
    }

    [TestMethod]
    public async Task AResumeWhileTheOldConnectionStillReads_TakesTheSessionOver()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();

        // The first connection stays open: to the receiver it looks alive (a black-holed link).
        await using ScriptedSource first = await listening.ConnectAsync(vm);
        await first.HelloAndRoundAsync(0, 6);

        await using ScriptedSource second = await listening.ConnectAsync(vm);
        await second.SendAsync(w => w.AppendResume(new MigrationResume(MigrationProtocol.Version, vm.SessionId, 1)));
        await second.ExpectAsync<HelloAckFrame>();
        Assert.IsFalse((await first.RestAsync()).Exists(f => f is ErrorFrame), "the old connection is closed, not refused");

        await second.RoundAsync(6, ScriptedSource.Pages, 1);
        await CompleteAsync(second, hello: false);
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.AreEqual(1, result.Reconnections);
        Assert.IsTrue(vm.SameMemory(listening.Targets[0]));
    }

    [TestMethod]
    public async Task AHelloInTheSameReadAsAQuery_IsAProtocolViolation_AndBuildsNothing()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm();
        await using ScriptedSource source = await listening.ConnectAsync(vm);
        await source.SendAsync(w =>
        {
            w.AppendQuery(new SessionQuery(MigrationProtocol.Version, Guid.NewGuid(), SessionQueryAction.Ask));
            w.AppendHello(vm.Hello);
        });

        List<ReceivedFrame> replies = await source.RestAsync();
        ReceiveResult result = await listening.Receiving;

        Assert.IsInstanceOfType<StatusFrame>(replies[0]);
        ErrorFrame error = Assert.IsInstanceOfType<ErrorFrame>(replies[^1]);
        Assert.AreEqual(MigrationErrorCode.ProtocolViolation, error.Error.Code);
        Assert.Contains("Hello arrived after Query.", error.Error.Message);
        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.AreEqual(0, listening.Targets.Count, "no VM was built for the Hello behind the Query");
    }

    [TestMethod]
    public async Task WhileAStartedVmAwaitsItsSourcesHangUp_ANewMigrationIsRefused_JunkIsIgnored_AndTheReceiveReturnsThatVm()
    {
        var targets = new BuiltTargets();
        var log = new ListLogger<MigrationReceiver>();
        await using Listening listening = Listen(new MigrationReceiver(targets.Create, new MigrationReceiverOptions(), log), targets);
        using var vm = new ScriptedVm();
        await using (ScriptedSource first = await AckedAsync(listening, vm))
        {
            // A frame instead of a hang-up: the destination cannot tell whether the Ack arrived.
            await first.SendAsync(w => w.AppendCommit());
        }

        using var other = new ScriptedVm(2);
        await using (ScriptedSource second = await listening.ConnectAsync(other))
        {
            await second.SendAsync(w => w.AppendHello(other.Hello));
            ErrorFrame refused = await second.ExpectAsync<ErrorFrame>();
            Assert.AreEqual(MigrationErrorCode.DestinationFailure, refused.Error.Code);
            Assert.Contains($"has started the VM of another migration ({vm.Hello.SourceName})", refused.Error.Message);
            Assert.DoesNotContain(vm.SessionId.ToString("N"), refused.Error.Message);
        }

        await using (ScriptedSource junk = await listening.ConnectAsync(other))
        {
            await junk.SendAsync(w => w.AppendPages(0, other.Region, [new PageRun(0, 1)]));
            Assert.IsInstanceOfType<ErrorFrame>((await junk.RestAsync())[^1]);
        }

        SessionStatus status = await QueryAsync(listening, vm.SessionId, SessionQueryAction.Ask);
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(DestinationSessionState.Started, status.State);
        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.AreEqual(vm.SessionId, result.SessionId);
        Assert.AreSame(listening.Targets[0], result.Target);
        Assert.AreEqual(1, listening.Targets.Count, "the refused migration built nothing");
        Logged refusal = log.Entries.Single(e => e.EventId.Name == "ConnectionRefused");
        Assert.AreEqual(LogLevel.Warning, refusal.Level);
        Assert.Contains($"(DestinationFailure): This destination has started the VM of another migration ({vm.Hello.SourceName})", refusal.Message);
    }

    [TestMethod]
    public async Task StoppingTheReceive_WhileItWaitsForTheSourceToHangUpAfterTheAck_EndsIt()
    {
        // A clock that never moves: only the stop can end the wait for the source's hang-up.
        await using Listening listening = Listen(new MigrationReceiverOptions { TimeProvider = new FakeTimeProvider() });
        using var vm = new ScriptedVm();
        await using ScriptedSource source = await AckedAsync(listening, vm);

        await listening.Stop.CancelAsync();

        await Assert.ThrowsAsync<OperationCanceledException>(() => listening.Receiving);
        Assert.IsTrue(listening.Targets[0].Started);
    }

    [TestMethod]
    public async Task AnAckWhoseLinkClosesBeforeTheSourcesDone_KeepsQueriesAnswered_UntilTheSourceAsks()
    {
        // A clock that never moves: the receive cannot end by waiting out its linger.
        await using Listening listening = Listen(new MigrationReceiverOptions { TimeProvider = new FakeTimeProvider() });
        using var vm = new ScriptedVm();
        await using ScriptedSource source = await AckedAsync(listening, vm);

        // A proxy closes the link while the Ack is on its way: the destination reads a clean end of
        // stream and no Done, and cannot tell whether the Ack arrived.
        await source.Connection.Output.CompleteAsync();
        Assert.IsNull(await source.NextAsync(), "the destination ends the connection");

        // Still served: were the receive over, nothing would accept this query.
        SessionStatus status = await QueryAsync(listening, vm.SessionId, SessionQueryAction.Commit);
        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(DestinationSessionState.Started, status.State);
        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.AreSame(listening.Targets[0], result.Target);
    }

    [TestMethod]
    [DataRow((ushort)2, (ushort)2)]
    [DataRow((ushort)(MigrationProtocol.Version + 1), MigrationProtocol.Version)]
    public async Task ASourceOfAnotherVersion_IsAnsweredInTheNewestBothSpeak_AndItsConfirmationOfTheAckEndsTheReceive(ushort version, ushort spoken)
    {
        // A clock that never moves: only the source's confirmation (a close in version 2, Done later) can end the receive.
        await using Listening listening = Listen(new MigrationReceiverOptions { TimeProvider = new FakeTimeProvider() });
        using var vm = new ScriptedVm(version: version);
        await using ScriptedSource source = await listening.ConnectAsync(vm);
        await source.SendAsync(w => w.AppendHello(vm.Hello));
        Assert.AreEqual(spoken, (await source.ExpectAsync<HelloAckFrame>()).Ack.Version);
        await source.RoundAsync(0, ScriptedSource.Pages, 0);
        await source.SwitchoverAsync();
        await source.ExpectAsync<ReadyFrame>();
        await source.SendAsync(w => w.AppendCommit());
        await source.ExpectAsync<AckFrame>();

        ReceiveResult result = await listening.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.IsTrue(listening.Targets[0].Started);
    }

    [TestMethod]
    public async Task AHelloOfVersion1_IsRefusedWithUnsupportedVersion_NamingBothSides()
    {
        await using Listening listening = Listen();
        using var vm = new ScriptedVm(version: 1);
        await using ScriptedSource source = await listening.ConnectAsync(vm);
        await source.SendAsync(w => w.AppendHello(vm.Hello));

        ErrorFrame error = await source.ExpectAsync<ErrorFrame>();

        Assert.AreEqual(MigrationErrorCode.UnsupportedVersion, error.Error.Code);
        Assert.Contains($"Hello.version: Protocol version 1 is not supported (this side speaks 2 to {MigrationProtocol.Version})", error.Error.Message);
        Assert.AreEqual(0, listening.Targets.Count);
    }

    /// <summary>A source whose VM the destination started and acknowledged; it has not answered the Ack.</summary>
    private static async Task<ScriptedSource> AckedAsync(Listening listening, ScriptedVm vm)
    {
        ScriptedSource source = await listening.ConnectAsync(vm);
        await source.ReadyAsync();
        await source.SendAsync(w => w.AppendCommit());
        Assert.IsInstanceOfType<AckFrame>(await source.NextAsync());
        return source;
    }

    private static async Task LoseLinkWhenReadyAsync(Listening listening, ScriptedVm vm)
    {
        await using ScriptedSource source = await listening.ConnectAsync(vm);
        await source.ReadyAsync();
    }

    /// <summary>
    /// Sends the first <paramref name="sent"/> bytes of <paramref name="frame"/> and closes the sending
    /// side, as a proxy that closes a link does; the destination must neither answer an Error nor end
    /// the session for it.
    /// </summary>
    private static async Task CloseInsideAsync(ScriptedSource source, byte[] frame, int sent)
    {
        await source.Connection.Output.WriteAsync(frame.AsMemory(0, sent));
        await source.Connection.Output.CompleteAsync();
        List<ReceivedFrame> rest = await source.RestAsync();
        Assert.IsFalse(rest.Exists(f => f is ErrorFrame), "a link cut inside a frame is not a violation: " + string.Join(", ", rest));
    }

    private static async Task CompleteAsync(ScriptedSource source, bool hello = true)
    {
        if (hello)
        {
            await source.HelloAndRoundAsync(0, ScriptedSource.Pages);
        }

        await source.SwitchoverAsync();
        await source.ExpectAsync<ReadyFrame>();
        await source.SendAsync(w => w.AppendCommit());
        await source.ExpectAsync<AckFrame>();
    }

    private static async Task<SessionStatus> QueryAsync(Listening listening, Guid session, SessionQueryAction action)
    {
        await using IMigrationConnection connection = await MigrationConnector.ConnectAsync(listening.Address).WaitAsync(EngineHarness.Timeout);
        return await MigrationRecovery.QueryAsync(connection, session, action, EngineHarness.Timeout);
    }

    [TestMethod]
    public async Task ASecondReceiveFromAListener_WhileOneListens_IsRefused_AndMayListenOnceTheFirstEnded()
    {
        string folder = Directory.CreateTempSubdirectory("mk-listen-").FullName;
        try
        {
            await using MigrationListener listener = MigrationListener.Listen("unix:" + Path.Combine(folder, "sock"));
            var targets = new BuiltTargets();
            var receiver = new MigrationReceiver(targets.Create);
            using var stop = new CancellationTokenSource();
            Task<ReceiveResult> first = receiver.ReceiveAsync(listener, stop.Token);

            // It would wait for a migration the first one takes, for ever.
            InvalidOperationException refused = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => receiver.ReceiveAsync(listener, CancellationToken.None));
            Assert.Contains("already receiving from a listener", refused.Message);

            await stop.CancelAsync();
            await Assert.ThrowsAsync<OperationCanceledException>(() => first.WaitAsync(EngineHarness.Timeout));
            using var stopAgain = new CancellationTokenSource();
            Task<ReceiveResult> next = receiver.ReceiveAsync(listener, stopAgain.Token);
            Assert.IsFalse(next.IsCompleted, "the next receive listens");
            await stopAgain.CancelAsync();
            await Assert.ThrowsAsync<OperationCanceledException>(() => next.WaitAsync(EngineHarness.Timeout));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static Listening Listen(MigrationReceiverOptions? options = null)
    {
        var targets = new BuiltTargets();
        return Listen(new MigrationReceiver(targets.Create, options ?? new MigrationReceiverOptions()), targets);
    }

    private static Listening Listen(MigrationReceiver receiver, BuiltTargets targets)
    {
        string folder = Directory.CreateTempSubdirectory("mk-listen-").FullName;
        string address = "unix:" + Path.Combine(folder, "sock");
        MigrationListener listener = MigrationListener.Listen(address);
        var stop = new CancellationTokenSource();
        Task<ReceiveResult> receiving = Task.Run(() => receiver.ReceiveAsync(listener, stop.Token));
        return new Listening(address, folder, listener, targets, receiving, stop);
    }

    /// <summary>A receive in progress on a listener; disposing stops it (if it still runs) and removes the socket's folder.</summary>
    private sealed record Listening(string Address, string Folder, MigrationListener Listener, BuiltTargets Targets, Task<ReceiveResult> Serving, CancellationTokenSource Stop) : IAsyncDisposable
    {
        public Task<ReceiveResult> Receiving => Serving.WaitAsync(EngineHarness.Timeout);

        public Task<ScriptedSource> ConnectAsync(ScriptedVm vm) => ScriptedSource.ConnectAsync(Address, vm);

        public async ValueTask DisposeAsync()
        {
            await Stop.CancelAsync();
            try
            {
                await Serving.WaitAsync(EngineHarness.Timeout);
            }
            catch (OperationCanceledException)
            {
                // Stopped here, as intended.
            }

            await Listener.DisposeAsync();
            Stop.Dispose();
            Targets.DisposeAll();
            Directory.Delete(Folder, recursive: true);
        }
    }
}
