using System.Collections.Generic;
using System.Linq;
using MigrateKit.Memory;

namespace MigrateKit.Migration;

/// <summary>
/// Which guest memory regions of this process a migration or a planner holds. Two of them on one
/// VM would take each other's dirty bits, and two migrations of one VM would each hand it over:
/// a region is held by one at a time.
/// </summary>
internal static class MemoryClaims
{
    private static readonly Dictionary<GuestMemoryRegion, string> Held = new(ReferenceEqualityComparer.Instance);

    /// <summary>Holds every region for <paramref name="holder"/>; returns null, or what holds a region already (and holds none).</summary>
    /// <param name="regions">The VM's regions.</param>
    /// <param name="holder">What holds them, as a refusal names it: "being migrated", "being observed by a planner".</param>
    internal static (int Region, string Holder)? TryClaim(IReadOnlyList<GuestMemoryRegion> regions, string holder)
    {
        lock (Held)
        {
            if (regions.FirstOrDefault(Held.ContainsKey) is { } busy)
            {
                return (busy.Index, Held[busy]);
            }

            foreach (GuestMemoryRegion r in regions)
            {
                Held.Add(r, holder);
            }

            return null;
        }
    }

    /// <summary>Lets the regions go.</summary>
    internal static void Release(IReadOnlyList<GuestMemoryRegion> regions)
    {
        lock (Held)
        {
            foreach (GuestMemoryRegion r in regions)
            {
                Held.Remove(r);
            }
        }
    }
}
