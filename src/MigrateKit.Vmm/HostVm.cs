using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using MigrateKit.Guests;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tracking;

namespace MigrateKit.Vmm;

/// <summary>What a <see cref="HostWorkload"/> does each pass.</summary>
public enum HostWorkloadKind : byte
{
    /// <summary>Nothing: an idle guest.</summary>
    Idle = 0,

    /// <summary>One byte per page of the range, the low byte of the pass number.</summary>
    Sweep = 1,

    /// <summary>The hot range every pass; the cold range on passes 1, 1 + n, 1 + 2n, ….</summary>
    HotCold = 2,

    /// <summary>As many writes as the range has pages, at pages chosen by xorshift32.</summary>
    RandomWrites = 3,

    /// <summary>Each page's first dword: checks the previous pass's <see cref="GuestPrograms.VerifierValue"/>, then stores this pass's.</summary>
    Verifier = 4,

    /// <summary>Every dword of every page once (non-zero, derived from the page index), then halts.</summary>
    Fill = 5,
}

/// <summary>
/// A workload for a <see cref="HostVm"/>: the same write patterns as <see cref="GuestPrograms"/>,
/// run by a host thread instead of a KVM vCPU. Ranges are guest-physical and page-aligned.
/// </summary>
public sealed record HostWorkload(HostWorkloadKind Kind, GuestRange Range, GuestRange Cold = default, uint ColdEvery = 0, uint Seed = 0)
{
    /// <summary>An idle workload.</summary>
    public static HostWorkload Idle() => new(HostWorkloadKind.Idle, default);

    /// <summary>One write per page of <c>[start, end)</c> per pass.</summary>
    public static HostWorkload Sweep(ulong start, ulong end) => Checked(new(HostWorkloadKind.Sweep, new GuestRange(start, end)));

    /// <summary>The hot range every pass, the cold range every <paramref name="coldEvery"/> passes.</summary>
    public static HostWorkload HotCold(GuestRange hot, GuestRange cold, uint coldEvery) => Checked(new(HostWorkloadKind.HotCold, hot, cold, coldEvery));

    /// <summary>Random page writes over <c>[start, end)</c>; <paramref name="seed"/> must be non-zero.</summary>
    public static HostWorkload RandomWrites(ulong start, ulong end, uint seed) => Checked(new(HostWorkloadKind.RandomWrites, new GuestRange(start, end), Seed: seed));

    /// <summary>The self-checking workload over <c>[start, end)</c>.</summary>
    public static HostWorkload Verifier(ulong start, ulong end) => Checked(new(HostWorkloadKind.Verifier, new GuestRange(start, end)));

    /// <summary>Fills <c>[start, end)</c> once and halts.</summary>
    public static HostWorkload Fill(ulong start, ulong end) => Checked(new(HostWorkloadKind.Fill, new GuestRange(start, end)));

    internal static HostWorkload Checked(HostWorkload w)
    {
        CheckRange(w.Range, "range");
        if (w.Kind == HostWorkloadKind.HotCold)
        {
            CheckRange(w.Cold, "cold range");
            if (w.Cold.Overlaps(w.Range))
            {
                throw new ArgumentException($"The hot range [0x{w.Range.Start:x}, 0x{w.Range.End:x}) and the cold range [0x{w.Cold.Start:x}, 0x{w.Cold.End:x}) overlap.");
            }

            if (w.ColdEvery == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(ColdEvery), "The cold range is written every n passes, n >= 1.");
            }
        }

        if (w.Kind == HostWorkloadKind.RandomWrites && w.Seed == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Seed), "xorshift32 needs a non-zero seed.");
        }

        return w;
    }

    private static void CheckRange(GuestRange r, string what)
    {
        if (r.End <= r.Start || r.Start % 4096 != 0 || r.End % 4096 != 0)
        {
            throw new ArgumentException($"The {what} [0x{r.Start:x}, 0x{r.End:x}) must be non-empty and page-aligned.");
        }
    }
}

/// <summary>
/// A VM without KVM: guest memory this process owns and one host thread that runs a
/// <see cref="HostWorkload"/> over it, with the controls a VMM has over a vCPU — pause (the
/// thread parks between two page writes), a pace limit and a throttle — and its progress as
/// device state, so it migrates like a <see cref="MicroVm"/>. Its writes are tracked exactly
/// by a <see cref="WriteProtectTracker"/>. Use it where <c>/dev/kvm</c> is absent, or as the
/// model of a VMM whose guest memory is written by its own threads.
/// </summary>
public sealed class HostVm : IMigrationSource, IMigrationTarget
{
    private const uint StateMagic = 0x5648_4B4D; // "MKHV"
    private const ushort StateVersion = 1;
    private const int StateSize = 96;
    private const int Page = 4096;

    private readonly GuestMemoryLayout _memory;
    private readonly object _gate = new();
    private HostWorkload? _workload;
    private WorkerState _state;
    private Thread? _thread;
    private bool _pauseRequested;
    private bool _parked;
    private bool _stopRequested;
    private bool _running;
    private double _paceLimit;
    private int _throttlePercent;
    private string? _fault;
    private bool _disposed;

    /// <summary>Creates a VM with guest memory laid out as given and no workload yet.</summary>
    /// <exception cref="ArgumentException">The layout is invalid.</exception>
    public HostVm(IEnumerable<GuestMemoryRegionSpec> regions)
    {
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
    public double PaceLimit => Volatile.Read(ref _paceLimit);

    /// <summary>The throttle percentage (0 to 99).</summary>
    public int ThrottlePercent => Volatile.Read(ref _throttlePercent);

    /// <summary>Whether the worker thread runs and is not paused.</summary>
    public bool IsRunning
    {
        get
        {
            lock (_gate)
            {
                return _running && !_pauseRequested && !_stopRequested;
            }
        }
    }

    /// <summary>The workload, once loaded or restored.</summary>
    public HostWorkload? Workload => _workload;

    /// <summary>Creates a tracker for all of the VM's memory.</summary>
    public WriteProtectTracker CreateTracker() => new(_memory);

    /// <summary>Sets the workload; it starts at pass 1 on <see cref="Start"/>.</summary>
    /// <exception cref="ArgumentException">A range of the workload is not inside one region.</exception>
    /// <exception cref="InvalidOperationException">The VM is running.</exception>
    public void Load(HostWorkload workload)
    {
        ArgumentNullException.ThrowIfNull(workload);
        lock (_gate)
        {
            if (_thread is not null)
            {
                throw new InvalidOperationException("Workloads are loaded before Start.");
            }

            CheckBacked(workload);
            _workload = workload;
            _state = new WorkerState { Pass = 1, Rng = workload.Seed };
        }
    }

    /// <summary>Starts the worker thread.</summary>
    /// <exception cref="InvalidOperationException">No workload, or already started.</exception>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_workload is null)
            {
                throw new InvalidOperationException("Load a workload (or restore device state) before Start.");
            }

            if (_thread is not null)
            {
                throw new InvalidOperationException("The VM has already started.");
            }

            _running = true;
            _thread = new Thread(Run) { IsBackground = true, Name = "hostvm worker" };
            _thread.Start();
        }
    }

    /// <summary>Parks the worker between two page writes; returns how long that took.</summary>
    public TimeSpan Pause()
    {
        long start = Stopwatch.GetTimestamp();
        lock (_gate)
        {
            _pauseRequested = true;
            Monitor.PulseAll(_gate);
            while (_running && !_parked)
            {
                Monitor.Wait(_gate);
            }
        }

        return Stopwatch.GetElapsedTime(start);
    }

    /// <summary>Lets a paused worker go on.</summary>
    public void Resume()
    {
        lock (_gate)
        {
            _pauseRequested = false;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Limits the worker to <paramref name="pagesPerSecond"/> page writes per second (0 = none).</summary>
    public void SetPaceLimit(double pagesPerSecond)
    {
        if (double.IsNaN(pagesPerSecond) || pagesPerSecond < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pagesPerSecond), pagesPerSecond, "The pace limit must be 0 (none) or positive.");
        }

        Volatile.Write(ref _paceLimit, pagesPerSecond);
    }

    /// <inheritdoc/>
    public void SetThrottlePercent(int percent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(percent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 99);
        Volatile.Write(ref _throttlePercent, percent);
    }

    /// <summary>The workload's progress: passes completed, self-check failures, pages written, halted, fault.</summary>
    public VcpuStatus GetStatus()
    {
        lock (_gate)
        {
            return new VcpuStatus(0, _state.Pass - 1, _state.Failures, _state.FirstFailedPage, _state.PagesWritten, _state.Halted, _fault);
        }
    }

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
            _stopRequested = true;
            Monitor.PulseAll(_gate);
            t = _thread;
        }

        t?.Join();
    }

    /// <inheritdoc/>
    public byte[] SaveDeviceState()
    {
        lock (_gate)
        {
            if (_running && !_parked)
            {
                throw new InvalidOperationException("Device state is saved while the VM is paused.");
            }

            HostWorkload w = _workload ?? HostWorkload.Idle();
            byte[] b = new byte[StateSize];
            Span<byte> s = b;
            BinaryPrimitives.WriteUInt32LittleEndian(s, StateMagic);
            BinaryPrimitives.WriteUInt16LittleEndian(s[4..], StateVersion);
            s[6] = (byte)w.Kind;
            s[7] = (byte)((_state.Halted ? 1 : 0) | (_thread is not null ? 2 : 0));
            BinaryPrimitives.WriteUInt64LittleEndian(s[8..], w.Range.Start);
            BinaryPrimitives.WriteUInt64LittleEndian(s[16..], w.Range.End);
            BinaryPrimitives.WriteUInt64LittleEndian(s[24..], w.Cold.Start);
            BinaryPrimitives.WriteUInt64LittleEndian(s[32..], w.Cold.End);
            BinaryPrimitives.WriteUInt32LittleEndian(s[40..], w.ColdEvery);
            BinaryPrimitives.WriteUInt32LittleEndian(s[44..], w.Seed);
            BinaryPrimitives.WriteUInt32LittleEndian(s[48..], _state.Pass);
            BinaryPrimitives.WriteUInt32LittleEndian(s[52..], _state.Rng);
            BinaryPrimitives.WriteUInt64LittleEndian(s[56..], _state.Position);
            BinaryPrimitives.WriteInt64LittleEndian(s[64..], _state.Failures);
            BinaryPrimitives.WriteInt64LittleEndian(s[72..], _state.FirstFailedPage);
            BinaryPrimitives.WriteInt64LittleEndian(s[80..], _state.PagesWritten);
            BinaryPrimitives.WriteUInt64LittleEndian(s[88..], 0);
            return b;
        }
    }

    /// <inheritdoc/>
    /// <exception cref="FormatException">The state is not a HostVm state of this version.</exception>
    public void RestoreDeviceState(ReadOnlySpan<byte> state)
    {
        if (state.Length != StateSize || BinaryPrimitives.ReadUInt32LittleEndian(state) != StateMagic)
        {
            throw new FormatException($"Not a HostVm device state ({state.Length} bytes; expected {StateSize} starting with \"MKHV\").");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(state[4..]);
        if (version != StateVersion)
        {
            throw new FormatException($"HostVm device state version {version} is not supported (expected {StateVersion}).");
        }

        var kind = (HostWorkloadKind)state[6];
        if (!Enum.IsDefined(kind))
        {
            throw new FormatException($"Unknown workload kind {state[6]}.");
        }

        var w = new HostWorkload(
            kind,
            new GuestRange(BinaryPrimitives.ReadUInt64LittleEndian(state[8..]), BinaryPrimitives.ReadUInt64LittleEndian(state[16..])),
            new GuestRange(BinaryPrimitives.ReadUInt64LittleEndian(state[24..]), BinaryPrimitives.ReadUInt64LittleEndian(state[32..])),
            BinaryPrimitives.ReadUInt32LittleEndian(state[40..]),
            BinaryPrimitives.ReadUInt32LittleEndian(state[44..]));
        lock (_gate)
        {
            if (_thread is not null)
            {
                throw new InvalidOperationException("Device state is restored before Start.");
            }

            if (kind != HostWorkloadKind.Idle)
            {
                try
                {
                    HostWorkload.Checked(w);
                }
                catch (ArgumentException ex)
                {
                    throw new FormatException($"The device state's workload is invalid: {ex.Message}", ex);
                }

                CheckBacked(w);
                uint pass = BinaryPrimitives.ReadUInt32LittleEndian(state[48..]);
                ulong position = BinaryPrimitives.ReadUInt64LittleEndian(state[56..]);
                ulong passLength = (w.Range.Length / Page) + (w.Kind == HostWorkloadKind.HotCold ? w.Cold.Length / Page : 0);
                if (pass == 0 || position >= passLength)
                {
                    throw new FormatException($"The device state's progress (pass {pass}, position {position}) does not fit its workload ({passLength} pages per pass).");
                }
            }

            _workload = w;
            _state = new WorkerState
            {
                Halted = (state[7] & 1) != 0,
                Pass = BinaryPrimitives.ReadUInt32LittleEndian(state[48..]),
                Rng = BinaryPrimitives.ReadUInt32LittleEndian(state[52..]),
                Position = BinaryPrimitives.ReadUInt64LittleEndian(state[56..]),
                Failures = BinaryPrimitives.ReadInt64LittleEndian(state[64..]),
                FirstFailedPage = BinaryPrimitives.ReadInt64LittleEndian(state[72..]),
                PagesWritten = BinaryPrimitives.ReadInt64LittleEndian(state[80..]),
            };
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Measured: a device-state round trip and a thread start, the work of a resume. Before
    /// <see cref="Start"/> the round trip uses the VM's own state, so it also compiles the
    /// restore path ahead of the switchover.
    /// </remarks>
    public TimeSpan EstimateResumeCost()
    {
        long start = Stopwatch.GetTimestamp();
        bool idle;
        lock (_gate)
        {
            idle = _thread is null;
        }

        if (idle)
        {
            HostWorkload? workload = _workload;
            WorkerState saved = _state;
            RestoreDeviceState(SaveDeviceState());
            lock (_gate)
            {
                _workload = workload;
                _state = saved;
            }
        }

        ResumeProbe.StartAndJoinThread();
        return Stopwatch.GetElapsedTime(start);
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
                Monitor.PulseAll(_gate);
            }
        }
    }

    private void Work()
    {
        HostWorkload w = _workload!;
        var pacer = new Pacer(this);
        while (true)
        {
            // The cursor names the next page; the state is only advanced under the lock, so a
            // pause sees a consistent (pass, position) pair and no write follows Pause's return.
            if (!Checkpoint(ref pacer, out WorkerState s))
            {
                return;
            }

            if (s.Halted || w.Kind == HostWorkloadKind.Idle)
            {
                lock (_gate)
                {
                    // A halted worker writes nothing more: it counts as parked for Pause.
                    _state.Halted = true;
                    _parked = true;
                    Monitor.PulseAll(_gate);
                    while (!_stopRequested)
                    {
                        Monitor.Wait(_gate);
                    }
                }

                return;
            }

            (ulong address, bool lastInPass) = Locate(w, s);
            _memory.TryTranslate(address, out GuestMemoryRegion region, out ulong offset);
            Span<byte> page = region.GetSpan(offset, Page);
            uint pageIndex = (uint)((address - w.Range.Start) / Page);
            long failure = -1;
            switch (w.Kind)
            {
                case HostWorkloadKind.Sweep:
                case HostWorkloadKind.HotCold:
                case HostWorkloadKind.RandomWrites:
                    page[0] = (byte)s.Pass;
                    break;
                case HostWorkloadKind.Verifier:
                    ref uint cell = ref MemoryMarshal.Cast<byte, uint>(page)[0];
                    if (s.Pass > 1 && cell != GuestPrograms.VerifierValue(pageIndex, s.Pass - 1))
                    {
                        failure = pageIndex;
                    }

                    cell = GuestPrograms.VerifierValue(pageIndex, s.Pass);
                    break;
                case HostWorkloadKind.Fill:
                    MemoryMarshal.Cast<byte, uint>(page).Fill(unchecked((pageIndex * 0x9E37_79B1u) | 1));
                    break;
            }

            lock (_gate)
            {
                _state.PagesWritten++;
                if (failure >= 0)
                {
                    if (_state.Failures++ == 0)
                    {
                        _state.FirstFailedPage = failure;
                    }
                }

                if (w.Kind == HostWorkloadKind.RandomWrites)
                {
                    _state.Rng = XorShift(_state.Rng);
                }

                if (lastInPass)
                {
                    _state.Position = 0;
                    _state.Pass++;
                    _state.Halted = w.Kind == HostWorkloadKind.Fill;
                    Monitor.PulseAll(_gate);
                }
                else
                {
                    _state.Position++;
                }
            }

            pacer.PageWritten();
        }
    }

    /// <summary>The guest-physical page the write at the current cursor goes to, and whether it ends the pass.</summary>
    private static (ulong Address, bool LastInPass) Locate(HostWorkload w, WorkerState s)
    {
        ulong pages = w.Range.Length / Page;
        switch (w.Kind)
        {
            case HostWorkloadKind.HotCold:
                bool coldPass = (s.Pass - 1) % w.ColdEvery == 0;
                ulong total = pages + (coldPass ? w.Cold.Length / Page : 0);
                ulong address = s.Position < pages ? w.Range.Start + (s.Position * Page) : w.Cold.Start + ((s.Position - pages) * Page);
                return (address, s.Position + 1 == total);
            case HostWorkloadKind.RandomWrites:
                // The position counts writes; the page comes from the generator's state.
                return (w.Range.Start + ((s.Rng % pages) * Page), s.Position + 1 == pages);
            default:
                return (w.Range.Start + (s.Position * Page), s.Position + 1 == pages);
        }
    }

    private static uint XorShift(uint x)
    {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x;
    }

    /// <summary>Parks while paused; false when the worker must stop.</summary>
    private bool Checkpoint(ref Pacer pacer, out WorkerState state)
    {
        lock (_gate)
        {
            if (_pauseRequested && !_stopRequested)
            {
                _parked = true;
                Monitor.PulseAll(_gate);
                while (_pauseRequested && !_stopRequested)
                {
                    Monitor.Wait(_gate);
                }

                _parked = false;
                pacer.Reset();
            }

            state = _state;
            return !_stopRequested;
        }
    }

    /// <summary>Sleeps to honour the pace limit and the throttle; wakes early for a pause.</summary>
    private struct Pacer(HostVm vm)
    {
        private long _windowStart = Stopwatch.GetTimestamp();
        private long _pagesInWindow;
        private double _sleptSeconds;

        public void Reset()
        {
            _windowStart = Stopwatch.GetTimestamp();
            _pagesInWindow = 0;
            _sleptSeconds = 0;
        }

        public void PageWritten()
        {
            _pagesInWindow++;
            double pace = vm.PaceLimit;
            int throttle = vm.ThrottlePercent;
            if (pace <= 0 && throttle == 0)
            {
                if (_pagesInWindow >= 4096)
                {
                    Reset();
                }

                return;
            }

            double elapsed = Stopwatch.GetElapsedTime(_windowStart).TotalSeconds;
            double due = 0;
            if (pace > 0)
            {
                due = Math.Max(due, (_pagesInWindow / pace) - elapsed);
            }

            if (throttle > 0)
            {
                // Running time so far is elapsed minus sleeps; sleep so it is (100 - t) % of the total.
                double busy = Math.Max(elapsed - _sleptSeconds, 0);
                due = Math.Max(due, (busy * throttle / (100.0 - throttle)) - _sleptSeconds);
            }

            if (due >= 0.001)
            {
                long before = Stopwatch.GetTimestamp();
                lock (vm._gate)
                {
                    if (!vm._pauseRequested && !vm._stopRequested)
                    {
                        Monitor.Wait(vm._gate, TimeSpan.FromSeconds(due));
                    }
                }

                _sleptSeconds += Stopwatch.GetElapsedTime(before).TotalSeconds;
            }

            if (elapsed > 1.0)
            {
                Reset();
            }
        }
    }

    private struct WorkerState
    {
        public uint Pass;
        public uint Rng;
        public ulong Position;
        public long Failures;
        public long FirstFailedPage;
        public long PagesWritten;
        public bool Halted;
    }
}
