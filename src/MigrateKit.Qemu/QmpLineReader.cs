using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.Qemu;

/// <summary>
/// Splits QMP's byte stream into messages. QMP frames each JSON message as one line:
/// <code>
/// +---------------------------------+------+
/// | JSON object (UTF-8, no newline) | \r\n |   (QEMU sends CRLF; a bare LF is accepted too)
/// +---------------------------------+------+
/// </code>
/// A line longer than <see cref="MaxLineBytes"/> is a protocol error rather than a reason to
/// buffer without bound.
/// </summary>
internal sealed class QmpLineReader
{
    /// <summary>The longest line accepted: 16 MiB, far above any QMP reply MigrateKit asks for.</summary>
    public const int MaxLineBytes = 16 << 20;

    private readonly Stream _stream;
    private readonly int _maxLineBytes;
    private byte[] _buffer = new byte[8192];
    private int _start;
    private int _end;

    public QmpLineReader(Stream stream, int maxLineBytes = MaxLineBytes)
    {
        _stream = stream;
        _maxLineBytes = maxLineBytes;
    }

    /// <summary>
    /// Returns the next line without its terminator (a copy the caller owns), or
    /// <see langword="null"/> when the peer closed the stream at a line boundary.
    /// </summary>
    /// <exception cref="IOException">The stream ended in the middle of a line.</exception>
    /// <exception cref="QmpException">A line is longer than the maximum.</exception>
    public async ValueTask<byte[]?> ReadLineAsync(CancellationToken ct)
    {
        int scanned = _start;
        while (true)
        {
            int newline = Array.IndexOf(_buffer, (byte)'\n', scanned, _end - scanned);
            if (newline >= 0)
            {
                int length = newline - _start;
                if (length > 0 && _buffer[newline - 1] == (byte)'\r')
                {
                    length--;
                }

                byte[] line = _buffer.AsSpan(_start, length).ToArray();
                _start = newline + 1;
                return line;
            }

            scanned = _end;
            if (_end - _start > _maxLineBytes)
            {
                throw new QmpException($"a QMP message is longer than {_maxLineBytes} bytes without a line end");
            }

            if (_end == _buffer.Length)
            {
                int pending = _end - _start;
                byte[] target = pending * 2 > _buffer.Length ? new byte[_buffer.Length * 2] : _buffer;
                Buffer.BlockCopy(_buffer, _start, target, 0, pending);
                _buffer = target;
                scanned -= _start;
                _start = 0;
                _end = pending;
            }

            int read = await _stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (read == 0)
            {
                if (_end == _start)
                {
                    return null;
                }

                throw new IOException($"the QMP stream ended in the middle of a message ({_end - _start} bytes without a line end)");
            }

            _end += read;
        }
    }
}
