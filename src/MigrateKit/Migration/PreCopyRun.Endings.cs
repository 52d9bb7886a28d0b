using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>How a run ends other than by a switchover: cancelled, failed, aborted by policy or by its deadline.</summary>
internal sealed partial class PreCopyRun
{
    // Cancels pre-copy (the handshake, the rounds, the reconnections) at MigrationOptions.Deadline; never a switchover.
    private CancellationTokenSource? _deadline;
    private bool _switchingOver;

    /// <summary>The deadline ended pre-copy (not the switchover, which it never interrupts).</summary>
    private bool DeadlinePassed => _deadline?.IsCancellationRequested == true && !_switchingOver;

    /// <summary>Starts the deadline's clock, if the options set one.</summary>
    private void StartDeadline()
    {
        if (_options.Deadline is { } deadline)
        {
            _deadline = new CancellationTokenSource(deadline, _time);
        }
    }

    /// <summary>
    /// <paramref name="work"/> bounded by the deadline, for pre-copy's waits; null without a
    /// deadline. Dispose it when the wait is over.
    /// </summary>
    private CancellationTokenSource? Bounded(CancellationToken work) =>
        _deadline is null ? null : CancellationTokenSource.CreateLinkedTokenSource(work, _deadline.Token);

    private string DeadlineReason() => FormattableString.Invariant(
        $"deadline of {_options.Deadline!.Value.TotalSeconds:F1} s reached during {_phase} of round {_recorder.RoundCount}, before the migration could switch over");

    /// <summary>The caller cancelled: the source runs on (or stays paused after Commit); the destination is told.</summary>
    private async Task CancelledAsync(CancellationToken caller)
    {
        if (!_recovery.LeaveAfterFailure(MayRunTheVm))
        {
            MigrationLog.MigrationCancelledOutcomeUnknown(_logger, _source.Name);
            throw new OperationCanceledException(UnknownOutcome("the migration was cancelled"), caller);
        }

        MigrationLog.MigrationCancelled(_logger, _source.Name, _phase);
        await SendErrorQuietlyAsync("migration cancelled").ConfigureAwait(false);
        if (_recovery.ResumeFailure is { } stuck)
        {
            throw new OperationCanceledException($"The migration was cancelled, and the source could not be resumed: {stuck.Message}. It stays paused.", stuck, caller);
        }
    }

    /// <summary>
    /// The run failed: the source runs on unless the destination may run the VM (then the outcome
    /// is unknown), the destination is told, and the report carries the typed error.
    /// </summary>
    private async Task<MigrationReport> FailedAsync(Exception ex)
    {
        bool resumed = _recovery.LeaveAfterFailure(MayRunTheVm);
        Exception cause = ex is OperationCanceledException && _link?.Channel.Failure is { } gone ? gone : ex;
        var error = cause as MigrationException ?? new MigrationException(_phase, cause.Message, cause);
        if (!resumed)
        {
            error = new MigrationException(_phase, UnknownOutcome(error.Detail), error);
            MigrationLog.MigrationOutcomeUnknown(_logger, ex, _source.Name);
            return _recorder.Ended(MigrationStatus.Failed, _recorder.RoundCount, error.Message, error, _phase) with { OutcomeUnknown = true };
        }

        if (_recovery.ResumeFailure is { } stuck)
        {
            // Nothing runs the VM now: the destination never started it, and the source did not come back.
            error = new MigrationException(error.Phase, $"{error.Detail}; the source could not be resumed and stays paused: {stuck.Message}", error);
        }

        MigrationLog.MigrationFailed(_logger, ex, _source.Name, _phase);
        await SendErrorQuietlyAsync(error.Message).ConfigureAwait(false);
        return _recorder.Ended(MigrationStatus.Failed, _recorder.RoundCount, error.Message, error, _phase);
    }

    /// <summary>
    /// After a failed, aborted or cancelled run: stops the tracker (dirty logging, write
    /// protection), unless the caller keeps it for a resume. The next run starts it again and
    /// marks every page pending, so a write made while it was stopped is still sent.
    /// </summary>
    private void StopTrackingUnlessKept()
    {
        if (_options.KeepTrackingOnFailure || !_tracker.IsTracking)
        {
            return;
        }

        try
        {
            _tracker.Stop();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The migration's own outcome is what the caller needs; a tracker that cannot stop is logged.
            MigrationLog.TrackerStopFailed(_logger, ex, _source.Name);
        }
    }

    /// <summary>
    /// The VM runs on the destination now: stops tracking, lifts the throttle and, if asked,
    /// checks that the source's memory is what was sent. Nothing here may fail the migration.
    /// </summary>
    private bool? LetGoOfTheSource()
    {
        bool? verified = null;
        try
        {
            _tracker.Stop();
            _recovery.Unthrottle();
            if (_options.VerifySourceMemory)
            {
                verified = _regions.Regions.All(r => RegionDigestAccumulator.Compute(r.Memory) == r.Digest.Value);
                if (verified == false)
                {
                    MigrationLog.SourceMemoryDiffers(_logger, _source.Name);
                }
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            MigrationLog.CleanupFailed(_logger, ex, _source.Name);
        }

        return verified;
    }

    /// <summary>Ends the run by policy (or its deadline): the source runs on, the destination is told.</summary>
    private async Task<MigrationReport> AbortAsync(int rounds, string reason)
    {
        _recovery.LeaveAfterFailure(destinationMayRunTheVm: false);
        if (_recovery.ResumeFailure is { } stuck)
        {
            // An abort promises a running source; this one is not.
            return await FailedAsync(new MigrationException(_phase, reason, stuck)).ConfigureAwait(false);
        }

        MigrationLog.MigrationAborted(_logger, _source.Name, reason);
        await SendErrorQuietlyAsync(reason).ConfigureAwait(false);
        return _recorder.Ended(MigrationStatus.Aborted, rounds, reason, null, phase: null);
    }

    private async Task SendErrorQuietlyAsync(string message)
    {
        if (_link is not null)
        {
            await _link.SendErrorQuietlyAsync(message).ConfigureAwait(false);
        }
    }
}
