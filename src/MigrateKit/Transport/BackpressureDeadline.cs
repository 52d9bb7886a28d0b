using System;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.Transport;

/// <summary>
/// Bounds a <see cref="PageStreamWriter"/>'s waits for its connection to take data (backpressure):
/// when the connection makes no progress for <see cref="Limit"/>, the pending flush is cancelled
/// and the wait ends in a <see cref="TimeoutException"/>. Progress is the connection's count of
/// bytes handed to its socket where it keeps one (a slow link that still moves is not stalled);
/// otherwise only the end of the wait counts. The bandwidth limit's pacing is never watched: it
/// runs before the flush, and only the flush's wait is.
/// </summary>
internal sealed class BackpressureDeadline : IDisposable
{
    private readonly PipeWriter _output;
    private readonly TimeProvider _time;
    private readonly Func<long>? _sentBytes;
    private readonly TimeSpan _check;
    private readonly object _lock = new();
    private ITimer? _timer;
    private long _mark;
    private long _lastProgress;
    private bool _waiting;
    private bool _stalled;
    private bool _strayCancel;

    /// <param name="output">The writer whose pending flush a stall cancels.</param>
    /// <param name="timeout">How long the connection may take no data; positive.</param>
    /// <param name="time">The clock of the deadline.</param>
    /// <param name="sentBytes">The connection's running count of bytes sent, or <see langword="null"/> when it keeps none.</param>
    internal BackpressureDeadline(PipeWriter output, TimeSpan timeout, TimeProvider time, Func<long>? sentBytes)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        _output = output;
        _time = time;
        _sentBytes = sentBytes;
        Limit = timeout;

        // Looking four times per timeout finds a stall within 1.25 timeouts of the last progress.
        _check = TimeSpan.FromTicks(Math.Max((sentBytes is null ? timeout : timeout / 4).Ticks, TimeSpan.TicksPerMillisecond));
    }

    /// <summary>How long the connection may take no data before a flush gives up.</summary>
    internal TimeSpan Limit { get; }

    /// <summary>
    /// Awaits <paramref name="flushing"/>, a flush that did not complete at once; throws a
    /// <see cref="TimeoutException"/> when the connection took no data for <see cref="Limit"/>.
    /// </summary>
    internal async ValueTask<FlushResult> WaitAsync(ValueTask<FlushResult> flushing)
    {
        lock (_lock)
        {
            _timer ??= _time.CreateTimer(static state => ((BackpressureDeadline)state!).Check(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _mark = _sentBytes?.Invoke() ?? 0;
            _lastProgress = _time.GetTimestamp();
            _stalled = false;
            _waiting = true;
            _timer.Change(_check, _check);
        }

        bool stalled;
        FlushResult result;
        try
        {
            result = await flushing.ConfigureAwait(false);
        }
        finally
        {
            lock (_lock)
            {
                _waiting = false;
                _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                stalled = _stalled;

                // A cancellation that no result observed stays pending on the pipe for the next flush.
                _strayCancel |= stalled;
            }
        }

        if (stalled && result.IsCanceled)
        {
            TakeStrayCancel();
            throw new TimeoutException($"The connection took no data for {Limit.TotalSeconds:0.###} s.");
        }

        return result;
    }

    /// <summary>
    /// Whether a cancelled flush result comes from a stall cancellation that landed after its wait
    /// had ended (the flush is then simply repeated); consumes the mark.
    /// </summary>
    internal bool TakeStrayCancel()
    {
        lock (_lock)
        {
            bool stray = _strayCancel;
            _strayCancel = false;
            return stray;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            _timer?.Dispose();
            _timer = null;
        }
    }

    private void Check()
    {
        lock (_lock)
        {
            if (!_waiting)
            {
                return;
            }

            long now = _time.GetTimestamp();
            long sent = _sentBytes?.Invoke() ?? _mark;
            if (sent != _mark)
            {
                _mark = sent;
                _lastProgress = now;
                return;
            }

            if (_time.GetElapsedTime(_lastProgress, now) < Limit)
            {
                return;
            }

            _stalled = true;
            _waiting = false;
            _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _output.CancelPendingFlush();
        }
    }
}
