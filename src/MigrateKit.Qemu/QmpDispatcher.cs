using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;

namespace MigrateKit.Qemu;

/// <summary>
/// Routes what QEMU sends to whoever waits for it: a reply completes the call with its id, an event goes
/// to the event queue. A fault (a message that is not valid QMP, the end of the connection) fails every
/// waiting call and every later one.
/// </summary>
internal sealed class QmpDispatcher
{
    private readonly string _socketPath;
    private readonly Lock _gate = new();
    private readonly Dictionary<long, (string Command, TaskCompletionSource<JsonElement> Reply)> _pending = [];
    private readonly Channel<QmpEvent> _events;
    private Exception? _fault;

    /// <param name="socketPath">The socket, named in error messages.</param>
    /// <param name="eventCapacity">How many unread events are kept; older ones are dropped beyond this.</param>
    internal QmpDispatcher(string socketPath, int eventCapacity)
    {
        _socketPath = socketPath;
        _events = Channel.CreateBounded<QmpEvent>(
            new BoundedChannelOptions(eventCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = true });
    }

    /// <summary>The events, in order; the sequence ends at <see cref="CompleteEvents"/>.</summary>
    internal ChannelReader<QmpEvent> Events => _events.Reader;

    /// <summary>Waits for the reply to call <paramref name="id"/>.</summary>
    /// <exception cref="QmpException">The connection faulted with a protocol error.</exception>
    /// <exception cref="IOException">The connection ended.</exception>
    internal TaskCompletionSource<JsonElement> Expect(long id, string command)
    {
        var reply = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_fault is not null)
            {
                throw Rethrowable(_fault);
            }

            _pending.Add(id, (command, reply));
        }

        return reply;
    }

    /// <summary>Stops waiting for call <paramref name="id"/> (answered, or given up on).</summary>
    internal void Forget(long id)
    {
        lock (_gate)
        {
            _pending.Remove(id);
        }
    }

    /// <summary>Routes one line from QEMU.</summary>
    /// <exception cref="QmpException">The line is not valid QMP (the caller faults the connection).</exception>
    internal void Dispatch(byte[] line)
    {
        JsonElement message = QmpMessage.Parse(line, _socketPath);
        if (message.TryGetProperty("event", out JsonElement name) && name.ValueKind == JsonValueKind.String)
        {
            _events.Writer.TryWrite(new QmpEvent(
                name.GetString()!,
                message.TryGetProperty("data", out JsonElement data) ? data : null,
                QmpMessage.Timestamp(message)));
            return;
        }

        bool isReturn = message.TryGetProperty("return", out JsonElement result);
        bool isError = message.TryGetProperty("error", out JsonElement error);
        if (!isReturn && !isError)
        {
            throw new QmpException($"a QMP message on {_socketPath} is neither a reply nor an event: {QmpMessage.Excerpt(line)}");
        }

        if (!message.TryGetProperty("id", out JsonElement idElement) || idElement.ValueKind != JsonValueKind.Number || !idElement.TryGetInt64(out long id))
        {
            // Only a reply to a message QEMU could not parse lacks the id; nothing can be matched to it.
            throw new QmpException($"a QMP reply on {_socketPath} carries no id this client sent: {QmpMessage.Excerpt(line)}");
        }

        (string Command, TaskCompletionSource<JsonElement> Reply) pending;
        lock (_gate)
        {
            if (!_pending.Remove(id, out pending))
            {
                return; // A call that was cancelled while waiting.
            }
        }

        if (isReturn)
        {
            pending.Reply.TrySetResult(result);
            return;
        }

        string errorClass = error.ValueKind == JsonValueKind.Object ? Json.String(error, "class") ?? "GenericError" : "GenericError";
        string description = error.ValueKind == JsonValueKind.Object ? Json.String(error, "desc") ?? error.GetRawText() : error.GetRawText();
        pending.Reply.TrySetException(new QmpException(errorClass, description, pending.Command));
    }

    /// <summary>Fails every waiting call with <paramref name="fault"/>, and every later one; the first fault stays.</summary>
    internal void Fault(Exception fault)
    {
        List<TaskCompletionSource<JsonElement>> failed = [];
        lock (_gate)
        {
            _fault ??= fault;
            foreach ((string _, TaskCompletionSource<JsonElement> reply) in _pending.Values)
            {
                failed.Add(reply);
            }

            _pending.Clear();
        }

        foreach (TaskCompletionSource<JsonElement> reply in failed)
        {
            reply.TrySetException(Rethrowable(fault));
        }
    }

    /// <summary>Ends the event sequence.</summary>
    internal void CompleteEvents() => _events.Writer.TryComplete();

    // Each caller gets an exception of its own, with the fault as its cause.
    private static Exception Rethrowable(Exception fault) => fault switch
    {
        QmpException q => new QmpException(q.ErrorClass, q.Description, q.Command, q),
        IOException io => new IOException(io.Message, io),
        _ => new IOException(fault.Message, fault),
    };
}
