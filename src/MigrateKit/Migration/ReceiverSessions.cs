using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.Extensions.Logging;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// The sessions a listening receiver holds: the migration under way (also while its connection
/// is lost and the source may come back) and what became of the last finished ones, so that a
/// source or an operator can ask later (Query). One migration at a time.
/// </summary>
internal sealed class ReceiverSessions
{
    /// <summary>Finished sessions remembered for queries.</summary>
    internal const int Remembered = 256;

    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<Guid, SessionStatus> _finished = [];
    private readonly Queue<Guid> _order = new();

    private static int _rehearsed;
    private ReceiverSession? _current;
    private ReceiverSession? _latest;
    private bool _handedOver;

    internal ReceiverSessions(ILogger logger) => _logger = logger;

    /// <summary>
    /// Runs what <see cref="End"/> runs right after the final Ack (its collections over Guid, a
    /// status message with a session id) once per process on throwaway data: compiled on first
    /// use, that work held a core for milliseconds while the Ack was still on its way.
    /// </summary>
    internal static void Rehearse()
    {
        if (Interlocked.Exchange(ref _rehearsed, 1) != 0)
        {
            return;
        }

        var finished = new Dictionary<Guid, SessionStatus>();
        var order = new Queue<Guid>();
        Guid id = Guid.NewGuid();
        if (finished.TryAdd(id, new SessionStatus(DestinationSessionState.Started, $"session {id:N}")))
        {
            order.Enqueue(id);
        }

        finished[id] = new SessionStatus(DestinationSessionState.Discarded, $"session {id:N}");
        _ = order.Count > Remembered ? finished.Remove(order.Dequeue()) : finished.TryGetValue(order.Dequeue(), out _);
    }

    /// <summary>The session the last Query named.</summary>
    internal Guid? LastAsked { get; private set; }

    /// <summary>The migration under way, if any: open on a connection or waiting for its source.</summary>
    /// <remarks>Read under the lock: a session replaced by a new one is seen discarded only with its successor in place.</remarks>
    internal ReceiverSession? Current
    {
        get
        {
            lock (_lock)
            {
                return _current;
            }
        }
    }

    /// <summary>
    /// The session begun last, under way or ended: the receive is this migration's. A session it
    /// replaced ends nothing, however late its connection's end is seen.
    /// </summary>
    internal ReceiverSession? Latest
    {
        get
        {
            lock (_lock)
            {
                return _latest;
            }
        }
    }

    /// <summary>
    /// Makes <paramref name="session"/> the one under way; a session that waited for its source is
    /// released (it never ran). Returns why not instead, while a VM that started here is still its
    /// receive's to hand over (that VM would otherwise run with no receive to return it), or while
    /// the session under way is open on a connection (its source still streams).
    /// </summary>
    internal string? Begin(ReceiverSession session)
    {
        lock (_lock)
        {
            if (Busy() is { } busy)
            {
                return busy;
            }

            // The new session is under way before the old one is discarded: a receiver that sees the
            // old one discarded must never find no migration under way and end as aborted.
            ReceiverSession? earlier = _current;
            (ReceiverSession? latest, bool handedOver) = (_latest, _handedOver);
            _current = session;
            _latest = session;
            _handedOver = false;
            if (earlier is not null && earlier != session)
            {
                if (!Release(earlier, $"a new migration (session {session.Id:N}) arrived while it waited for its source"))
                {
                    // Its Commit came first: that VM runs here, and the new migration is the one refused.
                    (_current, _latest, _handedOver) = (earlier, latest, handedOver);
                    return Refusal(earlier);
                }

                End(earlier);
            }

            return null;
        }
    }

    /// <summary>Why no new migration may begin now (a VM started here is not handed over yet), or null.</summary>
    internal string? RefusesNew()
    {
        lock (_lock)
        {
            return Busy();
        }
    }

    /// <summary>The receive that held the latest session has ended: a VM that started here is its caller's now.</summary>
    internal void EndReceive()
    {
        lock (_lock)
        {
            _handedOver = true;
        }
    }

    private string? Busy()
    {
        if (_latest is { State: DestinationSessionState.Started } started && !_handedOver)
        {
            return Refusal(started);
        }

        // A session whose source still streams to it is that source's: a new Hello never takes it over.
        // The refusal goes to the peer, so it never names the session id: that id alone lets a Query abort or commit.
        return _current is { Owner: not null, State: DestinationSessionState.Receiving or DestinationSessionState.Ready } live
            ? $"A migration ({live.Hello.SourceName}) is under way here on a live connection, and this destination takes one migration at a time. " +
                "If its source is gone, release that session with a Query that aborts it (migratekit recover --to ADDRESS --session ID --abort, with the session id of its source's report or of this destination's log), or wait until its connection goes idle."
            : null;
    }

    private static string Refusal(ReceiverSession started) =>
        $"This destination has started the VM of another migration ({started.Hello.SourceName}) and takes no other until its receive has handed that VM over.";

    /// <summary>The session a Resume names, if it is the one under way and can continue; otherwise null and why.</summary>
    internal ReceiverSession? Find(Guid id, out string why)
    {
        lock (_lock)
        {
            if (_current is { } s && s.Id == id && s.State is DestinationSessionState.Receiving or DestinationSessionState.Ready)
            {
                why = string.Empty;
                return s;
            }

            why = _finished.TryGetValue(id, out SessionStatus? status)
                ? $"session {id:N} has ended here: {status.State}"
                : $"this destination holds no session {id:N}";
            return null;
        }
    }

    /// <summary>Answers a Query, after doing what it asks (start a ready VM, or release one that never ran).</summary>
    internal SessionStatus Answer(SessionQuery query)
    {
        lock (_lock)
        {
            SessionStatus status;
            if (_current is { } s && s.Id == query.SessionId)
            {
                if (query.Action == SessionQueryAction.Commit && s.State == DestinationSessionState.Ready)
                {
                    s.TryStart();
                }
                else if (query.Action == SessionQueryAction.Abort && s.State != DestinationSessionState.Started)
                {
                    // Ended too, so the receiver that waits for this session's source learns it was aborted.
                    Discard(s, "aborted by a query");
                }

                status = s.Status();
            }
            else
            {
                status = _finished.TryGetValue(query.SessionId, out SessionStatus? known)
                    ? known
                    : new SessionStatus(DestinationSessionState.Unknown, $"This destination holds no record of session {query.SessionId:N} (it never arrived, or the receiver restarted since); this proves nothing about where the VM runs.");
            }

            MigrationLog.QueryAnswered(_logger, query.SessionId, query.Action.ToString(), status.State.ToString());
            LastAsked = query.SessionId;
            return status;
        }
    }

    /// <summary>Releases the session under way (it never ran), for example when its source did not come back in time.</summary>
    internal void Discard(ReceiverSession session, string reason)
    {
        lock (_lock)
        {
            Release(session, reason);
            End(session);
        }
    }

    // Discards a session that has not started, logged the first time; false when it started (it goes on).
    private bool Release(ReceiverSession session, string reason)
    {
        bool before = session.State == DestinationSessionState.Discarded;
        if (!session.Discard(reason))
        {
            return false;
        }

        if (!before)
        {
            MigrationLog.SessionDiscarded(_logger, session.Id, session.Hello.SourceName, reason);
        }

        return true;
    }

    /// <summary>Remembers how <paramref name="session"/> ended (started or discarded) and clears it as the one under way.</summary>
    internal void End(ReceiverSession session)
    {
        lock (_lock)
        {
            if (_current == session)
            {
                _current = null;
            }

            if (_finished.TryAdd(session.Id, session.Status()))
            {
                _order.Enqueue(session.Id);
                if (_order.Count > Remembered)
                {
                    _finished.Remove(_order.Dequeue());
                }
            }
            else
            {
                _finished[session.Id] = session.Status();
            }
        }
    }
}
