using System;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>What a completed switchover measured.</summary>
internal sealed record SwitchoverResult
{
    /// <summary>When the switchover began (a timestamp of the options' clock).</summary>
    public long Started { get; init; }

    /// <summary>Bytes on the wire before the switchover.</summary>
    public ulong BytesBefore { get; init; }

    /// <summary>Pages sent with data before the switchover.</summary>
    public ulong PagesBefore { get; init; }

    /// <summary>Pages the switchover sent as zero runs.</summary>
    public ulong ZeroPages { get; init; }

    /// <summary>The throttle in force when the source was paused (lifted once the destination runs the VM).</summary>
    public int ThrottlePercent { get; init; }

    /// <summary>The forms the switchover's data pages went in.</summary>
    public EncodingTally Encoding { get; init; }

    /// <summary>Pages the final harvest found dirty.</summary>
    public ulong DirtyPages { get; init; }

    /// <summary>Hot pages that were held back until the switchover.</summary>
    public ulong DeferredPages { get; init; }

    /// <summary>How long the source's vCPUs took to stop.</summary>
    public TimeSpan PauseLatency { get; init; }

    /// <summary>From the pause to the destination's Ack, the pause latency included.</summary>
    public TimeSpan Downtime { get; init; }

    /// <summary>What the downtime was spent on.</summary>
    public required DowntimeParts ActualParts { get; init; }

    /// <summary>The destination's resume, as its Ack reports it.</summary>
    public TimeSpan ResumeDuration { get; init; }

    /// <summary>From Ready arriving to the Ack arriving: the commit step's cost.</summary>
    public TimeSpan CommitDuration { get; init; }
}

/// <summary>
/// The stop-and-copy: pauses the source, harvests a last time, sends every pending page (the
/// deferred hot ones included), the device state, the digests and Complete, waits for the
/// destination's Ready (digests checked, state restored, VM paused), sends Commit and waits for
/// its Ack. Until that Ack the pages sent stay in flight, so a failure returns them to pending; a
/// destination that stops reading meets the response timeout instead of keeping the source
/// paused. Before Commit the destination never starts the VM; once Commit is sent, a lost answer
/// is resolved by <see cref="ConfirmCommit"/> (a Query), never by resuming the source.
/// </summary>
internal sealed class Switchover
{
    private readonly IMigrationSource _source;
    private readonly SourceRecovery _recovery;
    private readonly RegionSet _regions;
    private readonly RoundSender _sender;
    private readonly DestinationChannel _channel;
    private readonly MigrationOptions _options;
    private readonly Func<ulong> _harvest;

    // Whether a switchover of this process has resumed its state machine once (RunAsync).
    private static int _resumed;

    /// <param name="source">Saves the device state.</param>
    /// <param name="recovery">Pauses the source (and knows it did).</param>
    /// <param name="regions">What is pending.</param>
    /// <param name="sender">Puts it on the wire.</param>
    /// <param name="channel">Brings the destination's Ack.</param>
    /// <param name="options">The response timeout and the clock.</param>
    /// <param name="harvest">The final harvest, the same step as after every round; returns the dirty pages.</param>
    internal Switchover(IMigrationSource source, SourceRecovery recovery, RegionSet regions, RoundSender sender, DestinationChannel channel, MigrationOptions options, Func<ulong> harvest)
    {
        _source = source;
        _recovery = recovery;
        _regions = regions;
        _sender = sender;
        _channel = channel;
        _options = options;
        _harvest = harvest;
    }

    /// <summary>
    /// Called when Commit was sent and no Ack came (with the cause and when Commit was sent): finds
    /// out whether the destination started the VM, returning its Ack if so and throwing otherwise.
    /// Without it the failure stands and the outcome stays unknown.
    /// </summary>
    internal Func<Exception, long, Task<CompletionAck>>? ConfirmCommit { get; init; }

    internal async Task<SwitchoverResult> RunAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _resumed) == 0)
        {
            // This method's state machine is resumed once before the pause: the first resumption
            // by a completing task compiles the runtime's box around it, 0.2 ms that would
            // otherwise fall between the destination's Ready and the Commit (JitInfo counted one
            // method compiled there). A yield resumes it through another method, so a timer does.
            await Task.Delay(1, ct).ConfigureAwait(false);
            Volatile.Write(ref _resumed, 1);
        }

        TimeProvider time = _options.TimeProvider;
        long started = time.GetTimestamp();
        ulong bytesBefore = _sender.BytesWritten;
        ulong deferred = _regions.DeferredPages;
        int throttle = _recovery.ThrottlePercent;
        TimeSpan pauseLatency = _recovery.Pause();
        long pausedAt = time.GetTimestamp();

        // Everything still pending goes now, the deferred hot pages included, each page read.
        _regions.UsePopulatedPages(false);
        _regions.ClearDeferred();
        ulong dirty = _harvest();
        TimeSpan finalHarvest = time.GetElapsedTime(pausedAt);
        ulong pagesBefore = _sender.PagesSent;
        _sender.BeginRound(final: true);

        // Every region's plan is made before anything is sent: whatever the destination has not
        // confirmed by its Ack stays in flight, and a failure returns it to pending.
        _regions.PlanSwitchover();
        CompletionAck ack;
        long completeSent;
        long readyAt;
        DestinationReady ready;

        // The source is paused: a destination that stops reading must not keep it so forever.
        using var timeout = new CancellationTokenSource(_options.ResponseTimeout, time);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            await _sender.SendPlanAsync(_regions.Regions, deadline.Token).ConfigureAwait(false);
            byte[] state = _source.SaveDeviceState();
            _sender.AppendCompletion(state, _regions.Regions);

            _channel.MarkCompleteSent();
            await _sender.FlushAsync(deadline.Token).ConfigureAwait(false);
            completeSent = time.GetTimestamp();
            ready = await _channel.WaitForReadyAsync(ct).ConfigureAwait(false);
            readyAt = time.GetTimestamp();

            // From here the destination may start the VM: the source never resumes on its own.
            _channel.MarkCommitSent();
            _sender.AppendCommit();
            long commitSent = time.GetTimestamp();
            try
            {
                await _sender.FlushAsync(deadline.Token).ConfigureAwait(false);
                ack = await _channel.WaitForCompletionAckAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ConfirmCommit is not null && ex is not DestinationRefusedException)
            {
                // A wait cut by the link's loss says only "A task was canceled": the loss says what happened.
                ack = await ConfirmCommit(ex is OperationCanceledException && _channel.Failure is { } lost ? lost : ex, commitSent).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new MigrationException(MigrationPhase.Switchover, $"the destination took no more data for {_options.ResponseTimeout.TotalSeconds:F0} s during the switchover", ex);
        }

        TimeSpan downtime = time.GetElapsedTime(pausedAt) + pauseLatency;
        TimeSpan ackWait = time.GetElapsedTime(completeSent);
        TimeSpan commit = time.GetElapsedTime(readyAt);
        _regions.ConfirmDelivered();
        return new SwitchoverResult
        {
            Started = started,
            BytesBefore = bytesBefore,
            PagesBefore = pagesBefore,
            ZeroPages = _sender.RoundZeroPages,
            Encoding = _sender.RoundEncoding,
            DirtyPages = dirty,
            DeferredPages = deferred,
            ThrottlePercent = throttle,
            PauseLatency = pauseLatency,
            Downtime = downtime,
            ActualParts = Parts(pauseLatency, finalHarvest, downtime, ackWait, time.GetElapsedTime(completeSent, readyAt), ready.PrepareDuration),
            ResumeDuration = ack.ResumeDuration,
            CommitDuration = commit,
        };
    }

    /// <summary>
    /// The downtime's parts. The destination reads Complete only after applying everything sent
    /// before it, so until its Ready (<paramref name="readyWait"/> after Complete left), less the
    /// checks it reports (<paramref name="prepare"/>), the switchover's pages were still arriving:
    /// that belongs to the transfer, as in the forecast, whose bandwidth is measured up to each
    /// round's acknowledgement. The rest of <paramref name="ackWait"/> is the commit step's.
    /// </summary>
    internal static DowntimeParts Parts(TimeSpan pause, TimeSpan finalHarvest, TimeSpan downtime, TimeSpan ackWait, TimeSpan readyWait, TimeSpan prepare)
    {
        TimeSpan arriving = readyWait - prepare;
        arriving = arriving < TimeSpan.Zero ? TimeSpan.Zero : arriving > ackWait ? ackWait : arriving;
        return new DowntimeParts(pause.TotalMilliseconds, finalHarvest.TotalMilliseconds,
            (downtime - pause - finalHarvest - ackWait + arriving).TotalMilliseconds, (ackWait - arriving).TotalMilliseconds);
    }
}
