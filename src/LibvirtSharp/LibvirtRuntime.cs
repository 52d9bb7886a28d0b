using System.Runtime.InteropServices;
using System.Threading;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>Process-wide libvirt set-up, done once before the first connection or event loop.</summary>
internal static unsafe class LibvirtRuntime
{
    private static readonly Lock s_gate = new();
    private static bool s_initialized;

    /// <summary>
    /// Calls <c>virInitialize</c> (required before libvirt is used from several threads) and installs
    /// an error handler that discards errors: libvirt's default handler prints every error to stderr,
    /// while LibvirtSharp reports them as exceptions.
    /// </summary>
    /// <exception cref="System.DllNotFoundException">libvirt.so.0 cannot be loaded.</exception>
    internal static void EnsureInitialized()
    {
        if (Volatile.Read(ref s_initialized))
        {
            return;
        }

        lock (s_gate)
        {
            if (s_initialized)
            {
                return;
            }

            if (NativeMethods.virInitialize() < 0)
            {
                throw LibvirtError.FromLastError("virInitialize");
            }

            NativeMethods.virSetErrorFunc(0, &DiscardError);
            Volatile.Write(ref s_initialized, true);
        }
    }

    // libvirt calls this on the failing thread, which may be one of its own; it must not throw.
    [UnmanagedCallersOnly]
    private static void DiscardError(nint userData, VirError* error)
    {
    }
}
