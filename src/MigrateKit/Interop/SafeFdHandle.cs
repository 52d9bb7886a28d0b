using System;
using System.Runtime.InteropServices;

namespace MigrateKit.Interop;

/// <summary>A KVM file descriptor (system, VM or vCPU), closed with <c>mk_close</c>.</summary>
internal sealed class SafeFdHandle : SafeHandle
{
    public SafeFdHandle()
        : base(new IntPtr(-1), ownsHandle: true)
    {
    }

    internal SafeFdHandle(int fd)
        : base(new IntPtr(-1), ownsHandle: true) => SetHandle(new IntPtr(fd));

    public override bool IsInvalid => handle.ToInt64() < 0;

    /// <summary>The descriptor; callers keep the handle alive (DangerousAddRef) around its use.</summary>
    internal int Fd => (int)handle.ToInt64();

    protected override bool ReleaseHandle() => NativeMethods.Close((int)handle.ToInt64()) == 0;
}

/// <summary>A memory mapping (guest memory, a run area or a dirty ring), released with <c>mk_munmap</c>.</summary>
internal sealed class SafeMappingHandle : SafeHandle
{
    internal SafeMappingHandle(nint address, ulong length)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        Length = length;
        SetHandle(address);
    }

    /// <summary>The length of the mapping in bytes.</summary>
    internal ulong Length { get; }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The mapping's address.</summary>
    internal nint Address => handle;

    protected override bool ReleaseHandle() => NativeMethods.Munmap(handle, Length) == 0;
}

/// <summary>
/// Keeps a <see cref="SafeHandle"/> from being released while a native call uses its value,
/// so that a concurrent Dispose cannot close a descriptor that is about to be reused.
/// </summary>
internal ref struct HandleLease
{
    private readonly SafeHandle _handle;
    private bool _added;

    internal HandleLease(SafeHandle handle)
    {
        _handle = handle;
        _added = false;
        handle.DangerousAddRef(ref _added);
    }

    public void Dispose()
    {
        if (_added)
        {
            _added = false;
            _handle.DangerousRelease();
        }
    }
}
