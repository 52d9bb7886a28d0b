using System;
using System.IO;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.Transport;

/// <summary>A bidirectional byte stream between a migration source and destination.</summary>
public interface IMigrationConnection : IAsyncDisposable
{
    /// <summary>Bytes from the peer.</summary>
    PipeReader Input { get; }

    /// <summary>Bytes to the peer. Completing it closes this side's sending half.</summary>
    PipeWriter Output { get; }

    /// <summary>The peer's address, as <c>tcp:HOST:PORT</c>, <c>unix:PATH</c> or <c>memory</c>.</summary>
    string RemoteAddress { get; }
}

/// <summary>Connecting or listening failed: the address is unreachable, refused or unusable.</summary>
public sealed class MigrationConnectionException : IOException
{
    /// <summary>Creates the exception.</summary>
    public MigrationConnectionException(string address, string message, Exception? inner = null)
        : base($"{address}: {message}", inner)
    {
        Address = address;
    }

    /// <summary>The address that failed.</summary>
    public string Address { get; }
}

/// <summary>Opens migration connections: TCP, Unix domain sockets, or an in-memory pair.</summary>
public static class MigrationConnector
{
    /// <summary>
    /// Connects to a listening destination.
    /// </summary>
    /// <param name="address"><c>tcp:HOST:PORT</c>, <c>HOST:PORT</c> or <c>unix:PATH</c>.</param>
    /// <param name="options">Buffering limits; <see langword="null"/> for the defaults.</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <exception cref="ArgumentException">The address is malformed.</exception>
    /// <exception cref="MigrationConnectionException">Nothing accepts connections there.</exception>
    public static async Task<IMigrationConnection> ConnectAsync(string address, PageStreamOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new PageStreamOptions();
        options.Validate();
        MigrationAddress parsed = MigrationAddress.Parse(address);
        Socket socket = parsed.CreateSocket();
        try
        {
            if (parsed.Host is not null)
            {
                await socket.ConnectAsync(parsed.Host, parsed.Port, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await socket.ConnectAsync(parsed.EndPoint!, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new MigrationConnectionException(parsed.ToString(), $"cannot connect ({ex.SocketErrorCode}: {ex.Message})", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new SocketMigrationConnection(socket, parsed.Describe(socket.RemoteEndPoint), options);
    }

    /// <summary>Creates two connected in-memory endpoints (for tests and same-process migrations).</summary>
    public static (IMigrationConnection Source, IMigrationConnection Destination) CreateInMemoryPair(PageStreamOptions? options = null)
    {
        options ??= new PageStreamOptions();
        options.Validate();
        var toDestination = new Pipe(PipeOptionsFor(options));
        var toSource = new Pipe(PipeOptionsFor(options));
        return (new InMemoryConnection(toSource.Reader, toDestination.Writer), new InMemoryConnection(toDestination.Reader, toSource.Writer));
    }

    internal static PipeOptions PipeOptionsFor(PageStreamOptions options) => new(
        pauseWriterThreshold: options.PauseWriterThreshold,
        resumeWriterThreshold: options.ResumeWriterThreshold,
        minimumSegmentSize: 64 * 1024,
        useSynchronizationContext: false);

    private sealed class InMemoryConnection(PipeReader input, PipeWriter output) : IMigrationConnection
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;

        public string RemoteAddress => "memory";

        public async ValueTask DisposeAsync()
        {
            await Output.CompleteAsync().ConfigureAwait(false);
            await Input.CompleteAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>Listens for migration connections on TCP or a Unix domain socket.</summary>
public sealed class MigrationListener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly PageStreamOptions _options;
    private readonly string? _unixPath;

    private MigrationListener(Socket socket, string localAddress, PageStreamOptions options, string? unixPath)
    {
        _socket = socket;
        LocalAddress = localAddress;
        _options = options;
        _unixPath = unixPath;
    }

    /// <summary>The bound address, with the actual port when port 0 was asked for (<c>tcp:127.0.0.1:40123</c>).</summary>
    public string LocalAddress { get; }

    /// <summary>
    /// Binds and listens. A Unix socket file is created with mode 0600 (its owner only may
    /// connect); a socket already at the path is replaced, anything else there is refused.
    /// </summary>
    /// <param name="address"><c>tcp:HOST:PORT</c>, <c>HOST:PORT</c> (port 0 picks a free one) or <c>unix:PATH</c>.</param>
    /// <param name="options">Buffering limits for accepted connections.</param>
    /// <exception cref="ArgumentException">The address is malformed.</exception>
    /// <exception cref="MigrationConnectionException">The address cannot be bound, or a file other than a socket is at the Unix path.</exception>
    public static MigrationListener Listen(string address, PageStreamOptions? options = null)
    {
        options ??= new PageStreamOptions();
        options.Validate();
        MigrationAddress parsed = MigrationAddress.Parse(address);
        EndPoint endPoint = parsed.EndPoint ?? new IPEndPoint(ResolveForListen(parsed), parsed.Port);
        Socket socket = endPoint is UnixDomainSocketEndPoint ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (parsed.UnixPath is not null)
            {
                UnixSocketFile.RemoveStale(parsed.UnixPath, parsed.ToString());
            }

            socket.Bind(endPoint);
            if (parsed.UnixPath is not null)
            {
                UnixSocketFile.Restrict(parsed.UnixPath);
            }

            socket.Listen(4);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new MigrationConnectionException(parsed.ToString(), $"cannot listen ({ex.SocketErrorCode}: {ex.Message})", ex);
        }
        catch (MigrationConnectionException)
        {
            socket.Dispose();
            throw;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            socket.Dispose();
            throw new MigrationConnectionException(parsed.ToString(), $"cannot prepare the socket file ({ex.Message})", ex);
        }

        string local = socket.LocalEndPoint is IPEndPoint ip ? $"tcp:{FormatHost(ip.Address)}:{ip.Port}" : $"unix:{parsed.UnixPath}";
        return new MigrationListener(socket, local, options, parsed.UnixPath);
    }

    /// <summary>Waits for one connection.</summary>
    public async Task<IMigrationConnection> AcceptAsync(CancellationToken cancellationToken = default)
    {
        Socket accepted = await _socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
        string remote = accepted.RemoteEndPoint is IPEndPoint ip ? $"tcp:{FormatHost(ip.Address)}:{ip.Port}" : LocalAddress;
        return new SocketMigrationConnection(accepted, remote, _options);
    }

    /// <summary>Stops listening (and removes a Unix socket file).</summary>
    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        if (_unixPath is not null)
        {
            try
            {
                File.Delete(_unixPath);
            }
            catch (IOException)
            {
                // Someone else's file now, or already gone.
            }
        }

        return ValueTask.CompletedTask;
    }

    internal static string FormatHost(IPAddress address) =>
        address.IsIPv4MappedToIPv6 ? address.MapToIPv4().ToString() : address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();

    private static IPAddress ResolveForListen(MigrationAddress parsed)
    {
        if (IPAddress.TryParse(parsed.Host, out IPAddress? ip))
        {
            return ip;
        }

        try
        {
            IPAddress[] found = Dns.GetHostAddresses(parsed.Host!);
            return found.Length > 0 ? found[0] : throw new MigrationConnectionException(parsed.ToString(), "the host name has no address");
        }
        catch (SocketException ex)
        {
            throw new MigrationConnectionException(parsed.ToString(), $"cannot resolve the host ({ex.Message})", ex);
        }
    }
}

/// <summary>A parsed <c>tcp:HOST:PORT</c> / <c>HOST:PORT</c> / <c>unix:PATH</c> address.</summary>
internal sealed class MigrationAddress
{
    private MigrationAddress(string? host, int port, string? unixPath)
    {
        Host = host;
        Port = port;
        UnixPath = unixPath;
        EndPoint = unixPath is not null ? new UnixDomainSocketEndPoint(unixPath) : IPAddress.TryParse(host, out IPAddress? ip) ? new IPEndPoint(ip, port) : null;
        if (EndPoint is not null)
        {
            Host = null;
        }
    }

    /// <summary>A host name to resolve when connecting; null when <see cref="EndPoint"/> is set.</summary>
    public string? Host { get; }

    public int Port { get; }

    public string? UnixPath { get; }

    public EndPoint? EndPoint { get; }

    public static MigrationAddress Parse(string address)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(address);
        if (address.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = address[5..];
            if (path.Length == 0)
            {
                throw new ArgumentException($"'{address}' has no socket path (use unix:/path/to/socket).", nameof(address));
            }

            return new MigrationAddress(null, 0, path);
        }

        string rest = address.StartsWith("tcp:", StringComparison.Ordinal) ? address[4..] : address;
        int colon = rest.LastIndexOf(':');
        if (colon <= 0 || colon == rest.Length - 1)
        {
            throw new ArgumentException($"'{address}' is not an address (use tcp:HOST:PORT, HOST:PORT or unix:PATH).", nameof(address));
        }

        string host = rest[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        if (!int.TryParse(rest.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            throw new ArgumentException($"'{address}' has an invalid port '{rest[(colon + 1)..]}' (0 to 65535).", nameof(address));
        }

        return new MigrationAddress(host, port, null);
    }

    public Socket CreateSocket() => UnixPath is not null
        ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        : EndPoint is IPEndPoint ip ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }
        : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    public string Describe(EndPoint? remote) => remote is IPEndPoint ip ? $"tcp:{MigrationListener.FormatHost(ip.Address)}:{ip.Port}" : ToString();

    public override string ToString() => UnixPath is not null ? $"unix:{UnixPath}" : EndPoint is IPEndPoint ip ? $"tcp:{MigrationListener.FormatHost(ip.Address)}:{Port}" : $"tcp:{Host}:{Port}";
}

/// <summary>
/// A socket with two pipes and two pump tasks: one moves received bytes into
/// <see cref="Input"/>, the other sends what is written to <see cref="Output"/>. A failed
/// receive completes <see cref="Input"/> with the error; a failed send completes the output
/// pipe's reader, so the next flush reports the peer gone.
/// </summary>
internal sealed class SocketMigrationConnection : IMigrationConnection
{
    private readonly Socket _socket;
    private readonly Pipe _inbound;
    private readonly Pipe _outbound;
    private readonly Task _receiving;
    private readonly Task _sending;
    private int _disposed;

    internal SocketMigrationConnection(Socket socket, string remote, PageStreamOptions options)
    {
        _socket = socket;
        if (socket.AddressFamily != AddressFamily.Unix)
        {
            socket.NoDelay = true;
        }

        RemoteAddress = remote;
        _inbound = new Pipe(MigrationConnector.PipeOptionsFor(options));
        _outbound = new Pipe(MigrationConnector.PipeOptionsFor(options));
        _receiving = Task.Run(ReceiveLoopAsync);
        _sending = Task.Run(SendLoopAsync);
    }

    public PipeReader Input => _inbound.Reader;

    public PipeWriter Output => _outbound.Writer;

    public string RemoteAddress { get; }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Let what was written go out, then close both directions.
        await _outbound.Writer.CompleteAsync().ConfigureAwait(false);
        await Task.WhenAny(_sending, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already reset by the peer.
        }

        _socket.Dispose();

        // Complete the input before waiting for the pumps: a receive pump blocked on backpressure
        // (unread data over the pause threshold) only wakes when the reader completes.
        await _inbound.Reader.CompleteAsync().ConfigureAwait(false);
        await Task.WhenAll(_receiving, _sending).ConfigureAwait(false);
    }

    private async Task ReceiveLoopAsync()
    {
        PipeWriter writer = _inbound.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                Memory<byte> memory = writer.GetMemory(64 * 1024);
                int received = await _socket.ReceiveAsync(memory, SocketFlags.None).ConfigureAwait(false);
                if (received == 0)
                {
                    break;
                }

                writer.Advance(received);
                FlushResult flushed = await writer.FlushAsync().ConfigureAwait(false);
                if (flushed.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
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
                    ReadOnlyMemory<byte> left = segment;
                    while (!left.IsEmpty)
                    {
                        int sent = await _socket.SendAsync(left, SocketFlags.None).ConfigureAwait(false);
                        left = left[sent..];
                    }
                }

                reader.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    _socket.Shutdown(SocketShutdown.Send);
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            error = new IOException($"Sending to {RemoteAddress} failed: {ex.Message}", ex);
        }

        // Completing the reader makes the writer's next flush return IsCompleted: the peer is gone.
        await reader.CompleteAsync(error).ConfigureAwait(false);
    }
}
