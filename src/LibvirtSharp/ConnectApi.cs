using System;
using System.Runtime.InteropServices;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>Call, check, wrap: connection-level libvirt calls.</summary>
internal static unsafe class ConnectApi
{
    /// <summary><c>VIR_CONNECT_RO</c>.</summary>
    private const uint ReadOnlyFlag = 1;

    /// <summary><c>VIR_UUID_BUFLEN</c>.</summary>
    internal const int UuidLength = 16;

    internal static SafeConnectHandle Open(string uri, bool readOnly)
    {
        // A NULL auth callback: LibvirtSharp never prompts; URIs needing interactive credentials fail.
        nint conn = NativeMethods.virConnectOpenAuth(uri, 0, readOnly ? ReadOnlyFlag : 0);
        return new SafeConnectHandle(LibvirtError.CheckPointer(conn, "virConnectOpenAuth", uri));
    }

    internal static string GetUri(SafeConnectHandle connection)
    {
        using var lease = new HandleLease(connection);
        return NativeString.Take(CheckString(NativeMethods.virConnectGetURI(lease.Pointer), "virConnectGetURI"));
    }

    internal static string GetHostname(SafeConnectHandle connection)
    {
        using var lease = new HandleLease(connection);
        return NativeString.Take(CheckString(NativeMethods.virConnectGetHostname(lease.Pointer), "virConnectGetHostname"));
    }

    internal static string GetCapabilities(SafeConnectHandle connection)
    {
        using var lease = new HandleLease(connection);
        return NativeString.Take(CheckString(NativeMethods.virConnectGetCapabilities(lease.Pointer), "virConnectGetCapabilities"));
    }

    internal static string GetHypervisorType(SafeConnectHandle connection)
    {
        using var lease = new HandleLease(connection);
        return NativeString.Borrowed(CheckString(NativeMethods.virConnectGetType(lease.Pointer), "virConnectGetType"));
    }

    internal static ulong GetLibraryVersion(SafeConnectHandle connection)
    {
        using var lease = new HandleLease(connection);
        LibvirtError.Check(NativeMethods.virConnectGetLibVersion(lease.Pointer, out CULong version), "virConnectGetLibVersion");
        return version.Value;
    }

    internal static ulong GetHypervisorVersion(SafeConnectHandle connection)
    {
        using var lease = new HandleLease(connection);
        LibvirtError.Check(NativeMethods.virConnectGetVersion(lease.Pointer, out CULong version), "virConnectGetVersion");
        return version.Value;
    }

    internal static bool IsAlive(SafeConnectHandle connection)
    {
        using var lease = new HandleLease(connection);
        return LibvirtError.Check(NativeMethods.virConnectIsAlive(lease.Pointer), "virConnectIsAlive") == 1;
    }

    /// <returns>0 when keepalive is on, 1 when the peer does not support it.</returns>
    internal static int SetKeepAlive(SafeConnectHandle connection, int interval, uint count)
    {
        using var lease = new HandleLease(connection);
        return LibvirtError.Check(NativeMethods.virConnectSetKeepAlive(lease.Pointer, interval, count), "virConnectSetKeepAlive");
    }

    internal static SafeDomainHandle LookupByName(SafeConnectHandle connection, string name)
    {
        using var lease = new HandleLease(connection);
        return new SafeDomainHandle(LibvirtError.CheckPointer(NativeMethods.virDomainLookupByName(lease.Pointer, name), "virDomainLookupByName", name));
    }

    internal static SafeDomainHandle LookupByUuid(SafeConnectHandle connection, Guid uuid)
    {
        byte* raw = stackalloc byte[UuidLength];
        uuid.TryWriteBytes(new Span<byte>(raw, UuidLength), bigEndian: true, out _);
        using var lease = new HandleLease(connection);
        return new SafeDomainHandle(LibvirtError.CheckPointer(NativeMethods.virDomainLookupByUUID(lease.Pointer, raw), "virDomainLookupByUUID", uuid.ToString()));
    }

    internal static SafeDomainHandle DefineXml(SafeConnectHandle connection, string xml)
    {
        using var lease = new HandleLease(connection);
        return new SafeDomainHandle(LibvirtError.CheckPointer(NativeMethods.virDomainDefineXML(lease.Pointer, xml), "virDomainDefineXML"));
    }

    internal static SafeDomainHandle CreateXml(SafeConnectHandle connection, string xml, uint flags)
    {
        using var lease = new HandleLease(connection);
        return new SafeDomainHandle(LibvirtError.CheckPointer(NativeMethods.virDomainCreateXML(lease.Pointer, xml, flags), "virDomainCreateXML"));
    }

    internal static SafeDomainHandle[] ListAllDomains(SafeConnectHandle connection, uint flags)
    {
        nint* domains = null;
        int count;
        using (var lease = new HandleLease(connection))
        {
            count = LibvirtError.Check(NativeMethods.virConnectListAllDomains(lease.Pointer, &domains, flags), "virConnectListAllDomains");
        }

        // Every element carries a reference the caller must free; the array itself is plain memory.
        var result = new SafeDomainHandle[count];
        int wrapped = 0;
        try
        {
            for (; wrapped < count; wrapped++)
            {
                result[wrapped] = new SafeDomainHandle(domains[wrapped]);
            }

            return result;
        }
        catch
        {
            for (int i = wrapped; i < count; i++)
            {
                NativeMethods.virDomainFree(domains[i]);
            }

            for (int i = 0; i < wrapped; i++)
            {
                result[i].Dispose();
            }

            throw;
        }
        finally
        {
            NativeMethods.Free(domains);
        }
    }

    private static byte* CheckString(byte* value, string function)
    {
        if (value is null)
        {
            throw LibvirtError.FromLastError(function);
        }

        return value;
    }
}
