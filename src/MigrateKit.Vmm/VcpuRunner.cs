using System;
using System.Threading;
using MigrateKit.Guests;
using MigrateKit.Kvm;

namespace MigrateKit.Vmm;

/// <summary>
/// The run loop of one <see cref="MicroVm"/> vCPU on a thread of its own: enters <c>KVM_RUN</c>,
/// handles each exit (port writes, halt, a full dirty ring, faults) and parks while the VM is
/// paused or the guest has halted.
/// </summary>
internal sealed class VcpuRunner
{
    private readonly RunGate _gate;
    private readonly KvmVm _vm;
    private readonly GuestPorts _ports;
    private readonly Pacer _pacer;
    private readonly GuestReports _reports = new();
    private readonly SerialLines _serial = new();
    private long _dirtyRingFullExits;
    private volatile bool _halted;
    private volatile string? _fault;

    // A 16550's registers from its base port, and its line status when idle: THR empty (bit 5) and transmitter empty (bit 6).
    private const int UartRegisters = 8;
    private const int UartLineStatus = 5;
    private const uint TransmitterIdle = 0x60;

    // For a thread started ahead of the VM: 0 while it waits, Run once the VM starts, Leave when it never will.
    private int _release;
    private const int Run = 1;
    private const int Leave = 2;

    /// <param name="gate">The lock and requests the VM's vCPUs share.</param>
    /// <param name="vcpu">The vCPU this runner runs.</param>
    /// <param name="ports">The ports the guest reports on.</param>
    /// <param name="pace">The pace limit and throttle held at pace-port exits.</param>
    /// <param name="time">The clock the pacing is measured with.</param>
    internal VcpuRunner(RunGate gate, KvmVcpu vcpu, GuestPorts ports, PaceControl pace, TimeProvider time)
    {
        _gate = gate;
        _vm = vcpu.Vm;
        _ports = ports;
        Vcpu = vcpu;
        _pacer = new Pacer(pace, time, gate.Hold);
    }

    internal KvmVcpu Vcpu { get; }

    /// <summary>The program loaded for this vCPU, if any.</summary>
    internal GuestProgram? Program { get; set; }

    /// <summary>Whether restored state says this vCPU was running guest code.</summary>
    internal bool Restored { get; set; }

    /// <summary>The run-loop thread, once started.</summary>
    internal Thread? Thread { get; private set; }

    /// <summary>Why the vCPU stopped for good, or null.</summary>
    internal string? Fault => _fault;

    /// <summary>The last pass the guest reported.</summary>
    internal uint Passes => _reports.Passes;

    /// <summary>Pace-port writes so far.</summary>
    internal long PagesWritten => _reports.PagesWritten;

    /// <summary>Exits because the dirty ring was full.</summary>
    internal long DirtyRingFullExits => Interlocked.Read(ref _dirtyRingFullExits);

    internal VcpuStatus Status => _reports.ToStatus(Vcpu.Id, _halted, _fault) with { Held = _pacer.Held };

    /// <summary>Whether there is anything to run: a loaded program or restored running state.</summary>
    internal bool HasWork => Program is not null || Restored;

    /// <summary>Whether a thread waits, started ahead by <see cref="Prestart"/>.</summary>
    internal bool Prestarted { get; private set; }

    /// <summary>
    /// Starts the run-loop thread ahead of the VM, waiting until <see cref="Start"/> or
    /// <see cref="Dismiss"/>: a destination then starts its VM by waking threads instead of
    /// creating them within the downtime (a thread start here costs milliseconds).
    /// </summary>
    internal void Prestart()
    {
        Prestarted = true;
        Thread = new Thread(WaitThenLoop) { IsBackground = true, Name = $"vcpu{Vcpu.Id}" };
        Thread.Start();
    }

    /// <summary>Runs the loop: wakes the thread <see cref="Prestart"/> started, or starts one.</summary>
    internal void Start()
    {
        if (Prestarted)
        {
            Release(Run);
            return;
        }

        Thread = new Thread(Loop) { IsBackground = true, Name = $"vcpu{Vcpu.Id}" };
        Thread.Start();
    }

    /// <summary>Ends a thread <see cref="Prestart"/> started for a vCPU that will not run.</summary>
    internal void Dismiss()
    {
        if (Prestarted)
        {
            Release(Leave);
        }
    }

    private void Release(int how)
    {
        lock (_gate.Lock)
        {
            _release = how;
            Monitor.PulseAll(_gate.Lock);
        }
    }

    private void WaitThenLoop()
    {
        // Not counted as running until released to run: leaving needs no Ended.
        if (_gate.WaitForRelease(() => _release != 0) && _release == Run)
        {
            Loop();
        }
    }

    /// <summary>Makes a running <c>KVM_RUN</c> return, so the loop sees a new request.</summary>
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
            _pacer.Restart();
            while (!_gate.StopRequested)
            {
                if (_gate.PauseRequested || _halted)
                {
                    _gate.Park(() => _halted);
                    _pacer.Restart();
                    continue;
                }

                if (!Step(Vcpu.Run()))
                {
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
            _gate.Ended();
        }
    }

    /// <summary>Handles one exit; false when the vCPU cannot go on.</summary>
    private bool Step(VcpuExit exit)
    {
        switch (exit.Reason)
        {
            case VcpuExitReason.Interrupted:
                // Clear before re-reading the flags (with a full barrier) so a racing kick is never lost.
                Vcpu.ClearImmediateExit();
                if (_ports.Pace is null)
                {
                    // No pace-port exits: the throttle is held here, at the ThrottleTicker's kicks.
                    _pacer.TimesliceEnded();
                }

                return true;
            case VcpuExitReason.Io when exit.IsOut:
                OnOut(exit);
                return true;
            case VcpuExitReason.Io:
                OnIn(exit);
                return true;
            case VcpuExitReason.Halt:
                _halted = true;
                return true;
            case VcpuExitReason.DirtyRingFull:
                // The ring must be harvested and reset before KVM lets the vCPU in again;
                // the collected pages wait in the VM for the tracker.
                Interlocked.Increment(ref _dirtyRingFullExits);
                _vm.CollectDirtyRings();
                return true;
            case VcpuExitReason.Mmio:
                SetFault($"guest accessed unbacked guest-physical address 0x{exit.Data:x}");
                return false;
            default:
                SetFault($"KVM_RUN exited with {exit.Reason} (hardware reason 0x{exit.HardwareReason:x})");
                return false;
        }
    }

    private void SetFault(string reason) => _gate.Report(() => _fault = $"vCPU {Vcpu.Id}: {reason}");

    /// <summary>
    /// Answers a read of the UART of a serial-text guest: the line status register shows the
    /// transmitter empty, as an idle 16550 under QEMU does (which is what the guest programs poll);
    /// the other registers read 0. Other ports read all-ones.
    /// </summary>
    private void OnIn(VcpuExit exit)
    {
        if (_ports.SerialText && exit.Port >= _ports.Status && exit.Port - _ports.Status < UartRegisters)
        {
            Vcpu.AnswerIn(exit.Port - _ports.Status == UartLineStatus ? TransmitterIdle : 0u);
        }
    }

    private void OnOut(VcpuExit exit)
    {
        if (_ports.SerialText)
        {
            // One character per out to the transmit register; the UART's other registers take no part.
            if (exit.Port == _ports.Status && exit.Size == 1 && _serial.Add((byte)exit.Data) is { } log)
            {
                _gate.Report(() => _reports.Serial(log));
            }
        }
        else if (exit.Port == _ports.Status && exit.Size == 4)
        {
            uint value = (uint)exit.Data;
            _gate.Report(() => _reports.Status(value));
        }
        else if (_ports.Pace is ushort pace && exit.Port == pace)
        {
            _reports.PageWritten();
            _pacer.PageWritten(_gate.Running);
        }
    }
}
