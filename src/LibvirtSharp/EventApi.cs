using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>What a connection does with the callbacks libvirt makes on the event-loop thread.</summary>
internal interface IConnectionEventSink
{
    void OnLifecycle(string domainName, Guid uuid, int eventType, int detail);

    void OnMigrationIteration(string domainName, Guid uuid, int iteration);

    void OnJobCompleted(string domainName, Guid uuid, IReadOnlyDictionary<string, object> statistics);

    void OnClosed(int reason);
}

/// <summary>
/// Registration of domain event and close callbacks. The native callbacks are static
/// <see cref="UnmanagedCallersOnlyAttribute"/> methods; the connection travels through libvirt's opaque
/// pointer as a weak <see cref="GCHandle"/>, so a registration never keeps an undisposed connection
/// alive (its SafeHandle finalizer deregisters and closes).
/// </summary>
internal static unsafe class EventApi
{
    /// <summary><c>VIR_DOMAIN_EVENT_ID_LIFECYCLE</c>.</summary>
    internal const int LifecycleEventId = 0;

    /// <summary><c>VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION</c>.</summary>
    internal const int MigrationIterationEventId = 20;

    /// <summary><c>VIR_DOMAIN_EVENT_ID_JOB_COMPLETED</c>.</summary>
    internal const int JobCompletedEventId = 21;

    private static int s_liveCallbackHandles;

    /// <summary>Domain event registrations whose free callback libvirt has not run yet.</summary>
    internal static int LiveCallbackHandles => Volatile.Read(ref s_liveCallbackHandles);

    /// <summary>
    /// Registers <paramref name="sink"/> for one event kind on every domain of the connection
    /// (<c>virConnectDomainEventRegisterAny</c> with a NULL domain); the connection handle remembers
    /// the callback id for deregistration.
    /// </summary>
    internal static void RegisterDomainEvent(SafeConnectHandle connection, int eventId, IConnectionEventSink sink)
    {
        nint callback = eventId switch
        {
            LifecycleEventId => (nint)(delegate* unmanaged<nint, nint, int, int, nint, int>)&OnLifecycle,
            MigrationIterationEventId => (nint)(delegate* unmanaged<nint, nint, int, nint, void>)&OnMigrationIteration,
            JobCompletedEventId => (nint)(delegate* unmanaged<nint, nint, VirTypedParameter*, int, nint, void>)&OnJobCompleted,
            _ => throw new ArgumentOutOfRangeException(nameof(eventId), eventId, "Unsupported domain event id."),
        };

        using var lease = new HandleLease(connection);
        GCHandle target = GCHandle.Alloc(sink, GCHandleType.Weak);
        Interlocked.Increment(ref s_liveCallbackHandles);
        int callbackId = NativeMethods.virConnectDomainEventRegisterAny(lease.Pointer, 0, eventId, callback, GCHandle.ToIntPtr(target), &FreeTarget);
        if (callbackId < 0)
        {
            // On failure libvirt does not call the free callback: the handle is still ours.
            LibvirtException error = LibvirtError.FromLastError("virConnectDomainEventRegisterAny", EventName(eventId));
            target.Free();
            Interlocked.Decrement(ref s_liveCallbackHandles);
            throw error;
        }

        // Tracked while the lease still holds the handle, so a concurrent Dispose (whose release
        // waits for the lease) is sure to deregister it.
        connection.TrackEventCallback(callbackId);
    }

    /// <summary>
    /// Registers the close callback, through which a connection learns that a remote daemon went
    /// away (I/O error, end of file, keepalive timeout). Drivers without the notion (test, local
    /// hypervisors) accept the registration and never call it.
    /// </summary>
    /// <returns>False when libvirt refused the registration; the connection then works without it.</returns>
    internal static bool TryRegisterClose(SafeConnectHandle connection, IConnectionEventSink sink)
    {
        using var lease = new HandleLease(connection);
        GCHandle target = GCHandle.Alloc(sink, GCHandleType.Weak);

        // No free callback: libvirt would run it right after the first close notification, while
        // the connection handle still unregisters later. The connection handle frees it instead.
        if (NativeMethods.virConnectRegisterCloseCallback(lease.Pointer, &OnClose, GCHandle.ToIntPtr(target), null) < 0)
        {
            NativeMethods.virResetLastError();
            target.Free();
            return false;
        }

        connection.TrackCloseCallback(target, &OnClose);
        return true;
    }

    private static string EventName(int eventId) => eventId switch
    {
        LifecycleEventId => "VIR_DOMAIN_EVENT_ID_LIFECYCLE",
        MigrationIterationEventId => "VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION",
        JobCompletedEventId => "VIR_DOMAIN_EVENT_ID_JOB_COMPLETED",
        _ => eventId.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    // The callbacks below run on the event-loop thread, inside libvirt. An exception must never
    // unwind into native frames (it would tear down the process), so each one catches everything
    // and hands it to LibvirtEventLoop.UnhandledException.

    [UnmanagedCallersOnly]
    private static int OnLifecycle(nint conn, nint dom, int eventType, int detail, nint opaque)
    {
        try
        {
            if (Sink(opaque) is { } sink)
            {
                (string name, Guid uuid) = Identify(dom);
                sink.OnLifecycle(name, uuid, eventType, detail);
            }
        }
        catch (Exception ex)
        {
            LibvirtEventLoop.ReportUnhandled(ex);
        }

        return 0;
    }

    [UnmanagedCallersOnly]
    private static void OnMigrationIteration(nint conn, nint dom, int iteration, nint opaque)
    {
        try
        {
            if (Sink(opaque) is { } sink)
            {
                (string name, Guid uuid) = Identify(dom);
                sink.OnMigrationIteration(name, uuid, iteration);
            }
        }
        catch (Exception ex)
        {
            LibvirtEventLoop.ReportUnhandled(ex);
        }
    }

    [UnmanagedCallersOnly]
    private static void OnJobCompleted(nint conn, nint dom, VirTypedParameter* parameters, int count, nint opaque)
    {
        try
        {
            if (Sink(opaque) is { } sink)
            {
                (string name, Guid uuid) = Identify(dom);

                // libvirt frees the array after the callback returns: copy, never free.
                sink.OnJobCompleted(name, uuid, TypedParameters.Read(parameters, count));
            }
        }
        catch (Exception ex)
        {
            LibvirtEventLoop.ReportUnhandled(ex);
        }
    }

    [UnmanagedCallersOnly]
    private static void OnClose(nint conn, int reason, nint opaque)
    {
        try
        {
            Sink(opaque)?.OnClosed(reason);
        }
        catch (Exception ex)
        {
            LibvirtEventLoop.ReportUnhandled(ex);
        }
    }

    [UnmanagedCallersOnly]
    private static void FreeTarget(nint opaque)
    {
        GCHandle.FromIntPtr(opaque).Free();
        Interlocked.Decrement(ref s_liveCallbackHandles);
    }

    private static IConnectionEventSink? Sink(nint opaque) => GCHandle.FromIntPtr(opaque).Target as IConnectionEventSink;

    private static (string Name, Guid Uuid) Identify(nint dom)
    {
        // The domain belongs to libvirt for the duration of the callback; only copy from it.
        string name = NativeString.Borrowed(NativeMethods.virDomainGetName(dom));
        Span<byte> uuid = stackalloc byte[16];
        fixed (byte* buffer = uuid)
        {
            if (NativeMethods.virDomainGetUUID(dom, buffer) < 0)
            {
                NativeMethods.virResetLastError();
                return (name, Guid.Empty);
            }
        }

        return (name, new Guid(uuid, bigEndian: true));
    }
}
