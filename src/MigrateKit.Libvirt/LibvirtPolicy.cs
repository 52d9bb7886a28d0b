using System;
using System.Globalization;
using System.Numerics;
using MigrateKit.Estimation;

namespace MigrateKit.Libvirt;

/// <summary>What the migrator does to a running libvirt migration.</summary>
public enum LibvirtAction
{
    /// <summary>Leave it alone.</summary>
    Continue,

    /// <summary>Raise QEMU's downtime limit so it switches over at the next dirty sync.</summary>
    RaiseDowntimeLimit,

    /// <summary>Switch to postcopy: the destination runs the guest and pulls the pages still missing.</summary>
    StartPostcopy,

    /// <summary>Give up; the source keeps running.</summary>
    Abort,
}

/// <summary>A decision with its parameters.</summary>
/// <param name="Action">What to do.</param>
/// <param name="DowntimeLimit">The new QEMU downtime limit for <see cref="LibvirtAction.RaiseDowntimeLimit"/>.</param>
/// <param name="Reason">Why, in words.</param>
public readonly record struct LibvirtDecision(LibvirtAction Action, TimeSpan? DowntimeLimit, string? Reason);

/// <summary>Where a libvirt migration stands when the policy decides.</summary>
/// <param name="Iteration">QEMU's dirty-sync count (1 is the full copy).</param>
/// <param name="Elapsed">Time since the migration started.</param>
/// <param name="QemuDowntimeLimit">The downtime limit QEMU holds now.</param>
/// <param name="QemuExpectedDowntime">What QEMU itself expects: remaining bytes over the rate-limited bandwidth.</param>
/// <param name="ThrottlePercent">Auto-converge's throttle now.</param>
/// <param name="PostcopyActive">Whether postcopy already started.</param>
public readonly record struct LibvirtPolicyState(int Iteration, TimeSpan Elapsed, TimeSpan QemuDowntimeLimit, TimeSpan QemuExpectedDowntime, int ThrottlePercent, bool PostcopyActive);

/// <summary>
/// Decides, after each job-statistics poll, what to change in a running libvirt migration.
/// QEMU switches over when remaining bytes over the <em>rate-limited</em> bandwidth fit its limit, yet
/// its stop-and-copy runs without the rate limit: with a limit it waits far longer than the downtime
/// needs. MigrateKit forecasts the real downtime (fixed costs plus remaining bytes at the stop-and-copy
/// speed) and, when that fits the caller's limit (or budget) with a margin of <see cref="RaiseMargin"/>
/// but QEMU's own estimate does not, raises QEMU's limit just enough for it to switch at its next sync. When nothing fits, it switches to
/// postcopy if allowed, and aborts at the deadline.
/// </summary>
public sealed class LibvirtPolicy
{
    /// <summary>
    /// QEMU's limit is raised only when the forecast times this still fits: the forecast of a QEMU
    /// stop-and-copy is less certain than MigrateKit's own (the host's load, libvirt's hand-off).
    /// </summary>
    internal const double RaiseMargin = 1.5;

    /// <summary>The highest limit handed to QEMU, as a multiple of the downtime allowed (and never over QEMU's 2000 s).</summary>
    internal const int MaxLimitFactor = 20;

    /// <summary>The share of an iteration's pages missing the xbzrle cache above which it is grown.</summary>
    internal const double CacheMissLimit = 0.25;

    /// <summary>How often the xbzrle cache is grown at most.</summary>
    internal const int MaxCacheGrowths = 2;

    private readonly LibvirtMigrationOptions _options;
    private int _hopeless;
    private int _cacheGrowths;
    private int _measuredAtGrowth;

    /// <summary>Creates the policy.</summary>
    public LibvirtPolicy(LibvirtMigrationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    /// <summary>Decides what to do after a poll.</summary>
    public LibvirtDecision Decide(Forecast forecast, LibvirtPolicyState state)
    {
        ArgumentNullException.ThrowIfNull(forecast);

        // Once in postcopy the destination runs the guest: there is nothing left to abort to.
        if (state.PostcopyActive)
        {
            return default;
        }

        if (_options.Deadline is { } deadline && state.Elapsed >= deadline)
        {
            return new LibvirtDecision(LibvirtAction.Abort, null, Invariant(
                $"deadline of {deadline.TotalSeconds:F1} s reached with a predicted downtime of {Ms(forecast.PredictedDowntime)} (limit {Ms(_options.MaxDowntime)})"));
        }

        // Round 1 is the full copy: its remaining bytes say nothing about the dirty set yet.
        if (state.Iteration < 2)
        {
            return default;
        }

        if (_options.Strategy == LibvirtStrategy.Postcopy)
        {
            return new LibvirtDecision(LibvirtAction.StartPostcopy, null, "strategy postcopy: the first full pass is done");
        }

        TimeSpan allowed = _options.MaxDowntime;
        bool converging = forecast.Verdict == ConvergenceVerdict.Converging;
        if (forecast.PredictedDowntime.Ticks * RaiseMargin > allowed.Ticks && _options.DowntimeBudget is { } budget && !converging && forecast.PredictedDowntime.Ticks * RaiseMargin <= budget.Ticks)
        {
            // Pre-copy is not getting there by itself: spend the caller's budget.
            allowed = budget;
        }

        if (forecast.PredictedDowntime.Ticks * RaiseMargin <= allowed.Ticks)
        {
            _hopeless = 0;

            // QEMU switches when its own estimate fits its limit; give it room for what is left
            // now plus a quarter for what the guest dirties before the next sync.
            // Capped: QEMU's bandwidth figure can dip to nearly nothing for a period around a sync;
            // and QEMU refuses a limit over its maximum.
            TimeSpan needed = TimeSpan.FromTicks((long)(state.QemuExpectedDowntime.Ticks * 1.25));
            TimeSpan cap = TimeSpan.FromTicks(Math.Min(allowed.Ticks * MaxLimitFactor, LibvirtMigrationOptions.MaxQemuDowntime.Ticks));
            needed = needed > cap ? cap : needed;

            // libvirt takes whole milliseconds; rounded here so the limit remembered is the one QEMU has.
            needed = LibvirtMigrationOptions.ToWholeMilliseconds(needed);
            needed = needed > LibvirtMigrationOptions.MaxQemuDowntime ? LibvirtMigrationOptions.MaxQemuDowntime : needed;
            if (needed.Ticks > state.QemuDowntimeLimit.Ticks * 1.1)
            {
                return new LibvirtDecision(LibvirtAction.RaiseDowntimeLimit, needed, Invariant(
                    $"predicted downtime {Ms(forecast.PredictedDowntime)} fits {Ms(allowed)}; QEMU expects {Ms(state.QemuExpectedDowntime)} at the rate limit"));
            }

            return default;
        }

        bool stuck = forecast.Verdict is ConvergenceVerdict.Diverging or ConvergenceVerdict.Stalled
            && (!_options.AllowAutoConverge || state.ThrottlePercent >= 99 || forecast.ConvergenceRatio >= 1);
        if (!stuck)
        {
            _hopeless = 0;
            return default;
        }

        if (++_hopeless >= 3 && _options.AllowPostcopy)
        {
            return new LibvirtDecision(LibvirtAction.StartPostcopy, null, Invariant(
                $"pre-copy cannot converge (dirty rate {forecast.ConvergenceRatio * 100:F0}% of bandwidth, throttle {state.ThrottlePercent}%): switching to postcopy"));
        }

        return default;
    }

    /// <summary>
    /// The xbzrle cache to grow to after an iteration that missed it for more than <see cref="CacheMissLimit"/> of its
    /// pages while it is smaller than twice the working set (the hot set does not fit), or null to keep it: at least twice the cache and twice the working set, as a
    /// power of two, at most half the guest's memory. QEMU empties the cache when it resizes it, so this happens
    /// only from the second iteration with deltas on (the first fills the cache) and at most <see cref="MaxCacheGrowths"/> times.
    /// </summary>
    /// <param name="last">The iteration just measured.</param>
    /// <param name="measured">How many iterations with deltas were measured so far.</param>
    /// <param name="cacheBytes">The cache now.</param>
    /// <param name="workingSetBytes">The pages dirtied between the last two syncs.</param>
    /// <param name="memoryBytes">The guest's memory.</param>
    internal ulong? GrowCache(XbzrleIteration last, int measured, ulong cacheBytes, ulong workingSetBytes, ulong memoryBytes)
    {
        ulong cap = Math.Max(StartPlan.MinXbzrleCache, memoryBytes / 2);

        // Misses with room for the working set twice over are not for lack of room (QEMU keys the cache by
        // a hash of the address); right after a resize the emptied cache misses everything once.
        if (measured < 2 || measured < _measuredAtGrowth + 2 || last.MissRatio <= CacheMissLimit || cacheBytes >= cap
            || cacheBytes >= 2 * workingSetBytes || _cacheGrowths >= MaxCacheGrowths)
        {
            return null;
        }

        ulong wanted = Math.Max(cacheBytes * 2, BitOperations.RoundUpToPowerOf2(Math.Max(workingSetBytes, 1) * 2));
        _cacheGrowths++;
        _measuredAtGrowth = measured;
        return Math.Min(wanted, StartPlan.FloorPowerOfTwo(cap));
    }

    private static string Ms(TimeSpan t) => Invariant($"{t.TotalMilliseconds:F0} ms");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
