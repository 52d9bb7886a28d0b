using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>
/// A TCP proxy on 127.0.0.1 between a migration source and its destination, for injecting faults
/// on real sockets. It listens on a free port, connects each accepted connection to the target
/// and forwards both directions, one or more connections in sequence. A test arms a
/// <see cref="Fault"/> to fire at once or on a <see cref="Trigger"/> that reads the 8-byte frame
/// headers (u32 length, u8 type, u8 flags, u16 reserved) of each direction:
/// <code>proxy.Arm(Fault.Reset, Trigger.AfterRoundEnd(2));</code>
/// It records the bytes and whole frames it forwarded per direction. Disposing closes every
/// socket and waits (bounded) for its tasks.
/// </summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    /// <summary>
    /// Payload bytes kept per recorded frame: a Pages frame's run table at 256 pages per frame
    /// fits. EncodedPages frames are kept whole: their page indices are spread through them.
    /// </summary>
    internal const int HeadBytes = 16 * 1024;

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan DisposeTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private readonly List<ArmedFault> _armed = [];
    private readonly List<ArmedFault> _atNextConnection = [];
    private readonly List<ProxyLink> _links = [];
    private readonly List<Task> _running = [];
    private readonly List<ProxyFrame>[] _frames = [[], []];
    private readonly long[] _bytes = new long[2];
    private readonly Task _accepting;
    private int _watching;
    private int _disposed;

    private FaultProxy(IPEndPoint target)
    {
        _target = target;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The port the proxy listens on (127.0.0.1).</summary>
    internal int Port { get; }

    /// <summary>The proxy's address in MigrateKit's form, for <see cref="MigrationConnector.ConnectAsync(string, PageStreamOptions?, CancellationToken)"/>.</summary>
    internal string Address => $"tcp:127.0.0.1:{Port}";

    /// <summary>Connections accepted so far.</summary>
    internal int Connections
    {
        get
        {
            lock (_lock)
            {
                return _links.Count;
            }
        }
    }

    /// <summary>Starts a proxy to <paramref name="address"/>, a MigrateKit TCP address such as <c>tcp:127.0.0.1:40123</c>.</summary>
    internal static FaultProxy Start(string address)
    {
        const string Prefix = "tcp:";
        return Start(IPEndPoint.Parse(address.StartsWith(Prefix, StringComparison.Ordinal) ? address[Prefix.Length..] : address));
    }

    /// <summary>Starts a proxy to <paramref name="target"/>.</summary>
    internal static FaultProxy Start(IPEndPoint target) => new(target);

    /// <summary>Arms <paramref name="fault"/> to fire on <paramref name="when"/> (at once when null); it fires once.</summary>
    internal ArmedFault Arm(Fault fault, Trigger? when = null)
    {
        var armed = new ArmedFault(fault, when ?? Trigger.Now);
        ProxyLink? now = null;
        lock (_lock)
        {
            if (armed.Trigger.Steps.Count > 0)
            {
                _armed.Add(armed);
                _watching = _armed.Count;
            }
            else if (_links.LastOrDefault(l => !l.IsClosed) is { } open)
            {
                now = open;
            }
            else
            {
                _atNextConnection.Add(armed);
            }
        }

        now?.Fire(armed);
        return armed;
    }

    /// <summary>Whether a frame trigger is armed and not yet reached.</summary>
    internal bool WatchesFrames => Volatile.Read(ref _watching) > 0;

    /// <summary>Bytes forwarded in <paramref name="direction"/>, over every connection.</summary>
    internal long BytesForwarded(Direction direction) => Interlocked.Read(ref _bytes[(int)direction]);

    /// <summary>The frames forwarded whole in <paramref name="direction"/>, in order, over every connection.</summary>
    internal IReadOnlyList<ProxyFrame> Frames(Direction direction)
    {
        lock (_lock)
        {
            return [.. _frames[(int)direction]];
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        _listener.Dispose();
        try
        {
            // No connection starts after the accept loop ended.
            await _accepting.WaitAsync(DisposeTimeout);
            Task[] running;
            lock (_lock)
            {
                foreach (ProxyLink link in _links)
                {
                    link.Close();
                }

                running = [.. _running];
            }

            await Task.WhenAll(running).WaitAsync(DisposeTimeout);
        }
        finally
        {
            _stop.Dispose();
        }
    }

    internal void CountForwarded(Direction direction, int bytes) => Interlocked.Add(ref _bytes[(int)direction], bytes);

    internal void RecordFrame(Direction direction, ProxyFrame frame)
    {
        lock (_lock)
        {
            _frames[(int)direction].Add(frame);
        }
    }

    /// <summary>
    /// A pump parsed the header of a frame starting at <paramref name="offset"/> of its stream:
    /// advances every armed trigger and returns the faults due in this frame, with the stream
    /// offset each fires at.
    /// </summary>
    internal List<(long Offset, ArmedFault Fault)> OnFrame(Direction direction, FrameType type, uint length, long offset)
    {
        var due = new List<(long, ArmedFault)>();
        lock (_lock)
        {
            foreach (ArmedFault armed in _armed.ToArray())
            {
                FrameMatch step = armed.Trigger.Steps[armed.Step];
                if (step.Direction != direction || step.Type != type || ++armed.Seen < step.Occurrence)
                {
                    continue;
                }

                armed.Seen = 0;
                if (++armed.Step < armed.Trigger.Steps.Count)
                {
                    continue;
                }

                _armed.Remove(armed);
                _watching = _armed.Count;
                long payload = offset + MigrationProtocol.FrameHeaderSize;
                due.Add((step.Point switch
                {
                    FramePoint.Before => offset,
                    FramePoint.Inside => payload + Math.Min(step.PayloadBytes, length),
                    _ => payload + length,
                }, armed));
            }
        }

        return due;
    }

    private async Task AcceptLoopAsync()
    {
        CancellationToken ct = _stop.Token;
        try
        {
            while (true)
            {
                Socket source = await _listener.AcceptAsync(ct);
                Socket destination = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                source.NoDelay = true;
                try
                {
                    using var connect = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    connect.CancelAfter(ConnectTimeout);
                    await destination.ConnectAsync(_target, connect.Token);
                }
                catch (Exception ex) when (ex is SocketException or OperationCanceledException)
                {
                    source.Dispose();
                    destination.Dispose();
                    continue;
                }

                Start(source, destination, ct);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Disposed.
        }
    }

    private void Start(Socket source, Socket destination, CancellationToken ct)
    {
        ArmedFault[] now;
        ProxyLink link;
        lock (_lock)
        {
            link = new ProxyLink(this, _links.Count, source, destination, ct);
            _links.Add(link);
            now = [.. _atNextConnection];
            _atNextConnection.Clear();
        }

        // Before any byte passes.
        foreach (ArmedFault armed in now)
        {
            link.Fire(armed);
        }

        Task running = link.RunAsync();
        lock (_lock)
        {
            _running.Add(running);
        }
    }
}
