using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>The frames that name a session a listening receiver keeps: Resume continues it, Query asks about it.</summary>
internal sealed partial class ReceiverConnection
{
    public void OnResume(MigrationResume resume)
    {
        CheckNotEnded("Resume", first: true);
        ReceiverSession? session = null;
        string why = "this receiver takes one connection and keeps no session after it: continuing needs a listening receiver";
        if (_sessions?.Find(resume.SessionId, out why) is { } found)
        {
            session = found;
        }

        if (session is null)
        {
            _refusal = new MigrationError(MigrationErrorCode.SessionUnavailable, $"Cannot resume: {why}.");
            return;
        }

        _resuming = session;
        _resumeRound = resume.NextRound;
    }

    public void OnQuery(SessionQuery query)
    {
        CheckNotEnded("Query", first: true);
        if (_sessions is null)
        {
            _refusal = new MigrationError(MigrationErrorCode.SessionUnavailable, "This receiver takes one connection and keeps no sessions to report on: queries need a listening receiver.");
            return;
        }

        _writer.AppendStatus(_sessions.Answer(query));
        _replyPending = true;
        _answered = true;
    }

    private async Task TakeOverAsync(ReceiverSession session)
    {
        if (session.Owner is { } previous && previous != this)
        {
            // The old connection may still look alive (a black-holed link): it stops here, first.
            previous.TakeOver();
            await session.WaitReleasedAsync().ConfigureAwait(false);
        }

        session.Attach(this);
        session.LastAddress = _connection.RemoteAddress;
        _session = session;
        session.Reopen();
        MigrationLog.SessionResumed(_logger, session.Id, session.Hello.SourceName, _resumeRound);
        _writer.AppendHelloAck(new HelloAck(MigrationProtocol.Negotiate(session.Hello.Version), session.EstimateResumeCost()));
        _replyPending = true;
    }
}
