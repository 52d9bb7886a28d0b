using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.Transport;

/// <summary>
/// A socket (with TLS on it, or plain) and two pipes and two pump tasks: one moves received bytes into
/// <see cref="Input"/>, the other sends what is written to <see cref="Output"/>. A failed
/// receive completes <see cref="Input"/> with the error; a failed send completes the output
/// pipe's reader, so the next flush reports the peer gone.
/// </summary>
internal sealed class SocketMigrationConnection : IMigrationConnection
{
    /// <summary>The most data one TLS record carries.</summary>
    private const int TlsRecordSize = 16 * 1024;

    /// <summary>The most received TLS data held back from the reader while more is arriving.</summary>
    private const int TlsFlushBatch = 256 * 1024;

    /// <summary>Keepalive probes sent before a silent peer counts as gone.</summary>
    internal const int KeepAliveProbes = 3;

    /// <summary>IPPROTO_TCP, the level of <see cref="TcpUserTimeout"/>.</summary>
    internal const int IpProtocolTcp = 6;

    /// <summary>TCP_USER_TIMEOUT (Linux): how long sent data may stay unacknowledged before the connection fails, in ms.</summary>
    internal const int TcpUserTimeout = 18;

    private readonly Socket _socket;
    private readonly SslStream? _tls;
    private readonly Pipe _inbound;
    private readonly Pipe _outbound;
    private readonly Task _receiving;
    private readonly Task _sending;
    private int _disposed;
    private long _bytesSent;

    private SocketMigrationConnection(Socket socket, SslStream? tls, string remote, PageStreamOptions options)
    {
        _socket = socket;
        _tls = tls;
        if (socket.AddressFamily != AddressFamily.Unix)
        {
            socket.NoDelay = true;
        }

        RemoteAddress = remote;
        Options = options;
        _inbound = new Pipe(MigrationConnector.PipeOptionsFor(options));

        // A flush hands its bytes to the socket on the flushing thread when the send loop is idle,
        // rather than waking a pool thread for it: a switchover's small frames (Ready, Commit, Ack)
        // then leave at once instead of after a thread wake on a busy host.
        _outbound = new Pipe(MigrationConnector.PipeOptionsFor(options, PipeScheduler.Inline));
        _receiving = Task.Run(ReceiveLoopAsync);
        _sending = Task.Run(SendLoopAsync);
    }

    /// <summary>Wraps a connected socket, first running the TLS handshake when <paramref name="tls"/> is given.</summary>
    internal static async Task<IMigrationConnection> OpenAsync(Socket socket, string remote, bool asServer, MigrationTlsOptions? tls, PageStreamOptions options, CancellationToken cancellationToken)
    {
        // Before the TLS handshake, so a peer that vanishes during it is found as fast.
        WatchPeer(socket, options.PeerTimeout);
        if (tls is null)
        {
            return new SocketMigrationConnection(socket, null, remote, options);
        }

        var transport = new CoalescingSocketStream(socket);
        SslStream stream = await MigrationTls.AuthenticateAsync(socket, transport, remote, asServer, tls, cancellationToken).ConfigureAwait(false);
        transport.Coalesce = true;
        return new SocketMigrationConnection(socket, stream, remote, options);
    }

    public PipeReader Input => _inbound.Reader;

    public PipeWriter Output => _outbound.Writer;

    public string RemoteAddress { get; }

    public PageStreamOptions Options { get; }

    /// <summary>Bytes handed to the socket (or to TLS) so far: the progress a stalled flush looks for.</summary>
    internal long BytesSent => Volatile.Read(ref _bytesSent);

    /// <summary>The socket, for tests that read its options back.</summary>
    internal Socket Socket => _socket;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Let what was written go out, then close both directions.
        await _outbound.Writer.CompleteAsync().ConfigureAwait(false);
        await DrainAsync(_sending).ConfigureAwait(false);
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already reset by the peer.
        }

        // Complete the input before waiting for the pumps: a receive pump blocked on backpressure
        // (unread data over the pause threshold) only wakes when the reader completes.
        await _inbound.Reader.CompleteAsync().ConfigureAwait(false);

        // The shut-down socket ends the pumps' reads and writes; only then is the TLS stream
        // disposed, since OpenSSL's connection must not be freed while a pump may still decrypt
        // through it.
        await DrainAsync(Task.WhenAll(_receiving, _sending)).ConfigureAwait(false);
        _tls?.Dispose();
        _socket.Dispose();
        await Task.WhenAll(_receiving, _sending).ConfigureAwait(false);
    }

    // At most 5 s on the real clock, whatever the outcome; the timer goes as soon as the pumps end
    // (a Task.Delay raced against them would live out its 5 s after every connection).
    private static async Task DrainAsync(Task pumps) =>
        await pumps.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

    private async Task ReceiveLoopAsync()
    {
        PipeWriter writer = _inbound.Writer;
        Exception? error = null;
        long unflushed = 0;
        try
        {
            while (true)
            {
                // A TLS read returns at most one record (16 KiB of data): asking for more would start a
                // fresh segment whenever less than that is left, and leave the rest of the old one unused.
                Memory<byte> memory = writer.GetMemory(_tls is null ? 64 * 1024 : TlsRecordSize);
                int received = _tls is null
                    ? await _socket.ReceiveAsync(memory, SocketFlags.None).ConfigureAwait(false)
                    : await _tls.ReadAsync(memory).ConfigureAwait(false);
                if (received == 0)
                {
                    break;
                }

                writer.Advance(received);
                unflushed += received;
                if (_tls is not null && unflushed < TlsFlushBatch && _socket.Available > 0)
                {
                    // More records are already here: hand the reader a batch, not one wake-up per 16 KiB.
                    continue;
                }

                unflushed = 0;
                FlushResult flushed = await writer.FlushAsync().ConfigureAwait(false);
                if (flushed.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or CryptographicException)
        {
            if (Volatile.Read(ref _disposed) == 0)
            {
                error = new IOException($"Receiving from {RemoteAddress} failed: {ex.Message}", ex);
            }
        }

        await writer.CompleteAsync(error).ConfigureAwait(false);
    }

    private async Task SendLoopAsync()
    {
        PipeReader reader = _outbound.Reader;
        Exception? error = null;
        try
        {
            while (true)
            {
                ReadResult read = await reader.ReadAsync().ConfigureAwait(false);
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    await SendAsync(segment).ConfigureAwait(false);
                }

                if (_tls is not null)
                {
                    // The records of this batch were gathered below the TLS layer: send them now.
                    await _tls.FlushAsync().ConfigureAwait(false);
                }

                reader.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    // A plain FIN, no TLS close_notify: SslStream.ShutdownAsync runs SSL_shutdown
                    // outside the lock that serializes the receive pump's SSL_read, and the two
                    // racing on one OpenSSL connection corrupted the native heap (a peer closing
                    // at the same moment made it likely). Nothing is lost: a .NET peer's read
                    // returns 0 for either, and the protocol's own frames mark a migration's end,
                    // so a cut stream still fails the frame reader or the session.
                    _socket.Shutdown(SocketShutdown.Send);
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or CryptographicException)
        {
            error = new IOException($"Sending to {RemoteAddress} failed: {ex.Message}", ex);
        }

        // Completing the reader makes the writer's next flush return IsCompleted: the peer is gone.
        await reader.CompleteAsync(error).ConfigureAwait(false);
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> segment)
    {
        if (_tls is not null)
        {
            await _tls.WriteAsync(segment).ConfigureAwait(false);
            Volatile.Write(ref _bytesSent, _bytesSent + segment.Length);
            return;
        }

        while (!segment.IsEmpty)
        {
            int sent = await _socket.SendAsync(segment, SocketFlags.None).ConfigureAwait(false);
            segment = segment[sent..];
            Volatile.Write(ref _bytesSent, _bytesSent + sent);
        }
    }

    /// <summary>
    /// Turns on keepalive and, on Linux, TCP_USER_TIMEOUT, so a peer that vanished (or a link
    /// that black-holed) fails the socket within about <paramref name="peerTimeout"/>, idle or
    /// not, instead of after the kernel's defaults (two hours idle; some 15 minutes of
    /// retransmissions). Keepalive probes start after half the timeout and three go out in the
    /// other half.
    /// </summary>
    internal static void WatchPeer(Socket socket, TimeSpan peerTimeout)
    {
        if (socket.AddressFamily == AddressFamily.Unix)
        {
            return;
        }

        int seconds = (int)Math.Max(1, Math.Round(peerTimeout.TotalSeconds));
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, Math.Max(1, seconds / 2));
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, Math.Max(1, seconds / 2 / KeepAliveProbes));
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, KeepAliveProbes);
        if (OperatingSystem.IsLinux())
        {
            Span<byte> milliseconds = stackalloc byte[sizeof(int)];
            BinaryPrimitives.WriteInt32LittleEndian(milliseconds, (int)peerTimeout.TotalMilliseconds);
            socket.SetRawSocketOption(IpProtocolTcp, TcpUserTimeout, milliseconds);
        }
    }
}
