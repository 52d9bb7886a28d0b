using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>What a listening receiver knows about sessions: the current one, and the last finished ones for queries.</summary>
[TestClass]
public sealed class ReceiverSessionsTests
{
    private readonly ReceiverSessions _sessions = new(NullLogger.Instance);
    private readonly List<TestTarget> _targets = [];

    [TestCleanup]
    public void Cleanup() => _targets.ForEach(t => t.Dispose());

    [TestMethod]
    public void AQueryForAnUnknownSession_AnswersUnknown_WhateverTheAction()
    {
        foreach (SessionQueryAction action in Enum.GetValues<SessionQueryAction>())
        {
            SessionStatus status = _sessions.Answer(new SessionQuery(MigrationProtocol.Version, Guid.NewGuid(), action));
            Assert.AreEqual(DestinationSessionState.Unknown, status.State);
            Assert.Contains("proves nothing", status.Message);
        }
    }

    [TestMethod]
    public void ANewSession_ReleasesTheOneThatWaited_AndQueriesAnswerDiscarded()
    {
        ReceiverSession old = Open();
        _sessions.Begin(old);
        ReceiverSession next = Open();
        _sessions.Begin(next);

        Assert.AreSame(next, _sessions.Current);
        Assert.AreEqual(DestinationSessionState.Discarded, old.State);
        Assert.IsTrue(_targets[0].Disposed);
        Assert.Contains($"a new migration (session {next.Id:N}) arrived", old.DiscardReason!);
        Assert.AreEqual(DestinationSessionState.Discarded, Ask(old.Id).State);
        Assert.AreEqual(DestinationSessionState.Receiving, Ask(next.Id).State);
    }

    [TestMethod]
    public void Find_ReturnsOnlyTheCurrentSessionThatCanContinue()
    {
        ReceiverSession session = Open();
        _sessions.Begin(session);
        Assert.AreSame(session, _sessions.Find(session.Id, out _));

        Assert.IsNull(_sessions.Find(Guid.NewGuid(), out string unknown));
        Assert.Contains("holds no session", unknown);

        _sessions.Discard(session, "gone");
        Assert.IsNull(_sessions.Current);
        Assert.IsNull(_sessions.Find(session.Id, out string ended));
        Assert.Contains("has ended here: Discarded", ended);
    }

    [TestMethod]
    public void ACommitQueryOnASessionStillReceiving_StartsNothing_AndAnAbortReleasesIt()
    {
        ReceiverSession session = Open();
        _sessions.Begin(session);

        Assert.AreEqual(DestinationSessionState.Receiving, _sessions.Answer(new SessionQuery(MigrationProtocol.Version, session.Id, SessionQueryAction.Commit)).State);
        Assert.IsFalse(_targets[0].Started);

        Assert.AreEqual(DestinationSessionState.Discarded, _sessions.Answer(new SessionQuery(MigrationProtocol.Version, session.Id, SessionQueryAction.Abort)).State);
        Assert.IsTrue(_targets[0].Disposed);
        Assert.IsNull(_sessions.Current, "an aborted session is over");
        Assert.AreEqual(DestinationSessionState.Discarded, Ask(session.Id).State);
    }

    [TestMethod]
    public void TheLast256FinishedSessions_AreRemembered()
    {
        var ids = new List<Guid>();
        for (int i = 0; i <= ReceiverSessions.Remembered; i++)
        {
            ReceiverSession session = Open();
            _sessions.Begin(session);
            _sessions.Discard(session, "test");
            ids.Add(session.Id);
        }

        Assert.AreEqual(DestinationSessionState.Unknown, Ask(ids[0]).State, "the oldest is forgotten");
        Assert.AreEqual(DestinationSessionState.Discarded, Ask(ids[1]).State);
        Assert.AreEqual(DestinationSessionState.Discarded, Ask(ids[^1]).State);
    }

    [TestMethod]
    public void AWaitingSessionSeenDiscarded_IsNeverStillTheOneUnderWay_NorReplacedByNone()
    {
        // The listening receiver reads a waiting session's state, then the one under way: aborted
        // when none is, replaced when another is. A reader between the two steps of a discard
        // once saw it discarded yet still under way (and waited forever), or discarded by a new
        // Hello with none under way (and ended the new migration as aborted).
        for (int i = 0; i < 300; i++)
        {
            ReceiverSession old = Open();
            _sessions.Begin(old);
            bool replace = i % 2 == 0;
            ReceiverSession? next = replace ? Open() : null;
            string? seen = null;
            using var done = new ManualResetEventSlim();
            var observer = new Thread(() =>
            {
                while (!done.IsSet && seen is null)
                {
                    if (old.State == DestinationSessionState.Discarded)
                    {
                        ReceiverSession? current = _sessions.Current;
                        seen = current == old ? "still under way" : replace && current is null ? "replaced by none" : null;
                        return;
                    }
                }
            });
            observer.Start();
            if (next is not null)
            {
                _sessions.Begin(next);
            }
            else
            {
                _sessions.Answer(new SessionQuery(MigrationProtocol.Version, old.Id, SessionQueryAction.Abort));
            }

            done.Set();
            observer.Join();
            Assert.IsNull(seen, $"iteration {i}: a discarded session was seen {seen}");
            if (next is not null)
            {
                _sessions.Discard(next, "test over");
            }

            _targets.ForEach(t => t.Dispose());
            _targets.Clear();
        }
    }

    [TestMethod]
    public void ANewMigration_WhileAVmThatStartedHereIsNotHandedOver_IsRefused_UntilItsReceiveEnds()
    {
        ReceiverSession started = Open();
        Assert.IsNull(_sessions.Begin(started));
        ReceiverSessionTests.MakeReady(started);
        Assert.IsTrue(started.TryStart());
        _sessions.End(started);
        ReceiverSession next = Open();

        string? refused = _sessions.Begin(next);

        Assert.IsNotNull(refused);
        Assert.Contains($"has started the VM of another migration ({started.Hello.SourceName})", refused);
        Assert.DoesNotContain(started.Id.ToString("N"), refused, "a refusal goes to the peer: the id alone lets a Query abort or commit");
        Assert.AreEqual(refused, _sessions.RefusesNew());
        Assert.AreSame(started, _sessions.Latest, "the refused migration never became the latest");
        Assert.AreEqual(DestinationSessionState.Receiving, next.State, "the caller releases what it built");

        _sessions.EndReceive();
        Assert.IsNull(_sessions.RefusesNew());
        Assert.IsNull(_sessions.Begin(next), "the next receive takes a new migration");
        Assert.AreSame(next, _sessions.Current);
    }

    [TestMethod]
    public async Task ANewMigrationRacingTheCommitOfTheOneUnderWay_IsRefused_AndTheStartedVmStaysTheOneUnderWay()
    {
        ReceiverSession underWay = Open();
        Assert.IsNull(_sessions.Begin(underWay));
        ReceiverSessionTests.MakeReady(underWay);
        ReceiverSession next = Open();
        Task<string?> beginning = null!;
        bool waitedForTheStart = false;
        _targets[0].BeforeStart = () =>
        {
            // The new Hello finds the session ready, not started, and waits for its lock.
            beginning = Contender.RunUntilBlocked(() => _sessions.Begin(next));
            waitedForTheStart = !beginning.IsCompleted;
        };

        Assert.IsTrue(underWay.TryStart());
        string? refused = await beginning.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.IsTrue(waitedForTheStart, "the new Hello did not wait for the start");

        Assert.IsNotNull(refused);
        Assert.Contains($"has started the VM of another migration ({underWay.Hello.SourceName})", refused);
        Assert.DoesNotContain(underWay.Id.ToString("N"), refused, "a refusal goes to the peer: the id alone lets a Query abort or commit");
        Assert.AreEqual(DestinationSessionState.Started, underWay.State);
        Assert.AreSame(underWay, _sessions.Current);
        Assert.AreSame(underWay, _sessions.Latest);
        Assert.IsFalse(_targets[0].Disposed);
    }

    private SessionStatus Ask(Guid id) => _sessions.Answer(new SessionQuery(MigrationProtocol.Version, id, SessionQueryAction.Ask));

    private ReceiverSession Open() => ReceiverSession.Open(MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20), new MigrationReceiverOptions(), hello =>
    {
        var target = new TestTarget(hello);
        _targets.Add(target);
        return target;
    });
}
