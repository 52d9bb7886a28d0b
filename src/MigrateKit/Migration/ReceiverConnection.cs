using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using MigrateKit.Diagnostics;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>How one connection to a receiver ended.</summary>
internal enum ConnectionEnd
{
    /// <summary>The migration ended on it: completed, aborted by the source, or failed.</summary>
    Ended,

    /// <summary>The link was lost (or taken over by a reconnection) with the session still able to continue.</summary>
    Interrupted,

    /// <summary>It carried no migration: a Query answered, a Resume refused, or a peer that left before its first frame.</summary>
    Answered,
}

/// <summary>One connection to a receiver: reads its frames under the silence timeouts and applies them to its session.</summary>
/// <remarks>
/// The first frame decides what the connection is: a Hello opens a session, a Resume continues
/// the one under way (a listening receiver only), a Query is answered. After Complete the
/// session is checked and restored, Ready is sent, and the VM starts only on Commit; a lost link
/// before that leaves the VM paused for the source to come back, never running.
/// </remarks>
internal sealed partial class ReceiverConnection : IPageStreamHandler
{
    /// <summary>How long a new Hello waits for a session's connection that is closing to let it go.</summary>
    private static readonly TimeSpan HelloGrace = TimeSpan.FromMilliseconds(500);

    private readonly MigrationReceiverOptions _options;
    private readonly Func<MigrationHello, IMigrationTarget> _createTarget;
    private readonly ILogger _logger;
    private readonly ReceiverSessions? _sessions;
    private readonly IMigrationConnection _connection;
    private readonly PageStreamReader _reader;
    private readonly PageStreamWriter _writer;
    private readonly CancellationTokenSource _takenOver = new();
    private ReceiverSession? _session;
    private ReceiverSession? _resuming;
    private int _resumeRound;
    private bool _replyPending;
    private bool _answered;
    private CancellationToken _stopping;
    private bool _started;
    private bool _completing;
    private string? _mismatch;
    private MigrationError? _sourceError;
    private MigrationError? _refusal;

    /// <param name="options">Limits and timeouts.</param>
    /// <param name="createTarget">Builds the VM for a Hello.</param>
    /// <param name="logger">Where the log lines go.</param>
    /// <param name="sessions">The listening receiver's sessions; null for a receiver of one connection, which keeps nothing when it drops.</param>
    /// <param name="connection">The connection.</param>
    internal ReceiverConnection(MigrationReceiverOptions options, Func<MigrationHello, IMigrationTarget> createTarget, ILogger logger, ReceiverSessions? sessions, IMigrationConnection connection)
    {
        _options = options;
        _createTarget = createTarget;
        _logger = logger;
        _sessions = sessions;
        _connection = connection;
        _reader = new PageStreamReader(connection.Input, connection.Options);
        _writer = new PageStreamWriter(connection.Output, connection.Options);
        _silenceTimer = options.TimeProvider.CreateTimer(_ => OnSilence(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The session this connection carries, once its Hello or Resume arrived.</summary>
    internal ReceiverSession? Session => _session;

    /// <summary>The VM runs here: started by this connection's Commit, or by a Commit query while this connection still looked alive.</summary>
    private bool Running => _started || _session?.State == DestinationSessionState.Started;

    /// <summary>Bytes read on this connection.</summary>
    internal long BytesRead => _reader.BytesRead;

    /// <summary>Ends this connection's part: a reconnection of the same session takes over.</summary>
    internal void TakeOver() => _takenOver.Cancel();

    internal async Task<(ConnectionEnd End, ReceiveResult? Result)> RunAsync(CancellationToken ct)
    {
        _stopping = ct;
        using CancellationTokenSource silence = _silence;
        using ITimer silenceTimer = _silenceTimer;
        using CancellationTokenSource takenOver = _takenOver;
        using CancellationTokenSource watched = CancellationTokenSource.CreateLinkedTokenSource(ct, _silence.Token, _takenOver.Token);
        try
        {
            while (!_answered && !_started && _sourceError is null && _mismatch is null && _refusal is null)
            {
                Watch();
                if (!await _reader.ReadAsync(this, watched.Token).ConfigureAwait(false))
                {
                    return await LostAsync(new EndOfStreamException(_session is null ? "The source closed the connection before its Hello." : "The source closed the connection before the switchover completed.")).ConfigureAwait(false);
                }

                if (_resuming is { } resuming)
                {
                    _resuming = null;
                    await TakeOverAsync(resuming).ConfigureAwait(false);
                }

                if (_completing)
                {
                    _completing = false;
                    Prepare();
                }

                if (_replyPending)
                {
                    _replyPending = false;
                    Watch();
                    await _writer.FlushAsync(watched.Token).ConfigureAwait(false);
                }
            }

            return await EndAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_takenOver.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            return (ConnectionEnd.Interrupted, null);
        }
        catch (OperationCanceledException) when (_silence.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            return await LostAsync(SilenceTimeout()).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or TimeoutException && !ct.IsCancellationRequested)
        {
            return await LostAsync(ex).ConfigureAwait(false);
        }
        catch (MigrationProtocolException ex) when (ex.StreamCut && !ct.IsCancellationRequested)
        {
            // Cut mid-frame (a proxy that closed the link, a source that died writing): a lost link
            // like a reset, not a violation; the partial frame was never applied.
            return await LostAsync(ex).ConfigureAwait(false);
        }
        catch (Exception ex) when (Running && ex is MigrationProtocolException)
        {
            // The VM already runs here: a stray frame after Commit changes nothing but is not answered.
            MigrationLog.ReceiveFailed(_logger, ex);
            await AckDelivery.TryFlushAsync(_writer, _options).ConfigureAwait(false);
            return await EndAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            MigrationLog.ReceiveFailed(_logger, ex);
            Discard(ex.Message);
            await TellSourceAsync(CodeFor(ex), ex.Message).ConfigureAwait(false);
            await HangUpAsync().ConfigureAwait(false);
            return (ConnectionEnd.Ended, Result(MigrationStatus.Failed, ex.Message, ex));
        }
        catch
        {
            Discard("the receive was cancelled");
            throw;
        }
        finally
        {
            if (_session is { } session)
            {
                session.EarlierBytes += _reader.BytesRead;
                session.CountReceived(0);
                session.Detach(this);
            }
        }
    }

    private static MigrationErrorCode CodeFor(Exception ex) => ex switch
    {
        MigrationProtocolException { Field: "version" } => MigrationErrorCode.UnsupportedVersion,
        MigrationProtocolException => MigrationErrorCode.ProtocolViolation,
        _ => MigrationErrorCode.DestinationFailure,
    };

    private async Task<(ConnectionEnd End, ReceiveResult? Result)> EndAsync()
    {
        if (_answered)
        {
            await HangUpAsync().ConfigureAwait(false);
            return (ConnectionEnd.Answered, null);
        }

        if (_refusal is { } refusal)
        {
            MigrationLog.ConnectionRefused(_logger, _connection.RemoteAddress, refusal.Code, refusal.Message);
            await TellSourceAsync(refusal.Code, refusal.Message).ConfigureAwait(false);
            await HangUpAsync().ConfigureAwait(false);
            return _sessions is null
                ? (ConnectionEnd.Ended, Result(MigrationStatus.Failed, refusal.Message, new InvalidOperationException(refusal.Message)))
                : (ConnectionEnd.Answered, null);
        }

        if (_sourceError is { } error)
        {
            MigrationLog.SourceGaveUp(_logger, _session?.Hello.SourceName ?? "(before Hello)", error.Message);
            Discard($"the source gave up: {error.Message}");
            return (ConnectionEnd.Ended, Result(MigrationStatus.Aborted, $"the source gave up: {error.Message}", null));
        }

        if (_mismatch is { } mismatch)
        {
            // Never run a VM on memory that differs from the source's.
            MigrationLog.DigestMismatch(_logger, _session!.Hello.SourceName, mismatch);
            Discard("digest mismatch: " + mismatch);
            await TellSourceAsync(MigrationErrorCode.DigestMismatch, mismatch).ConfigureAwait(false);
            await HangUpAsync().ConfigureAwait(false);
            return (ConnectionEnd.Ended, Result(MigrationStatus.Failed, "digest mismatch: " + mismatch, new InvalidDataException(mismatch)));
        }

        ReceiverSession session = _session!;
        _sessions?.End(session);
        session.AckConfirmed = await AckDelivery.SourceConfirmsAsync(_reader, MigrationProtocol.Negotiate(session.Hello.Version), _options, _stopping).ConfigureAwait(false);
        MigrationLog.Received(_logger, session.Hello.SourceName, session.Pages, session.ResumeDuration!.Value.TotalMilliseconds, session.StartDuration!.Value.TotalMilliseconds);
        return (ConnectionEnd.Ended, Result(MigrationStatus.Completed, null, null));
    }

    /// <summary>
    /// The link is gone. A listening receiver keeps a session that can continue (pre-copy, or
    /// ready and paused) for the source to come back; otherwise the VM is released, never started.
    /// </summary>
    private async Task<(ConnectionEnd End, ReceiveResult? Result)> LostAsync(Exception cause)
    {
        if (Running)
        {
            // The Ack was lost, not the migration: the VM runs here, and a Query tells the source.
            return await EndAsync().ConfigureAwait(false);
        }

        if (_session is null && _sessions is not null)
        {
            if (cause is not TimeoutException)
            {
                // A peer that left before its first frame (a port probe, a health check).
                return (ConnectionEnd.Answered, null);
            }

            // Connected and silent: it learns why it is dropped (PROTOCOL.md §4), and the listening
            // receive reports it as a refused peer without ending.
            await TellSourceAsync(MigrationErrorCode.DestinationFailure, cause.Message).ConfigureAwait(false);
            await HangUpAsync().ConfigureAwait(false);
            return (ConnectionEnd.Answered, Result(MigrationStatus.Failed, cause.Message, cause));
        }

        // Read once: a query on another connection may discard the session meanwhile, and a session
        // seen both not discarded and not waiting would be failed here instead of kept or aborted.
        DestinationSessionState? state = _session?.State;
        if (state == DestinationSessionState.Discarded)
        {
            // A query released it while this connection still looked alive.
            return (ConnectionEnd.Ended, Result(MigrationStatus.Aborted, _session!.DiscardReason, null));
        }

        if (_session is not null && _sessions is not null && _options.ReconnectTimeout > TimeSpan.Zero && state is DestinationSessionState.Receiving or DestinationSessionState.Ready)
        {
            MigrationLog.SessionInterrupted(_logger, _session.Hello.SourceName, cause.Message, _session.Id, _session.State.ToString(), _options.ReconnectTimeout.TotalSeconds);
            return (ConnectionEnd.Interrupted, null);
        }

        Exception lost = _session?.State == DestinationSessionState.Ready
            ? new IOException($"The connection was lost before the source's Commit ({cause.Message}); the VM was never started here.", cause)
            : cause;
        MigrationLog.ReceiveFailed(_logger, lost);
        Discard(lost.Message);

        // A peer that is only silent (not gone) learns why it is dropped.
        await TellSourceAsync(MigrationErrorCode.DestinationFailure, lost.Message).ConfigureAwait(false);
        await HangUpAsync().ConfigureAwait(false);
        return (ConnectionEnd.Ended, Result(MigrationStatus.Failed, lost.Message, lost));
    }

    private void Discard(string reason)
    {
        if (_session is not { } session)
        {
            return;
        }

        if (_sessions is not null)
        {
            _sessions.Discard(session, reason);
        }
        else
        {
            session.Discard(reason);
        }
    }

    /// <summary>Ends both directions so a source still sending sees the stream close.</summary>
    private async Task HangUpAsync()
    {
        await _connection.Input.CompleteAsync().ConfigureAwait(false);
        await _connection.Output.CompleteAsync().ConfigureAwait(false);
    }

    private async Task TellSourceAsync(MigrationErrorCode code, string message) =>
        await _writer.TrySendErrorAsync(new MigrationError(code, message)).ConfigureAwait(false);

    internal ReceiveResult Result(MigrationStatus status, string? reason, Exception? error) => new()
    {
        Status = status,
        Reason = reason,
        Error = error,
        Target = status == MigrationStatus.Completed ? _session?.Target : null,
        SessionId = _session?.Id,
        SourceAddress = _connection.RemoteAddress,
        Rounds = _session?.Rounds ?? 0,
        PagesReceived = _session?.Pages ?? 0,
        ZeroPagesReceived = _session?.ZeroPages ?? 0,
        BytesReceived = (_session?.EarlierBytes ?? 0) + _reader.BytesRead,

        Reconnections = _session?.Reconnections ?? 0,
        ResumeDuration = _session?.ResumeDuration,
        StartDuration = _session?.StartDuration,
    };

    public void OnHello(MigrationHello hello)
    {
        // Behind a Query, an Error or a Resume in the same read, a Hello would open a session
        // that no connection carries on: nothing would release its memory.
        CheckNotEnded("Hello");
        if (_session is not null)
        {
            throw new MigrationProtocolException("Hello", "type", "A second Hello arrived.");
        }

        // A source that has just gone may hold its session a moment longer: its end is read on another connection.
        if (_sessions?.Current is { Owner: { } other } held && other != this)
        {
            held.WaitReleasedAsync().Wait(HelloGrace);
        }

        // Refused before the target is built; Begin decides it again under its lock.
        if (_sessions?.RefusesNew() is { } busy)
        {
            _refusal = new MigrationError(MigrationErrorCode.DestinationFailure, busy);
            return;
        }

        ulong memoryBytes = MigrationReceiverOptions.TotalMemory(hello);
        MigrationLog.ReceiveStarting(_logger, hello.SourceName, hello.SessionId, memoryBytes, hello.Regions.Count, hello.VcpuCount, hello.Version);
        if (Activity.Current is { } activity)
        {
            activity.SetTag(MigrateKitTelemetry.Tags.VmName, hello.SourceName);
            activity.SetTag(MigrateKitTelemetry.Tags.MemoryBytes, (long)memoryBytes);
        }

        ReceiverSession session = ReceiverSession.Open(hello, _options, _createTarget);
        session.Attach(this);
        if (_sessions?.Begin(session) is { } refused)
        {
            session.Detach(this);
            session.Discard(refused);
            _refusal = new MigrationError(MigrationErrorCode.DestinationFailure, refused);
            return;
        }

        session.LastAddress = _connection.RemoteAddress;
        _session = session;
        ReceiverTelemetry.Started(memoryBytes);
        _writer.AppendHelloAck(new HelloAck(MigrationProtocol.Negotiate(hello.Version), session.EstimateResumeCost()));
        _replyPending = true;
        session.StartPopulating();
        MigrationLog.ReceiveMemory(_logger, hello.SourceName, session.FreshBytes, session.HugePageBytes);
    }

    public void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data) =>
        Open("Pages").WritePages("Pages", region, firstPage, count, data);

    public void OnEncodedPage(int region, ulong page, PageEncoding encoding, ReadOnlySequence<byte> data) =>
        Open("EncodedPages").WriteEncodedPage(region, page, encoding, data);

    public void OnZeroPages(int region, ulong firstPage, ulong count) =>
        Open("ZeroPages").WriteZeroPages("ZeroPages", region, firstPage, count);

    public void OnRoundEnd(RoundEnd roundEnd)
    {
        // Everything before it has been written into guest memory: tell the source, so its
        // bandwidth covers the whole path and no backlog hides in the next forecast.
        ReceiverSession session = Open("RoundEnd");
        session.EndRound(roundEnd.Round);
        session.CountReceived(_reader.BytesRead);
        _writer.AppendRoundAck(roundEnd.Round);
        _replyPending = true;
        MigrationLog.RoundReceived(_logger, roundEnd.Round, session.Hello.SourceName, session.Pages, session.ZeroPages, session.EarlierBytes + _reader.BytesRead);
    }

    public void OnDeviceState(ReadOnlySequence<byte> state) => Open("DeviceState").SetDeviceState(state);

    public void OnDigests(IReadOnlyList<RegionDigest> digests) => Open("Digests").SetDigests(digests);

    // The handlers the switchover calls forward to private methods: the runtime may refuse to
    // compile interface methods ahead (see JitWarmup), but these compile ahead, and the
    // forwarders compile when a receiver is built (MigrationReceiver.RehearseHandlers).
    public void OnComplete() => Complete();

    public void OnCommit() => Commit();

    private void Complete()
    {
        ReceiverSession session = Open("Complete");
        session.MarkComplete();
        _completing = true;
        MigrationLog.SwitchoverReceived(_logger, session.Hello.SourceName, session.Rounds);
    }

    /// <summary>After Complete (and only if nothing followed it in the same read): checks the digests and restores the state.</summary>
    private void Prepare()
    {
        ReceiverSession session = _session!;
        _mismatch = session.Prepare();
        if (_mismatch is null)
        {
            // Checked and restored, still paused: the VM starts only on the source's Commit.
            _writer.AppendReady(new DestinationReady(session.SinceComplete));
            _replyPending = true;
        }
    }

    private void Commit()
    {
        ReceiverSession session = _session ?? throw new MigrationProtocolException("Commit", "type", "Commit arrived before Hello.");
        bool startedByAQuery = session.State == DestinationSessionState.Started && session.Completing;
        if (!startedByAQuery && (_completing || session.State != DestinationSessionState.Ready || !session.Completing))
        {
            throw new MigrationProtocolException("Commit", "type", "Commit arrived before Ready.");
        }

        // A Commit query may have started it already (this link looked dead to the source): the Commit only confirms it.
        session.TryStart();

        _started = true;
        _writer.AppendAck(new CompletionAck(session.ResumeDuration!.Value));
        _replyPending = true;
    }

    public void OnError(MigrationError error)
    {
        CheckNotEnded("Error");
        _sourceError = error;
    }

    public void OnHelloAck(HelloAck ack) => throw NotFromASource("HelloAck");

    public void OnRoundAck(int round) => throw NotFromASource("RoundAck");

    public void OnAck(CompletionAck ack) => throw NotFromASource("Ack");

    public void OnReady(DestinationReady ready) => throw NotFromASource("Ready");

    public void OnStatus(SessionStatus status) => throw NotFromASource("Status");

    public void OnDone() => throw new MigrationProtocolException("Done", "type", "Done arrived before the Ack.");

    private static MigrationProtocolException NotFromASource(string frame) =>
        new(frame, "type", $"A source does not send {frame} frames.");

    /// <summary>The session, open for memory and switchover frames: not before Hello, not after Complete or Error.</summary>
    private ReceiverSession Open(string frame)
    {
        CheckNotEnded(frame);
        ReceiverSession session = _session ?? throw new MigrationProtocolException(frame, "type", $"{frame} arrived before Hello.");
        if (session.Completing)
        {
            throw new MigrationProtocolException(frame, "type", $"{frame} arrived after Complete.");
        }

        return session;
    }

    /// <summary>
    /// Error, a Query, a refused Resume or Hello, or a start end what a connection carries: a frame behind
    /// them (in the same read, as the receiver reads no further) is a violation, not something to act on.
    /// </summary>
    // Resume and Query (first) name a session once, as a connection's first frame: the reader lets them open a stream, this keeps them there.
    private void CheckNotEnded(string frame, bool first = false)
    {
        if (_sourceError is not null || _answered || _refusal is not null || _started || _resuming is not null || (first && _session is not null))
        {
            string after = _sourceError is not null ? "Error" : _answered ? "Query" : _refusal is not null ? "the destination's refusal" : _started ? "Commit" : _resuming is not null ? "Resume" : "the connection's first frame";
            throw new MigrationProtocolException(frame, "type", $"{frame} arrived after {after}.");
        }
    }
}
