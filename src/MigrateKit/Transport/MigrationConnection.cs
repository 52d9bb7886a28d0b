using System;
using System.IO;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
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

    /// <summary>
    /// The limits and buffering this connection was opened with; the migration engine and the
    /// receiver read and write its frames with them.
    /// </summary>
    PageStreamOptions Options { get; }
}

/// <summary>Connecting or listening failed: the address is unreachable, refused or unusable.</summary>
public class MigrationConnectionException : IOException
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
    /// Connects to a listening destination in plain text, which is allowed only over a Unix
    /// domain socket or to a loopback address; anything else needs the overload that takes
    /// <see cref="MigrationTlsOptions"/>.
    /// </summary>
    /// <param name="address"><c>tcp:HOST:PORT</c>, <c>HOST:PORT</c> or <c>unix:PATH</c>.</param>
    /// <param name="options">Buffering limits; <see langword="null"/> for the defaults.</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <exception cref="ArgumentException">The address is malformed.</exception>
    /// <exception cref="MigrationConnectionException">Nothing accepts connections there, or the address is not loopback.</exception>
    public static Task<IMigrationConnection> ConnectAsync(string address, PageStreamOptions? options = null, CancellationToken cancellationToken = default) =>
        ConnectAsync(address, new Security(null, LoopbackOnly: true), options, cancellationToken);

    /// <summary>
    /// Connects to a listening destination over mutual TLS, or in plain text when
    /// <paramref name="tls"/> is <see langword="null"/> (the caller's explicit choice; anyone on
    /// the path then reads and can change the stream). Unix domain sockets are always plain.
    /// </summary>
    /// <param name="address"><c>tcp:HOST:PORT</c>, <c>HOST:PORT</c> or <c>unix:PATH</c>.</param>
    /// <param name="tls">Certificates and checks for TCP; <see langword="null"/> for plain text.</param>
    /// <param name="options">Buffering limits; <see langword="null"/> for the defaults.</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <exception cref="ArgumentException">The address or <paramref name="tls"/> is invalid.</exception>
    /// <exception cref="MigrationConnectionException">Nothing accepts connections there.</exception>
    /// <exception cref="MigrationTlsException">The TLS handshake failed or the destination's certificate was refused.</exception>
    public static Task<IMigrationConnection> ConnectAsync(string address, MigrationTlsOptions? tls, PageStreamOptions? options, CancellationToken cancellationToken = default)
    {
        tls?.Validate();
        return ConnectAsync(address, new Security(tls, LoopbackOnly: false), options, cancellationToken);
    }

    private static async Task<IMigrationConnection> ConnectAsync(string address, Security security, PageStreamOptions? options, CancellationToken cancellationToken)
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

            string remote = parsed.Describe(socket.RemoteEndPoint);
            security.CheckPlainAllowed(remote, socket.RemoteEndPoint);
            return await SocketMigrationConnection.OpenAsync(socket, remote, asServer: false, security.TlsFor(socket), options, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw parsed.CannotConnect(ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks an address the way <see cref="ConnectAsync(string, PageStreamOptions?, CancellationToken)"/>
    /// and <see cref="MigrationListener.Listen(string, PageStreamOptions?)"/> read it, without
    /// connecting or resolving anything, and returns its canonical form (<c>tcp:HOST:PORT</c>,
    /// <c>tcp:[IPv6]:PORT</c> or <c>unix:PATH</c>): for configuration checked before a migration starts.
    /// </summary>
    /// <param name="address"><c>tcp:HOST:PORT</c>, <c>HOST:PORT</c> or <c>unix:PATH</c>.</param>
    /// <exception cref="ArgumentException">The address is malformed, with the reason.</exception>
    public static string NormalizeAddress(string address) => MigrationAddress.Parse(address).ToString();

    /// <summary>Creates two connected in-memory endpoints (for tests and same-process migrations).</summary>
    public static (IMigrationConnection Source, IMigrationConnection Destination) CreateInMemoryPair(PageStreamOptions? options = null)
    {
        options ??= new PageStreamOptions();
        options.Validate();
        var toDestination = new Pipe(PipeOptionsFor(options));
        var toSource = new Pipe(PipeOptionsFor(options));
        return (new InMemoryConnection(toSource.Reader, toDestination.Writer, options), new InMemoryConnection(toDestination.Reader, toSource.Writer, options));
    }

    internal static PipeOptions PipeOptionsFor(PageStreamOptions options, PipeScheduler? readerScheduler = null) => new(
        pool: SegmentPool.Connections,
        readerScheduler: readerScheduler,
        pauseWriterThreshold: options.PauseWriterThreshold,
        resumeWriterThreshold: options.ResumeWriterThreshold,
        minimumSegmentSize: SegmentPool.BlockSize,
        useSynchronizationContext: false);

    /// <summary>Whether a connection runs TLS, and whether plain text is limited to this host.</summary>
    internal sealed record Security(MigrationTlsOptions? Tls, bool LoopbackOnly)
    {
        /// <summary>TLS applies to TCP only; Unix domain sockets stay plain.</summary>
        public MigrationTlsOptions? TlsFor(Socket socket) => socket.AddressFamily == AddressFamily.Unix ? null : Tls;

        public void CheckPlainAllowed(string address, EndPoint? endPoint)
        {
            if (LoopbackOnly && endPoint is IPEndPoint ip && !IPAddress.IsLoopback(ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address))
            {
                throw new MigrationConnectionException(address, "plain TCP is allowed only on a loopback address: give MigrationTlsOptions, or pass null for them to choose plain text explicitly");
            }
        }
    }

    private sealed class InMemoryConnection(PipeReader input, PipeWriter output, PageStreamOptions options) : IMigrationConnection
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;

        public string RemoteAddress => "memory";

        public PageStreamOptions Options { get; } = options;

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
    /// <summary>Connections the kernel queues before they are accepted.</summary>
    private const int Backlog = 64;

    private readonly Socket _socket;
    private readonly PageStreamOptions _options;
    private readonly MigrationTlsOptions? _tls;
    private readonly string? _unixPath;

    private MigrationListener(Socket socket, string localAddress, PageStreamOptions options, MigrationTlsOptions? tls, string? unixPath)
    {
        _socket = socket;
        LocalAddress = localAddress;
        _options = options;
        _tls = tls;
        _unixPath = unixPath;
    }

    /// <summary>The bound address, with the actual port when port 0 was asked for (<c>tcp:127.0.0.1:40123</c>).</summary>
    public string LocalAddress { get; }

    /// <summary>
    /// Binds and listens in plain text, which is allowed only on a Unix domain socket or a
    /// loopback address; anything else needs the overload that takes <see cref="MigrationTlsOptions"/>.
    /// A Unix socket file is created with mode 0600 (its owner only may connect); a socket already
    /// at the path is replaced, anything else there is refused.
    /// </summary>
    /// <param name="address"><c>tcp:HOST:PORT</c>, <c>HOST:PORT</c> (port 0 picks a free one) or <c>unix:PATH</c>.</param>
    /// <param name="options">Buffering limits for accepted connections.</param>
    /// <exception cref="ArgumentException">The address is malformed.</exception>
    /// <exception cref="MigrationConnectionException">The address cannot be bound or is not loopback, or a file other than a socket is at the Unix path.</exception>
    public static MigrationListener Listen(string address, PageStreamOptions? options = null) =>
        Listen(address, new MigrationConnector.Security(null, LoopbackOnly: true), options);

    /// <summary>
    /// Binds and listens for mutual-TLS connections, or plain ones when <paramref name="tls"/> is
    /// <see langword="null"/> (the caller's explicit choice). Unix domain sockets are always plain,
    /// created with mode 0600.
    /// </summary>
    /// <param name="address"><c>tcp:HOST:PORT</c>, <c>HOST:PORT</c> (port 0 picks a free one) or <c>unix:PATH</c>.</param>
    /// <param name="tls">Certificates and checks for TCP; <see langword="null"/> for plain text.</param>
    /// <param name="options">Buffering limits for accepted connections.</param>
    /// <exception cref="ArgumentException">The address or <paramref name="tls"/> is invalid.</exception>
    /// <exception cref="MigrationConnectionException">The address cannot be bound, or a file other than a socket is at the Unix path.</exception>
    public static MigrationListener Listen(string address, MigrationTlsOptions? tls, PageStreamOptions? options)
    {
        tls?.Validate();
        return Listen(address, new MigrationConnector.Security(tls, LoopbackOnly: false), options);
    }

    private static MigrationListener Listen(string address, MigrationConnector.Security security, PageStreamOptions? options)
    {
        options ??= new PageStreamOptions();
        options.Validate();
        MigrationAddress parsed = MigrationAddress.Parse(address);
        EndPoint endPoint = parsed.EndPoint ?? new IPEndPoint(ResolveForListen(parsed), parsed.Port);
        security.CheckPlainAllowed(parsed.ToString(), endPoint);
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

            // Room for a source and its reconnection behind peers that are slow to speak.
            socket.Listen(Backlog);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            string? folder = parsed.UnixPath is { } path ? Path.GetDirectoryName(Path.GetFullPath(path)) : null;
            throw new MigrationConnectionException(parsed.ToString(), folder is not null && !Directory.Exists(folder)
                ? $"cannot listen: the folder {folder} does not exist"
                : $"cannot listen ({ex.SocketErrorCode}: {ex.Message})", ex);
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
        return new MigrationListener(socket, local, options, endPoint is UnixDomainSocketEndPoint ? null : security.Tls, parsed.UnixPath);
    }

    /// <summary>Whether accepted TCP connections run mutual TLS.</summary>
    public bool IsTls => _tls is not null;

    /// <summary>Waits for one connection and, on a TLS listener, completes its handshake.</summary>
    /// <exception cref="MigrationTlsException">The peer failed the handshake or its certificate was refused; the listener goes on listening.</exception>
    public async Task<IMigrationConnection> AcceptAsync(CancellationToken cancellationToken = default) =>
        await OpenAsync(await AcceptSocketAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);

    /// <summary>Waits for one connection, without its TLS handshake (<see cref="OpenAsync"/>), so a server may run handshakes side by side.</summary>
    internal Task<Socket> AcceptSocketAsync(CancellationToken cancellationToken) => _socket.AcceptAsync(cancellationToken).AsTask();

    /// <summary>Opens an accepted socket as a migration connection: on a TLS listener, its handshake. The socket is disposed if that fails.</summary>
    /// <exception cref="MigrationTlsException">The peer failed the handshake or its certificate was refused.</exception>
    internal async Task<IMigrationConnection> OpenAsync(Socket accepted, CancellationToken cancellationToken)
    {
        string remote = accepted.RemoteEndPoint is IPEndPoint ip ? $"tcp:{FormatHost(ip.Address)}:{ip.Port}" : LocalAddress;
        try
        {
            return await SocketMigrationConnection.OpenAsync(accepted, remote, asServer: true, _tls, _options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            accepted.Dispose();
            throw;
        }
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
            return parsed.First(Dns.GetHostAddresses(parsed.Host!));
        }
        catch (SocketException ex)
        {
            throw parsed.CannotResolve(ex);
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

    /// <summary>Parses <paramref name="address"/>; an exception names it as <paramref name="paramName"/>, the caller's name for it.</summary>
    public static MigrationAddress Parse(string address, string paramName = "address")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(address, paramName);
        if (address.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = address[5..];
            if (path.Length == 0)
            {
                throw new ArgumentException($"'{address}' has no socket path (use unix:/path/to/socket).", paramName);
            }

            return new MigrationAddress(null, 0, path);
        }

        string rest = address.StartsWith("tcp:", StringComparison.Ordinal) ? address[4..] : address;
        int colon = rest.LastIndexOf(':');
        if (colon <= 0 || colon == rest.Length - 1)
        {
            throw new ArgumentException($"'{address}' is not an address (use tcp:HOST:PORT, HOST:PORT or unix:PATH).", paramName);
        }

        string host = rest[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        else if (host.Contains(':') && !IPAddress.TryParse(host, out _))
        {
            // "udp:HOST:PORT", "http://HOST:PORT": a scheme this library does not speak, not a host name.
            throw new ArgumentException($"'{address}' has an unknown scheme '{rest[..rest.IndexOf(':')]}:' (use tcp:HOST:PORT, HOST:PORT or unix:PATH).", paramName);
        }

        if (host.Length == 0)
        {
            throw new ArgumentException($"'{address}' has no host (use tcp:HOST:PORT, HOST:PORT or unix:PATH).", paramName);
        }

        if (!int.TryParse(rest.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            throw new ArgumentException($"'{address}' has an invalid port '{rest[(colon + 1)..]}' (0 to 65535).", paramName);
        }

        return new MigrationAddress(host, port, null);
    }

    public Socket CreateSocket() => UnixPath is not null
        ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        : EndPoint is IPEndPoint ip ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }
        : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    /// <summary>The first of a host name's addresses, the one a connection tries first.</summary>
    public IPAddress First(IPAddress[] found) => found.Length > 0 ? found[0] : throw new MigrationConnectionException(ToString(), "the host name has no address");

    public MigrationConnectionException CannotResolve(SocketException ex) => new(ToString(), $"cannot resolve the host ({ex.Message})", ex);

    /// <summary>Why a connection failed, in the words of the address's kind (a Unix path's missing file reads as "address not available").</summary>
    public MigrationConnectionException CannotConnect(SocketException ex)
    {
        string why = (UnixPath, ex.SocketErrorCode) switch
        {
            ({ } path, _) when !Path.Exists(path) => "no such socket file (no receiver listens there)",
            (not null, SocketError.ConnectionRefused) => "nothing listens on this socket (a file left by a receiver that stopped)",
            (not null, SocketError.AccessDenied) => "permission denied: a receiver's socket is open to its own user only",
            (null, SocketError.ConnectionRefused) => "nothing listens there (connection refused)",
            _ => $"cannot connect ({ex.SocketErrorCode}: {ex.Message})",
        };
        return new MigrationConnectionException(ToString(), why, ex);
    }

    public string Describe(EndPoint? remote) => remote is IPEndPoint ip ? $"tcp:{MigrationListener.FormatHost(ip.Address)}:{ip.Port}" : ToString();

    public override string ToString() => UnixPath is not null ? $"unix:{UnixPath}" : EndPoint is IPEndPoint ip ? $"tcp:{MigrationListener.FormatHost(ip.Address)}:{Port}" : $"tcp:{Host}:{Port}";
}
