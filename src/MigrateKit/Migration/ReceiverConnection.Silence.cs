using System;
using System.Threading;

namespace MigrateKit.Migration;

/// <summary>How long a connection may stay silent: the handshake timeout until the Hello, the idle timeout after it.</summary>
internal sealed partial class ReceiverConnection
{
    private readonly CancellationTokenSource _silence = new();
    private readonly ITimer _silenceTimer;
    private long _heard;

    // Restarts the silence timer for the next step: the handshake timeout until the first frame, the idle timeout after it.
    private void Watch()
    {
        Volatile.Write(ref _heard, _reader.BytesArrived);
        _silenceTimer.Change(_session is null ? _options.HandshakeTimeout : _options.IdleTimeout, Timeout.InfiniteTimeSpan);
    }

    // After the Hello, silence is no bytes at all: a frame of a MiB on a link of a few KiB/s takes minutes to arrive whole.
    private void OnSilence()
    {
        long arrived = _reader.BytesArrived;
        if (_session is not null && arrived != Interlocked.Exchange(ref _heard, arrived))
        {
            _silenceTimer.Change(_options.IdleTimeout, Timeout.InfiniteTimeSpan);
            return;
        }

        try
        {
            _silence.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The connection ended while the timer fired.
        }
    }

    private TimeoutException SilenceTimeout() => new(_session is null
        ? $"No Hello arrived within {_options.HandshakeTimeout.TotalSeconds:0.###} s of the connection."
        : $"The source sent nothing for {_options.IdleTimeout.TotalSeconds:0.###} s.");
}
