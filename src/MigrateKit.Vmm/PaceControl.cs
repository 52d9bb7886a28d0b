using System;
using System.Threading;

namespace MigrateKit.Vmm;

/// <summary>
/// The pace limit and throttle a VM's owner sets, read by the <see cref="Pacer"/> of every thread
/// that writes guest memory. Each change bumps <see cref="Generation"/> so pacers start afresh.
/// </summary>
internal sealed class PaceControl
{
    private double _paceLimit;
    private int _throttlePercent;
    private int _generation;

    /// <summary>The pages/s limit over all writers, or 0 for none.</summary>
    internal double PaceLimit => Volatile.Read(ref _paceLimit);

    /// <summary>The share of time (0 to 99 %) the writers are held.</summary>
    internal int ThrottlePercent => Volatile.Read(ref _throttlePercent);

    /// <summary>How many times a setting changed.</summary>
    internal int Generation => Volatile.Read(ref _generation);

    /// <exception cref="ArgumentOutOfRangeException">The limit is negative or NaN.</exception>
    internal void SetPaceLimit(double pagesPerSecond)
    {
        if (double.IsNaN(pagesPerSecond) || pagesPerSecond < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pagesPerSecond), pagesPerSecond, "The pace limit must be 0 (none) or positive.");
        }

        Volatile.Write(ref _paceLimit, pagesPerSecond);
        Interlocked.Increment(ref _generation);
    }

    /// <exception cref="ArgumentOutOfRangeException">The percentage is outside 0..99.</exception>
    internal void SetThrottlePercent(int percent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(percent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 99);
        Volatile.Write(ref _throttlePercent, percent);
        Interlocked.Increment(ref _generation);
    }
}
