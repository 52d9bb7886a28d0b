using System;
using System.Globalization;
using System.IO;
using System.Linq;
using MigrateKit.Kvm;
using MigrateKit.Tracking;

namespace MigrateKit.Cli;

/// <summary>One finding of <c>migratekit doctor</c>: what was looked at, what was found and how to fix it.</summary>
/// <param name="Name">A stable name, e.g. <c>kvm-device</c>.</param>
/// <param name="Ok">Whether it is as MigrateKit needs it.</param>
/// <param name="Required">Whether the chosen use (<c>--for</c>) needs it.</param>
/// <param name="Detail">What was found.</param>
/// <param name="Fix">What to do when it is not ok; null when it is.</param>
internal sealed record DoctorCheck(string Name, bool Ok, bool Required, string Detail, string? Fix);

/// <summary>The checks of <c>migratekit doctor</c>, each of the machine as it is now.</summary>
internal static class DoctorChecks
{
    /// <summary>The uses <c>--for</c> accepts.</summary>
    internal static readonly string[] Uses = ["microvm", "hostvm", "libvirt", "bench"];

    /// <summary>Runs every check; <paramref name="use"/> decides which are required.</summary>
    internal static DoctorCheck[] Run(string use, string? connect)
    {
        bool micro = use is "microvm" or "bench";
        DoctorCheck[] checks =
        [
            KvmDevice(micro),
            KvmCapabilities(micro),
            WriteProtect(use == "hostvm"),
            LibvirtLibrary(use == "libvirt"),
            .. connect is null ? Array.Empty<DoctorCheck>() : [LibvirtConnect(connect, use == "libvirt")],
            Qemu(use == "bench"),
            .. Limits(),
        ];
        return checks;
    }

    private static DoctorCheck KvmDevice(bool required)
    {
        const string path = KvmSystem.DefaultPath;
        if (!File.Exists(path))
        {
            return new("kvm-device", false, required, $"{path} is missing",
                "load kvm_intel or kvm_amd (modprobe), enable virtualization in the firmware, or on a cloud VM choose one with nested virtualization; without it use --vm hostvm");
        }

        try
        {
            using KvmSystem kvm = KvmSystem.Open();
            return new("kvm-device", true, required, $"{path} opens read-write, API {kvm.ApiVersion}", null);
        }
        catch (KvmException ex)
        {
            return new("kvm-device", false, required, $"{path} does not open read-write: {ex.Message}",
                $"add your user to the group that owns {path} (usually kvm) and log in again");
        }
    }

    private static DoctorCheck KvmCapabilities(bool required)
    {
        try
        {
            using KvmSystem kvm = KvmSystem.Open();
            int manual = kvm.CheckExtension(KvmCapability.ManualDirtyLogProtect2);
            int ring = kvm.CheckExtension(KvmCapability.DirtyLogRing);
            int slots = kvm.CheckExtension(KvmCapability.MemorySlots);
            string detail = string.Create(CultureInfo.InvariantCulture,
                $"manual-dirty-log-protect 0x{manual:x}, dirty-ring max {(ring > 0 ? $"{ring} bytes" : "none (the bitmap is used)")}, memslots {slots}");
            bool ok = manual != 0 && slots > 0;
            return new("kvm-capabilities", ok, required, detail,
                ok ? null : "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and memslots need Linux 5.8 or later: upgrade the kernel");
        }
        catch (KvmException ex)
        {
            return new("kvm-capabilities", false, required, $"not queried: {ex.Message}", "fix kvm-device first");
        }
    }

    private static DoctorCheck WriteProtect(bool required)
    {
        // osrelease as uname -r prints it (6.9.0-...), which a user compares with what the fix names.
        string kernel = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : Environment.OSVersion.Version.ToString();
        return WriteProtectTracker.UnsupportedReason is { } reason
            ? new("kernel-write-protect", false, required, reason,
                "run Linux 6.9 or later with CONFIG_USERFAULTFD and PTE markers; as non-root set sysctl vm.unprivileged_userfaultfd=1")
            : new("kernel-write-protect", true, required, $"Linux {kernel}: userfaultfd asynchronous write-protect and PAGEMAP_SCAN work", null);
    }

    private static DoctorCheck LibvirtLibrary(bool required) => LibvirtSharp.Libvirt.IsAvailable
        ? new("libvirt-library", true, required, $"libvirt.so.0 loads, version {LibvirtSharp.Libvirt.LibraryVersion}", null)
        : new("libvirt-library", false, required, "libvirt.so.0 is not found",
            "install the libvirt client library (Debian/Ubuntu: libvirt0, Fedora: libvirt-libs)");

    private static DoctorCheck LibvirtConnect(string uri, bool required)
    {
        if (!LibvirtSharp.Libvirt.IsAvailable)
        {
            return new("libvirt-connect", false, required, $"{uri} not tried: libvirt.so.0 is not found", "fix libvirt-library first");
        }

        try
        {
            using var connection = LibvirtSharp.LibvirtConnection.Open(uri, readOnly: true);
            return new("libvirt-connect", true, required, $"{connection.Uri} answers (read-only connection)", null);
        }
        catch (LibvirtSharp.LibvirtException ex)
        {
            return new("libvirt-connect", false, required, $"{uri}: {ex.Message}",
                "start libvirtd or virtqemud on that host, check the URI, and for qemu:///system join the libvirt group");
        }
    }

    private static DoctorCheck Qemu(bool required)
    {
        string? found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "qemu-system-x86_64")).FirstOrDefault(File.Exists);
        return found is null
            ? new("qemu", false, required, "qemu-system-x86_64 is not on PATH (bench vs-qemu runs it)",
                "install QEMU (Debian/Ubuntu: qemu-system-x86, Fedora: qemu-system-x86-core) or add its directory to PATH")
            : new("qemu", true, required, $"{found}", null);
    }

    private static DoctorCheck[] Limits()
    {
        string limits = File.Exists("/proc/self/limits") ? File.ReadAllText("/proc/self/limits") : "";
        (string Soft, string Hard)? files = ProcLimits.Find(limits, "Max open files");
        (string Soft, string Hard)? locked = ProcLimits.Find(limits, "Max locked memory");
        bool filesOk = files is { } f && ProcLimits.AtLeast(f.Soft, 1024);
        bool lockedOk = locked is { } l && ProcLimits.AtLeast(l.Soft, 64UL << 20);
        return
        [
            new("nofile-limit", filesOk, false, files is { } a ? $"open files: soft {a.Soft}, hard {a.Hard}" : "open files: unknown",
                filesOk ? null : "raise it to at least 1024 (ulimit -n 4096, or LimitNOFILE= in a systemd unit): a receiver holds a socket and descriptors per region"),
            new("memlock-limit", lockedOk, false, locked is { } b ? $"locked memory: soft {b.Soft}, hard {b.Hard} bytes" : "locked memory: unknown",
                lockedOk ? null : "raise it to at least 64 MiB (ulimit -l, or LimitMEMLOCK= in a systemd unit) if guests or QEMU lock their memory"),
        ];
    }
}

/// <summary>Reads <c>/proc/self/limits</c>, whose columns are the limit's name, soft, hard and units.</summary>
internal static class ProcLimits
{
    /// <summary>The soft and hard values of the limit named <paramref name="name"/>, or null when it is not listed.</summary>
    internal static (string Soft, string Hard)? Find(string limits, string name)
    {
        foreach (string line in limits.Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal))
            {
                string[] fields = line[name.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return fields.Length >= 2 ? (fields[0], fields[1]) : null;
            }
        }

        return null;
    }

    /// <summary>Whether a value ("unlimited" or a number) is at least <paramref name="minimum"/>.</summary>
    internal static bool AtLeast(string value, ulong minimum) =>
        value == "unlimited" || (ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) && n >= minimum);
}
