using System;
using System.Threading;
using MigrateKit.Interop;

namespace MigrateKit.Kvm;

/// <summary>
/// A vCPU: its run area, registers, optional dirty ring, and a way to force it out of
/// <c>KVM_RUN</c> from another thread. <see cref="Run"/> is meant to be called from one thread
/// at a time, which first calls <see cref="BindToCurrentThread"/> so that <see cref="Kick"/> can
/// signal it.
/// </summary>
public sealed class KvmVcpu : IDisposable
{
    private readonly KvmVm _vm;
    private readonly SafeFdHandle _fd;
    private readonly SafeMappingHandle _run;
    private ulong _thread;
    private int _bound;

    internal KvmVcpu(KvmVm vm, uint id, SafeFdHandle fd, ulong mmapSize, int ringBytes)
    {
        _vm = vm;
        Id = id;
        _fd = fd;
        using (new HandleLease(fd))
        {
            KvmException.Check(NativeMethods.VcpuMapRun(fd.Fd, mmapSize, out nint run), $"mmap of the kvm_run area of vCPU {id}");
            _run = new SafeMappingHandle(run, mmapSize);
            if (ringBytes != 0)
            {
                int r = NativeMethods.VcpuMapDirtyRing(fd.Fd, (uint)ringBytes, out nint ring);
                if (r < 0)
                {
                    _run.Dispose();
                    KvmException.Check(r, $"mmap of the dirty ring of vCPU {id}");
                }

                DirtyRing = new DirtyRing(id, new SafeMappingHandle(ring, (ulong)ringBytes), ringBytes / 16);
            }
        }

        KvmException.Check(NativeMethods.KickInit(), "installing the vCPU kick signal handler");
    }

    /// <summary>The vCPU id.</summary>
    public uint Id { get; }

    /// <summary>The VM the vCPU belongs to.</summary>
    public KvmVm Vm => _vm;

    /// <summary>The vCPU's dirty ring, when the VM has one enabled.</summary>
    public DirtyRing? DirtyRing { get; }

    /// <summary>Runs the vCPU until the next exit. An interrupted run (a kick or a signal) returns
    /// <see cref="VcpuExitReason.Interrupted"/>; call <see cref="ClearImmediateExit"/> before the next run.</summary>
    public VcpuExit Run()
    {
        using (new HandleLease(_fd))
        using (new HandleLease(_run))
        {
            KvmException.Check(NativeMethods.VcpuRun(_fd.Fd, _run.Address, out NativeVcpuExit e), $"KVM_RUN (vCPU {Id})");
            return new VcpuExit((VcpuExitReason)e.Reason, e.IoDirection == 1, e.IoPort, e.IoSize, e.IoCount, e.Data, e.HardwareReason);
        }
    }

    /// <summary>
    /// Answers the <c>in</c> the last <see cref="Run"/> exited for: the guest reads the low
    /// <see cref="VcpuExit.Size"/> bytes of <paramref name="value"/> when it next runs (by default
    /// it reads all-ones, an unbacked port).
    /// </summary>
    /// <exception cref="KvmException">The last exit was not an <c>in</c> (EINVAL).</exception>
    public void AnswerIn(uint value)
    {
        using (new HandleLease(_run))
        {
            KvmException.Check(NativeMethods.VcpuAnswerIoIn(_run.Address, value), $"answering an in on vCPU {Id}");
        }
    }

    /// <summary>Reads the general-purpose registers.</summary>
    public KvmRegisters GetRegisters()
    {
        using (new HandleLease(_fd))
        {
            KvmException.Check(RegisterNativeMethods.VcpuGetRegs(_fd.Fd, out KvmRegisters regs), $"KVM_GET_REGS (vCPU {Id})");
            return regs;
        }
    }

    /// <summary>Writes the general-purpose registers.</summary>
    public void SetRegisters(in KvmRegisters registers)
    {
        using (new HandleLease(_fd))
        {
            KvmException.Check(RegisterNativeMethods.VcpuSetRegs(_fd.Fd, registers), $"KVM_SET_REGS (vCPU {Id})");
        }
    }

    /// <summary>Reads the special registers.</summary>
    public KvmSpecialRegisters GetSpecialRegisters()
    {
        using (new HandleLease(_fd))
        {
            KvmException.Check(RegisterNativeMethods.VcpuGetSregs(_fd.Fd, out KvmSpecialRegisters sregs), $"KVM_GET_SREGS (vCPU {Id})");
            return sregs;
        }
    }

    /// <summary>Writes the special registers.</summary>
    public void SetSpecialRegisters(in KvmSpecialRegisters registers)
    {
        using (new HandleLease(_fd))
        {
            KvmException.Check(RegisterNativeMethods.VcpuSetSregs(_fd.Fd, registers), $"KVM_SET_SREGS (vCPU {Id})");
        }
    }

    /// <summary>Records the calling thread as the one that runs this vCPU, for <see cref="Kick"/>.</summary>
    public void BindToCurrentThread()
    {
        KvmException.Check(NativeMethods.ThreadSelf(out ulong thread), "pthread_self");
        Volatile.Write(ref _thread, thread);
        Volatile.Write(ref _bound, 1);
    }

    /// <summary>Forgets the bound thread; call it before that thread ends.</summary>
    public void UnbindThread() => Volatile.Write(ref _bound, 0);

    /// <summary>
    /// Forces the vCPU out of <c>KVM_RUN</c>: a run in progress returns, and a run about to start
    /// returns at once (<c>immediate_exit</c>), both as <see cref="VcpuExitReason.Interrupted"/>.
    /// </summary>
    public void Kick()
    {
        using (new HandleLease(_run))
        {
            if (Volatile.Read(ref _bound) == 1)
            {
                int r = NativeMethods.VcpuKick(_run.Address, Volatile.Read(ref _thread));
                if (r < 0 && -r != Errno.ESRCH)
                {
                    KvmException.Check(r, $"kick of vCPU {Id}");
                }
            }
            else
            {
                KvmException.Check(NativeMethods.VcpuSetImmediateExit(_run.Address, 1), $"immediate_exit of vCPU {Id}");
            }
        }
    }

    /// <summary>
    /// Clears <c>immediate_exit</c> with a full barrier. The run loop calls it after an
    /// <see cref="VcpuExitReason.Interrupted"/> exit and before it reads its own pause flags, so a
    /// kick that races with the clear is never lost.
    /// </summary>
    public void ClearImmediateExit()
    {
        using (new HandleLease(_run))
        {
            KvmException.Check(NativeMethods.VcpuSetImmediateExit(_run.Address, 0), $"immediate_exit of vCPU {Id}");
        }

        Interlocked.MemoryBarrier();
    }

    /// <summary>Unmaps the run area and ring and closes the vCPU fd.</summary>
    public void Dispose()
    {
        DirtyRing?.Dispose();
        _run.Dispose();
        _fd.Dispose();
    }
}
