using System;
using System.Globalization;
using System.IO;
using System.Linq;
using MigrateKit.Memory;

namespace MigrateKit.Tests.Migration;

/// <summary>Fresh destination memory and what of it the kernel has backed, for the background populate tests.</summary>
internal static class FreshMemory
{
    /// <summary>One region of <paramref name="pages"/> pages that nothing has touched.</summary>
    internal static GuestMemoryLayout Of(ulong pages) => new([new GuestMemoryRegionSpec(0, pages * GuestMemoryLayout.PageSize)]);

    /// <summary>The region's pages that are resident (<c>mincore</c>).</summary>
    internal static DirtyBitmap Populated(GuestMemoryRegion region)
    {
        var present = new DirtyBitmap(region.PageCount);
        region.MarkPopulatedPages(present);
        return present;
    }

    /// <summary>Whether the mapping that holds the region carries the huge-page advice (<c>hg</c> in its <c>VmFlags</c>).</summary>
    internal static unsafe bool AdvisedHugePages(GuestMemoryRegion region)
    {
        ulong address = (ulong)region.Pointer;
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong start)
                && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong end))
            {
                inside = address >= start && address < end;
            }
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal))
            {
                return line["VmFlags:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("hg");
            }
        }

        throw new InvalidOperationException($"No mapping in /proc/self/smaps holds 0x{address:x}.");
    }
}
