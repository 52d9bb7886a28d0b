using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.Qemu;

/// <summary>
/// A client for QEMU's QMP monitor over a Unix socket.
/// </summary>
/// <remarks>
/// <para>
/// QMP sends one JSON object per line. After connecting, QEMU sends a greeting; the client answers
/// with <c>qmp_capabilities</c> and may then run commands. Each command carries an <c>id</c> that
/// QEMU echoes in its reply, which is either a <c>return</c> or an <c>error</c>; asynchronous
/// <c>event</c> messages may arrive between them:
/// </para>
/// <code>
/// QEMU → {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}
///      ← {"execute": "qmp_capabilities", "id": 1}
/// QEMU → {"return": {}, "id": 1}
///      ← {"execute": "stop", "id": 2}
/// QEMU → {"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "STOP"}
/// QEMU → {"return": {}, "id": 2}
///      ← {"execute": "x", "id": 3}
/// QEMU → {"error": {"class": "CommandNotFound", "desc": "The command x has not been found"}, "id": 3}
/// </code>
/// <para>
/// One background loop reads the socket: replies complete the matching call, events go to
/// <see cref="Events"/>. A message that is not valid QMP, or the end of the connection, fails
/// every pending and later call (<see cref="QmpException"/> or <see cref="IOException"/>).
/// </para>
/// </remarks>
public sealed class QmpClient : IAsyncDisposable
{
    /// <summary>How many unread events are kept; older ones are dropped beyond this.</summary>
    public const int EventCapacity = 1024;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly QmpLineReader _reader;
    private readonly string _socketPath;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly QmpDispatcher _dispatcher;
    private readonly CancellationTokenSource _stop = new();
    private Task _readLoop = Task.CompletedTask;
    private long _nextId;
    private int _disposed;

    private QmpClient(Socket socket, string socketPath)
    {
        _socket = socket;
        _socketPath = socketPath;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new QmpLineReader(_stream);
        _dispatcher = new QmpDispatcher(socketPath, EventCapacity);
    }

    /// <summary>The QEMU version from the greeting.</summary>
    public Version QemuVersion { get; private set; } = new(0, 0, 0);

    /// <summary>The package string from the greeting (a distribution's build tag; often empty).</summary>
    public string QemuPackage { get; private set; } = string.Empty;

    /// <summary>The capabilities QEMU offered in the greeting (such as <c>oob</c>); none are enabled.</summary>
    public IReadOnlyList<string> OfferedCapabilities { get; private set; } = [];

    /// <summary>The Unix socket this client is connected to.</summary>
    public string SocketPath => _socketPath;

    /// <summary>
    /// The asynchronous events QEMU sent, in order. The sequence ends when the connection ends.
    /// At most <see cref="EventCapacity"/> unread events are kept; older ones are dropped.
    /// </summary>
    public IAsyncEnumerable<QmpEvent> Events => _dispatcher.Events.ReadAllAsync();

    /// <summary>
    /// Connects to a QMP socket, reads the greeting and negotiates capabilities.
    /// </summary>
    /// <param name="unixSocketPath">The path of QEMU's <c>-qmp unix:PATH,server=on</c> socket.</param>
    /// <param name="timeout">How long connecting, the greeting and <c>qmp_capabilities</c> may take together.</param>
    /// <param name="ct">Cancels the connection attempt.</param>
    /// <returns>A client ready for commands.</returns>
    /// <exception cref="ArgumentException">The path is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is not positive.</exception>
    /// <exception cref="TimeoutException">QEMU did not complete the handshake in time.</exception>
    /// <exception cref="IOException">The socket could not be reached or closed during the handshake.</exception>
    /// <exception cref="QmpException">The greeting or the capabilities reply is not valid QMP.</exception>
    public static async Task<QmpClient> ConnectAsync(string unixSocketPath, TimeSpan timeout, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(unixSocketPath);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        QmpClient? client = null;
        try
        {
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(unixSocketPath), deadline.Token).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                throw new IOException($"cannot connect to the QMP socket {unixSocketPath}: {e.Message}", e);
            }

            client = new QmpClient(socket, unixSocketPath);
            byte[] greeting = await client._reader.ReadLineAsync(deadline.Token).ConfigureAwait(false)
                ?? throw new IOException($"QEMU closed the QMP socket {unixSocketPath} before its greeting");
            client.Greet(QmpMessage.ParseGreeting(greeting, unixSocketPath));
            client._readLoop = Task.Run(client.ReadLoopAsync, CancellationToken.None);
            await client.ExecuteAsync("qmp_capabilities", null, deadline.Token).ConfigureAwait(false);
            return client;
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            await DisposeQuietlyAsync(client, socket).ConfigureAwait(false);
            throw new TimeoutException($"QEMU did not complete the QMP handshake on {unixSocketPath} within {timeout.TotalSeconds:0.###} s", e);
        }
        catch
        {
            await DisposeQuietlyAsync(client, socket).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Runs a QMP command and returns its <c>return</c> value.
    /// </summary>
    /// <param name="command">The command name, such as <c>query-status</c>.</param>
    /// <param name="arguments">The command's arguments, serialised with System.Text.Json (use a dictionary for dashed names); <see langword="null"/> for none.</param>
    /// <param name="ct">Stops waiting for the reply (the command may still run in QEMU).</param>
    /// <returns>The <c>return</c> value (an independent clone).</returns>
    /// <exception cref="QmpException">QEMU answered with an error, or sent something that is not valid QMP.</exception>
    /// <exception cref="IOException">The connection to QEMU ended.</exception>
    /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
    public async Task<JsonElement> ExecuteAsync(string command, object? arguments = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(command);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        long id = Interlocked.Increment(ref _nextId);
        byte[] message = QmpCommand.Encode(command, arguments, id);
        TaskCompletionSource<JsonElement> reply = _dispatcher.Expect(id, command);

        try
        {
            await _writeLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await _stream.WriteAsync(message, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                _dispatcher.Fault(new IOException($"cannot write to the QMP socket {_socketPath}: {e.Message}", e));
            }
            finally
            {
                _writeLock.Release();
            }

            return await reply.Task.WaitAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _dispatcher.Forget(id);
        }
    }

    /// <summary>Sets migration capabilities (<c>migrate-set-capabilities</c>), such as <c>auto-converge</c> or <c>postcopy-ram</c>.</summary>
    /// <param name="capabilities">Capability names and their states.</param>
    /// <param name="ct">Stops waiting for the reply.</param>
    /// <returns>A task that completes when QEMU accepted the capabilities.</returns>
    public Task SetMigrationCapabilitiesAsync(IReadOnlyDictionary<string, bool> capabilities, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(capabilities);
        return ExecuteAsync("migrate-set-capabilities", QmpCommand.Capabilities(capabilities), ct);
    }

    /// <summary>Sets migration parameters (<c>migrate-set-parameters</c>); parameters left <see langword="null"/> are not sent.</summary>
    /// <param name="parameters">The parameters to set.</param>
    /// <param name="ct">Stops waiting for the reply.</param>
    /// <returns>A task that completes when QEMU accepted the parameters.</returns>
    public Task SetMigrationParametersAsync(MigrationParameters parameters, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return ExecuteAsync("migrate-set-parameters", QmpCommand.Parameters(parameters), ct);
    }

    /// <summary>Starts an outgoing migration (<c>migrate</c>); it runs in the background, followed with <see cref="QueryMigrateAsync"/>.</summary>
    /// <param name="uri">The destination, such as <c>tcp:127.0.0.1:4444</c>.</param>
    /// <param name="ct">Stops waiting for the reply.</param>
    /// <returns>A task that completes when QEMU started the migration.</returns>
    public Task MigrateAsync(string uri, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        return ExecuteAsync("migrate", new Dictionary<string, object> { ["uri"] = uri }, ct);
    }

    /// <summary>Asks for the state of the current or last migration (<c>query-migrate</c>).</summary>
    /// <remarks>
    /// QEMU's migration thread sets the status to <c>completed</c> before the main loop computes
    /// the migration's <c>total-time</c> and <c>downtime</c>; a query in between reads both as 0.
    /// A completed status without its total time is asked for again, every few milliseconds for
    /// up to <see cref="CompletedFiguresWait"/>, so that a completed status carries its figures.
    /// </remarks>
    /// <param name="ct">Stops waiting for the reply.</param>
    /// <returns>The status, with the fields QEMU reported for it.</returns>
    public async Task<QemuMigrationStatus> QueryMigrateAsync(CancellationToken ct = default)
    {
        QemuMigrationStatus status = QemuMigrationStatus.Parse(await ExecuteAsync("query-migrate", null, ct).ConfigureAwait(false));
        long start = Stopwatch.GetTimestamp();
        while (status.Status == "completed" && (status.TotalTimeMilliseconds ?? 0) == 0 && Stopwatch.GetElapsedTime(start) < CompletedFiguresWait)
        {
            await Task.Delay(CompletedFiguresPoll, ct).ConfigureAwait(false);
            status = QemuMigrationStatus.Parse(await ExecuteAsync("query-migrate", null, ct).ConfigureAwait(false));
        }

        return status;
    }

    /// <summary>How long <see cref="QueryMigrateAsync"/> waits for a completed migration's total time and downtime.</summary>
    public static readonly TimeSpan CompletedFiguresWait = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan CompletedFiguresPoll = TimeSpan.FromMilliseconds(5);

    /// <summary>Asks for the run state (<c>query-status</c>).</summary>
    /// <param name="ct">Stops waiting for the reply.</param>
    /// <returns>The state, such as <c>running</c>, <c>paused</c>, <c>inmigrate</c> or <c>postmigrate</c>.</returns>
    public async Task<QemuRunState> QueryStatusAsync(CancellationToken ct = default)
    {
        JsonElement result = await ExecuteAsync("query-status", null, ct).ConfigureAwait(false);
        if (result.ValueKind != JsonValueKind.Object
            || Json.String(result, "status") is not string status
            || !result.TryGetProperty("running", out JsonElement running)
            || running.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            throw new QmpException($"query-status returned an unexpected value: {result.GetRawText()}");
        }

        return new QemuRunState(status, running.GetBoolean());
    }

    /// <summary>Pauses the guest's vCPUs (<c>stop</c>).</summary>
    /// <param name="ct">Stops waiting for the reply.</param>
    /// <returns>A task that completes when the guest is paused.</returns>
    public Task StopAsync(CancellationToken ct = default) => ExecuteAsync("stop", null, ct);

    /// <summary>Resumes the guest's vCPUs (<c>cont</c>).</summary>
    /// <param name="ct">Stops waiting for the reply.</param>
    /// <returns>A task that completes when the guest runs.</returns>
    public Task ContAsync(CancellationToken ct = default) => ExecuteAsync("cont", null, ct);

    /// <summary>Cancels the outgoing migration (<c>migrate_cancel</c>).</summary>
    /// <param name="ct">Stops waiting for the reply.</param>
    /// <returns>A task that completes when QEMU accepted the cancellation.</returns>
    public Task MigrateCancelAsync(CancellationToken ct = default) => ExecuteAsync("migrate_cancel", null, ct);

    /// <summary>Closes the connection; pending calls fail with <see cref="IOException"/>.</summary>
    /// <returns>A task that completes when the read loop has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _dispatcher.Fault(new IOException($"the QMP client for {_socketPath} was disposed"));
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already disconnected.
        }

        _socket.Dispose();
        try
        {
            await _readLoop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or SocketException)
        {
            // The loop ends with whatever closing the socket made it see.
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
        _writeLock.Dispose();
    }

    private static async ValueTask DisposeQuietlyAsync(QmpClient? client, Socket socket)
    {
        if (client is not null)
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }
        else
        {
            socket.Dispose();
        }
    }

    private void Greet(QmpGreeting greeting)
    {
        QemuVersion = greeting.Version;
        QemuPackage = greeting.Package;
        OfferedCapabilities = greeting.Capabilities;
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                byte[]? line = await _reader.ReadLineAsync(_stop.Token).ConfigureAwait(false);
                if (line is null)
                {
                    _dispatcher.Fault(new IOException($"QEMU closed the QMP socket {_socketPath}"));
                    return;
                }

                if (line.AsSpan().Trim(" \t"u8).IsEmpty)
                {
                    continue;
                }

                _dispatcher.Dispatch(line);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposed.
        }
        catch (QmpException e)
        {
            _dispatcher.Fault(e);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            _dispatcher.Fault(new IOException($"the QMP connection to {_socketPath} failed: {e.Message}", e));
        }
#pragma warning disable CA1031 // Any other failure must still fail the pending calls rather than leave them waiting.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _dispatcher.Fault(new QmpException($"reading QMP messages from {_socketPath} failed: {e.Message}", e));
        }
        finally
        {
            _dispatcher.CompleteEvents();
        }
    }
}
