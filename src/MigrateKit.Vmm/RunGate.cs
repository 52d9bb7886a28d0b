using System;
using System.Threading;

namespace MigrateKit.Vmm;

/// <summary>
/// What the guest-running threads of one VM share with the VM: one lock, the pause and stop
/// requests, and how many threads are running guest code rather than parked. The VM pauses by
/// requesting it and waiting until none is running; a thread parks between two guest steps.
/// </summary>
internal sealed class RunGate
{
    private int _pauseRequested;
    private int _stopRequested;
    private int _running;

    /// <summary>The lock every change of the VM's state and every report of its guest takes.</summary>
    internal object Lock { get; } = new();

    internal bool PauseRequested => Volatile.Read(ref _pauseRequested) == 1;

    internal bool StopRequested => Volatile.Read(ref _stopRequested) == 1;

    /// <summary>Threads running guest code (started, not parked, not ended).</summary>
    internal int Running => Volatile.Read(ref _running);

    /// <summary>Counts a thread about to start.</summary>
    internal void Starting()
    {
        lock (Lock)
        {
            _running++;
        }
    }

    /// <summary>Sets or clears the pause request and wakes every waiter.</summary>
    internal void SetPause(bool requested)
    {
        lock (Lock)
        {
            Volatile.Write(ref _pauseRequested, requested ? 1 : 0);
            Monitor.PulseAll(Lock);
        }
    }

    /// <summary>Requests every thread to end, for good, and wakes every waiter.</summary>
    internal void RequestStop()
    {
        lock (Lock)
        {
            Volatile.Write(ref _stopRequested, 1);
            Monitor.PulseAll(Lock);
        }
    }

    /// <summary>Waits until no thread runs guest code. Called with <see cref="Lock"/> held.</summary>
    internal void WaitUntilNoneRunning()
    {
        while (_running > 0)
        {
            Monitor.Wait(Lock);
        }
    }

    /// <summary>
    /// Parks the calling thread while a pause is requested or <paramref name="hold"/> says so,
    /// unless a stop is requested. Checked under the lock, so no wake-up is lost.
    /// </summary>
    internal void Park(Func<bool> hold)
    {
        lock (Lock)
        {
            _running--;
            Monitor.PulseAll(Lock);
            try
            {
                while (!StopRequested && (PauseRequested || hold()))
                {
                    Monitor.Wait(Lock);
                }
            }
            finally
            {
                _running++;
            }
        }
    }

    /// <summary>
    /// Holds a thread started ahead of its VM until <paramref name="released"/> says it may go or a
    /// stop is requested; returns whether it was released. It is not counted as running meanwhile.
    /// </summary>
    internal bool WaitForRelease(Func<bool> released)
    {
        lock (Lock)
        {
            while (!released() && !StopRequested)
            {
                Monitor.Wait(Lock);
            }

            return released();
        }
    }

    /// <summary>Waits up to <paramref name="time"/> unless a pause or stop is requested (they end it early).</summary>
    internal void Hold(TimeSpan time)
    {
        lock (Lock)
        {
            if (!PauseRequested && !StopRequested)
            {
                Monitor.Wait(Lock, time);
            }
        }
    }

    /// <summary>Runs <paramref name="report"/> under the lock and wakes every waiter (a pass, a fault).</summary>
    internal void Report(Action report)
    {
        lock (Lock)
        {
            report();
            Monitor.PulseAll(Lock);
        }
    }

    /// <summary>Uncounts a thread that has ended.</summary>
    internal void Ended()
    {
        lock (Lock)
        {
            _running--;
            Monitor.PulseAll(Lock);
        }
    }
}
