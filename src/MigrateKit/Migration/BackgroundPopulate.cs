using System;
using System.Collections.Generic;
using System.Threading;
using MigrateKit.Memory;

namespace MigrateKit.Migration;

/// <summary>
/// A thread of the destination's session that prepares its fresh memory while the receiving
/// thread works: it walks the regions that held nothing before the session, one after another,
/// until a walk says to end, <see cref="Stop"/> is asked, or the memory is released under it
/// (which ends it quietly). <see cref="Dispose"/> waits for it, so that nothing touches the memory
/// afterwards. What a walk does is the derived class's: <see cref="PopulateAhead"/> backs a window
/// ahead of round 0's data, <see cref="PopulateHoles"/> backs and writes the short zero runs behind it.
/// </summary>
internal abstract class BackgroundPopulate : IDisposable
{
    private readonly bool _idle;
    private readonly Lock _gate = new();
    private Thread? _thread;
    private volatile bool _stop;

    /// <param name="regions">The destination's regions; null where the region held memory before the session (it is left alone).</param>
    /// <param name="idle">Whether the thread runs only on a CPU nothing else wants (<c>SCHED_IDLE</c>).</param>
    private protected BackgroundPopulate(IReadOnlyList<GuestMemoryRegion?> regions, bool idle)
    {
        Regions = [.. regions];
        _idle = idle;
    }

    /// <summary>Whether the thread has finished (or never started).</summary>
    internal bool Finished => _thread is null || !_thread.IsAlive;

    /// <summary>The regions, null where one is left alone.</summary>
    private protected GuestMemoryRegion?[] Regions { get; }

    /// <summary>Whether the thread was asked to stop: a walk checks it between calls.</summary>
    private protected bool Stopping => _stop;

    /// <summary>Asks the thread to stop after its current call, without waiting.</summary>
    internal void Stop() => _stop = true;

    /// <summary>Stops the thread and waits for it: after this, nothing touches the memory.</summary>
    public void Dispose()
    {
        Thread? thread;
        lock (_gate)
        {
            // Another thread may dispose while the receiving thread starts it: a thread is
            // joined only once started, and none starts after this.
            _stop = true;
            thread = _thread;
        }

        thread?.Join();
    }

    /// <summary>Starts the thread once, unless it was stopped first; a derived class calls it once its own fields are set.</summary>
    private protected void Start(string name)
    {
        lock (_gate)
        {
            if (_stop || _thread is not null)
            {
                return;
            }

            _thread = new Thread(Run) { IsBackground = true, Name = name };
            _thread.Start();
        }
    }

    /// <summary>Prepares one region; false ends the thread, with nothing left for it to do (the memory cannot be populated here). A walk that must end otherwise calls <see cref="Stop"/>.</summary>
    private protected abstract bool Walk(int index, GuestMemoryRegion region);

    private void Run()
    {
        if (_idle)
        {
            _ = Interop.NativeMethods.ThreadIdle();
        }

        try
        {
            for (int i = 0; i < Regions.Length && !_stop; i++)
            {
                if (Regions[i] is { } region && !Walk(i, region))
                {
                    return;
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // The memory was released under the thread (its owner did not stop it first): nothing is left to do.
        }
    }
}
