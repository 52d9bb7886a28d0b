using System;
using System.Diagnostics;
using System.Threading;

namespace MigrateKit.Vmm;

/// <summary>The parts of a resume every VM here shares, measured by doing them.</summary>
internal static class ResumeProbe
{
    /// <summary>
    /// How long waking a waiting thread takes until it runs: the resume of a VM whose threads
    /// were started ahead. Only the wake is timed, not the probe thread's start.
    /// </summary>
    internal static TimeSpan WakeWaitingThread()
    {
        var gate = new object();
        int step = 0;
        long woken = 0;
        var probe = new Thread(() =>
        {
            lock (gate)
            {
                step = 1;
                Monitor.PulseAll(gate);
                while (step == 1)
                {
                    Monitor.Wait(gate);
                }
            }

            woken = Stopwatch.GetTimestamp();
        })
        { IsBackground = true };
        probe.Start();
        long wake;
        lock (gate)
        {
            while (step == 0)
            {
                Monitor.Wait(gate);
            }

            step = 2;
            wake = Stopwatch.GetTimestamp();
            Monitor.PulseAll(gate);
        }

        probe.Join();
        return Stopwatch.GetElapsedTime(wake, woken);
    }
}
