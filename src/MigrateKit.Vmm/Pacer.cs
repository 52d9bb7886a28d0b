using System;
using System.Threading;

namespace MigrateKit.Vmm;

/// <summary>
/// Holds one guest-writing thread (a vCPU, a HostVm worker) after a page write so that it keeps
/// to its share of the <see cref="PaceControl"/>'s pages/s limit and runs only
/// <c>100 - throttle</c> % of the time. One per thread; not thread-safe.
/// </summary>
internal sealed class Pacer
{
    // A thread this far behind its schedule (a pause, a slow stretch) starts a new window instead of bursting to catch up.
    private const double MaxLagSeconds = 0.1;

    // Holds are whole milliseconds at least (shorter ones carry over to the next page) and at most
    // 100 ms, so a change of the settings is seen soon.
    private const double MinHoldSeconds = 0.001;
    private const double MaxHoldSeconds = 0.1;

    private readonly PaceControl _control;
    private readonly TimeProvider _time;
    private readonly Action<TimeSpan> _hold;
    private bool _windowOpen;
    private long _windowStart;
    private long _windowPages;
    private long _lastMark;
    private double _throttleDebt;
    private int _generation = -1;
    private long _heldTicks;

    /// <param name="control">The settings to keep to.</param>
    /// <param name="time">The clock the schedule is measured with.</param>
    /// <param name="hold">Waits up to the given time; the owner's wait, which ends early for a pause or a stop.</param>
    internal Pacer(PaceControl control, TimeProvider time, Action<TimeSpan> hold)
    {
        _control = control;
        _time = time;
        _hold = hold;
        _lastMark = time.GetTimestamp();
    }

    /// <summary>How long the thread was held so far (readable from any thread).</summary>
    internal TimeSpan Held => TimeSpan.FromTicks(Volatile.Read(ref _heldTicks));

    /// <summary>Forgets the schedule after the thread was parked: time parked is neither run time nor lag.</summary>
    internal void Restart()
    {
        _lastMark = _time.GetTimestamp();
        _windowOpen = false;
    }

    /// <summary>Counts one page write and holds the thread as long as the settings ask.</summary>
    /// <param name="writers">How many threads share the pages/s limit.</param>
    internal void PageWritten(int writers = 1) => Hold(writers, pace: true);

    /// <summary>
    /// Holds the thread for the throttle owed for the time run since the last hold, at an exit a
    /// timer forced (a guest without a pace port, see <see cref="ThrottleTicker"/>). The pages/s
    /// limit is not kept here: without pace-port writes there are no pages to count.
    /// </summary>
    internal void TimesliceEnded() => Hold(1, pace: false);

    private void Hold(int writers, bool pace)
    {
        double limit = pace ? _control.PaceLimit : 0;
        int percent = _control.ThrottlePercent;
        int generation = _control.Generation;
        long now = _time.GetTimestamp();
        if (generation != _generation)
        {
            _generation = generation;
            _windowOpen = false;
            _throttleDebt = 0;
            _lastMark = now;
        }

        double wait = Math.Max(limit > 0 ? PaceWait(now, limit / Math.Max(1, writers)) : 0, percent > 0 ? ThrottleWait(now, percent) : 0);
        if (wait >= MinHoldSeconds)
        {
            long before = _time.GetTimestamp();
            _hold(TimeSpan.FromSeconds(Math.Min(wait, MaxHoldSeconds)));
            TimeSpan held = _time.GetElapsedTime(before);
            Volatile.Write(ref _heldTicks, _heldTicks + held.Ticks);
            _throttleDebt = Math.Max(0, _throttleDebt - held.TotalSeconds);
        }

        _lastMark = _time.GetTimestamp();
    }

    /// <summary>Seconds until this page is due at <paramref name="pagesPerSecond"/>.</summary>
    private double PaceWait(long now, double pagesPerSecond)
    {
        if (!_windowOpen)
        {
            _windowOpen = true;
            _windowStart = now;
            _windowPages = 0;
        }

        _windowPages++;
        double due = _windowPages / pagesPerSecond;
        double elapsed = Seconds(now - _windowStart);
        if (elapsed - due > MaxLagSeconds)
        {
            _windowStart = now;
            _windowPages = 0;
            return 0;
        }

        return Math.Max(0, due - elapsed);
    }

    /// <summary>Seconds of hold owed for the time run since the last page, at <paramref name="percent"/> % throttle.</summary>
    private double ThrottleWait(long now, int percent)
    {
        _throttleDebt += Seconds(now - _lastMark) * percent / (100.0 - percent);
        return _throttleDebt;
    }

    private double Seconds(long ticks) => (double)ticks / _time.TimestampFrequency;
}
