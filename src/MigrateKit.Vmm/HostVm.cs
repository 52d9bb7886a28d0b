using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using MigrateKit.Guests;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tracking;

namespace MigrateKit.Vmm;

/// <summary>
/// A VM without KVM: guest memory this process owns and one host thread that runs a
/// <see cref="HostWorkload"/> over it, with the controls a VMM has over a vCPU — pause (the
/// thread parks between two page writes), a pace limit and a throttle — and its progress as
/// device state, so it migrates like a <see cref="MicroVm"/>. Its writes are tracked exactly
/// by a <see cref="WriteProtectTracker"/>. Use it where <c>/dev/kvm</c> is absent, or as the
/// model of a VMM whose guest memory is written by its own threads.
/// </summary>
public sealed class HostVm : IWorkloadVm
{
    private readonly GuestMemoryLayout _memory;
    private readonly RunGate _run = new();

    // The run gate's lock: one lock for the VM's state and what its guest reports, so a waiter is never missed.
    private readonly object _gate;
    private readonly PaceControl _pace = new();

    // One worker thread at a time writes through it; a new worker restarts its schedule.
    private readonly Pacer _pacer;
    private HostWorkload? _workload;
    private HostWorkerState _state;
    private Thread? _thread;

    // Set by Start: a worker started ahead by EstimateResumeCost waits for it.
    private bool _started;
    private bool _running;
    private string? _fault;
    private bool _disposed;

    /// <summary>Creates a VM with guest memory laid out as given and no workload yet.</summary>
    /// <exception cref="ArgumentException">The layout is invalid.</exception>
    public HostVm(IEnumerable<GuestMemoryRegionSpec> regions)
    {
        _gate = _run.Lock;
        _pacer = new Pacer(_pace, TimeProvider.System, _run.Hold);
        _memory = new GuestMemoryLayout(regions);
    }

    /// <summary>Creates a VM with one region of <paramref name="memorySize"/> bytes at guest-physical 0.</summary>
    public HostVm(ulong memorySize)
        : this([new GuestMemoryRegionSpec(0, memorySize)])
    {
    }

    /// <summary>The guest memory.</summary>
    public GuestMemoryLayout Memory => _memory;

    /// <summary>A name for logs.</summary>
    public string Name => $"hostvm ({_memory.TotalSize >> 20} MiB, 1 worker)";

    /// <summary>Always 1: one worker thread.</summary>
    public int VcpuCount => 1;

    /// <summary>The pages/s limit, or 0 for none.</summary>
    public double PaceLimit => _pace.PaceLimit;

    /// <summary>The throttle percentage (0 to 99).</summary>
    public int ThrottlePercent => _pace.ThrottlePercent;

    /// <summary>Whether the worker thread runs and is not paused.</summary>
    public bool IsRunning
    {
        get
        {
            lock (_gate)
            {
                return _running && !_run.PauseRequested && !_run.StopRequested;
            }
        }
    }

    /// <summary>The worker thread: null until <see cref="EstimateResumeCost"/> readies it or <see cref="Start"/> starts it.</summary>
    internal Thread? WorkerThread
    {
        get
        {
            lock (_gate)
            {
                return _thread;
            }
        }
    }

    /// <summary>The workload, once loaded or restored.</summary>
    public HostWorkload? Workload => _workload;

    /// <summary>Creates a tracker for all of the VM's memory.</summary>
    public WriteProtectTracker CreateTracker() => new(_memory);

    /// <summary>Sets the workload; it starts at pass 1 on <see cref="Start"/>.</summary>
    /// <exception cref="ArgumentException">The workload is invalid (one built with its constructor rather than a factory: a reversed or unaligned range, a seed of 0, ...), or a range of it is not inside one region.</exception>
    /// <exception cref="InvalidOperationException">The VM is running.</exception>
    public void Load(HostWorkload workload)
    {
        ArgumentNullException.ThrowIfNull(workload);

        // The record's constructor is public: what the factories check is checked here too, not by a worker that faults.
        if (workload.Kind != HostWorkloadKind.Idle)
        {
            HostWorkload.Checked(workload);
        }

        lock (_gate)
        {
            if (_started)
            {
                throw new InvalidOperationException("Workloads are loaded before Start.");
            }

            CheckBacked(workload);
            _workload = workload;
            _state = HostWorkerState.Initial(workload);
        }
    }

    /// <summary>Starts the worker: wakes the thread <see cref="EstimateResumeCost"/> started ahead, or starts one.</summary>
    /// <exception cref="InvalidOperationException">No workload, already started, or stopped.</exception>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_workload is null)
            {
                throw new InvalidOperationException("Load a workload (or restore device state) before Start.");
            }

            if (_started)
            {
                throw new InvalidOperationException("The VM has already started.");
            }

            if (_run.StopRequested)
            {
                throw new InvalidOperationException("The VM was stopped: it cannot start.");
            }

            _started = true;
            _running = true;
            _run.Starting();
            if (_thread is null)
            {
                _thread = new Thread(Run) { IsBackground = true, Name = "hostvm worker" };
                _thread.Start();
            }
            else
            {
                Monitor.PulseAll(_gate);
            }
        }
    }

    /// <summary>Parks the worker between two page writes; returns how long that took.</summary>
    public TimeSpan Pause()
    {
        long start = Stopwatch.GetTimestamp();
        lock (_gate)
        {
            _run.SetPause(true);
            _run.WaitUntilNoneRunning();
        }

        return Stopwatch.GetElapsedTime(start);
    }

    /// <summary>Lets a paused worker go on.</summary>
    public void Resume() => _run.SetPause(false);

    /// <inheritdoc/>
    public bool IsPaused => _run.PauseRequested;

    /// <summary>Limits the worker to <paramref name="pagesPerSecond"/> page writes per second (0 = none).</summary>
    public void SetPaceLimit(double pagesPerSecond) => _pace.SetPaceLimit(pagesPerSecond);

    /// <inheritdoc/>
    public void SetThrottlePercent(int percent) => _pace.SetThrottlePercent(percent);

    /// <summary>The workload's progress: passes completed, self-check failures, pages written, halted, fault.</summary>
    public VcpuStatus GetStatus()
    {
        lock (_gate)
        {
            return new VcpuStatus(0, _state.Pass - 1, _state.Failures, _state.FirstFailedPage, _state.PagesWritten, _state.Halted, _fault, _pacer.Held);
        }
    }

    /// <inheritdoc/>
    IReadOnlyList<VcpuStatus> IWorkloadVm.GetStatus() => [GetStatus()];

    /// <inheritdoc/>
    IDirtyPageTracker IWorkloadVm.CreateTracker() => CreateTracker();

    /// <summary>Waits until at least <paramref name="passes"/> passes are complete.</summary>
    public bool WaitForPass(uint passes, TimeSpan timeout)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        lock (_gate)
        {
            while (_state.Pass - 1 < passes && _fault is null && !_state.Halted)
            {
                long left = deadline - Stopwatch.GetTimestamp();
                if (left <= 0)
                {
                    return false;
                }

                Monitor.Wait(_gate, TimeSpan.FromSeconds(Math.Min((double)left / Stopwatch.Frequency, 0.05)));
            }

            return _state.Pass - 1 >= passes;
        }
    }

    /// <summary>Stops the worker for good (memory stays readable until <see cref="Dispose"/>).</summary>
    public void Stop()
    {
        Thread? t;
        lock (_gate)
        {
            _run.RequestStop();
            t = _thread;
        }

        t?.Join();
    }

    /// <inheritdoc/>
    public byte[] SaveDeviceState()
    {
        lock (_gate)
        {
            if (_run.Running > 0)
            {
                throw new InvalidOperationException("Device state is saved while the VM is paused.");
            }

            return HostDeviceState.Write(_workload ?? HostWorkload.Idle(), _state, _started);
        }
    }

    /// <inheritdoc/>
    /// <exception cref="FormatException">The state is not a HostVm state of this version.</exception>
    public void RestoreDeviceState(ReadOnlySpan<byte> state)
    {
        (HostWorkload w, HostWorkerState progress) = HostDeviceState.Read(state);
        lock (_gate)
        {
            if (_started)
            {
                throw new InvalidOperationException("Device state is restored before Start.");
            }

            if (w.Kind != HostWorkloadKind.Idle)
            {
                HostDeviceState.CheckWorkload(w);
                CheckBacked(w);
                HostDeviceState.CheckFits(w, progress);
            }

            _workload = w;
            _state = progress;
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Measured: a device-state round trip and waking a waiting thread, the work of a resume, the
    /// quickest of three. A VM not yet started is also readied for a quick start: its worker
    /// thread starts now and waits, and the restore and start paths are compiled, so neither a
    /// thread start (0.5 to 5 ms on a busy two-core host) nor the compiler falls within a
    /// migration's downtime. Before <see cref="Start"/> the round trip uses the VM's own state.
    /// </remarks>
    public TimeSpan EstimateResumeCost()
    {
        bool idle;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            idle = !_started;
            if (idle && _thread is null && !_run.StopRequested)
            {
                _thread = new Thread(WaitThenRun) { IsBackground = true, Name = "hostvm worker" };
                _thread.Start();
            }
        }

        JitWarmup.Prepare(typeof(HostVm));
        JitWarmup.Prepare(typeof(RunGate));
        JitWarmup.Prepare(typeof(HostDeviceState));
        JitWarmup.Prepare(typeof(HostWorkloadSteps));
        if (idle)
        {
            RoundTripOwnState();
        }

        // The quickest of three: a probe's noise (a wake delayed by a busy core) only adds.
        TimeSpan quickest = TimeSpan.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            long start = Stopwatch.GetTimestamp();
            if (idle)
            {
                RoundTripOwnState();
            }

            TimeSpan took = Stopwatch.GetElapsedTime(start) + ResumeProbe.WakeWaitingThread();
            quickest = took < quickest ? took : quickest;
        }

        return quickest;
    }

    // Saves and restores this VM's own state, keeping its workload and progress as they were.
    private void RoundTripOwnState()
    {
        HostWorkload? workload = _workload;
        HostWorkerState saved = _state;
        RestoreDeviceState(SaveDeviceState());
        lock (_gate)
        {
            _workload = workload;
            _state = saved;
        }
    }

    /// <summary>Stops the worker and unmaps the memory.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        Stop();
        _disposed = true;
        _memory.Dispose();
    }

    private void CheckBacked(HostWorkload w)
    {
        foreach (GuestRange r in w.Kind == HostWorkloadKind.HotCold ? [w.Range, w.Cold] : w.Kind == HostWorkloadKind.Idle ? Array.Empty<GuestRange>() : [w.Range])
        {
            if (!_memory.TryTranslate(r.Start, out GuestMemoryRegion region, out _) || r.End > region.End)
            {
                throw new ArgumentException($"The workload's range [0x{r.Start:x}, 0x{r.End:x}) is not inside one region of guest memory.");
            }
        }
    }

    // A worker started ahead: waits for Start, or ends with the VM if it never starts.
    private void WaitThenRun()
    {
        if (_run.WaitForRelease(() => _started))
        {
            // Start is called in the downtime by the thread that then sends the Ack. Woken on its
            // core, this CPU-bound worker would hold the core until the next tick, keeping that
            // thread (or the one the Ack wakes) waiting; measured on a two-core host, the commit
            // step took over 1 ms in 15 to 27 of some 45 switchovers, 2 to 8 with this one yield.
            Thread.Yield();
            Run();
        }
    }

    private void Run()
    {
        try
        {
            Work();
        }
        catch (Exception ex)
        {
            // A worker thread must never take the process down: the fault is the VM's status.
            lock (_gate)
            {
                _fault = $"{ex.GetType().Name}: {ex.Message}";
            }
        }
        finally
        {
            lock (_gate)
            {
                _running = false;
                _run.Ended();
            }
        }
    }

    private void Work()
    {
        HostWorkload w = _workload!;
        Pacer pacer = _pacer;
        pacer.Restart();
        while (true)
        {
            // The cursor names the next page; the state is only advanced under the lock, so a
            // pause sees a consistent (pass, position) pair and no write follows Pause's return.
            if (!Checkpoint(pacer, out HostWorkerState s))
            {
                return;
            }

            if (s.Halted || w.Kind == HostWorkloadKind.Idle)
            {
                lock (_gate)
                {
                    _state.Halted = true;
                }

                // A halted worker writes nothing more: it stays parked (so Pause returns at once) until the stop.
                _run.Park(static () => true);
                return;
            }

            (ulong address, bool lastInPass) = HostWorkloadSteps.Locate(w, s);
            long failure = HostWorkloadSteps.Writes(w, s) ? Write(w, address, s.Pass) : -1;
            lock (_gate)
            {
                if (HostWorkloadSteps.Advance(w, ref _state, failure, lastInPass))
                {
                    Monitor.PulseAll(_gate);
                }
            }

            pacer.PageWritten();
        }
    }

    private long Write(HostWorkload w, ulong address, uint pass)
    {
        _memory.TryTranslate(address, out GuestMemoryRegion region, out ulong offset);
        return HostWorkloadSteps.Write(w, region.GetSpan(offset, (int)GuestMemoryLayout.PageSize), HostWorkloadSteps.PageIndex(w, address), pass);
    }

    /// <summary>Parks while paused; false when the worker must stop.</summary>
    private bool Checkpoint(Pacer pacer, out HostWorkerState state)
    {
        lock (_gate)
        {
            if (_run.PauseRequested && !_run.StopRequested)
            {
                _run.Park(static () => false);
                pacer.Restart();
            }

            state = _state;
            return !_run.StopRequested;
        }
    }
}
