using System.Threading.Tasks;

namespace MigrateKit.Migration;

/// <summary>Which connection carries the session, and its reconnections.</summary>
internal sealed partial class ReceiverSession
{
    /// <summary>The connection that carries the session now, if any.</summary>
    internal ReceiverConnection? Owner { get; private set; }

    /// <summary>The source confirmed it got the Ack (it hung up cleanly), or asked about the session since.</summary>
    internal bool AckConfirmed { get; set; }

    /// <summary>The address of the connection that carried the session last.</summary>
    internal string? LastAddress { get; set; }

    /// <summary>How often the source reconnected and continued.</summary>
    internal int Reconnections { get; private set; }

    /// <summary>Bytes read on the connections closed so far (the open one counts its own).</summary>
    internal long EarlierBytes { get; set; }

    /// <summary>Makes <paramref name="connection"/> the one that carries the session.</summary>
    internal void Attach(ReceiverConnection connection)
    {
        lock (_owner)
        {
            if (_attachedBefore)
            {
                Reconnections++;
            }

            _attachedBefore = true;
            Owner = connection;
            _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>The connection has stopped touching the session.</summary>
    internal void Detach(ReceiverConnection connection)
    {
        lock (_owner)
        {
            if (Owner == connection)
            {
                Owner = null;
                _released.TrySetResult();
                if (_releaseOnDetach)
                {
                    Target.Dispose();
                }
            }
        }
    }

    /// <summary>Completes once the connection that carried the session has let go of it.</summary>
    internal Task WaitReleasedAsync()
    {
        lock (_owner)
        {
            return Owner is null ? Task.CompletedTask : _released.Task;
        }
    }
}
