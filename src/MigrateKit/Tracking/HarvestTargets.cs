using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using MigrateKit.Memory;

namespace MigrateKit.Tracking;

/// <summary>The check every tracker makes of the bitmaps a harvest writes into.</summary>
internal static class HarvestTargets
{
    /// <summary>Checks that <paramref name="into"/> holds one bitmap per region, each of the region's size.</summary>
    /// <exception cref="ArgumentNullException">The list is null.</exception>
    /// <exception cref="ArgumentException">A bitmap is missing, null or of another size.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Check(IReadOnlyList<DirtyBitmap> into, IReadOnlyList<GuestMemoryRegion> regions)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.Count != regions.Count)
        {
            throw new ArgumentException($"Expected {regions.Count} bitmaps (one per region), got {into.Count}.", nameof(into));
        }

        for (int i = 0; i < regions.Count; i++)
        {
            DirtyBitmap? bitmap = into[i];
            if (bitmap is null)
            {
                throw new ArgumentException($"Bitmap {i} is null; region {regions[i].Index} needs one of {regions[i].PageCount} pages.", nameof(into));
            }

            if (bitmap.PageCount != regions[i].PageCount)
            {
                throw new ArgumentException($"Bitmap {i} covers {bitmap.PageCount} pages; region {regions[i].Index} has {regions[i].PageCount}.", nameof(into));
            }
        }
    }
}
