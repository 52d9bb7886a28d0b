using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using MigrateKit.Guests;
using MigrateKit.Kvm;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Vmm;

/// <summary>
/// A minimal KVM virtual machine: guest memory it owns, vCPUs started directly in 32-bit
/// protected mode (flat segments, no paging, no BIOS) or booted from a boot sector in real mode
/// (<see cref="Boot(byte[], int)"/>), one run-loop thread per vCPU, and two I/O ports: a pace port
/// the guest writes after every page (where the VM can hold the vCPU to throttle it) and a status
/// port (pass numbers and self-check failures, as dwords or as text on a UART).
/// </summary>
public sealed partial class MicroVm : IWorkloadVm
{
    private readonly KvmSystem _kvm;
    private readonly KvmVm _vm;
    private readonly GuestMemoryLayout _memory;
    private readonly MemorySlot[] _slots;
    private readonly VcpuRunner[] _runners;
    private readonly RunGate _run = new();

    // The run gate's lock: one lock for the VM's state and what its guest reports, so a waiter is never missed.
    private readonly object _gate;
    private readonly PaceControl _pace = new();

    // For a guest without a pace port: the timer whose kicks let the vCPUs be throttled.
    private readonly ThrottleTicker? _ticker;
    private MicroVmState _state = MicroVmState.Created;
    private bool _disposed;

    private MicroVm(MicroVmOptions options)
    {
        Options = options;
        _gate = _run.Lock;
        _kvm = KvmSystem.Open(options.KvmPath);
        try
        {
            _vm = _kvm.CreateVm();
            IEnumerable<GuestMemoryRegionSpec> regions = options.Regions ?? [new GuestMemoryRegionSpec(0, options.MemorySize)];
            _memory = new GuestMemoryLayout(regions);
            if (options.ManualDirtyLogProtect)
            {
                _vm.EnableManualDirtyLogProtect(options.DirtyLogInitiallySet);
            }

            if (options.DirtyRingBytes != 0)
            {
                _vm.EnableDirtyRing(options.DirtyRingBytes);
            }

            _slots = _vm.MapMemory(_memory).ToArray();
            _runners = new VcpuRunner[options.VcpuCount];
            for (int i = 0; i < options.VcpuCount; i++)
            {
                KvmVcpu vcpu = _vm.CreateVcpu((uint)i);
                vcpu.SetSpecialRegisters(ProtectedMode.Flat32(vcpu.GetSpecialRegisters()));
                _runners[i] = new VcpuRunner(_run, vcpu, options.Ports, _pace, TimeProvider.System);
            }

            _ticker = options.Ports.Pace is null ? new ThrottleTicker(_pace, KickRunning, TimeProvider.System) : null;
        }
        catch
        {
            _vm?.Dispose();
            _memory?.Dispose();
            _kvm.Dispose();
            throw;
        }
    }

    /// <summary>Builds a VM: opens KVM, maps memory, creates the vCPUs in protected mode.</summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <exception cref="KvmException">KVM refused a step.</exception>
    public static MicroVm Create(MicroVmOptions? options = null)
    {
        options ??= new MicroVmOptions();
        options.Validate();
        return new MicroVm(options);
    }

    /// <summary>The options the VM was built with.</summary>
    public MicroVmOptions Options { get; }

    /// <summary>The KVM VM, for trackers and advanced use.</summary>
    public KvmVm Vm => _vm;

    /// <summary>The guest memory.</summary>
    public GuestMemoryLayout Memory => _memory;

    /// <summary>The memory slots, one per region, in region order.</summary>
    public IReadOnlyList<MemorySlot> Slots => _slots;

    /// <summary>The number of vCPUs.</summary>
    public int VcpuCount => _runners.Length;

    /// <summary>The current state.</summary>
    public MicroVmState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>How long the last <see cref="Pause"/> took until every vCPU was parked.</summary>
    public TimeSpan LastPauseLatency { get; private set; }

    /// <summary>The pages/s limit set by <see cref="SetPaceLimit"/>, or 0 for none.</summary>
    public double PaceLimit => _pace.PaceLimit;

    /// <summary>The throttle set by <see cref="SetThrottlePercent"/> (0 to 99).</summary>
    public int ThrottlePercent => _pace.ThrottlePercent;

    /// <summary>Whether the vCPUs run guest code: <see cref="State"/> is <see cref="MicroVmState.Running"/>.</summary>
    public bool IsRunning => State == MicroVmState.Running;

    /// <summary>Creates a tracker for all of the VM's memory: the dirty ring when enabled, else the bitmap.</summary>
    public Tracking.IDirtyPageTracker CreateTracker() =>
        _vm.DirtyRingBytes != 0 ? new Tracking.KvmDirtyRingTracker(_vm, _slots) : new Tracking.KvmDirtyLogTracker(_vm, _slots);

    /// <summary>Places a program in guest memory and points a vCPU at it.</summary>
    /// <exception cref="ArgumentException">The program or its working set does not fit in guest memory.</exception>
    /// <exception cref="InvalidOperationException">The VM has already started.</exception>
    public void Load(GuestProgram program, int vcpu = 0)
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentOutOfRangeException.ThrowIfNegative(vcpu);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(vcpu, _runners.Length);
        lock (_gate)
        {
            if (_state != MicroVmState.Created)
            {
                throw new InvalidOperationException("Programs are loaded before Start.");
            }

            if (program.Ports != Options.Ports)
            {
                throw new ArgumentException($"The program uses ports {program.Ports}; this VM listens on {Options.Ports}.", nameof(program));
            }

            CheckBacked(program.CodeRange, "code");
            foreach (GuestRange w in program.Writes)
            {
                CheckBacked(w, "working set");
            }

            program.Code.CopyTo(_memory.GetSpan(program.LoadAddress, program.Code.Length));
            KvmVcpu v = _runners[vcpu].Vcpu;
            KvmRegisters regs = default;
            regs.Rip = program.LoadAddress;
            regs.Rflags = 0x2;
            v.SetRegisters(regs);
            _runners[vcpu].Program = program;
        }
    }

    /// <summary>The vCPUs' run-loop threads (null for a vCPU whose thread never started).</summary>
    internal IReadOnlyList<Thread?> VcpuThreads => _runners.Select(r => r.Thread).ToArray();

    /// <summary>Starts a run-loop thread for every vCPU that has a program.</summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state != MicroVmState.Created)
            {
                throw new InvalidOperationException($"The VM is {_state}; Start is allowed once.");
            }

            if (!_runners.Any(r => r.HasWork))
            {
                throw new InvalidOperationException("No vCPU has a program: Load one (or RestoreVcpuState) before Start.");
            }

            _state = MicroVmState.Running;
            foreach (VcpuRunner r in _runners)
            {
                if (r.HasWork)
                {
                    _run.Starting();
                    r.Start();
                }
                else
                {
                    r.Dismiss();
                }
            }
        }
    }

    /// <summary>
    /// Parks every vCPU outside <c>KVM_RUN</c> and returns how long that took (also in
    /// <see cref="LastPauseLatency"/>). No guest write happens between the return and <see cref="Resume"/>.
    /// </summary>
    public TimeSpan Pause()
    {
        long start = Stopwatch.GetTimestamp();
        lock (_gate)
        {
            if (_state == MicroVmState.Paused)
            {
                return TimeSpan.Zero;
            }

            if (_state != MicroVmState.Running)
            {
                throw new InvalidOperationException($"The VM is {_state}; only a running VM can be paused.");
            }

            _run.SetPause(true);
            foreach (VcpuRunner r in _runners)
            {
                r.Kick();
            }

            _run.WaitUntilNoneRunning();

            _state = MicroVmState.Paused;
        }

        LastPauseLatency = Stopwatch.GetElapsedTime(start);
        return LastPauseLatency;
    }

    /// <inheritdoc/>
    public bool IsPaused
    {
        get
        {
            lock (_gate)
            {
                return _state == MicroVmState.Paused;
            }
        }
    }

    /// <summary>Lets parked vCPUs run again.</summary>
    public void Resume()
    {
        lock (_gate)
        {
            if (_state != MicroVmState.Paused)
            {
                throw new InvalidOperationException($"The VM is {_state}; only a paused VM can be resumed.");
            }

            _state = MicroVmState.Running;
            _run.SetPause(false);
        }
    }

    /// <summary>
    /// Holds the guest to at most <paramref name="pagesPerSecond"/> page writes per second (pace-port
    /// writes, spread over the running vCPUs); 0 removes the limit. A guest without a pace port
    /// (<see cref="GuestPorts.Com1"/>) gives no page counts, so the limit has no effect on it: use
    /// <see cref="SetThrottlePercent"/>.
    /// </summary>
    public void SetPaceLimit(double pagesPerSecond) => _pace.SetPaceLimit(pagesPerSecond);

    /// <summary>
    /// Holds each vCPU at its pace-port exits so that it runs only <c>100 - percent</c> % of the time;
    /// 0 removes the throttle. A guest without a pace port is made to exit every 10 ms while the
    /// throttle is set and held there, as QEMU's <c>cpu-throttle</c> does.
    /// </summary>
    public void SetThrottlePercent(int percent)
    {
        _pace.SetThrottlePercent(percent);
        _ticker?.Update();
    }

    /// <summary>What each vCPU's program has reported.</summary>
    public IReadOnlyList<VcpuStatus> GetStatus() => _runners.Select(r => r.Status).ToArray();

    /// <summary>How many times a vCPU exited because its dirty ring was full (each absorbed by collecting the rings).</summary>
    public long DirtyRingFullExits => _runners.Sum(r => r.DirtyRingFullExits);

    /// <summary>The sum of pages written (pace-port writes) over all vCPUs.</summary>
    public long PagesWritten => _runners.Sum(r => r.PagesWritten);

    /// <summary>Waits until vCPU <paramref name="vcpu"/> reports pass <paramref name="pass"/> or later.</summary>
    /// <returns>false on timeout, or when the vCPU faulted.</returns>
    public bool WaitForPass(uint pass, TimeSpan timeout, int vcpu = 0)
    {
        VcpuRunner r = _runners[vcpu];
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        lock (_gate)
        {
            while (r.Passes < pass && r.Fault is null)
            {
                long left = deadline - Stopwatch.GetTimestamp();
                if (left <= 0)
                {
                    return false;
                }

                Monitor.Wait(_gate, TimeSpan.FromSeconds(Math.Min(1.0, (double)left / Stopwatch.Frequency)));
            }

            return r.Fault is null;
        }
    }

    /// <summary>Saves the registers of every vCPU. The VM must be paused, stopped or not yet started.</summary>
    public IReadOnlyList<VcpuState> SaveVcpuState()
    {
        lock (_gate)
        {
            if (_state == MicroVmState.Running)
            {
                throw new InvalidOperationException("Pause the VM before saving vCPU state.");
            }

            return _runners.Select(r => new VcpuState(r.Vcpu.Id, r.Vcpu.GetRegisters(), r.Vcpu.GetSpecialRegisters(), r.Thread is not null || r.HasWork)).ToArray();
        }
    }

    /// <summary>
    /// Loads saved registers into the vCPUs of a VM that has not started (a migration destination);
    /// <see cref="Start"/> then runs every restored vCPU from where it was saved.
    /// </summary>
    public void RestoreVcpuState(IReadOnlyList<VcpuState> states)
    {
        ArgumentNullException.ThrowIfNull(states);
        lock (_gate)
        {
            if (_state != MicroVmState.Created)
            {
                throw new InvalidOperationException("vCPU state is restored before Start.");
            }

            if (states.Count != _runners.Length)
            {
                throw new ArgumentException($"{states.Count} vCPU states for a VM with {_runners.Length} vCPUs.", nameof(states));
            }

            foreach (VcpuState s in states)
            {
                if (s.Id >= _runners.Length)
                {
                    throw new ArgumentException($"vCPU state for id {s.Id}, which this VM does not have.", nameof(states));
                }

                VcpuRunner r = _runners[s.Id];
                r.Vcpu.SetSpecialRegisters(s.SpecialRegisters);
                r.Vcpu.SetRegisters(s.Registers);
                r.Restored = s.Running;
            }
        }
    }

    /// <summary>Ends the vCPU threads (the guest stops where it is).</summary>
    public void Stop()
    {
        VcpuRunner[] started;
        lock (_gate)
        {
            if (_state == MicroVmState.Stopped || (_state == MicroVmState.Created && !_runners.Any(r => r.Prestarted)))
            {
                _state = MicroVmState.Stopped;
                return;
            }

            _run.RequestStop();
            started = _runners.Where(r => r.Thread is not null).ToArray();
            foreach (VcpuRunner r in started)
            {
                r.Kick();
            }
        }

        foreach (VcpuRunner r in started)
        {
            r.Thread!.Join();
        }

        lock (_gate)
        {
            _state = MicroVmState.Stopped;
        }
    }

    /// <summary>A name for logs: "microvm" with its memory size and vCPU count.</summary>
    public string Name => $"microvm ({_memory.TotalSize >> 20} MiB, {_runners.Length} vCPU)";

    /// <inheritdoc/>
    GuestMemoryLayout IMigrationSource.Memory => _memory;

    /// <inheritdoc/>
    GuestMemoryLayout IMigrationTarget.Memory => _memory;

    /// <inheritdoc/>
    byte[] IMigrationSource.SaveDeviceState() => VcpuState.Serialize(SaveVcpuState());

    /// <inheritdoc/>
    void IMigrationTarget.RestoreDeviceState(ReadOnlySpan<byte> state) => RestoreVcpuState(VcpuState.Deserialize(state));

    /// <inheritdoc/>
    /// <remarks>
    /// Measured: a register round trip on every vCPU and waking a waiting thread, the work of
    /// <see cref="Start"/> on a VM not yet started. Such a VM is also readied for a quick start:
    /// its vCPU threads start now and wait, and the restore and start paths are compiled, so
    /// neither a thread start nor the JIT falls within a migration's downtime.
    /// </remarks>
    TimeSpan IMigrationTarget.EstimateResumeCost()
    {
        lock (_gate)
        {
            if (_state == MicroVmState.Created && !_runners.Any(r => r.Prestarted))
            {
                foreach (VcpuRunner r in _runners)
                {
                    r.Prestart();
                }
            }
        }

        JitWarmup.Prepare(typeof(MicroVm));
        JitWarmup.Prepare(typeof(VcpuRunner));
        JitWarmup.Prepare(typeof(VcpuState));
        JitWarmup.Prepare(typeof(RunGate));
        JitWarmup.Prepare(typeof(KvmVcpu));
        long start = Stopwatch.GetTimestamp();
        foreach (VcpuRunner r in _runners)
        {
            r.Vcpu.SetSpecialRegisters(r.Vcpu.GetSpecialRegisters());
            r.Vcpu.SetRegisters(r.Vcpu.GetRegisters());
        }

        return Stopwatch.GetElapsedTime(start) + ResumeProbe.WakeWaitingThread();
    }

    /// <inheritdoc/>
    bool IWorkloadVm.WaitForPass(uint passes, TimeSpan timeout) => WaitForPass(passes, timeout);

    /// <summary>Stops the vCPUs and releases the VM and its memory.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        Stop();
        _ticker?.Dispose();
        _disposed = true;
        _vm.Dispose();
        _memory.Dispose();
        _kvm.Dispose();
    }

    /// <summary>Makes the vCPUs of a running VM exit (the <see cref="ThrottleTicker"/>'s tick).</summary>
    private void KickRunning()
    {
        lock (_gate)
        {
            // A stopped VM's vCPUs may be gone: kick only while running.
            if (_state != MicroVmState.Running)
            {
                return;
            }

            foreach (VcpuRunner r in _runners)
            {
                r.Kick();
            }
        }
    }

    private void CheckBacked(GuestRange range, string what)
    {
        if (!_memory.TryTranslate(range.Start, out GuestMemoryRegion region, out _) || range.End > region.End)
        {
            throw new ArgumentException($"The program's {what} [0x{range.Start:x}, 0x{range.End:x}) is not inside one region of guest memory.");
        }
    }
}
