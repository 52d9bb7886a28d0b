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

/// <summary>Where a <see cref="MicroVm"/> is in its life.</summary>
public enum MicroVmState
{
    /// <summary>Built; programs can be loaded; no vCPU has run.</summary>
    Created,
    /// <summary>vCPU threads are running guest code.</summary>
    Running,
    /// <summary>Every vCPU is parked outside <c>KVM_RUN</c>.</summary>
    Paused,
    /// <summary>vCPU threads have ended.</summary>
    Stopped,
}

/// <summary>What a vCPU's guest program has reported so far.</summary>
/// <param name="VcpuId">The vCPU.</param>
/// <param name="Passes">The last pass number written to the status port.</param>
/// <param name="Failures">Self-check failures reported.</param>
/// <param name="FirstFailedPage">The page index of the first failure, or -1.</param>
/// <param name="PagesWritten">Pace-port writes: pages the program has written.</param>
/// <param name="Halted">Whether the vCPU executed <c>hlt</c>.</param>
/// <param name="Fault">Why the vCPU stopped for good (shutdown, entry failure, MMIO), or null.</param>
public readonly record struct VcpuStatus(uint VcpuId, uint Passes, long Failures, long FirstFailedPage, long PagesWritten, bool Halted, string? Fault);

/// <summary>
/// A minimal KVM virtual machine: guest memory it owns, vCPUs started directly in 32-bit
/// protected mode (flat segments, no paging, no BIOS), one run-loop thread per vCPU, and two
/// I/O ports: a pace port the guest writes after every page (where the VM can hold the vCPU to
/// throttle it) and a status port (pass numbers and self-check failures).
/// </summary>
public sealed class MicroVm : IMigrationSource, IMigrationTarget
{
    private readonly KvmSystem _kvm;
    private readonly KvmVm _vm;
    private readonly GuestMemoryLayout _memory;
    private readonly MemorySlot[] _slots;
    private readonly Runner[] _runners;
    private readonly object _gate = new();
    private int _pauseRequested;
    private int _stopRequested;
    private int _active;
    private double _paceLimit;
    private int _throttlePercent;
    private int _throttleGeneration;
    private long _dirtyRingFullExits;
    private MicroVmState _state = MicroVmState.Created;
    private bool _disposed;

    private MicroVm(MicroVmOptions options)
    {
        Options = options;
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
            _runners = new Runner[options.VcpuCount];
            for (int i = 0; i < options.VcpuCount; i++)
            {
                KvmVcpu vcpu = _vm.CreateVcpu((uint)i);
                SetProtectedMode(vcpu);
                _runners[i] = new Runner(this, vcpu);
            }
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
    public double PaceLimit => Volatile.Read(ref _paceLimit);

    /// <summary>The throttle set by <see cref="SetThrottlePercent"/> (0 to 99).</summary>
    public int ThrottlePercent => Volatile.Read(ref _throttlePercent);

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

            if (_runners.All(r => r.Program is null && !r.Restored))
            {
                throw new InvalidOperationException("No vCPU has a program: Load one (or RestoreVcpuState) before Start.");
            }

            _state = MicroVmState.Running;
            foreach (Runner r in _runners.Where(r => r.Program is not null || r.Restored))
            {
                _active++;
                r.Start();
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

            Volatile.Write(ref _pauseRequested, 1);
            Monitor.PulseAll(_gate);
            foreach (Runner r in _runners)
            {
                r.Kick();
            }

            while (_active > 0)
            {
                Monitor.Wait(_gate);
            }

            _state = MicroVmState.Paused;
        }

        LastPauseLatency = Stopwatch.GetElapsedTime(start);
        return LastPauseLatency;
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

            Volatile.Write(ref _pauseRequested, 0);
            _state = MicroVmState.Running;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Holds the guest to at most <paramref name="pagesPerSecond"/> page writes per second (pace-port
    /// writes, spread over the running vCPUs); 0 removes the limit.
    /// </summary>
    public void SetPaceLimit(double pagesPerSecond)
    {
        if (double.IsNaN(pagesPerSecond) || pagesPerSecond < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pagesPerSecond), pagesPerSecond, "The pace limit must be 0 (none) or positive.");
        }

        Volatile.Write(ref _paceLimit, pagesPerSecond);
        Interlocked.Increment(ref _throttleGeneration);
    }

    /// <summary>
    /// Holds each vCPU at its pace-port exits so that it runs only <c>100 - percent</c> % of the time;
    /// 0 removes the throttle.
    /// </summary>
    public void SetThrottlePercent(int percent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(percent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 99);
        Volatile.Write(ref _throttlePercent, percent);
        Interlocked.Increment(ref _throttleGeneration);
    }

    /// <summary>What each vCPU's program has reported.</summary>
    public IReadOnlyList<VcpuStatus> GetStatus() => _runners.Select(r => r.Status).ToArray();

    /// <summary>How many times a vCPU exited because its dirty ring was full (each absorbed by collecting the rings).</summary>
    public long DirtyRingFullExits => Interlocked.Read(ref _dirtyRingFullExits);

    /// <summary>The sum of pages written (pace-port writes) over all vCPUs.</summary>
    public long PagesWritten => _runners.Sum(r => Interlocked.Read(ref r.PagesWritten));

    /// <summary>Waits until vCPU <paramref name="vcpu"/> reports pass <paramref name="pass"/> or later.</summary>
    /// <returns>false on timeout, or when the vCPU faulted.</returns>
    public bool WaitForPass(uint pass, TimeSpan timeout, int vcpu = 0)
    {
        Runner r = _runners[vcpu];
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        lock (_gate)
        {
            while (Volatile.Read(ref r.Passes) < pass && r.Fault is null)
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

            return _runners.Select(r => new VcpuState(r.Vcpu.Id, r.Vcpu.GetRegisters(), r.Vcpu.GetSpecialRegisters(), r.Thread is not null || r.Program is not null || r.Restored)).ToArray();
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

                Runner r = _runners[s.Id];
                r.Vcpu.SetSpecialRegisters(s.SpecialRegisters);
                r.Vcpu.SetRegisters(s.Registers);
                r.Restored = s.Running;
            }
        }
    }

    /// <summary>Ends the vCPU threads (the guest stops where it is).</summary>
    public void Stop()
    {
        Runner[] started;
        lock (_gate)
        {
            if (_state is MicroVmState.Created or MicroVmState.Stopped)
            {
                _state = MicroVmState.Stopped;
                return;
            }

            Volatile.Write(ref _stopRequested, 1);
            Monitor.PulseAll(_gate);
            started = _runners.Where(r => r.Thread is not null).ToArray();
            foreach (Runner r in started)
            {
                r.Kick();
            }
        }

        foreach (Runner r in started)
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
    /// <remarks>Measured: a register round trip on every vCPU and a thread start, the work of <see cref="Start"/>.</remarks>
    TimeSpan IMigrationTarget.EstimateResumeCost()
    {
        long start = Stopwatch.GetTimestamp();
        foreach (Runner r in _runners)
        {
            r.Vcpu.SetSpecialRegisters(r.Vcpu.GetSpecialRegisters());
            r.Vcpu.SetRegisters(r.Vcpu.GetRegisters());
        }

        ResumeProbe.StartAndJoinThread();
        return Stopwatch.GetElapsedTime(start);
    }

    /// <summary>Stops the vCPUs and releases the VM and its memory.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        Stop();
        _disposed = true;
        _vm.Dispose();
        _memory.Dispose();
        _kvm.Dispose();
    }

    private void CheckBacked(GuestRange range, string what)
    {
        if (!_memory.TryTranslate(range.Start, out GuestMemoryRegion region, out _) || range.End > region.End)
        {
            throw new ArgumentException($"The program's {what} [0x{range.Start:x}, 0x{range.End:x}) is not inside one region of guest memory.");
        }
    }

    private static void SetProtectedMode(KvmVcpu vcpu)
    {
        // Flat 4 GiB segments, 32-bit code, protection on, paging off: the state a boot loader
        // leaves after switching to protected mode, set directly so no BIOS is needed.
        KvmSpecialRegisters s = vcpu.GetSpecialRegisters();
        KvmSegment code = new()
        {
            Base = 0,
            Limit = 0xFFFF_FFFF,
            Selector = 0x8,
            Type = 11,
            Present = 1,
            Dpl = 0,
            Db = 1,
            S = 1,
            L = 0,
            G = 1,
        };
        KvmSegment data = code with { Selector = 0x10, Type = 3 };
        s.Cs = code;
        s.Ds = data;
        s.Es = data;
        s.Fs = data;
        s.Gs = data;
        s.Ss = data;
        s.Cr0 = (s.Cr0 | 0x1) & ~0x8000_0000UL;
        s.Cr4 = 0;
        s.Efer = 0;
        vcpu.SetSpecialRegisters(s);
    }

    private sealed class Runner
    {
        private readonly MicroVm _owner;
        private long _windowStart;
        private long _windowPages;
        private long _lastMark;
        private double _throttleDebt;
        private int _generation = -1;

        internal long PagesWritten;
        internal uint Passes;
        internal long Failures;
        internal long FirstFailedPage = -1;
        internal volatile bool Halted;
        internal volatile string? Fault;

        internal Runner(MicroVm owner, KvmVcpu vcpu)
        {
            _owner = owner;
            Vcpu = vcpu;
        }

        internal KvmVcpu Vcpu { get; }

        internal GuestProgram? Program { get; set; }

        internal bool Restored { get; set; }

        internal Thread? Thread { get; private set; }

        internal VcpuStatus Status => new(Vcpu.Id, Volatile.Read(ref Passes), Interlocked.Read(ref Failures), Interlocked.Read(ref FirstFailedPage),
            Interlocked.Read(ref PagesWritten), Halted, Fault);

        internal void Start()
        {
            Thread = new Thread(Loop) { IsBackground = true, Name = $"vcpu{Vcpu.Id}" };
            Thread.Start();
        }

        internal void Kick()
        {
            if (Thread is not null)
            {
                Vcpu.Kick();
            }
        }

        private void Loop()
        {
            Vcpu.BindToCurrentThread();
            try
            {
                _lastMark = Stopwatch.GetTimestamp();
                while (Volatile.Read(ref _owner._stopRequested) == 0)
                {
                    if (Volatile.Read(ref _owner._pauseRequested) == 1 || Halted)
                    {
                        Park();
                        continue;
                    }

                    VcpuExit exit = Vcpu.Run();
                    switch (exit.Reason)
                    {
                        case VcpuExitReason.Interrupted:
                            // Clear before re-reading the flags (with a full barrier) so a racing kick is never lost.
                            Vcpu.ClearImmediateExit();
                            break;
                        case VcpuExitReason.Io when exit.IsOut:
                            OnOut(exit);
                            break;
                        case VcpuExitReason.Io:
                            break;
                        case VcpuExitReason.Halt:
                            Halted = true;
                            break;
                        case VcpuExitReason.DirtyRingFull:
                            // The ring must be harvested and reset before KVM lets the vCPU in again;
                            // the collected pages wait in the VM for the tracker.
                            Interlocked.Increment(ref _owner._dirtyRingFullExits);
                            _owner._vm.CollectDirtyRings();
                            break;
                        case VcpuExitReason.Mmio:
                            SetFault($"guest accessed unbacked guest-physical address 0x{exit.Data:x}");
                            return;
                        default:
                            SetFault($"KVM_RUN exited with {exit.Reason} (hardware reason 0x{exit.HardwareReason:x})");
                            return;
                    }
                }
            }
            catch (Exception ex) when (ex is KvmException or ObjectDisposedException)
            {
                SetFault(ex.Message);
            }
            finally
            {
                Vcpu.UnbindThread();
                lock (_owner._gate)
                {
                    if (!Parked)
                    {
                        _owner._active--;
                    }

                    Monitor.PulseAll(_owner._gate);
                }
            }
        }

        private bool Parked { get; set; }

        private void Park()
        {
            lock (_owner._gate)
            {
                Parked = true;
                _owner._active--;
                Monitor.PulseAll(_owner._gate);
                while (Volatile.Read(ref _owner._stopRequested) == 0 && (Volatile.Read(ref _owner._pauseRequested) == 1 || Halted))
                {
                    Monitor.Wait(_owner._gate);
                }

                _owner._active++;
                Parked = false;
            }

            _lastMark = Stopwatch.GetTimestamp();
            _windowStart = 0;
        }

        private void SetFault(string reason)
        {
            lock (_owner._gate)
            {
                Fault = $"vCPU {Vcpu.Id}: {reason}";
                Monitor.PulseAll(_owner._gate);
            }
        }

        private void OnOut(VcpuExit exit)
        {
            GuestPorts ports = _owner.Options.Ports;
            if (exit.Port == ports.Status && exit.Size == 4)
            {
                uint value = (uint)exit.Data;
                lock (_owner._gate)
                {
                    if ((value & GuestPorts.FailureFlag) != 0)
                    {
                        if (Interlocked.Increment(ref Failures) == 1)
                        {
                            Interlocked.Exchange(ref FirstFailedPage, value & ~GuestPorts.FailureFlag);
                        }
                    }
                    else
                    {
                        Volatile.Write(ref Passes, value);
                    }

                    Monitor.PulseAll(_owner._gate);
                }
            }
            else if (ports.Pace is ushort pace && exit.Port == pace)
            {
                Interlocked.Increment(ref PagesWritten);
                Throttle();
            }
        }

        /// <summary>Holds the vCPU at a pace exit to meet the pages/s limit or the run-time throttle.</summary>
        private void Throttle()
        {
            double limit = Volatile.Read(ref _owner._paceLimit);
            int percent = Volatile.Read(ref _owner._throttlePercent);
            int generation = Volatile.Read(ref _owner._throttleGeneration);
            long now = Stopwatch.GetTimestamp();
            if (generation != _generation)
            {
                _generation = generation;
                _windowStart = 0;
                _throttleDebt = 0;
                _lastMark = now;
            }

            double wait = 0;
            if (limit > 0)
            {
                double perVcpu = limit / Math.Max(1, Volatile.Read(ref _owner._active));
                if (_windowStart == 0)
                {
                    _windowStart = now;
                    _windowPages = 0;
                }

                _windowPages++;
                double due = _windowPages / perVcpu;
                double elapsed = (double)(now - _windowStart) / Stopwatch.Frequency;
                if (elapsed - due > 0.1)
                {
                    // Far behind (a pause, a slow stretch): start a new window instead of bursting to catch up.
                    _windowStart = now;
                    _windowPages = 0;
                }
                else if (due > elapsed)
                {
                    wait = due - elapsed;
                }
            }

            if (percent > 0)
            {
                double ran = (double)(now - _lastMark) / Stopwatch.Frequency;
                _throttleDebt += ran * percent / (100.0 - percent);
                if (_throttleDebt > wait)
                {
                    wait = _throttleDebt;
                }
            }

            // Sleep only in whole milliseconds; the remainder carries over to the next exit.
            if (wait >= 0.001)
            {
                long slept = Stopwatch.GetTimestamp();
                lock (_owner._gate)
                {
                    if (Volatile.Read(ref _owner._pauseRequested) == 0 && Volatile.Read(ref _owner._stopRequested) == 0)
                    {
                        Monitor.Wait(_owner._gate, TimeSpan.FromMilliseconds(Math.Min(wait * 1000, 100)));
                    }
                }

                double actual = (double)(Stopwatch.GetTimestamp() - slept) / Stopwatch.Frequency;
                _throttleDebt = Math.Max(0, _throttleDebt - actual);
            }

            _lastMark = Stopwatch.GetTimestamp();
        }
    }
}
