using System;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.Transport;

/// <summary>
/// The socket under an <see cref="System.Net.Security.SslStream"/>. TLS writes each 16 KiB record
/// separately; once <see cref="Coalesce"/> is set (after the handshake) writes gather in a buffer
/// that goes out in one send when full or on <see cref="FlushAsync(CancellationToken)"/>, so a
/// megabyte of pages costs a few sends rather than 64. Reads and writes may run concurrently (one
/// of each), as <see cref="System.Net.Security.SslStream"/> allows; they share no state.
/// </summary>
internal sealed class CoalescingSocketStream(Socket socket) : Stream
{
    private const int BufferSize = 256 * 1024;
    private byte[]? _pending;
    private int _used;

    /// <summary>Whether writes are gathered until a flush; off during the handshake, whose messages must go out at once.</summary>
    public bool Coalesce { get; set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => socket.Receive(buffer, offset, count, SocketFlags.None);

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Coalesce)
        {
            await SendAllAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        _pending ??= new byte[BufferSize];
        while (!buffer.IsEmpty)
        {
            int take = Math.Min(buffer.Length, BufferSize - _used);
            buffer[..take].CopyTo(_pending.AsMemory(_used));
            _used += take;
            buffer = buffer[take..];
            if (_used == BufferSize)
            {
                await FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_used > 0)
        {
            int used = _used;
            _used = 0;
            await SendAllAsync(_pending.AsMemory(0, used), cancellationToken).ConfigureAwait(false);
        }
    }

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            int sent = await socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[sent..];
        }
    }
}
