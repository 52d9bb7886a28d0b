using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// What the source hears from the destination on one connection: reads its frames in a loop,
/// hands out its HelloAck, RoundAcks, Ready and final Ack to whoever waits (each within the
/// response timeout), and
/// turns an error frame, a hang-up or a broken stream into one failure that ends every wait and
/// cancels the engine's work. Answers out of turn are protocol violations that fail the
/// migration: a HelloAck other than the first frame, a RoundAck for a round whose RoundEnd was
/// not sent or that was acknowledged already, a Ready before Complete or an Ack before Commit.
/// </summary>
internal sealed class DestinationChannel : IPageStreamHandler
{
    private readonly PageStreamReader _reader;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly Func<MigrationPhase> _phase;
    private readonly TaskCompletionSource<HelloAck> _helloAck = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<CompletionAck> _ack = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<DestinationReady> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _roundAcks = new();
    private TaskCompletionSource<bool>? _roundAcked;
    private int _awaitedRound;
    private int _lastRoundAcked = -1;
    private int _lastRoundEnded = -1;
    private int _helloAcks;
    private volatile bool _refused;
    private volatile bool _completeSent;
    private volatile bool _commitSent;
    private volatile bool _released;
    private Exception? _failure;
    private CancellationTokenSource? _work;
    private static int _rehearsed;

    /// <param name="reader">The destination's frames.</param>
    /// <param name="options">The response timeout and the clock it runs on.</param>
    /// <param name="phase">The engine's phase, named in the failures.</param>
    internal DestinationChannel(PageStreamReader reader, MigrationOptions options, Func<MigrationPhase> phase)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(phase);
        _reader = reader;
        _timeout = options.ResponseTimeout;
        _time = options.TimeProvider;
        _phase = phase;
    }

    /// <summary>
    /// Waits for a Ready and an Ack once on a throwaway channel (once per process): the waits'
    /// async machinery over those frames compiles on first use, which would otherwise happen in
    /// the downtime, between the destination's Ready and the Commit it waits for.
    /// </summary>
    internal static void Rehearse(MigrationOptions options)
    {
        if (Interlocked.Exchange(ref _rehearsed, 1) != 0)
        {
            return;
        }

        var pipe = new Pipe();
        var channel = new DestinationChannel(new PageStreamReader(pipe.Reader), options, () => MigrationPhase.Switchover);
        IPageStreamHandler handler = channel;
        channel.MarkCompleteSent();
        Task<DestinationReady> ready = channel.WaitForReadyAsync(CancellationToken.None);
        handler.OnReady(new DestinationReady(TimeSpan.Zero));
        ready.GetAwaiter().GetResult();
        channel.MarkCommitSent();
        Task<CompletionAck> ack = channel.WaitForCompletionAckAsync(CancellationToken.None);
        handler.OnAck(new CompletionAck(TimeSpan.Zero));
        ack.GetAwaiter().GetResult();
        pipe.Writer.Complete();
        pipe.Reader.Complete();
    }

    /// <summary>The destination acknowledged the switchover: it runs the VM.</summary>
    internal bool Acknowledged => _ack.Task.IsCompletedSuccessfully;

    /// <summary>Why the destination was lost (its error, its hang-up, a broken stream); null while it is not.</summary>
    internal Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>
    /// Whether the destination may be running the VM: it acknowledged, or Commit was sent and it
    /// has neither refused nor been found to have released the VM. Before Commit the destination
    /// never starts it, whatever happens to the link.
    /// </summary>
    internal bool MayRunTheVm => Acknowledged || (_commitSent && !_refused && !_released);

    /// <summary>Commit was sent: the outcome is the destination's from here.</summary>
    internal bool CommitSent => _commitSent;

    /// <summary>Complete is on its way: from here a Ready is expected.</summary>
    internal void MarkCompleteSent() => _completeSent = true;

    /// <summary>Commit is on its way (called before it is flushed): from here the destination may start the VM.</summary>
    internal void MarkCommitSent() => _commitSent = true;

    /// <summary>A Query found the destination never ran the VM and released it: the source may resume.</summary>
    internal void MarkReleased() => _released = true;

    /// <summary>RoundEnd of <paramref name="round"/> is on its way (called before it is flushed): from here its RoundAck is expected.</summary>
    internal void MarkRoundEndSent(int round)
    {
        lock (_roundAcks)
        {
            _lastRoundEnded = Math.Max(_lastRoundEnded, round);
        }
    }

    /// <summary>Reads the destination's frames until the stream ends or <paramref name="ct"/> is cancelled; a failure cancels <paramref name="work"/>.</summary>
    internal Task StartReading(CancellationTokenSource work, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(work);
        _work = work;
        return Task.Run(() => ReadLoopAsync(ct), CancellationToken.None);
    }

    /// <summary>Whether this link carried the Ack and speaks version 3 or later, where the source answers it with Done.</summary>
    internal bool OwesDone => _ack.Task.IsCompletedSuccessfully && _helloAck.Task.IsCompletedSuccessfully && _helloAck.Task.Result.Version >= 3;

    internal Task<HelloAck> WaitForHelloAckAsync(CancellationToken ct) => WaitAsync(_helloAck.Task, "HelloAck", ct);

    internal Task<DestinationReady> WaitForReadyAsync(CancellationToken ct) => WaitAsync(_ready.Task, "Ready", ct);

    internal Task<CompletionAck> WaitForCompletionAckAsync(CancellationToken ct) => WaitAsync(_ack.Task, "the final Ack", ct);

    /// <summary>Waits until the destination has applied <paramref name="round"/>; returns false at once if it already has.</summary>
    internal async Task<bool> WaitForRoundAckAsync(int round, CancellationToken ct)
    {
        Task<bool> waiting;
        lock (_roundAcks)
        {
            if (_lastRoundAcked >= round)
            {
                return false;
            }

            _awaitedRound = round;
            _roundAcked = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            waiting = _roundAcked.Task;
        }

        await WaitAsync(waiting, $"RoundAck of round {round}", ct).ConfigureAwait(false);
        return true;
    }

    private async Task<T> WaitAsync<T>(Task<T> task, string what, CancellationToken ct)
    {
        try
        {
            return await task.WaitAsync(_timeout, _time, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (task.IsCompletedSuccessfully)
        {
            // The answer arrived just as the read loop saw the stream end and cancelled the work.
            return task.Result;
        }
        catch (TimeoutException ex)
        {
            // A silent destination and a black-holed link look alike: the inner TimeoutException marks it as the link's failure.
            throw new MigrationException(_phase(), $"the destination sent no {what} within {_timeout.TotalSeconds:F0} s", ex);
        }
    }

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        try
        {
            while (await _reader.ReadAsync(this, ct).ConfigureAwait(false))
            {
            }

            if (Acknowledged)
            {
                // The destination hung up after its final Ack: the normal end.
                return;
            }

            Fail(new MigrationException(_phase(), "the destination closed the connection", new EndOfStreamException("The destination closed the connection.")));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The run is over; nothing to report.
        }
        catch (Exception ex)
        {
            if (Acknowledged)
            {
                // The migration is complete; what the connection does afterwards does not matter.
                return;
            }

            Fail(ex is MigrationException ? ex : new MigrationException(_phase(), $"reading from the destination failed: {ex.Message}", ex));
        }
    }

    private void Fail(Exception ex)
    {
        if (Interlocked.CompareExchange(ref _failure, ex, null) is null)
        {
            _helloAck.TrySetException(ex);
            _ready.TrySetException(ex);
            _ack.TrySetException(ex);
            try
            {
                _work?.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The run is over.
            }
        }
    }

    void IPageStreamHandler.OnHelloAck(HelloAck ack)
    {
        // The reader already insists on it coming first; this refuses a second one.
        if (Interlocked.Increment(ref _helloAcks) != 1)
        {
            throw new MigrationProtocolException("HelloAck", "type", "A second HelloAck arrived; the destination sends exactly one, first.");
        }

        _helloAck.TrySetResult(ack);
    }

    void IPageStreamHandler.OnRoundAck(int round)
    {
        lock (_roundAcks)
        {
            if (round > _lastRoundEnded)
            {
                throw new MigrationProtocolException("RoundAck", "round", $"RoundAck of round {round} arrived, but the last RoundEnd sent was of round {_lastRoundEnded}.");
            }

            if (round <= _lastRoundAcked)
            {
                throw new MigrationProtocolException("RoundAck", "round", $"RoundAck of round {round} arrived, but round {_lastRoundAcked} was acknowledged already.");
            }

            _lastRoundAcked = round;
            if (_lastRoundAcked >= _awaitedRound)
            {
                _roundAcked?.TrySetResult(true);
            }
        }
    }

    void IPageStreamHandler.OnReady(DestinationReady ready)
    {
        if (!_completeSent)
        {
            throw new MigrationProtocolException("Ready", "type", "A Ready arrived before Complete was sent.");
        }

        if (!_ready.TrySetResult(ready))
        {
            throw new MigrationProtocolException("Ready", "type", "A second Ready arrived.");
        }
    }

    void IPageStreamHandler.OnAck(CompletionAck ack)
    {
        if (!_commitSent)
        {
            throw new MigrationProtocolException("Ack", "type", "An Ack arrived before Commit was sent.");
        }

        if (!_ack.TrySetResult(ack))
        {
            throw new MigrationProtocolException("Ack", "type", "A second Ack arrived.");
        }
    }

    void IPageStreamHandler.OnError(MigrationError error)
    {
        _refused = true;
        var refused = new DestinationRefusedException(error);
        Fail(new MigrationException(_phase(), refused.Message, refused));
    }

    void IPageStreamHandler.OnHello(MigrationHello hello) => throw Unexpected("Hello");

    void IPageStreamHandler.OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data) => throw Unexpected("Pages");

    void IPageStreamHandler.OnZeroPages(int region, ulong firstPage, ulong count) => throw Unexpected("ZeroPages");

    void IPageStreamHandler.OnRoundEnd(RoundEnd roundEnd) => throw Unexpected("RoundEnd");

    void IPageStreamHandler.OnDeviceState(ReadOnlySequence<byte> state) => throw Unexpected("DeviceState");

    void IPageStreamHandler.OnDigests(IReadOnlyList<RegionDigest> digests) => throw Unexpected("Digests");

    void IPageStreamHandler.OnComplete() => throw Unexpected("Complete");

    void IPageStreamHandler.OnDone() => throw Unexpected("Done");

    private static MigrationProtocolException Unexpected(string frame) =>
        new(frame, "type", $"A destination does not send {frame} frames.");
}
