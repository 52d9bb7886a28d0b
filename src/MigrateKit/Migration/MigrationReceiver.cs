using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MigrateKit.Diagnostics;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// The destination side: builds a VM from the source's Hello, writes every page it receives into
/// the VM's memory, and at the switchover checks the digests and restores the device state, then
/// reports Ready with the VM paused and starts it only on the source's Commit. A digest mismatch
/// means the VM is never started and the source is told.
/// </summary>
/// <remarks>
/// <para>
/// A receiver that listens (<see cref="ReceiveAsync(MigrationListener, CancellationToken)"/>) keeps a
/// session whose link was lost for <see cref="MigrationReceiverOptions.ReconnectTimeout"/>: the
/// source reconnects and continues where the destination's memory is (Resume), and a source or an
/// operator can ask what became of a session (Query, see <see cref="MigrationRecovery"/>). A
/// receiver of one connection (<see cref="ReceiveAsync(IMigrationConnection, CancellationToken)"/>)
/// releases the VM when its connection drops.
/// </para>
/// <para>
/// The destination decides what it builds: a Hello beyond its <see cref="MigrationReceiverOptions"/>
/// is answered with an Error frame (code DestinationFailure) naming the limit, and the result
/// carries a <see cref="MigrationLimitException"/>, before the target factory runs. The kind of VM
/// is the factory's choice; the Hello's source name is only a label for logs.
/// </para>
/// <para>
/// Diagnostics: the logger gets Information at the Hello, the switchover and the end, Debug per
/// round and Warning when the source gives up, the link is lost or receiving fails; each migration
/// received is a <c>migratekit.receive</c> span of the <c>MigrateKit</c> activity source.
/// </para>
/// </remarks>
public sealed class MigrationReceiver
{
    /// <summary>Connections a listening receiver serves at once (a reconnection and queries next to the migration's own).</summary>
    private const int MaxConnections = 8;

    /// <summary>TLS handshakes a listening receiver runs at once, each bounded by its timeout: peers that stall theirs cannot fill <see cref="MaxConnections"/>.</summary>
    private const int MaxHandshakes = 32;

    private static int _handlersRehearsed;
    private readonly Func<MigrationHello, IMigrationTarget> _createTarget;
    private readonly MigrationReceiverOptions _options;

    /// <summary>How long a completed migration whose Ack the source may have missed keeps answering its queries.</summary>
    private TimeSpan Linger => _options.ReconnectTimeout < TimeSpan.FromSeconds(30) ? _options.ReconnectTimeout : TimeSpan.FromSeconds(30);
    private readonly ILogger _logger;
    private readonly ReceiverSessions _sessions;
    private int _listening;

    // An accept still waiting, and handshakes under way, when a receive ended: the next receive on
    // the same listener takes them over, so a peer that connects between two receives is served, not dropped.
    private (MigrationListener Listener, Task<Socket>? Accept, List<Task<IMigrationConnection>> Opening)? _accepting;

    /// <summary>Creates a receiver with the default <see cref="MigrationReceiverOptions"/> (at most 64 GiB, 64 regions, 64 vCPUs).</summary>
    /// <param name="createTarget">Builds the destination VM for a Hello (same regions and vCPU count).</param>
    /// <param name="logger">Receives the receiver's log lines; <see langword="null"/> for none.</param>
    public MigrationReceiver(Func<MigrationHello, IMigrationTarget> createTarget, ILogger<MigrationReceiver>? logger = null)
        : this(createTarget, new MigrationReceiverOptions(), logger)
    {
    }

    /// <summary>Creates a receiver that accepts only what <paramref name="options"/> allow.</summary>
    /// <param name="createTarget">
    /// Builds the destination VM for a Hello within the limits (same regions and vCPU count). It
    /// chooses the kind of VM; the Hello's source name is the peer's claim, not a configuration.
    /// </param>
    /// <param name="options">The largest VM accepted and, optionally, the exact shape expected.</param>
    /// <param name="logger">Receives the receiver's log lines; <see langword="null"/> for none.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public MigrationReceiver(Func<MigrationHello, IMigrationTarget> createTarget, MigrationReceiverOptions options, ILogger<MigrationReceiver>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(createTarget);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _createTarget = hello => Checked(createTarget(hello), hello);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _sessions = new ReceiverSessions(_logger);
        PrepareCode();
    }

    // The factory is the caller's code: a null there would surface as a NullReferenceException, and reach the source as its reason.
    private static IMigrationTarget Checked(IMigrationTarget? target, MigrationHello hello)
    {
        if (target is null)
        {
            throw new InvalidOperationException($"The receiver's createTarget returned null for the Hello of {hello.SourceName}.");
        }

        if (target.Memory is null)
        {
            target.Dispose();
            throw new InvalidOperationException($"The target createTarget built for {hello.SourceName} has no Memory.");
        }

        return target;
    }

    /// <summary>
    /// Compiles the receiver's code ahead, before any connection exists: once a type has an
    /// instance, its interface methods (the frame handlers: Complete, Commit) no longer compile
    /// ahead, and would compile inside the downtime.
    /// </summary>
    private static void PrepareCode()
    {
        JitWarmup.Prepare(typeof(ReceiverConnection));
        JitWarmup.Prepare(typeof(ReceiverSession));
        JitWarmup.Prepare(typeof(ReceiverSessions));
        JitWarmup.Prepare(typeof(AckDelivery));
        JitWarmup.Prepare(typeof(RefusingHandler));
        JitWarmup.Prepare(typeof(RefuseEverything));
        JitWarmup.Prepare(typeof(MigrationLog));
        JitWarmup.Prepare(typeof(BackgroundPopulate));
        JitWarmup.Prepare(typeof(PopulateAhead));
        JitWarmup.Prepare(typeof(PopulateHoles));
        JitWarmup.PreparePages();
        ReceiverSessions.Rehearse();
        RehearseHandlers();

        // A connection's end is awaited as a task of a tuple, a struct: that awaiter's code is
        // never shared, and compiled on first use it would fall between Commit and the Ack.
        ConfiguredTaskAwaitable<(ConnectionEnd End, ReceiveResult? Result)>.ConfiguredTaskAwaiter ended = Task.FromResult<(ConnectionEnd End, ReceiveResult? Result)>(default).ConfigureAwait(false).GetAwaiter();
        _ = ended.IsCompleted ? ended.GetResult() : default;
    }

    /// <summary>
    /// Calls the frame handlers the switchover reaches (DeviceState, Digests, Complete, Commit)
    /// once through their interface, on a connection without a session, which refuses each: the
    /// runtime compiles such a method at its first call through the interface even when it was
    /// prepared (see <see cref="JitWarmup"/>), and that call would otherwise fall in the downtime,
    /// at about 0.1 ms a handler on the reference machine. Then runs every frame through the page
    /// stream's writer and reader (<see cref="StreamRehearsal"/>). Once per process.
    /// </summary>
    private static void RehearseHandlers()
    {
        if (Interlocked.Exchange(ref _handlersRehearsed, 1) != 0)
        {
            return;
        }

        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        IPageStreamHandler handler = new ReceiverConnection(new MigrationReceiverOptions(), _ => throw new InvalidOperationException("A rehearsal creates no VM."), NullLogger.Instance, sessions: null, destination);
        Action[] calls = [() => handler.OnDeviceState(default), () => handler.OnDigests([]), handler.OnComplete, handler.OnCommit];
        foreach (Action call in calls)
        {
            try
            {
                call();
            }
            catch (MigrationProtocolException)
            {
                // Refused, as it should be before a Hello: compiled all the same.
            }
        }

        source.DisposeAsync().AsTask().GetAwaiter().GetResult();
        destination.DisposeAsync().AsTask().GetAwaiter().GetResult();

        // The page stream's writer and reader, on a page of their own: in the process's first
        // session this would fall between the Hello and the HelloAck (20-26 ms, measured on a HostVm).
        using var scratch = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, GuestMemoryLayout.PageSize)]);
        StreamRehearsal.Run(scratch.Regions[0], []);
    }

    /// <summary>
    /// Raised when a listening receiver refuses a peer that failed the TLS handshake, or drops one that
    /// carried no migration (no Hello in time, not the protocol) without ending the receive; it goes on listening.
    /// </summary>
    public event EventHandler<PeerRefusedEventArgs>? PeerRefused;

    /// <summary>
    /// Receives one migration over <paramref name="connection"/> alone: if it drops before the
    /// source's Commit, the VM is released, never started. Resume and Query frames are refused.
    /// </summary>
    public async Task<ReceiveResult> ReceiveAsync(IMigrationConnection connection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using Activity? activity = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Receive);
        var run = new ReceiverConnection(_options, _createTarget, _logger, sessions: null, connection);
        return await TracedAsync(activity, async () => (await run.RunAsync(cancellationToken).ConfigureAwait(false)).Result!).ConfigureAwait(false);
    }

    /// <summary>
    /// Receives one migration, accepting connections from <paramref name="listener"/> as needed: the
    /// migration's own, the source's reconnections after a lost link (within
    /// <see cref="MigrationReceiverOptions.ReconnectTimeout"/>) and queries about sessions, which are
    /// answered on the way. Returns when the migration completed (the VM runs here), failed or was
    /// given up; a session whose source does not come back in time is released, never started.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another receive of this receiver is listening: its sessions are one migration's at a time.</exception>
    public async Task<ReceiveResult> ReceiveAsync(MigrationListener listener, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(listener);
        if (Interlocked.CompareExchange(ref _listening, 1, 0) != 0)
        {
            throw new InvalidOperationException("This receiver is already receiving from a listener; a second receive would wait for a migration the first one takes. Call ReceiveAsync again when it returns.");
        }

        try
        {
            using Activity? activity = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Receive);
            return await TracedAsync(activity, () => ServeAsync(listener, cancellationToken)).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _listening, 0);
        }
    }

    private async Task<ReceiveResult> ServeAsync(MigrationListener listener, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var running = new Dictionary<Task<(ConnectionEnd End, ReceiveResult? Result)>, (ReceiverConnection Run, IMigrationConnection Connection)>();
        (Task<Socket>? accepting, List<Task<IMigrationConnection>> opening) = _accepting is { } pending && pending.Listener == listener ? (pending.Accept, pending.Opening) : (null, []);
        _accepting = null;
        ReceiverSession? waiting = null;
        long waitingSince = 0;
        (ReceiverSession Session, ReceiveResult Result)? unconfirmed = null;
        Task cancelled = Task.Delay(Timeout.Infinite, stop.Token);
        try
        {
            while (true)
            {
                if (accepting is null && running.Count < MaxConnections && opening.Count < MaxHandshakes)
                {
                    // Not cancelled when this receive ends: disposing the listener ends it.
                    accepting = listener.AcceptSocketAsync(CancellationToken.None);
                }

                List<Task> events = [cancelled, .. running.Keys, .. opening];
                if (accepting is not null)
                {
                    events.Add(accepting);
                }

                if (waiting is not null)
                {
                    TimeSpan left = (unconfirmed is null ? _options.ReconnectTimeout : Linger) - _options.TimeProvider.GetElapsedTime(waitingSince);
                    events.Add(Task.Delay(left > TimeSpan.Zero ? left : TimeSpan.Zero, _options.TimeProvider, stop.Token));
                }

                Task done = await Task.WhenAny(events).ConfigureAwait(false);
                ct.ThrowIfCancellationRequested();
                if (done == accepting)
                {
                    // Each handshake runs beside the others and the accepts: a peer that stalls its own
                    // (bounded by the TLS handshake timeout) delays nobody else's.
                    opening.Add(listener.OpenAsync(await accepting.ConfigureAwait(false), CancellationToken.None));
                    accepting = null;
                    continue;
                }

                if (done is Task<IMigrationConnection> opened && opening.Remove(opened))
                {
                    IMigrationConnection connection;
                    try
                    {
                        connection = await opened.ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is MigrationTlsException or IOException or SocketException)
                    {
                        // A peer that fails the TLS handshake (or is gone before it) is refused; the migration goes on waiting for its own.
                        PeerRefused?.Invoke(this, new PeerRefusedEventArgs(ex));
                        continue;
                    }

                    var run = new ReceiverConnection(_options, _createTarget, _logger, _sessions, connection);
                    running.Add(run.RunAsync(stop.Token), (run, connection));
                    continue;
                }

                if (done is Task<(ConnectionEnd End, ReceiveResult? Result)> ended && running.Remove(ended, out var finished))
                {
                    await finished.Connection.DisposeAsync().ConfigureAwait(false);
                    (ConnectionEnd end, ReceiveResult? result) = await ended.ConfigureAwait(false);
                    // A connection that carried no session (junk, a refused Hello) ends the receive only when no
                    // migration is under way and no other connection is open (a source that has not sent its
                    // Hello yet would be cut with it); one whose session a newer migration replaced never does;
                    // and once a VM started here, nothing but its own outcome does.
                    bool sessionless = finished.Run.Session is null;
                    bool ours = unconfirmed is null && (result?.SessionId is { } id ? id == _sessions.Latest?.Id : _sessions.Current is null);
                    if (sessionless && result is { Status: not MigrationStatus.Completed } && (end != ConnectionEnd.Ended || !ours || running.Count > 0))
                    {
                        PeerRefused?.Invoke(this, new PeerRefusedEventArgs(result.Error ?? new IOException(result.Reason)) { Address = result.SourceAddress });
                    }
                    else if (end == ConnectionEnd.Ended && result is not null && ours)
                    {
                        if (result.Status == MigrationStatus.Completed && finished.Run.Session is { AckConfirmed: false } started && _options.ReconnectTimeout > TimeSpan.Zero)
                        {
                            // The source may not have got the Ack: it will ask (unless it has already), so
                            // queries are answered a while longer.
                            unconfirmed = (started, result);
                            waiting = started;
                            waitingSince = _options.TimeProvider.GetTimestamp();
                        }
                        else
                        {
                            return result;
                        }
                    }

                    if (end == ConnectionEnd.Interrupted && finished.Run.Session is { } s && s.Owner is null && (s == _sessions.Current || s.State == DestinationSessionState.Discarded))
                    {
                        waiting = s;
                        waitingSince = _options.TimeProvider.GetTimestamp();
                    }
                }
                else if (unconfirmed is null && waiting is not null && waiting.Owner is null && _options.TimeProvider.GetElapsedTime(waitingSince) >= _options.ReconnectTimeout)
                {
                    string reason = $"the source did not reconnect within {_options.ReconnectTimeout.TotalSeconds:0.###} s";
                    _sessions.Discard(waiting, reason);
                    return Ended(waiting, MigrationStatus.Failed, reason, new TimeoutException($"The connection was lost and {reason}; the VM was released, never started here."));
                }

                if (unconfirmed is { } ran)
                {
                    if (_sessions.LastAsked == ran.Session.Id || _options.TimeProvider.GetElapsedTime(waitingSince) >= Linger)
                    {
                        return ran.Result;
                    }

                    continue;
                }

                // A query may have resolved the session that waited for its source.
                if (waiting is not null)
                {
                    if (waiting.State == DestinationSessionState.Started)
                    {
                        _sessions.End(waiting);
                        return Ended(waiting, MigrationStatus.Completed, null, null);
                    }

                    if (waiting.State == DestinationSessionState.Discarded)
                    {
                        if (_sessions.Latest == waiting)
                        {
                            return Ended(waiting, MigrationStatus.Aborted, waiting.DiscardReason, null);
                        }

                        // Replaced by a new migration, which goes on.
                        waiting = null;
                        continue;
                    }

                    if (waiting.Owner is not null)
                    {
                        waiting = null;
                    }
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            if (accepting is not null || opening.Count > 0)
            {
                _accepting = (listener, accepting, opening);
            }

            foreach ((Task<(ConnectionEnd, ReceiveResult?)> task, (ReceiverConnection _, IMigrationConnection connection)) in running)
            {
                await Drain(task).ConfigureAwait(false);
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            if (_sessions.Current is { State: not DestinationSessionState.Started } left && (waiting == left || running.Count > 0))
            {
                _sessions.Discard(left, "the receiver stopped");
            }

            _sessions.EndReceive();
        }
    }

    private static ReceiveResult Ended(ReceiverSession session, MigrationStatus status, string? reason, Exception? error) => new()
    {
        Status = status,
        Reason = reason,
        Error = error,
        Target = status == MigrationStatus.Completed ? session.Target : null,
        SessionId = session.Id,
        SourceAddress = session.LastAddress,
        Rounds = session.Rounds,
        PagesReceived = session.Pages,
        ZeroPagesReceived = session.ZeroPages,
        BytesReceived = session.EarlierBytes,
        Reconnections = session.Reconnections,
        ResumeDuration = session.ResumeDuration,
        StartDuration = session.StartDuration,
    };

    private static async Task Drain(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Stopping: what an unfinished accept or connection ends with no longer matters.
        }
    }

    private async Task<ReceiveResult> TracedAsync(Activity? activity, Func<Task<ReceiveResult>> receive)
    {
        ReceiveResult result;
        try
        {
            result = await receive().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Cancellation (or a failure while reporting a failure): the receive ends without a result.
            if (ex is OperationCanceledException)
            {
                MigrationLog.ReceiveCancelled(_logger, _sessions.Current?.Hello.SourceName ?? "(before Hello)");
            }
            else
            {
                MigrationLog.ReceiveFailed(_logger, ex);
            }

            string thrown = ex is OperationCanceledException ? "cancelled" : "failed";
            ReceiverTelemetry.Ended(thrown, null);
            MigrateKitTelemetry.SetOutcome(activity, thrown, ex.Message, ex is OperationCanceledException ? null : ex);
            throw;
        }

        if (activity is not null)
        {
            activity.SetTag(MigrateKitTelemetry.Tags.Rounds, result.Rounds);
            activity.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)result.PagesReceived);
            activity.SetTag(MigrateKitTelemetry.Tags.ZeroPages, (long)result.ZeroPagesReceived);
            activity.SetTag(MigrateKitTelemetry.Tags.BytesReceived, result.BytesReceived);
            if (result.ResumeDuration is { } resume)
            {
                activity.SetTag(MigrateKitTelemetry.Tags.ResumeMs, resume.TotalMilliseconds);
            }
        }

        string status = MigrationTelemetry.StatusName(result.Status);
        ReceiverTelemetry.Ended(status, result.Status == MigrationStatus.Completed ? result.ResumeDuration : null);
        MigrateKitTelemetry.SetOutcome(activity, status, result.Reason,
            result.Status == MigrationStatus.Completed ? null : result.Error);
        return result;
    }
}

/// <summary>A peer a listening <see cref="MigrationReceiver"/> refused, or dropped without ending its receive.</summary>
/// <param name="error">
/// Why: the TLS handshake failed or the peer's certificate was refused; it sent no Hello in time,
/// or something other than the protocol; or its Hello was refused while another connection was open.
/// </param>
public sealed class PeerRefusedEventArgs(Exception error) : EventArgs
{
    /// <summary>Why the peer was refused.</summary>
    public Exception Error { get; } = error;

    /// <summary>The peer's address, where the connection got as far as having one (not at a failed TLS handshake).</summary>
    public string? Address { get; init; }
}
