using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using System.Xml.Linq;

namespace MigrateKit.Guests;

/// <summary>
/// A libvirt (QEMU) domain that boots a <see cref="BootSector"/> image: a PC with the default CPU
/// model, one vCPU, the image as its IDE disk, COM1 appended to a file, no display and no network.
/// </summary>
/// <param name="Name">The domain name.</param>
/// <param name="MemoryBytes">Guest memory (whole MiB).</param>
/// <param name="ImagePath">The raw boot image; both hosts must see it at this path.</param>
/// <param name="SerialPath">The file COM1 is appended to; both hosts must see it at this path.</param>
/// <param name="Kvm">KVM (true) or TCG (false).</param>
/// <param name="DirtyRingSize">KVM dirty-ring entries per vCPU (0: off; KVM only).</param>
public sealed record BootSectorDomain(string Name, ulong MemoryBytes, string ImagePath, string SerialPath, bool Kvm, int DirtyRingSize = 0)
{
    /// <summary>KVM where <c>/dev/kvm</c> exists, TCG elsewhere.</summary>
    public static bool KvmAvailable => File.Exists("/dev/kvm");

    /// <summary>The domain XML.</summary>
    /// <exception cref="ArgumentException">A parameter libvirt would refuse.</exception>
    public string ToXml()
    {
        if (MemoryBytes == 0 || MemoryBytes % (1UL << 20) != 0)
        {
            throw new ArgumentException($"Memory must be a non-zero number of whole MiB (got {MemoryBytes} bytes).", nameof(MemoryBytes));
        }

        if (DirtyRingSize != 0 && (!Kvm || DirtyRingSize < 1024 || DirtyRingSize > 65536 || (DirtyRingSize & (DirtyRingSize - 1)) != 0))
        {
            throw new ArgumentException($"The dirty ring needs KVM and a power of two from 1024 to 65536 entries (got {DirtyRingSize}, kvm={Kvm}).", nameof(DirtyRingSize));
        }

        var features = new XElement("features", new XElement("acpi"));
        if (DirtyRingSize != 0)
        {
            features.Add(new XElement("kvm", new XElement("dirty-ring", new XAttribute("state", "on"), new XAttribute("size", DirtyRingSize))));
        }

        var domain = new XElement("domain",
            new XAttribute("type", Kvm ? "kvm" : "qemu"),
            new XElement("name", Name),
            new XElement("memory", new XAttribute("unit", "MiB"), MemoryBytes >> 20),
            new XElement("vcpu", 1),
            new XElement("os",
                new XElement("type", new XAttribute("arch", "x86_64"), new XAttribute("machine", "pc"), "hvm"),
                new XElement("boot", new XAttribute("dev", "hd"))),
            features,
            new XElement("on_poweroff", "destroy"),
            new XElement("on_reboot", "destroy"),
            new XElement("on_crash", "destroy"),
            new XElement("devices",
                new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "disk"),
                    new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", "raw")),
                    new XElement("source", new XAttribute("file", ImagePath)),
                    new XElement("target", new XAttribute("dev", "hda"), new XAttribute("bus", "ide"))),
                new XElement("serial", new XAttribute("type", "file"),
                    new XElement("source", new XAttribute("path", SerialPath), new XAttribute("append", "on")),
                    new XElement("target", new XAttribute("port", 0))),
                new XElement("memballoon", new XAttribute("model", "none"))));
        return domain.ToString();
    }

    /// <summary>Reads what the guest printed on COM1 so far.</summary>
    public GuestSerialLog ReadSerial() => GuestSerialLog.Read(SerialPath);

    /// <summary>Waits until the guest reported pass <paramref name="pass"/>; returns the log then.</summary>
    /// <exception cref="TimeoutException">The guest did not get there within <paramref name="timeout"/>.</exception>
    /// <exception cref="InvalidOperationException">A self-check failed, or the guest printed something that is not a report.</exception>
    public async Task<GuestSerialLog> WaitForPassAsync(uint pass, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        GuestSerialLog log = ReadSerial();
        while (log.LastPass < pass && log.FailedPages.Count == 0 && log.Garbage.Count == 0)
        {
            if (Stopwatch.GetElapsedTime(start) > timeout)
            {
                throw new TimeoutException($"The guest of '{Name}' did not report pass {pass} within {timeout.TotalSeconds:F0} s (last pass {log.LastPass}).");
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            log = ReadSerial();
        }

        if (log.FailedPages.Count > 0 || log.Garbage.Count > 0)
        {
            string first = log.Garbage.Count > 0 ? log.Garbage[0] : log.FailedPages[0].ToString("x", CultureInfo.InvariantCulture);
            throw new InvalidOperationException($"The guest of '{Name}' reported {log.FailedPages.Count} failed page checks and {log.Garbage.Count} unexpected lines (first: {first}).");
        }

        return log;
    }
}
