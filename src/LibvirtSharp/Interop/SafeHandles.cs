using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;

namespace LibvirtSharp.Interop;

/// <summary>
/// A <c>virConnectPtr</c>, closed with <c>virConnectClose</c>. It also owns what libvirt attaches
/// to the connection on LibvirtSharp's behalf — domain event callbacks and the close callback —
/// because libvirt requires them to be removed before the last close, and a connection that is
/// finalized instead of disposed must still remove them.
/// </summary>
internal sealed class SafeConnectHandle : SafeHandle
{
    private readonly Lock _gate = new();
    private readonly List<int> _eventCallbacks = [];
    private GCHandle _closeTarget;
    private unsafe delegate* unmanaged<nint, int, nint, void> _closeCallback;

    public SafeConnectHandle()
        : base(0, ownsHandle: true)
    {
    }

    internal SafeConnectHandle(nint conn)
        : base(0, ownsHandle: true) => SetHandle(conn);

    public override bool IsInvalid => handle == 0;

    /// <summary>
    /// What <c>virConnectClose</c> returned on release: the references left on the connection object.
    /// 0 means nothing LibvirtSharp handed out (domains, callbacks) still held it.
    /// </summary>
    internal int CloseResult { get; private set; } = int.MinValue;

    /// <summary>Remembers a domain event callback id, deregistered on release.</summary>
    internal void TrackEventCallback(int callbackId)
    {
        lock (_gate)
        {
            _eventCallbacks.Add(callbackId);
        }
    }

    /// <summary>
    /// Takes ownership of the close callback's opaque handle, freed on release after unregistering
    /// <paramref name="callback"/>, the function it was registered with.
    /// </summary>
    internal unsafe void TrackCloseCallback(GCHandle target, delegate* unmanaged<nint, int, nint, void> callback)
    {
        lock (_gate)
        {
            _closeTarget = target;
            _closeCallback = callback;
        }
    }

    protected override unsafe bool ReleaseHandle()
    {
        lock (_gate)
        {
            // Each deregistration makes libvirt call the free callback (which frees that callback's
            // GCHandle) once no dispatch is using it; results are ignored because nothing can be done
            // about a failure at this point, and the close below releases the connection regardless.
            foreach (int callbackId in _eventCallbacks)
            {
                NativeMethods.virConnectDomainEventDeregisterAny(handle, callbackId);
            }

            _eventCallbacks.Clear();
            if (_closeTarget.IsAllocated)
            {
                // libvirt runs the close callback under the same lock this takes, so once it returns
                // the callback cannot be running and its handle can be freed here.
                NativeMethods.virConnectUnregisterCloseCallback(handle, _closeCallback);
                _closeTarget.Free();
            }
        }

        CloseResult = NativeMethods.virConnectClose(handle);
        return CloseResult >= 0;
    }
}

/// <summary>A <c>virDomainPtr</c> LibvirtSharp owns a reference to, released with <c>virDomainFree</c>.</summary>
internal sealed class SafeDomainHandle : SafeHandle
{
    public SafeDomainHandle()
        : base(0, ownsHandle: true)
    {
    }

    internal SafeDomainHandle(nint domain)
        : base(0, ownsHandle: true) => SetHandle(domain);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => NativeMethods.virDomainFree(handle) == 0;
}

/// <summary>
/// Keeps a <see cref="SafeHandle"/> from being released while a native call uses its value, so a
/// concurrent Dispose cannot free an object libvirt is still using — and cannot run a libvirt free
/// (which resets the thread's last error) between a failing call and reading its error.
/// </summary>
internal ref struct HandleLease
{
    private readonly SafeHandle _handle;
    private bool _added;

    /// <exception cref="System.ObjectDisposedException">The handle was already released.</exception>
    internal HandleLease(SafeHandle handle)
    {
        _handle = handle;
        _added = false;
        handle.DangerousAddRef(ref _added);
    }

    /// <summary>The native pointer, valid until this lease is disposed.</summary>
    internal readonly nint Pointer => _handle.DangerousGetHandle();

    public void Dispose()
    {
        if (_added)
        {
            _added = false;
            _handle.DangerousRelease();
        }
    }
}
