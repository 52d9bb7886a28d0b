using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// One connection of a migration to its destination: the writer that sends, the channel that
/// reads the answers in the background, and the work token a lost link cancels. A migration that
/// reconnects gets a new link; the session and what is pending carry over.
/// </summary>
internal sealed class DestinationLink : IAsyncDisposable
{
    private readonly IMigrationConnection _connection;
    private readonly bool _owned;
    private readonly CancellationTokenSource _work;
    private readonly CancellationTokenSource _reading;
    private readonly Task _readLoop;

    /// <param name="connection">The connection.</param>
    /// <param name="owned">Whether the link disposes it (the engine opened it).</param>
    /// <param name="options">The bandwidth limit, the response timeout and the clock.</param>
    /// <param name="phase">The engine's phase, named in failures.</param>
    /// <param name="ct">The caller's token.</param>
    internal DestinationLink(IMigrationConnection connection, bool owned, MigrationOptions options, Func<MigrationPhase> phase, CancellationToken ct)
    {
        _connection = connection;
        _owned = owned;
        Writer = PageStreamWriter.ForConnection(connection, connection.Options.WithRate(options.BandwidthLimit, options.TimeProvider), options.ResponseTimeout);

        // Before the channel's first instance, or its frame handlers no longer compile ahead (see JitWarmup).
        JitWarmup.Prepare(typeof(DestinationChannel));
        Channel = new DestinationChannel(new PageStreamReader(connection.Input, connection.Options), options, phase);

        // Cancelled when the destination reports an error or goes away, so a send blocked on a
        // full pipe ends at once instead of waiting for a reader that will never come.
        _work = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _reading = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _readLoop = Channel.StartReading(_work, _reading.Token);
    }

    internal PageStreamWriter Writer { get; }

    internal DestinationChannel Channel { get; }

    /// <summary>Cancelled when this link fails or the caller cancels.</summary>
    internal CancellationToken Work => _work.Token;

    internal string RemoteAddress => _connection.RemoteAddress;

    /// <summary>Sends Error if it still can: the destination then releases what it built.</summary>
    internal async Task SendErrorQuietlyAsync(string message) =>
        await Writer.TrySendErrorAsync(new MigrationError(MigrationErrorCode.SourceAborted, message)).ConfigureAwait(false);

    /// <summary>
    /// After the Ack: sends Done where the link speaks version 3 (the Ack arrived), then closes the
    /// sending side, which is the same word to a version 2 destination. A destination that hears
    /// neither keeps answering queries for a while.
    /// </summary>
    internal async Task HangUpAfterAckAsync()
    {
        try
        {
            if (Channel.OwesDone)
            {
                Writer.AppendDone();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await Writer.FlushAsync(timeout.Token).ConfigureAwait(false);
            }

            await _connection.Output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or OperationCanceledException or TimeoutException)
        {
            // The link is gone already; the destination learns it otherwise.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _reading.CancelAsync().ConfigureAwait(false);
        try
        {
            await _readLoop.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or MigrationProtocolException or InvalidOperationException)
        {
            // The read loop's own failure was already delivered through the awaited answers.
        }

        if (_owned)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }

        Writer.Dispose();
        _work.Dispose();
        _reading.Dispose();
    }
}
