using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// Asks a destination what became of a session, and optionally resolves it: after a migration
/// whose outcome the source could not learn (<see cref="MigrationReport.OutcomeUnknown"/>: Commit
/// was sent and the link was lost before the destination's answer), both copies stay paused until
/// someone asks. <see cref="DestinationSessionState.Started"/> means the source's copy must be
/// discarded; <see cref="DestinationSessionState.Discarded"/> means the destination never ran it
/// and the source may resume. The destination must be a listening receiver
/// (<see cref="MigrationReceiver.ReceiveAsync(MigrationListener, CancellationToken)"/>).
/// </summary>
public static class MigrationRecovery
{
    /// <summary>Sends a Query for <paramref name="sessionId"/> over <paramref name="connection"/> and returns the destination's Status.</summary>
    /// <param name="connection">A new connection to the destination (the query is its only use).</param>
    /// <param name="sessionId">The session, as the source's report names it.</param>
    /// <param name="action">
    /// <see cref="SessionQueryAction.Commit"/> starts a VM that is ready and paused (only when the
    /// source's copy is paused for good); <see cref="SessionQueryAction.Abort"/> releases one that
    /// never ran (before resuming the source); <see cref="SessionQueryAction.Ask"/> changes nothing.
    /// </param>
    /// <param name="timeout">How long to wait for the answer; null for 30 s.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="MigrationQueryException">The destination refused the query (<see cref="MigrationQueryException.Refusal"/>), closed or broke the connection without answering, or no answer came in time.</exception>
    /// <exception cref="MigrationProtocolException">The destination's answer breaks the protocol.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is not positive, or longer than 24.8 days.</exception>
    public static async Task<SessionStatus> QueryAsync(IMigrationConnection connection, Guid sessionId, SessionQueryAction action = SessionQueryAction.Ask, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (sessionId == Guid.Empty)
        {
            throw new ArgumentException("A session id is never all zero.", nameof(sessionId));
        }

        TimeSpan wait = timeout ?? TimeSpan.FromSeconds(30);
        if (wait <= TimeSpan.Zero || wait.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The time to wait for the answer is positive and at most 24.8 days.");
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(wait);
        var writer = new PageStreamWriter(connection.Output, connection.Options);
        var reader = new PageStreamReader(connection.Input, connection.Options);
        var answer = new Answer();
        try
        {
            writer.AppendQuery(new SessionQuery(MigrationProtocol.Version, sessionId, action));
            await writer.FlushAsync(deadline.Token).ConfigureAwait(false);
            while (answer.Status is null && answer.Error is null)
            {
                if (!await reader.ReadAsync(answer, deadline.Token).ConfigureAwait(false))
                {
                    throw new MigrationQueryException(connection.RemoteAddress, $"The destination at {connection.RemoteAddress} closed the connection without answering the query.", inner: new EndOfStreamException());
                }
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // With the cause kept, a lost link is told from a refusal, and retried like one.
            throw new MigrationQueryException(connection.RemoteAddress, $"The destination at {connection.RemoteAddress} did not answer the query within {wait.TotalSeconds:0.###} s.", inner: new TimeoutException());
        }
        catch (IOException ex)
        {
            throw new MigrationQueryException(connection.RemoteAddress, $"Querying the destination at {connection.RemoteAddress} failed: {ex.Message}", inner: ex);
        }

        return answer.Status ?? throw new MigrationQueryException(connection.RemoteAddress, $"The destination at {connection.RemoteAddress} refused the query ({answer.Error!.Code}): {answer.Error.Message}", answer.Error);
    }

    private sealed class Answer : RefusingHandler, IPageStreamHandler
    {
        internal SessionStatus? Status { get; private set; }

        internal MigrationError? Error { get; private set; }

        // Listed again above so this member, not the interface's default, answers Status.
        public void OnStatus(SessionStatus status) => Status = status;

        public override void OnError(MigrationError error) => Error = error;

        protected override string Refused(string frame) => $"A destination answers a Query with Status or Error, not {frame}.";
    }
}
