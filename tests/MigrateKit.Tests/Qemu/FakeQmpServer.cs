using System;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.Tests.Qemu;

/// <summary>A scripted QMP peer on a Unix socket in a temporary directory: one connection at a time.</summary>
internal sealed class FakeQmpServer : IAsyncDisposable
{
    public const string Greeting = """{"QMP": {"version": {"qemu": {"micro": 1, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}""";

    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);
    private readonly string _directory;
    private readonly Socket _listener;
    private Socket? _peer;
    private StreamReader? _reader;
    private Stream? _stream;

    public FakeQmpServer()
    {
        _directory = Directory.CreateTempSubdirectory("mk-qmp-").FullName;
        SocketPath = Path.Combine(_directory, "qmp.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(1);
    }

    public string SocketPath { get; }

    public async Task AcceptAsync()
    {
        _peer = await _listener.AcceptAsync().WaitAsync(Limit);
        _stream = new NetworkStream(_peer, ownsSocket: false);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    public Task SendAsync(string line) => SendRawAsync(Encoding.UTF8.GetBytes(line + "\r\n"));

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream!.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>Reads the client's next command and returns it parsed.</summary>
    public async Task<JsonElement> ReceiveAsync()
    {
        string line = await _reader!.ReadLineAsync().WaitAsync(Limit) ?? throw new EndOfStreamException("the client closed the socket");
        using JsonDocument document = JsonDocument.Parse(line);
        return document.RootElement.Clone();
    }

    /// <summary>Reads a command, checks its name and returns its id.</summary>
    public async Task<long> ExpectAsync(string command)
    {
        JsonElement message = await ReceiveAsync();
        if (message.GetProperty("execute").GetString() != command)
        {
            throw new InvalidOperationException($"expected {command}, got {message.GetRawText()}");
        }

        return message.GetProperty("id").GetInt64();
    }

    public Task ReplyAsync(long id, string result = "{}") => SendAsync($$"""{"return": {{result}}, "id": {{id}}}""");

    /// <summary>Accepts a client, greets it and answers qmp_capabilities.</summary>
    public async Task HandshakeAsync()
    {
        await AcceptAsync();
        await SendAsync(Greeting);
        await ReplyAsync(await ExpectAsync("qmp_capabilities"));
    }

    public void Disconnect()
    {
        _peer?.Shutdown(SocketShutdown.Both);
        _peer?.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        _reader?.Dispose();
        if (_stream is not null)
        {
            await _stream.DisposeAsync();
        }

        _peer?.Dispose();
        _listener.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
