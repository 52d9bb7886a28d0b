using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;

namespace MigrateKit.Tests.TestSupport;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that notices each timer the code under test arms, so a test
/// can move the clock exactly to it instead of sleeping on the real clock and guessing.
/// </summary>
internal sealed class SteppingClock : FakeTimeProvider
{
    private readonly SemaphoreSlim _armed = new(0);
    private long _nextDueTicks = -1;

    // One wait at a time: a wait left pending when the work ended would take the next signal.
    private Task? _armedWait;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ArmedTimer(this, base.CreateTimer(callback, state, dueTime, period));
        Armed(dueTime);
        return timer;
    }

    /// <summary>
    /// Waits for <paramref name="work"/>, advancing the clock to each timer it arms while it runs;
    /// fails if the work neither ends nor arms a timer within <paramref name="realTimeout"/>.
    /// </summary>
    public async Task RunAsync(Task work, TimeSpan realTimeout)
    {
        while (true)
        {
            _armedWait ??= _armed.WaitAsync();
            Task first = await Task.WhenAny(work, _armedWait).WaitAsync(realTimeout);
            if (first == work)
            {
                await work;
                return;
            }

            _armedWait = null;

            long due = Interlocked.Exchange(ref _nextDueTicks, -1);
            if (due > 0)
            {
                Advance(TimeSpan.FromTicks(due));
            }
        }
    }

    private void Armed(TimeSpan dueTime)
    {
        if (dueTime != Timeout.InfiniteTimeSpan && dueTime >= TimeSpan.Zero)
        {
            Interlocked.Exchange(ref _nextDueTicks, dueTime.Ticks);
            _armed.Release();
        }
    }

    /// <summary>Reports re-arming through <see cref="ITimer.Change"/> too.</summary>
    private sealed class ArmedTimer(SteppingClock clock, ITimer inner) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            bool changed = inner.Change(dueTime, period);
            clock.Armed(dueTime);
            return changed;
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
