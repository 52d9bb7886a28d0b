using System;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>One connection through a <see cref="FaultProxy"/>: two sockets, a pump per direction, and the faults in force.</summary>
internal sealed class ProxyLink
{
    private readonly Socket _source;
    private readonly Socket _destination;
    private readonly ProxyPump _toDestination;
    private readonly ProxyPump _toSource;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _latencyTicks;
    private volatile bool _blackHoled;
    private int _closing;

    internal ProxyLink(FaultProxy proxy, int index, Socket source, Socket destination, CancellationToken ct)
    {
        _source = source;
        _destination = destination;
        _toDestination = new ProxyPump(proxy, this, index, Direction.ToDestination, source, destination, ct);
        _toSource = new ProxyPump(proxy, this, index, Direction.ToSource, destination, source, ct);
    }

    internal bool IsClosed => _closed.Task.IsCompleted;

    /// <summary>Completes when both sockets are closed: a black-holed pump waits for it.</summary>
    internal Task Closed => _closed.Task;

    internal bool BlackHoled => _blackHoled;

    internal TimeSpan Latency => TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks));

    /// <summary>Runs both pumps; closes both sockets when both have ended.</summary>
    internal async Task RunAsync()
    {
        try
        {
            await Task.WhenAll(Task.Run(_toDestination.RunAsync), Task.Run(_toSource.RunAsync));
        }
        finally
        {
            Close();
        }
    }

    /// <summary>Carries out <paramref name="armed"/>'s fault on this connection.</summary>
    internal void Fire(ArmedFault armed)
    {
        // Marked first: the peers may see the fault's effect (and a test check it) before this returns.
        armed.MarkFired();
        Fault fault = armed.Fault;
        switch (fault.Kind)
        {
            case FaultKind.Reset:
                Reset();
                break;
            case FaultKind.BlackHole:
                _blackHoled = true;
                break;
            case FaultKind.Delay:
                Interlocked.Exchange(ref _latencyTicks, fault.Latency.Ticks);
                break;
            case FaultKind.Cut:
                Pump(fault.Direction).Cut(fault.Bytes);
                break;
            case FaultKind.HalfOpen:
                Pump(fault.Direction).Shut();
                break;
        }
    }

    /// <summary>Closes both sockets (FIN, or RST where unread data remains).</summary>
    internal void Close()
    {
        if (Interlocked.Exchange(ref _closing, 1) == 0)
        {
            Shutdown(_source);
            Shutdown(_destination);
            _source.Dispose();
            _destination.Dispose();
            _closed.TrySetResult();
        }
    }

    /// <summary>Resets both sockets: linger 0, then close, so each peer gets an RST.</summary>
    private void Reset()
    {
        if (Interlocked.Exchange(ref _closing, 1) == 0)
        {
            foreach (Socket socket in new[] { _source, _destination })
            {
                try
                {
                    socket.LingerState = new LingerOption(true, 0);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    // Already gone.
                }

                socket.Dispose();
            }

            _closed.TrySetResult();
        }
    }

    private ProxyPump Pump(Direction direction) => direction == Direction.ToDestination ? _toDestination : _toSource;

    private static void Shutdown(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already reset or closed by the peer.
        }
    }
}
