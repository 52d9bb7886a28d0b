using System;
using System.Collections.Generic;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
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

    private SessionStatus Ask(Guid id) => _sessions.Answer(new SessionQuery(MigrationProtocol.Version, id, SessionQueryAction.Ask));

    private ReceiverSession Open() => ReceiverSession.Open(MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20), new MigrationReceiverOptions(), hello =>
    {
        var target = new TestTarget(hello);
        _targets.Add(target);
        return target;
    });
}
