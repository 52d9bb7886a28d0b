using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>
/// Call, check, wrap: domain-level libvirt calls. <c>name</c> arguments only label errors
/// (<c>virDomainDestroy(web01): …</c>).
/// </summary>
internal static unsafe class DomainApi
{
    /// <summary><c>VIR_DOMAIN_JOB_STATS_COMPLETED</c>.</summary>
    internal const uint JobStatsCompleted = 1;

    /// <summary><c>VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY</c>.</summary>
    internal const uint MaxSpeedPostcopy = 1;

    /// <summary><c>VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS</c>: fail instead of silently omitting unsupported groups.</summary>
    internal const uint EnforceStats = 1u << 31;

    internal static string GetName(SafeDomainHandle domain)
    {
        using var lease = new HandleLease(domain);
        byte* name = NativeMethods.virDomainGetName(lease.Pointer);
        if (name is null)
        {
            throw LibvirtError.FromLastError("virDomainGetName");
        }

        return NativeString.Borrowed(name);
    }

    internal static Guid GetUuid(SafeDomainHandle domain, string name)
    {
        byte* raw = stackalloc byte[ConnectApi.UuidLength];
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainGetUUID(lease.Pointer, raw), "virDomainGetUUID", name);
        return new Guid(new ReadOnlySpan<byte>(raw, ConnectApi.UuidLength), bigEndian: true);
    }

    /// <returns>The hypervisor id, or null for an inactive domain (libvirt returns (unsigned)-1 without an error).</returns>
    internal static int? GetId(SafeDomainHandle domain)
    {
        using var lease = new HandleLease(domain);
        uint id = NativeMethods.virDomainGetID(lease.Pointer);
        return id == uint.MaxValue ? null : (int)id;
    }

    internal static bool IsActive(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        return LibvirtError.Check(NativeMethods.virDomainIsActive(lease.Pointer), "virDomainIsActive", name) == 1;
    }

    internal static bool IsPersistent(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        return LibvirtError.Check(NativeMethods.virDomainIsPersistent(lease.Pointer), "virDomainIsPersistent", name) == 1;
    }

    internal static (int State, int Reason) GetState(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainGetState(lease.Pointer, out int state, out int reason, 0), "virDomainGetState", name);
        return (state, reason);
    }

    internal static string GetXmlDesc(SafeDomainHandle domain, string name, uint flags)
    {
        using var lease = new HandleLease(domain);
        byte* xml = NativeMethods.virDomainGetXMLDesc(lease.Pointer, flags);
        if (xml is null)
        {
            throw LibvirtError.FromLastError("virDomainGetXMLDesc", name);
        }

        return NativeString.Take(xml);
    }

    internal static void Create(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainCreate(lease.Pointer), "virDomainCreate", name);
    }

    internal static void Destroy(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainDestroy(lease.Pointer), "virDomainDestroy", name);
    }

    internal static void Undefine(SafeDomainHandle domain, string name, uint flags)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainUndefineFlags(lease.Pointer, flags), "virDomainUndefineFlags", name);
    }

    internal static void Suspend(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainSuspend(lease.Pointer), "virDomainSuspend", name);
    }

    internal static void Resume(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainResume(lease.Pointer), "virDomainResume", name);
    }

    internal static SafeDomainHandle Migrate3(SafeDomainHandle domain, string name, SafeConnectHandle destination, TypedParameters parameters, uint flags)
    {
        using var lease = new HandleLease(domain);
        using var destinationLease = new HandleLease(destination);
        nint migrated = NativeMethods.virDomainMigrate3(lease.Pointer, destinationLease.Pointer, parameters.Pointer, (uint)parameters.Count, flags);
        return new SafeDomainHandle(LibvirtError.CheckPointer(migrated, "virDomainMigrate3", name));
    }

    internal static void MigrateToUri3(SafeDomainHandle domain, string name, string destinationUri, TypedParameters parameters, uint flags)
    {
        using var lease = new HandleLease(domain);
        int result = NativeMethods.virDomainMigrateToURI3(lease.Pointer, destinationUri, parameters.Pointer, (uint)parameters.Count, flags);
        LibvirtError.Check(result, "virDomainMigrateToURI3", $"{name} -> {destinationUri}");
    }

    internal static void SetMaxDowntime(SafeDomainHandle domain, string name, ulong milliseconds)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainMigrateSetMaxDowntime(lease.Pointer, milliseconds, 0), "virDomainMigrateSetMaxDowntime", name);
    }

    internal static ulong GetMaxDowntime(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainMigrateGetMaxDowntime(lease.Pointer, out ulong milliseconds, 0), "virDomainMigrateGetMaxDowntime", name);
        return milliseconds;
    }

    internal static void SetMaxSpeed(SafeDomainHandle domain, string name, ulong mebibytesPerSecond, uint flags)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainMigrateSetMaxSpeed(lease.Pointer, new CULong((nuint)mebibytesPerSecond), flags), "virDomainMigrateSetMaxSpeed", name);
    }

    internal static ulong GetMaxSpeed(SafeDomainHandle domain, string name, uint flags)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainMigrateGetMaxSpeed(lease.Pointer, out CULong speed, flags), "virDomainMigrateGetMaxSpeed", name);
        return speed.Value;
    }

    internal static void SetCompressionCache(SafeDomainHandle domain, string name, ulong bytes)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainMigrateSetCompressionCache(lease.Pointer, bytes, 0), "virDomainMigrateSetCompressionCache", name);
    }

    internal static ulong GetCompressionCache(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainMigrateGetCompressionCache(lease.Pointer, out ulong bytes, 0), "virDomainMigrateGetCompressionCache", name);
        return bytes;
    }

    internal static void StartPostCopy(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainMigrateStartPostCopy(lease.Pointer, 0), "virDomainMigrateStartPostCopy", name);
    }

    internal static void AbortJob(SafeDomainHandle domain, string name)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainAbortJob(lease.Pointer), "virDomainAbortJob", name);
    }

    internal static (int Type, Dictionary<string, object> Parameters) GetJobStats(SafeDomainHandle domain, string name, uint flags)
    {
        VirTypedParameter* parameters;
        int count;
        int type;
        using (var lease = new HandleLease(domain))
        {
            LibvirtError.Check(NativeMethods.virDomainGetJobStats(lease.Pointer, out type, out parameters, out count, flags), "virDomainGetJobStats", name);
        }

        return (type, TypedParameters.ReadAndFree(parameters, count));
    }

    internal static void StartDirtyRateCalc(SafeDomainHandle domain, string name, int seconds, uint flags)
    {
        using var lease = new HandleLease(domain);
        LibvirtError.Check(NativeMethods.virDomainStartDirtyRateCalc(lease.Pointer, seconds, flags), "virDomainStartDirtyRateCalc", name);
    }

    /// <summary><c>virDomainListGetStats</c> for one domain; the records are freed before returning.</summary>
    internal static (string DomainName, Dictionary<string, object> Parameters) GetStats(SafeDomainHandle domain, string name, uint stats, uint flags)
    {
        VirDomainStatsRecord** records = null;
        int count;
        using (var lease = new HandleLease(domain))
        {
            nint* domains = stackalloc nint[2];
            domains[0] = lease.Pointer;
            domains[1] = 0;
            count = LibvirtError.Check(NativeMethods.virDomainListGetStats(domains, stats, &records, flags), "virDomainListGetStats", name);
        }

        try
        {
            // The driver skips a domain it cannot report on instead of failing the whole list.
            if (count == 0)
            {
                return (name, new Dictionary<string, object>(StringComparer.Ordinal));
            }

            VirDomainStatsRecord* record = records[0];
            return (NativeString.Borrowed(NativeMethods.virDomainGetName(record->Dom)), TypedParameters.Read(record->Params, record->NParams));
        }
        finally
        {
            NativeMethods.virDomainStatsRecordListFree(records);
        }
    }
}
