using System;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// What the engine does when its link to the destination fails: decides whether a reconnection
/// can help (the link failed, not the destination or the protocol), resumes the session on a new
/// connection during pre-copy, and after Commit asks the destination what became of the VM.
/// </summary>
internal sealed class LinkRecovery
{
    private readonly Reconnector _connector;
    private readonly MigrationOptions _options;
    private readonly Guid _session;
    private readonly Func<MigrationPhase> _phase;

    /// <param name="connector">Opens the new connections, within the retry budget.</param>
    /// <param name="options">The response timeout, the bandwidth limit and the clock of the new links.</param>
    /// <param name="session">The session the Hello opened.</param>
    /// <param name="phase">The engine's phase, named in failures.</param>
    internal LinkRecovery(Reconnector connector, MigrationOptions options, Guid session, Func<MigrationPhase> phase)
    {
        _connector = connector;
        _options = options;
        _session = session;
        _phase = phase;
    }

    /// <summary>Whether a new connection may continue after <paramref name="ex"/> on the link of <paramref name="channel"/>.</summary>
    internal bool CanContinueAfter(DestinationChannel channel, Exception ex) =>
        _connector.CanReconnect && (channel.Failure is { } failure ? Reconnector.IsLinkFailure(failure) : Reconnector.IsLinkFailure(ex));

    /// <summary>Opens a new link and resumes the session on it (Resume, then the destination's HelloAck).</summary>
    /// <param name="nextRound">The round the session goes on with.</param>
    /// <param name="phase">Where the link was lost, for the failure's message.</param>
    /// <param name="reason">How it was lost, for the failure's message.</param>
    /// <param name="caller">The caller's token: the new link's work stops with it.</param>
    /// <param name="limit">Ends the attempts without failing the migration (its deadline); the caller handles the cancellation.</param>
    /// <exception cref="MigrationException">No attempt succeeded, or the destination refused the Resume.</exception>
    internal async Task<DestinationLink> ResumeAsync(int nextRound, MigrationPhase phase, string reason, CancellationToken caller, CancellationToken limit = default)
    {
        using var attempts = CancellationTokenSource.CreateLinkedTokenSource(caller, limit);
        try
        {
            return await _connector.ReconnectAsync((connection, token) => ResumeOnAsync(connection, nextRound, caller, token), attempts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!attempts.IsCancellationRequested)
        {
            throw new MigrationException(phase, $"the connection to the destination was lost ({reason}) and resuming the session failed: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Commit was sent and its answer did not come: asks the destination (on new connections,
    /// within the retry budget) to start the VM if it is ready, and what became of it. Returns an
    /// Ack when it runs there; otherwise throws, after marking the channel when the destination
    /// released the VM (then the source may resume).
    /// </summary>
    internal async Task<CompletionAck> ConfirmCommitAsync(DestinationChannel channel, Exception cause, long commitSent, CancellationToken caller)
    {
        if (channel.Failure is { } failure && !Reconnector.IsLinkFailure(failure))
        {
            throw failure;
        }

        if (!_connector.CanReconnect || caller.IsCancellationRequested)
        {
            ExceptionDispatchInfo.Throw(cause);
        }

        SessionStatus status;
        try
        {
            status = await _connector.ReconnectAsync(
                async (connection, token) =>
                {
                    await using (connection.ConfigureAwait(false))
                    {
                        return await MigrationRecovery.QueryAsync(connection, _session, SessionQueryAction.Commit, _options.ResponseTimeout, token).ConfigureAwait(false);
                    }
                },
                caller).ConfigureAwait(false);
        }
        catch (Exception ex) when (!caller.IsCancellationRequested)
        {
            throw new MigrationException(MigrationPhase.Switchover, $"Commit was sent but its answer was lost ({Bare(cause)}), and the destination could not be asked: {ex.Message}", ex);
        }

        switch (status.State)
        {
            case DestinationSessionState.Started:
                return new CompletionAck(_options.TimeProvider.GetElapsedTime(commitSent));
            case DestinationSessionState.Discarded:
                channel.MarkReleased();
                throw new MigrationException(MigrationPhase.Switchover, $"the destination released the VM without running it: {status.Message}");
            default:
                throw new MigrationException(MigrationPhase.Switchover, $"Commit was sent but its answer was lost ({Bare(cause)}); the destination says {status.State}: {status.Message}");
        }
    }

    // The cause's own words, without a "Migration failed during …" of its own inside this one's.
    private static string Bare(Exception cause) => cause is MigrationException m ? m.Detail : cause.Message;

    private async Task<DestinationLink> ResumeOnAsync(IMigrationConnection connection, int nextRound, CancellationToken caller, CancellationToken attempt)
    {
        var link = new DestinationLink(connection, owned: true, _options, _phase, caller);
        try
        {
            using var both = CancellationTokenSource.CreateLinkedTokenSource(link.Work, attempt);
            link.Writer.AppendResume(new MigrationResume(MigrationProtocol.Version, _session, nextRound));
            await link.Writer.FlushAsync(both.Token).ConfigureAwait(false);
            await link.Channel.WaitForHelloAckAsync(both.Token).ConfigureAwait(false);
            return link;
        }
        catch (Exception ex)
        {
            // The channel's failure (the destination's Error, a broken stream) says more than the cancelled wait.
            Exception failure = link.Channel.Failure ?? ex;
            await link.DisposeAsync().ConfigureAwait(false);
            if (failure != ex)
            {
                ExceptionDispatchInfo.Throw(failure);
            }

            throw;
        }
    }
}
