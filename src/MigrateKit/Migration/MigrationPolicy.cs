using System;
using MigrateKit.Estimation;

namespace MigrateKit.Migration;

/// <summary>What the policy decided after a round.</summary>
public enum MigrationAction
{
    /// <summary>Run another pre-copy round as planned.</summary>
    Continue,

    /// <summary>Run another round; more hot pages are now held back for the switchover.</summary>
    Defer,

    /// <summary>Run another round with a stronger throttle on the guest.</summary>
    Throttle,

    /// <summary>Pause the source and send the rest: the predicted downtime fits.</summary>
    SwitchOver,

    /// <summary>Give up; the source keeps running.</summary>
    Abort,
}

/// <summary>A decision with its parameters.</summary>
/// <param name="Action">What to do.</param>
/// <param name="ThrottlePercent">The throttle to apply for the next round.</param>
/// <param name="Reason">Why, in words (always set for <see cref="MigrationAction.Abort"/>).</param>
public readonly record struct PolicyDecision(MigrationAction Action, int ThrottlePercent, string? Reason);

/// <summary>Where the migration stands when the policy decides.</summary>
/// <param name="Round">The round just harvested (0 is the full copy).</param>
/// <param name="Elapsed">Time since the start.</param>
/// <param name="BytesSent">Bytes on the wire so far.</param>
/// <param name="MemoryBytes">Guest memory size.</param>
/// <param name="ThrottlePercent">The throttle in force.</param>
/// <param name="DeferredPagesGrew">Whether the set of deferred hot pages grew this round.</param>
/// <param name="DirtyPages">Pages the guest dirtied during the round (0: not known).</param>
public readonly record struct PolicyState(int Round, TimeSpan Elapsed, ulong BytesSent, ulong MemoryBytes, int ThrottlePercent, bool DeferredPagesGrew, ulong DirtyPages = 0);

/// <summary>
/// Decides, from a <see cref="Forecast"/>, whether to switch over, keep going, throttle the guest
/// or give up. The throttle is proportional: it is derived from the ratio of dirtying rate to
/// bandwidth so that each following round is about <see cref="MigrationOptions.ConvergenceTarget"/>
/// of the previous one, instead of creeping up in fixed steps until something gives.
/// </summary>
public sealed class MigrationPolicy
{
    private readonly MigrationOptions _options;
    private int _hopelessRounds;
    private ulong _lastDirtyPages;
    private bool _lastRaisedThrottle;

    // A guest that dirties at least this share of the pages it dirtied before a stronger throttle
    // is bounded by its working set, not by its speed.
    private const double SaturatedShare = 0.97;

    // How much harder a saturated guest is cut than its measured rate asks for.
    private const double SaturatedCut = 0.25;

    /// <summary>Creates the policy for the given options.</summary>
    public MigrationPolicy(MigrationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    /// <summary>
    /// How many bytes of hot pages may be held back for the switchover: a share of what the
    /// downtime budget can carry after the fixed costs.
    /// </summary>
    public ulong DeferBudgetBytes(DowntimeBreakdown breakdown, double bandwidthBytesPerSecond)
    {
        double seconds = (_options.MaxDowntime - breakdown.Fixed).TotalSeconds;
        return seconds <= 0 ? 0 : (ulong)(seconds * bandwidthBytesPerSecond * _options.DeferBudgetFraction);
    }

    /// <summary>Decides what to do after a round.</summary>
    public PolicyDecision Decide(Forecast forecast, PolicyState state)
    {
        ArgumentNullException.ThrowIfNull(forecast);
        PolicyDecision decision = DecideRound(forecast, state);
        _lastDirtyPages = state.DirtyPages;
        _lastRaisedThrottle = decision.ThrottlePercent > state.ThrottlePercent;
        return decision;
    }

    private PolicyDecision DecideRound(Forecast forecast, PolicyState state)
    {
        int throttle = state.ThrottlePercent;

        // The limit is a promise: the forecast's upper bound must fit, not just its point. And by
        // default not after round 0 alone (MinRounds): its rate includes the destination's first
        // touch of every page, so it says little about a stop-and-copy of pages the destination holds.
        if (forecast.DowntimeHigh <= _options.MaxDowntime && state.Round + 1 >= Math.Min(_options.MinRounds, _options.MaxRounds))
        {
            return new PolicyDecision(MigrationAction.SwitchOver, throttle, null);
        }

        if (_options.Deadline is { } deadline && state.Elapsed >= deadline)
        {
            return Abort(throttle, Invariant($"deadline of {deadline.TotalSeconds:F1} s reached with a predicted downtime of {Bound(forecast)} (limit {Ms(_options.MaxDowntime)})"));
        }

        if (state.Round + 1 >= _options.MaxRounds)
        {
            return Abort(throttle, Invariant($"{_options.MaxRounds} rounds without the predicted downtime ({Bound(forecast)}) fitting the limit ({Ms(_options.MaxDowntime)})"));
        }

        if (state.BytesSent >= _options.MaxBytesFactor * state.MemoryBytes)
        {
            return Abort(throttle, Invariant($"sent {state.BytesSent / (1024.0 * 1024):F0} MiB, {_options.MaxBytesFactor}x the guest memory, without converging"));
        }

        // The part of the downtime that no round can shrink: fixed costs and deferred pages.
        TimeSpan floor = forecast.Breakdown.Fixed + TimeSpan.FromSeconds(forecast.DeferredBytes / Math.Max(1, forecast.BandwidthBytesPerSecond));
        if (floor > _options.MaxDowntime)
        {
            return Abort(throttle, Invariant($"fixed costs and deferred pages alone take {Ms(floor)}, over the limit of {Ms(_options.MaxDowntime)}"));
        }

        // Without a bandwidth limit, round 0's rate is what the CPU gives for first copies, which
        // the destination touches for the first time (15 us a page against 1 us for a re-sent delta
        // on the reference machine): its ratio overstates the re-sends a throttle must bring under
        // the link. Like QEMU's auto-converge, which waits for two syncs, such a ratio waits for a
        // round of re-sends, which costs little at the CPU's speed. Under a limit the link prices
        // both, and waiting would let a guest with a large working set dirty it all once more at
        // full speed, a whole extra round at the limit.
        double q = forecast.ConvergenceRatio;
        bool ratioPricesResends = state.Round >= 1 || _options.BandwidthLimit is not null;
        if (q > _options.ConvergenceTarget && ratioPricesResends && _options.AllowThrottling && throttle < _options.MaxThrottlePercent)
        {
            // The guest's speed scales with its run time: aim the rate at target x bandwidth. A guest
            // that dirtied as many pages after the last raise as before it rewrites its whole working
            // set within a round: its rate is higher than the round shows, so cut it harder.
            bool saturated = _lastRaisedThrottle && state.DirtyPages > 0 && state.DirtyPages >= SaturatedShare * _lastDirtyPages;
            double speed = (100 - throttle) / 100.0 * (_options.ConvergenceTarget / q) * (saturated ? SaturatedCut : 1);
            int wanted = (int)Math.Ceiling(100 * (1 - speed));
            int next = Math.Clamp(wanted, throttle + 1, _options.MaxThrottlePercent);
            _hopelessRounds = 0;
            string why = saturated ? "; the whole working set was rewritten again after the last raise" : "";
            return new PolicyDecision(MigrationAction.Throttle, next, Invariant($"dirty rate is {q:P0} of bandwidth; aiming for {_options.ConvergenceTarget:P0}{why}"));
        }

        if (forecast.Verdict is ConvergenceVerdict.Diverging or ConvergenceVerdict.Stalled && q >= 1)
        {
            // Nothing left to try: no throttle headroom, and the guest outruns the link.
            if (++_hopelessRounds >= 3)
            {
                return Abort(throttle, Invariant($"the guest dirties memory at {q:P0} of the bandwidth with the throttle at {throttle}% (max {_options.MaxThrottlePercent}%): it cannot converge"));
            }
        }
        else
        {
            _hopelessRounds = 0;
        }

        return new PolicyDecision(state.DeferredPagesGrew ? MigrationAction.Defer : MigrationAction.Continue, throttle, null);
    }

    private static PolicyDecision Abort(int throttle, string reason) => new(MigrationAction.Abort, throttle, reason);

    private static string Bound(Forecast f) => Invariant($"{Ms(f.PredictedDowntime)}, up to {Ms(f.DowntimeHigh)}");

    // Whole milliseconds from 10 ms; below that, enough digits that a 0.4 ms floor is not "0 ms".
    private static string Ms(TimeSpan t) => t.TotalMilliseconds >= 10
        ? Invariant($"{t.TotalMilliseconds:F0} ms")
        : Invariant($"{t.TotalMilliseconds:0.0##} ms");

    // Reasons end up in logs and JSON reports: the same text whatever the process's culture.
    private static string Invariant(FormattableString text) => FormattableString.Invariant(text);
}
