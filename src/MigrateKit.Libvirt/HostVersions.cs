using System;

namespace MigrateKit.Libvirt;

/// <summary>What a libvirt host runs: the versions decide which of QEMU's tools a migration can use.</summary>
/// <param name="Libvirt">The libvirt daemon's version.</param>
/// <param name="Qemu">The hypervisor's version (0.0.0 when the driver cannot tell).</param>
public sealed record HostVersions(Version Libvirt, Version Qemu)
{
    /// <summary>QEMU's dirty-limit capability (throttling each vCPU by its own dirty rate through the KVM dirty ring) came in 8.1.</summary>
    internal static readonly Version QemuDirtyLimit = new(8, 1);

    /// <summary>libvirt 9.0's migration flags end at <c>VIR_MIGRATE_ZEROCOPY</c>: before 9.1 there is no dirty-limit flag.</summary>
    internal static readonly Version LibvirtAfterKnownWithout = new(9, 1);

    /// <summary>zlib and zstd compression of multifd channels came to libvirt in 9.4.</summary>
    internal static readonly Version LibvirtMultifdCompression = new(9, 4);

    /// <summary>Why dirty-limit is not used on this host, in words.</summary>
    internal string DirtyLimitAbsence() =>
        Qemu < QemuDirtyLimit && Qemu > new Version(0, 0)
            ? $"dirty-limit unavailable: QEMU {Qemu} has none (8.1 and later)"
            : Libvirt < LibvirtAfterKnownWithout
                ? $"dirty-limit unavailable: libvirt {Libvirt} has no flag for it"
                : "dirty-limit not used: it needs a dirty-ring domain and this binding does not pass it";
}
