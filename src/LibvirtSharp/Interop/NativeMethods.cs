using System.Runtime.InteropServices;

namespace LibvirtSharp.Interop;

/// <summary>
/// Raw declarations of the libvirt functions LibvirtSharp uses, named exactly as in libvirt's
/// headers. Nothing here checks results: <c>LibvirtError</c> turns libvirt's per-thread
/// last error into a <see cref="LibvirtException"/>, and the <c>*Api</c> classes pair every call
/// with that check. Object pointers (<c>virConnectPtr</c>, <c>virDomainPtr</c>) are <see cref="nint"/>;
/// callers keep the owning <see cref="System.Runtime.InteropServices.SafeHandle"/> alive around the call.
/// </summary>
internal static unsafe partial class NativeMethods
{
    // ---- library, errors (virterror.h, libvirt-host.h) ---------------------------------------

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virInitialize();

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virGetVersion(CULong* libVer, byte* type, CULong* typeVer);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial VirError* virGetLastError();

    [LibraryImport(Libraries.Libvirt)]
    internal static partial void virResetLastError();

    [LibraryImport(Libraries.Libvirt)]
    internal static partial void virSetErrorFunc(nint userData, delegate* unmanaged<nint, VirError*, void> handler);

    // ---- event loop (libvirt-event.h) ---------------------------------------------------------

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virEventRegisterDefaultImpl();

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virEventRunDefaultImpl();

    // ---- connections (libvirt-host.h) ---------------------------------------------------------

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint virConnectOpenAuth(string name, nint auth, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectClose(nint conn);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectGetLibVersion(nint conn, out CULong libVer);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectGetVersion(nint conn, out CULong hvVer);

    /// <summary>Returns a static string: not to be freed.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial byte* virConnectGetType(nint conn);

    /// <summary>Returns a string the caller frees.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial byte* virConnectGetHostname(nint conn);

    /// <summary>Returns a string the caller frees.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial byte* virConnectGetCapabilities(nint conn);

    /// <summary>Returns a string the caller frees.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial byte* virConnectGetURI(nint conn);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectIsAlive(nint conn);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectSetKeepAlive(nint conn, int interval, uint count);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectRegisterCloseCallback(
        nint conn, delegate* unmanaged<nint, int, nint, void> cb, nint opaque, delegate* unmanaged<nint, void> freecb);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectUnregisterCloseCallback(nint conn, delegate* unmanaged<nint, int, nint, void> cb);

    /// <summary>The caller frees every domain and then the array (with <c>free</c>).</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectListAllDomains(nint conn, nint** domains, uint flags);

    // ---- domain events (libvirt-domain.h) -----------------------------------------------------

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectDomainEventRegisterAny(
        nint conn, nint dom, int eventId, nint cb, nint opaque, delegate* unmanaged<nint, void> freecb);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virConnectDomainEventDeregisterAny(nint conn, int callbackId);

    // ---- domains (libvirt-domain.h) -----------------------------------------------------------

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint virDomainLookupByName(nint conn, string name);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial nint virDomainLookupByUUID(nint conn, byte* uuid);

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint virDomainDefineXML(nint conn, string xml);

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint virDomainCreateXML(nint conn, string xmlDesc, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainFree(nint domain);

    /// <summary>Returns a string owned by the domain object: not to be freed.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial byte* virDomainGetName(nint domain);

    /// <summary>Writes <c>VIR_UUID_BUFLEN</c> (16) raw bytes.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainGetUUID(nint domain, byte* uuid);

    /// <summary>Returns <c>(unsigned int)-1</c> for an inactive domain or on error.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial uint virDomainGetID(nint domain);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainIsActive(nint domain);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainIsPersistent(nint domain);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainGetState(nint domain, out int state, out int reason, uint flags);

    /// <summary>Returns a string the caller frees.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial byte* virDomainGetXMLDesc(nint domain, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainCreate(nint domain);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainDestroy(nint domain);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainUndefineFlags(nint domain, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainSuspend(nint domain);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainResume(nint domain);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial nint virDomainMigrate3(nint domain, nint dconn, VirTypedParameter* @params, uint nparams, uint flags);

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainMigrateToURI3(nint domain, string dconnuri, VirTypedParameter* @params, uint nparams, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainMigrateSetMaxDowntime(nint domain, ulong downtime, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainMigrateGetMaxDowntime(nint domain, out ulong downtime, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainMigrateSetMaxSpeed(nint domain, CULong bandwidth, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainMigrateGetMaxSpeed(nint domain, out CULong bandwidth, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainMigrateSetCompressionCache(nint domain, ulong cacheSize, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainMigrateGetCompressionCache(nint domain, out ulong cacheSize, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainMigrateStartPostCopy(nint domain, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainAbortJob(nint domain);

    /// <summary>The caller frees <paramref name="params"/> with <c>virTypedParamsFree</c>.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainGetJobStats(nint domain, out int type, out VirTypedParameter* @params, out int nparams, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainStartDirtyRateCalc(nint domain, int seconds, uint flags);

    /// <summary><paramref name="doms"/> is NULL-terminated; the caller frees the result with <c>virDomainStatsRecordListFree</c>.</summary>
    [LibraryImport(Libraries.Libvirt)]
    internal static partial int virDomainListGetStats(nint* doms, uint stats, VirDomainStatsRecord*** retStats, uint flags);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial void virDomainStatsRecordListFree(VirDomainStatsRecord** stats);

    // ---- typed parameters (libvirt-common.h) --------------------------------------------------
    // The Add functions grow *params with realloc and update *nparams/*maxparams.

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddInt(VirTypedParameter** @params, int* nparams, int* maxparams, string name, int value);

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddUInt(VirTypedParameter** @params, int* nparams, int* maxparams, string name, uint value);

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddLLong(VirTypedParameter** @params, int* nparams, int* maxparams, string name, long value);

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddULLong(VirTypedParameter** @params, int* nparams, int* maxparams, string name, ulong value);

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddDouble(VirTypedParameter** @params, int* nparams, int* maxparams, string name, double value);

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddBoolean(VirTypedParameter** @params, int* nparams, int* maxparams, string name, int value);

    [LibraryImport(Libraries.Libvirt, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddString(VirTypedParameter** @params, int* nparams, int* maxparams, string name, string value);

    [LibraryImport(Libraries.Libvirt)]
    internal static partial void virTypedParamsFree(VirTypedParameter* @params, int nparams);

    // ---- C library ----------------------------------------------------------------------------

    /// <summary>Releases strings and arrays that libvirt hands over to the caller.</summary>
    [LibraryImport(Libraries.LibC, EntryPoint = "free")]
    internal static partial void Free(void* ptr);
}
