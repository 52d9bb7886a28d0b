using System;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using MigrateKit.Estimation;

namespace MigrateKit.Libvirt;

/// <summary>
/// Follows a running libvirt migration job until the migrate call returns: polls its statistics at the
/// poll interval (or at an iteration event), forecasts from each poll, lets the policy decide and
/// carries out its decision (QEMU's downtime limit, postcopy, abort), and aborts at the deadline or on
/// the caller's request, re-sending the abort until the call returns.
/// </summary>
internal sealed class JobFollower
{
    /// <summary>How often an abort is sent again while the migrate call has not returned.</summary>
    internal static readonly TimeSpan AbortRetryInterval = TimeSpan.FromSeconds(2);

    private readonly ResilientHost _source;
    private readonly string _domain;
    private readonly LibvirtMigrationOptions _options;
    private readonly JobForecaster _forecaster;
    private readonly LibvirtPolicy _policy;
    private readonly IterationRecorder _recorder;
    private readonly LibvirtRunState _run;
    private readonly ILogger _logger;
    private bool _limitSet;
    private long _lastAbortAttempt;

    /// <param name="source">The source host, polled on connections of its own.</param>
    /// <param name="domain">The migrating domain.</param>
    /// <param name="options">The poll interval, the deadline, the policy's options and the clock.</param>
    /// <param name="forecaster">Turns polls into forecasts.</param>
    /// <param name="recorder">Where polls, forecasts and iterations are recorded.</param>
    /// <param name="run">What is known and decided about the job.</param>
    /// <param name="logger">Where decisions are logged.</param>
    internal JobFollower(ResilientHost source, string domain, LibvirtMigrationOptions options, JobForecaster forecaster,
        IterationRecorder recorder, LibvirtRunState run, ILogger logger)
    {
        _source = source;
        _domain = domain;
        _options = options;
        _forecaster = forecaster;
        _policy = new LibvirtPolicy(options);
        _recorder = recorder;
        _run = run;
        _logger = logger;
    }

    /// <summary>Follows the job until <paramref name="migrate"/> completes.</summary>
    /// <param name="migrate">The migrate call.</param>
    /// <param name="wake">Released at every iteration event: polls at once instead of at the interval.</param>
    /// <param name="ct">Asks for an abort; never cancels a call, so the outcome is always concluded from both hosts.</param>
    internal async Task FollowAsync(Task migrate, SemaphoreSlim wake, CancellationToken ct)
    {
        TimeProvider time = _options.TimeProvider;
        while (!migrate.IsCompleted)
        {
            CheckAbortCauses(ct);
            if (_run.AbortPending && time.GetElapsedTime(_lastAbortAttempt) >= AbortRetryInterval)
            {
                // Re-issued until the call returns: an abort sent before the job existed is lost.
                _lastAbortAttempt = time.GetTimestamp();
                TryAbort();
            }

            await WaitForPollAsync(migrate, wake).ConfigureAwait(false);
            if (migrate.IsCompleted)
            {
                break;
            }

            if (_run.SwitchoverSeen && !_run.AbortPending)
            {
                // QEMU is in the stop-and-copy and libvirt hands the guest over next: nothing is left to decide,
                // and polls would only queue behind libvirt's own monitor commands while it finishes. The
                // deadline and the caller still abort: a pre-copy pass that emptied the dirty set at an
                // iteration's end looks the same, and QEMU may go on iterating after it.
                continue;
            }

            if (TryPoll() is not { } stats)
            {
                continue;
            }

            if (_forecaster.WantsBursts(stats) && !_run.SwitchoverSeen)
            {
                // Before the policy acts on this iteration: a raised limit could end the pre-copy first.
                LearnBursts(migrate, stats.MemoryIteration ?? 0);
                if (TryPoll() is not { } fresh)
                {
                    continue;
                }

                stats = fresh;
            }

            Observe(stats);
        }
    }

    private void LearnBursts(Task migrate, ulong iteration)
    {
        double? speed = BurstSampler.Sample(_source, _domain, _options.TimeProvider, migrate);
        _forecaster.LearnBursts(speed, iteration);
        if (_forecaster.MeasuredSpeed is { } measured)
        {
            LibvirtLog.BurstsTimed(_logger, _domain, measured / (1 << 20));
        }
        else
        {
            LibvirtLog.BurstsUntimed(_logger, _domain, (_forecaster.SwitchoverBandwidth ?? _options.BandwidthLimit ?? 0) / (double)(1 << 20));
        }
    }

    private void CheckAbortCauses(CancellationToken ct)
    {
        if (_run.AbortReason is not null || _run.PostcopyStarted)
        {
            return;
        }

        if (ct.IsCancellationRequested)
        {
            _run.RequestAbort("cancelled by the caller");
        }
        else if (_options.Deadline is { } deadline && _run.Elapsed - deadline >= _options.PollInterval + _options.PollInterval)
        {
            // The policy aborts at the deadline with a forecast; this catches a job that never gave one.
            _run.RequestAbort(FormattableString.Invariant($"deadline of {deadline.TotalSeconds:F1} s reached"));
        }
    }

    /// <summary>Waits for an iteration event, the poll interval on the migration's clock, or the call's end.</summary>
    private async Task WaitForPollAsync(Task migrate, SemaphoreSlim wake)
    {
        using var done = new CancellationTokenSource();
        Task woken = wake.WaitAsync(done.Token);
        Task interval = Task.Delay(_options.PollInterval, _options.TimeProvider, done.Token);
        // The polls that follow block on libvirt: never on the thread that ended the wait (a timer's).
        await Task.WhenAny(migrate, woken, interval).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);

        // A waiter left behind would swallow the next event's release.
        done.Cancel();
    }

    /// <summary>The job's statistics, or null when this poll has nothing to learn from.</summary>
    private JobStats? TryPoll()
    {
        JobStats stats;
        try
        {
            stats = _source.Run(h => h.GetJobStats(_domain, completed: false), CancellationToken.None);
        }
        catch (LibvirtException ex)
        {
            // No domain: the source let go of it and the call is about to return. A connection
            // that stayed down past the reconnect timeout: nothing more to learn by polling.
            // Anything else (a job in a state that has no statistics): skip this poll.
            if (ex.IsConnectionFault && _run.MarkPollingLost())
            {
                LibvirtLog.PollingLost(_logger, ex, _domain);
            }

            return null;
        }

        return stats.Type is DomainJobType.Bounded or DomainJobType.Unbounded ? stats : null;
    }

    private void Observe(JobStats stats)
    {
        _run.MarkJobSeen();
        if (!_limitSet)
        {
            // QEMU takes the limit once the job exists.
            _limitSet = true;
            TrySetDowntime(_run.QemuLimit);
        }

        _recorder.CountTransfer(stats);
        if (stats.MemoryRemaining == 0 && stats.MemoryIteration >= 2)
        {
            // Nothing left to send: QEMU has stopped the guest for the stop-and-copy (or is done).
            // The forecast that counts is the one made before; nothing is decided from here on.
            if (_run.MarkSwitchover())
            {
                _recorder.SwitchoverSeen(_forecaster.Iteration);
            }

            return;
        }

        TimeSpan elapsed = _run.Elapsed;
        int previous = _forecaster.Iteration;
        Forecast? forecast = _forecaster.Observe(stats, elapsed, _run.QemuLimit);
        _recorder.Polled(stats);
        if (forecast is null)
        {
            return;
        }

        _recorder.Forecasted(stats, forecast, _forecaster.DirtyRate);
        LibvirtDecision decision = _policy.Decide(forecast, new LibvirtPolicyState(_forecaster.Iteration, elapsed, _run.QemuLimit,
            _forecaster.QemuExpectedDowntime, stats.AutoConvergeThrottle ?? 0, _run.PostcopyStarted));
        Apply(decision);

        // A new dirty sync ends the previous iteration.
        if (_forecaster.Iteration != previous && previous > 0)
        {
            GrowCacheIfMissed();
            _recorder.IterationEnded(previous, stats, elapsed, forecast, _forecaster, decision);
        }
    }

    /// <summary>Grows the xbzrle cache when the last iteration missed it too often (the hot set does not fit).</summary>
    private void GrowCacheIfMissed()
    {
        if (_forecaster.Deltas is not { Last: { } last } deltas || _run.XbzrleCache is not { } cache
            || _policy.GrowCache(last, deltas.Measured, cache, _forecaster.WorkingSetBytes, _run.MemoryBytes) is not { } grown)
        {
            return;
        }

        string reason = FormattableString.Invariant(
            $"xbzrle missed its cache for {last.MissRatio * 100:F0}% of the pages of iteration {_forecaster.Iteration - 1}: cache {cache >> 20} MiB -> {grown >> 20} MiB");
        LibvirtLog.GrowingCache(_logger, _domain, grown >> 20, reason);
        try
        {
            _source.Run(h => h.SetCompressionCache(_domain, grown), CancellationToken.None);
            _run.XbzrleCache = grown;
            _recorder.Decided(_forecaster.Iteration, _run.Elapsed, "xbzrle-cache", reason);
        }
        catch (LibvirtException ex)
        {
            LibvirtLog.GrowCacheFailed(_logger, ex, _domain);
        }
    }

    private void Apply(LibvirtDecision decision)
    {
        if (decision.Action != LibvirtAction.Continue && decision.Reason is { } why && !(decision.Action == LibvirtAction.StartPostcopy && _run.PostcopyStarted))
        {
            _recorder.Decided(_forecaster.Iteration, _run.Elapsed, IterationRecorder.DecisionName(decision.Action), why);
        }

        switch (decision.Action)
        {
            case LibvirtAction.Abort when _run.AbortReason is null:
                _run.RequestAbort(decision.Reason ?? "aborted by the policy");
                LibvirtLog.Aborting(_logger, _domain, decision.Reason);
                TryAbort();
                break;
            case LibvirtAction.RaiseDowntimeLimit when decision.DowntimeLimit is { } limit:
                LibvirtLog.RaisingLimit(_logger, _domain, limit.TotalMilliseconds, decision.Reason);
                if (TrySetDowntime(limit))
                {
                    _run.QemuLimit = limit;
                }

                break;
            case LibvirtAction.StartPostcopy when !_run.PostcopyStarted:
                LibvirtLog.StartingPostcopy(_logger, _domain, decision.Reason);
                try
                {
                    _source.Run(h => h.StartPostCopy(_domain), CancellationToken.None);
                    _run.MarkPostcopy();
                }
                catch (LibvirtException ex)
                {
                    LibvirtLog.PostcopyFailed(_logger, ex, _domain);
                }

                break;
        }
    }

    private bool TrySetDowntime(TimeSpan limit)
    {
        try
        {
            _source.Run(h => h.SetMaxDowntime(_domain, limit), CancellationToken.None);
            return true;
        }
        catch (LibvirtException ex)
        {
            // The job may have ended between the poll and this call.
            LibvirtLog.SetDowntimeFailed(_logger, ex, _domain);
            return false;
        }
    }

    private void TryAbort()
    {
        try
        {
            _source.Run(h => h.AbortJob(_domain), CancellationToken.None);
        }
        catch (LibvirtException ex)
        {
            // Too late to abort (the switchover is under way) or the job is gone: the outcome decides.
            LibvirtLog.AbortFailed(_logger, ex, _domain);
        }
    }
}
