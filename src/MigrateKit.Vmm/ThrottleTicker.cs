using System;
using System.Threading;

namespace MigrateKit.Vmm;

/// <summary>
/// Makes the vCPUs of a guest without a pace port exit every <see cref="Timeslice"/> while a
/// throttle is set, so that each can be held there for its share (<see cref="Pacer.TimesliceEnded"/>):
/// QEMU's <c>cpu-throttle</c> kicks each vCPU every 10 ms timeslice the same way. Without it a
/// guest that never exits to the VMM would never be throttled.
/// </summary>
internal sealed class ThrottleTicker : IDisposable
{
    /// <summary>How often the vCPUs are made to exit: QEMU's throttle timeslice.</summary>
    internal static readonly TimeSpan Timeslice = TimeSpan.FromMilliseconds(10);

    private readonly PaceControl _control;
    private readonly Action _kick;
    private readonly ITimer _timer;
    private readonly Lock _lock = new();
    private bool _ticking;
    private bool _disposed;

    /// <param name="control">The throttle to follow.</param>
    /// <param name="kick">Makes the running vCPUs exit.</param>
    /// <param name="time">The clock of the timer.</param>
    internal ThrottleTicker(PaceControl control, Action kick, TimeProvider time)
    {
        _control = control;
        _kick = kick;
        _timer = time.CreateTimer(_ => Tick(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Whether the timer runs: a throttle is set.</summary>
    internal bool Ticking
    {
        get
        {
            lock (_lock)
            {
                return _ticking;
            }
        }
    }

    /// <summary>Starts or stops the timer after the throttle changed.</summary>
    internal void Update()
    {
        lock (_lock)
        {
            bool wanted = _control.ThrottlePercent > 0;
            if (_disposed || wanted == _ticking)
            {
                return;
            }

            _ticking = wanted;
            TimeSpan period = wanted ? Timeslice : Timeout.InfiniteTimeSpan;
            _timer.Change(period, period);
        }
    }

    /// <summary>Stops the timer for good.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _ticking = false;
            _timer.Dispose();
        }
    }

    private void Tick()
    {
        if (_control.ThrottlePercent > 0)
        {
            _kick();
        }
    }
}
