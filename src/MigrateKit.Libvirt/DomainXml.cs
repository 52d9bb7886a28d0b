using System;
using System.Globalization;
using System.Xml.Linq;

namespace MigrateKit.Libvirt;

/// <summary>Reads what the migrator needs from a domain's XML.</summary>
internal static class DomainXml
{
    /// <summary>The domain's memory (<c>&lt;memory unit='…'&gt;</c>) in bytes.</summary>
    /// <exception cref="FormatException">The XML has no usable memory element.</exception>
    internal static ulong MemoryBytes(string xml)
    {
        XElement memory = XDocument.Parse(xml).Root?.Element("memory") ?? throw new FormatException("The domain XML has no <memory> element.");
        ulong value = ulong.Parse(memory.Value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
        string unit = (string?)memory.Attribute("unit") ?? "KiB";
        ulong scale = unit switch
        {
            "b" or "bytes" => 1,
            "KB" => 1000,
            "k" or "KiB" => 1UL << 10,
            "MB" => 1000 * 1000,
            "M" or "MiB" => 1UL << 20,
            "GB" => 1000UL * 1000 * 1000,
            "G" or "GiB" => 1UL << 30,
            "TB" => 1000UL * 1000 * 1000 * 1000,
            "T" or "TiB" => 1UL << 40,
            _ => throw new FormatException($"Unknown memory unit '{unit}' in the domain XML."),
        };
        return checked(value * scale);
    }

    /// <summary>The domain's virtualization type (<c>&lt;domain type='…'&gt;</c>): <c>kvm</c>, or <c>qemu</c> for TCG.</summary>
    /// <exception cref="FormatException">The XML's root has no type.</exception>
    internal static string VirtType(string xml) =>
        (string?)XDocument.Parse(xml).Root?.Attribute("type") ?? throw new FormatException("The domain XML has no type attribute.");
}
