using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>
/// One direction of a <see cref="ProxyLink"/>: reads from one socket, finds the frame headers
/// (u32 length, u8 type, u8 flags, u16 reserved) in what it read, fires the faults due at their
/// byte, and forwards the rest to the other socket. Offsets count bytes of this direction's stream.
/// </summary>
internal sealed class ProxyPump
{
    private const int BufferSize = 64 * 1024;
    private const int HeaderSize = MigrationProtocol.FrameHeaderSize;

    private readonly FaultProxy _proxy;
    private readonly ProxyLink _link;
    private readonly int _connection;
    private readonly Direction _direction;
    private readonly Socket _from;
    private readonly Socket _to;
    private readonly CancellationToken _ct;
    private readonly byte[] _buffer = new byte[BufferSize];
    private readonly List<(long Offset, ArmedFault Fault)> _due = [];
    private readonly Queue<(long End, ProxyFrame Frame)> _unfinished = new();

    // _buffer[0] is stream offset _base; it holds [_forwarded, _received).
    private long _base;
    private long _forwarded;
    private long _received;

    // The frame being parsed: its header starts at _frameStart (_headerFill bytes of it read so far); in its payload once the header was read.
    private readonly byte[] _header = new byte[HeaderSize];
    private int _headerFill;
    private long _frameStart;
    private bool _inPayload;
    private long _payloadEnd;
    private byte[] _head = [];
    private long _captured;

    // Bytes still allowed before a cut closes the link; -1 when no cut is armed.
    private long _cutBudget = -1;
    private volatile bool _shut;

    /// <param name="proxy">Counts the bytes and frames, holds the armed triggers.</param>
    /// <param name="link">The connection whose faults apply.</param>
    /// <param name="connection">The connection's index, for the frame records.</param>
    /// <param name="direction">Which way this pump forwards.</param>
    /// <param name="from">The socket read.</param>
    /// <param name="to">The socket written.</param>
    /// <param name="ct">Ends the pump when the proxy is disposed.</param>
    internal ProxyPump(FaultProxy proxy, ProxyLink link, int connection, Direction direction, Socket from, Socket to, CancellationToken ct)
    {
        _proxy = proxy;
        _link = link;
        _connection = connection;
        _direction = direction;
        _from = from;
        _to = to;
        _ct = ct;
    }

    /// <summary>Lets <paramref name="bytes"/> more bytes through, then closes the link.</summary>
    internal void Cut(long bytes)
    {
        Interlocked.Exchange(ref _cutBudget, bytes);
        if (bytes == 0)
        {
            _link.Close();
        }
    }

    /// <summary>Closes this direction: its receiver reads end of stream and nothing more is read from its sender.</summary>
    internal void Shut()
    {
        _shut = true;
        try
        {
            _to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The link is closing anyway.
        }
    }

    internal async Task RunAsync()
    {
        try
        {
            while (true)
            {
                ParseReceived();

                // While a frame trigger is armed, an incomplete header is held back, so a fault due
                // before its frame fires before any of it passes. Otherwise everything read goes
                // on at once: a stream that is not made of frames is forwarded as it comes.
                long safe = _inPayload || !_proxy.WatchesFrames ? _received : _frameStart;
                while (NextDue(safe) is { } due)
                {
                    if (!await ForwardToAsync(due.Offset))
                    {
                        return;
                    }

                    _link.Fire(due.Fault);
                }

                if (!await ForwardToAsync(safe))
                {
                    return;
                }

                Compact();
                int read = await _from.ReceiveAsync(_buffer.AsMemory((int)(_received - _base)), _ct);
                if (_shut)
                {
                    return;
                }

                if (read == 0)
                {
                    // The sender closed its half: pass on what is left and the end of stream.
                    await ForwardToAsync(_received);
                    _to.Shutdown(SocketShutdown.Send);
                    return;
                }

                _received += read;
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException or IOException)
        {
            // A peer or a fault closed the link, or the proxy is disposed: the other direction ends too.
            _link.Close();
        }
    }

    /// <summary>Reads the headers of every frame received so far, schedules the faults they trigger and keeps their payload heads.</summary>
    private void ParseReceived()
    {
        while (true)
        {
            if (!_inPayload)
            {
                // Each parse takes every byte received, so the header's next bytes are still buffered.
                long at = _frameStart + _headerFill;
                int take = (int)Math.Min(HeaderSize - _headerFill, _received - at);
                _buffer.AsSpan((int)(at - _base), take).CopyTo(_header.AsSpan(_headerFill));
                _headerFill += take;
                if (_headerFill < HeaderSize)
                {
                    return;
                }

                _headerFill = 0;
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(_header);
                var type = (FrameType)_header[4];
                _inPayload = true;
                _payloadEnd = _frameStart + HeaderSize + length;
                _captured = _frameStart + HeaderSize;
                _head = new byte[type == FrameType.EncodedPages ? length : Math.Min(length, FaultProxy.HeadBytes)];
                _unfinished.Enqueue((_payloadEnd, new ProxyFrame(_connection, type, length, _frameStart, _head)));
                _due.AddRange(_proxy.OnFrame(_direction, type, length, _frameStart));
            }

            long headEnd = _frameStart + HeaderSize + _head.Length;
            long upTo = Math.Min(_received, headEnd);
            if (_captured < upTo)
            {
                _buffer.AsSpan((int)(_captured - _base), (int)(upTo - _captured)).CopyTo(_head.AsSpan((int)(_captured - _frameStart - HeaderSize)));
                _captured = upTo;
            }

            if (_received < _payloadEnd)
            {
                return;
            }

            _frameStart = _payloadEnd;
            _inPayload = false;
        }
    }

    private (long Offset, ArmedFault Fault)? NextDue(long safe)
    {
        int best = -1;
        for (int i = 0; i < _due.Count; i++)
        {
            if (_due[i].Offset <= safe && (best < 0 || _due[i].Offset < _due[best].Offset))
            {
                best = i;
            }
        }

        if (best < 0)
        {
            return null;
        }

        (long, ArmedFault) due = _due[best];
        _due.RemoveAt(best);
        return due;
    }

    /// <summary>Forwards up to stream offset <paramref name="offset"/>; false when this direction may forward no more.</summary>
    private async Task<bool> ForwardToAsync(long offset)
    {
        while (_forwarded < offset)
        {
            if (_shut)
            {
                return false;
            }

            if (_link.BlackHoled)
            {
                // Silent, with the sockets open, until the proxy closes the link.
                await _link.Closed.WaitAsync(_ct);
                return false;
            }

            int count = (int)(offset - _forwarded);
            long budget = Interlocked.Read(ref _cutBudget);
            if (budget >= 0)
            {
                count = (int)Math.Min(count, budget);
            }

            if (count > 0)
            {
                if (_link.Latency is { Ticks: > 0 } latency)
                {
                    await Task.Delay(latency, _ct);
                }

                await SendAsync(_buffer.AsMemory((int)(_forwarded - _base), count));
                _forwarded += count;
                _proxy.CountForwarded(_direction, count);
                RecordWholeFrames();
                if (budget >= 0)
                {
                    budget = Interlocked.Add(ref _cutBudget, -count);
                }
            }

            if (budget == 0)
            {
                _link.Close();
                return false;
            }
        }

        return !_shut;
    }

    private async Task SendAsync(ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int sent = await _to.SendAsync(data, _ct);
            data = data[sent..];
        }
    }

    private void RecordWholeFrames()
    {
        while (_unfinished.TryPeek(out (long End, ProxyFrame Frame) next) && next.End <= _forwarded)
        {
            _proxy.RecordFrame(_direction, _unfinished.Dequeue().Frame);
        }
    }

    /// <summary>Moves what is not forwarded yet (at most an incomplete header held back) to the front of the buffer.</summary>
    private void Compact()
    {
        int kept = (int)(_received - _forwarded);
        _buffer.AsSpan((int)(_forwarded - _base), kept).CopyTo(_buffer);
        _base = _forwarded;
    }
}
