using System;
using System.Collections.Generic;
using System.Linq;
using MigrateKit.Interop;

namespace MigrateKit.Memory;

/// <summary>Where a region of guest-physical memory goes and how large it is.</summary>
/// <param name="GuestPhysicalAddress">The first guest-physical address (page aligned).</param>
/// <param name="Size">The size in bytes (a non-zero multiple of 4 KiB).</param>
public readonly record struct GuestMemoryRegionSpec(ulong GuestPhysicalAddress, ulong Size);

/// <summary>
/// A guest's physical memory: one or more non-overlapping regions, each backed by an
/// anonymous, zero-filled host mapping created with <c>MAP_NORESERVE</c> (host memory is
/// committed only as pages are touched). Dispose it to unmap.
/// </summary>
public sealed class GuestMemoryLayout : IDisposable
{
    /// <summary>The page size every region is measured in: 4 KiB.</summary>
    public const ulong PageSize = 4096;

    /// <summary>log2 of <see cref="PageSize"/>.</summary>
    public const int PageShift = 12;

    private readonly GuestMemoryRegion[] _regions;

    /// <summary>Maps the given regions.</summary>
    /// <exception cref="ArgumentException">A size or address is not a page multiple, a size is zero, a region
    /// wraps past 2^64, or two regions overlap.</exception>
    public GuestMemoryLayout(IEnumerable<GuestMemoryRegionSpec> regions)
    {
        ArgumentNullException.ThrowIfNull(regions);
        GuestMemoryRegionSpec[] specs = regions.ToArray();
        Validate(specs);

        var mapped = new List<GuestMemoryRegion>(specs.Length);
        try
        {
            for (int i = 0; i < specs.Length; i++)
            {
                Errno.Check(NativeMethods.MmapAnonymous(specs[i].Size, out nint address), $"mmap of {specs[i].Size} bytes for region {i}");
                mapped.Add(new GuestMemoryRegion(i, specs[i].GuestPhysicalAddress, specs[i].Size, new SafeMappingHandle(address, specs[i].Size)));
            }
        }
        catch
        {
            foreach (GuestMemoryRegion region in mapped)
            {
                region.Mapping.Dispose();
            }

            throw;
        }

        _regions = mapped.ToArray();
    }

    /// <summary>A layout of one region at guest-physical address 0.</summary>
    /// <param name="size">The size in bytes (a non-zero multiple of 4 KiB).</param>
    public static GuestMemoryLayout Create(ulong size) => new([new GuestMemoryRegionSpec(0, size)]);

    /// <summary>The regions, in the order given.</summary>
    public IReadOnlyList<GuestMemoryRegion> Regions => _regions;

    /// <summary>The total size of all regions in bytes.</summary>
    public ulong TotalSize => _regions.Aggregate(0UL, (sum, r) => sum + r.Size);

    /// <summary>The total number of pages of all regions.</summary>
    public ulong TotalPages => TotalSize / PageSize;

    /// <summary>Finds the region holding a guest-physical address.</summary>
    /// <returns>false when no region holds it.</returns>
    public bool TryTranslate(ulong guestPhysicalAddress, out GuestMemoryRegion region, out ulong offset)
    {
        foreach (GuestMemoryRegion r in _regions)
        {
            if (r.Contains(guestPhysicalAddress))
            {
                region = r;
                offset = guestPhysicalAddress - r.GuestPhysicalAddress;
                return true;
            }
        }

        region = null!;
        offset = 0;
        return false;
    }

    /// <summary>A span over guest-physical memory that must lie inside one region.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No single region holds the whole range.</exception>
    public Span<byte> GetSpan(ulong guestPhysicalAddress, int length)
    {
        if (!TryTranslate(guestPhysicalAddress, out GuestMemoryRegion region, out ulong offset))
        {
            throw new ArgumentOutOfRangeException(nameof(guestPhysicalAddress), $"No region holds guest-physical address 0x{guestPhysicalAddress:x}.");
        }

        return region.GetSpan(offset, length);
    }

    /// <summary>Unmaps every region. Spans obtained earlier must no longer be used.</summary>
    public void Dispose()
    {
        foreach (GuestMemoryRegion region in _regions)
        {
            region.Mapping.Dispose();
        }
    }

    private static void Validate(GuestMemoryRegionSpec[] specs)
    {
        if (specs.Length == 0)
        {
            throw new ArgumentException("A guest memory layout needs at least one region.", "regions");
        }

        for (int i = 0; i < specs.Length; i++)
        {
            GuestMemoryRegionSpec s = specs[i];
            if (s.Size == 0 || s.Size % PageSize != 0)
            {
                throw new ArgumentException($"Region {i}: size {s.Size} is not a non-zero multiple of the {PageSize}-byte page size.", "regions");
            }

            if (s.GuestPhysicalAddress % PageSize != 0)
            {
                throw new ArgumentException($"Region {i}: guest-physical address 0x{s.GuestPhysicalAddress:x} is not aligned to {PageSize} bytes.", "regions");
            }

            if (s.GuestPhysicalAddress + s.Size < s.GuestPhysicalAddress)
            {
                throw new ArgumentException($"Region {i}: 0x{s.GuestPhysicalAddress:x} + {s.Size} wraps past the end of the address space.", "regions");
            }

            for (int j = 0; j < i; j++)
            {
                GuestMemoryRegionSpec o = specs[j];
                if (s.GuestPhysicalAddress < o.GuestPhysicalAddress + o.Size && o.GuestPhysicalAddress < s.GuestPhysicalAddress + s.Size)
                {
                    throw new ArgumentException(
                        $"Region {i} [0x{s.GuestPhysicalAddress:x}, 0x{s.GuestPhysicalAddress + s.Size:x}) overlaps region {j} [0x{o.GuestPhysicalAddress:x}, 0x{o.GuestPhysicalAddress + o.Size:x}).",
                        "regions");
                }
            }
        }
    }
}
