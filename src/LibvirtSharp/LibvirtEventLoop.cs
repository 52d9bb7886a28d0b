using System;
using System.Threading;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>
/// libvirt's default event loop (<c>virEventRegisterDefaultImpl</c>), run by one background thread
/// that calls <c>virEventRunDefaultImpl</c> forever. Domain events, connection-close notification and
/// keepalive all need it.
/// </summary>
/// <remarks>
/// libvirt's remote driver only watches its socket for events when an event loop was registered
/// before the connection was opened, so <see cref="LibvirtConnection.Open"/> starts it; call
/// <see cref="EnsureStarted"/> yourself only to have it running earlier. Callbacks (and therefore the
/// handlers of <see cref="LibvirtConnection"/>'s events) run on this one thread: a handler that blocks
/// delays every other event and keepalive.
/// </remarks>
public static class LibvirtEventLoop
{
    private static readonly Lock s_gate = new();
    private static Thread? s_thread;

    /// <summary>
    /// Raised, on the event-loop thread, for an exception thrown by an event handler or reported by
    /// <c>virEventRunDefaultImpl</c>. Such exceptions cannot propagate: they would unwind into libvirt.
    /// The loop keeps running either way.
    /// </summary>
    public static event EventHandler<UnhandledExceptionEventArgs>? UnhandledException;

    /// <summary>Whether the event loop has been registered and its thread started.</summary>
    public static bool IsStarted => Volatile.Read(ref s_thread) is not null;

    /// <summary>
    /// Registers libvirt's default event loop and starts the thread that runs it, once per process.
    /// Idempotent and thread-safe; may be called before any connection is opened.
    /// </summary>
    /// <exception cref="LibvirtException">libvirt refused to register the loop.</exception>
    /// <exception cref="DllNotFoundException">libvirt.so.0 cannot be loaded.</exception>
    public static void EnsureStarted()
    {
        if (Volatile.Read(ref s_thread) is not null)
        {
            return;
        }

        lock (s_gate)
        {
            if (s_thread is not null)
            {
                return;
            }

            LibvirtRuntime.EnsureInitialized();
            LibvirtError.Check(NativeMethods.virEventRegisterDefaultImpl(), "virEventRegisterDefaultImpl");
            var thread = new Thread(Run)
            {
                IsBackground = true,
                Name = "libvirt event loop",
            };
            thread.Start();
            Volatile.Write(ref s_thread, thread);
        }
    }

    /// <summary>Hands an exception caught on the event-loop thread to <see cref="UnhandledException"/>.</summary>
    internal static void ReportUnhandled(Exception exception)
    {
        try
        {
            UnhandledException?.Invoke(null, new UnhandledExceptionEventArgs(exception, isTerminating: false));
        }
        catch (Exception)
        {
            // A failing observer must not stop the loop either; there is nobody left to tell.
        }
    }

    private static void Run()
    {
        while (true)
        {
            if (NativeMethods.virEventRunDefaultImpl() < 0)
            {
                ReportUnhandled(LibvirtError.FromLastError("virEventRunDefaultImpl"));

                // A persistent failure (poll on a bad descriptor) must not spin a core.
                Thread.Sleep(100);
            }
        }
    }
}
