using System;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MigrateKit.Transport;
using Polly;
using Polly.Retry;

namespace MigrateKit.Migration;

/// <summary>
/// How a migration reaches its destination: the connection it was given, or a way to open one,
/// which also serves to come back after a lost link, with bounded retries and exponential backoff
/// (<see cref="MigrationOptions.ReconnectAttempts"/>, <see cref="MigrationOptions.ReconnectDelay"/>).
/// </summary>
internal sealed class Reconnector
{
    private readonly IMigrationConnection? _given;
    private readonly Func<CancellationToken, Task<IMigrationConnection>>? _connect;
    private readonly ResiliencePipeline _retry;

    /// <summary>A migration over <paramref name="connection"/> only: the caller owns it, and a lost link is not reconnected.</summary>
    internal Reconnector(IMigrationConnection connection)
    {
        _given = connection;
        _retry = ResiliencePipeline.Empty;
    }

    /// <summary>A migration that opens its connections with <paramref name="connect"/> and owns them.</summary>
    /// <param name="connect">Opens a connection.</param>
    /// <param name="options">The attempts, the delay and the clock.</param>
    /// <param name="logger">Gets a Warning for each failed attempt: with a silent destination each takes the response timeout.</param>
    internal Reconnector(Func<CancellationToken, Task<IMigrationConnection>> connect, MigrationOptions options, ILogger? logger = null)
    {
        _connect = connect;
        ILogger log = logger ?? NullLogger.Instance;
        _retry = options.ReconnectAttempts == 0
            ? ResiliencePipeline.Empty
            : new ResiliencePipelineBuilder { TimeProvider = options.TimeProvider }
                .AddRetry(new RetryStrategyOptions
                {
                    MaxRetryAttempts = options.ReconnectAttempts,
                    Delay = options.ReconnectDelay,
                    MaxDelay = TimeSpan.FromSeconds(5),
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    ShouldHandle = new PredicateBuilder().Handle<Exception>(IsLinkFailure),
                    OnRetry = args =>
                    {
                        MigrationLog.ReconnectAttemptFailed(log, args.AttemptNumber + 1, options.ReconnectAttempts + 1, args.Outcome.Exception?.Message ?? "no answer", args.RetryDelay.TotalMilliseconds);
                        return default;
                    },
                })
                .Build();
        CanReconnect = options.ReconnectAttempts > 0;
    }

    /// <summary>Whether a lost link can be replaced.</summary>
    internal bool CanReconnect { get; }

    /// <summary>Reconnections made so far.</summary>
    internal int Reconnections { get; private set; }

    /// <summary>The first connection: the given one, or a new one (opened once, without retries: nothing was sent yet).</summary>
    internal async Task<(IMigrationConnection Connection, bool Owned)> FirstAsync(CancellationToken ct) =>
        _given is not null ? (_given, false) : (await _connect!(ct).ConfigureAwait(false), true);

    /// <summary>
    /// Opens a new connection and runs <paramref name="use"/> on it, again on a new connection after
    /// each link failure, within the retry budget; <paramref name="use"/> owns the connection it is given.
    /// </summary>
    internal async Task<T> ReconnectAsync<T>(Func<IMigrationConnection, CancellationToken, Task<T>> use, CancellationToken ct)
    {
        if (!CanReconnect)
        {
            throw new InvalidOperationException("This migration has no way to reconnect.");
        }

        Reconnections++;
        return await _retry.ExecuteAsync(
            async token =>
            {
                IMigrationConnection connection = await _connect!(token).ConfigureAwait(false);
                return await use(connection, token).ConfigureAwait(false);
            },
            ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether <paramref name="ex"/> is the link's failure (closed, even inside a frame, reset,
    /// refused, silent past a timeout) rather than the destination's refusal, a protocol violation
    /// or a local fault.
    /// </summary>
    internal static bool IsLinkFailure(Exception ex)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (e is MigrationProtocolException { StreamCut: true })
            {
                return true;
            }

            if (e is MigrationProtocolException or DestinationRefusedException or MigrationQueryException { Refusal: not null })
            {
                return false;
            }

            if (e is IOException or SocketException or TimeoutException)
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>The destination answered with an Error frame: it gave up on the session, so reconnecting cannot help.</summary>
internal sealed class DestinationRefusedException(MigrationError error) : Exception($"the destination reported {error.Code}: {error.Message}")
{
    internal MigrationErrorCode Code { get; } = error.Code;
}
