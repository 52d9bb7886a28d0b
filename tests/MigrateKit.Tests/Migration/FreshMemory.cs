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
}
