using System;
using System.Collections.Generic;
using System.Numerics;
using MigrateKit.Guests;
using MigrateKit.Memory;

namespace MigrateKit.Vmm;

/// <summary>How to build a <see cref="MicroVm"/>.</summary>
public sealed class MicroVmOptions
{
    /// <summary>Guest memory as one region at address 0, in bytes.</summary>
    /// <value>The default is 256 MiB. Ignored when <see cref="Regions"/> is set.</value>
    public ulong MemorySize { get; init; } = 256UL << 20;

    /// <summary>Guest memory as explicit regions (one KVM slot each, slot numbers in order).</summary>
    /// <value>The default is <see langword="null"/>: one region of <see cref="MemorySize"/> at 0.</value>
    public IReadOnlyList<GuestMemoryRegionSpec>? Regions { get; init; }

    /// <summary>The number of vCPUs.</summary>
    /// <value>The default is 1.</value>
    public int VcpuCount { get; init; } = 1;

    /// <summary>Bytes of dirty ring per vCPU (a power of two), or 0 to track with the dirty bitmap.</summary>
    /// <value>The default is 0.</value>
    public int DirtyRingBytes { get; init; }

    /// <summary>Enable <c>KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2</c> (bitmap tracking only).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool ManualDirtyLogProtect { get; init; }

    /// <summary>With manual protect, also <c>KVM_DIRTY_LOG_INITIALLY_SET</c>.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool DirtyLogInitiallySet { get; init; }

    /// <summary>The KVM device path.</summary>
    /// <value>The default is <see langword="null"/>: <c>/dev/kvm</c>.</value>
    public string? KvmPath { get; init; }

    /// <summary>
    /// The ports the VM listens on for pace and status writes: dword status reports, or with
    /// <see cref="GuestPorts.SerialText"/> (<see cref="GuestPorts.Com1"/>, for images booted with
    /// <see cref="MicroVm.Boot(byte[], int)"/>) lines of text on a UART. Without a pace port the
    /// throttle is applied at timer kicks and a pace limit has no effect.
    /// </summary>
    /// <value>The default is <see cref="GuestPorts.Default"/>.</value>
    public GuestPorts Ports { get; init; } = GuestPorts.Default;

    /// <summary>Checks the options and names the first problem.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        if (Regions is null && (MemorySize == 0 || MemorySize % GuestMemoryLayout.PageSize != 0))
        {
            throw new ArgumentException($"MemorySize {MemorySize} is not a non-zero multiple of {GuestMemoryLayout.PageSize}.", nameof(MemorySize));
        }

        if (Regions is { Count: 0 })
        {
            throw new ArgumentException("Regions is empty.", nameof(Regions));
        }

        if (VcpuCount is < 1 or > 64)
        {
            throw new ArgumentException($"VcpuCount {VcpuCount} is outside 1..64.", nameof(VcpuCount));
        }

        if (DirtyRingBytes != 0 && (DirtyRingBytes < 0 || !BitOperations.IsPow2(DirtyRingBytes)))
        {
            throw new ArgumentException($"DirtyRingBytes {DirtyRingBytes} is not a power of two.", nameof(DirtyRingBytes));
        }

        if (DirtyRingBytes != 0 && ManualDirtyLogProtect)
        {
            throw new ArgumentException("ManualDirtyLogProtect applies to the dirty bitmap; it cannot be combined with DirtyRingBytes.", nameof(ManualDirtyLogProtect));
        }

        if (DirtyLogInitiallySet && !ManualDirtyLogProtect)
        {
            throw new ArgumentException("DirtyLogInitiallySet needs ManualDirtyLogProtect.", nameof(DirtyLogInitiallySet));
        }

        if (Ports.SerialText && Ports.Status > ushort.MaxValue - 7)
        {
            throw new ArgumentException($"Ports.Status 0x{Ports.Status:x} is a UART's base, whose eight registers must lie below port 0x10000.", nameof(Ports));
        }
    }
}
