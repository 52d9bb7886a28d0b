using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Tracking;
using MigrateKit.Vmm;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>Helpers shared by the KVM tests.</summary>
internal static class TestVms
{
    internal const ulong MiB = 1UL << 20;
    internal static readonly TimeSpan PassTimeout = TimeSpan.FromSeconds(60);

    /// <summary>One bitmap per tracked region.</summary>
    internal static DirtyBitmap[] Bitmaps(IDirtyPageTracker tracker) =>
        tracker.Regions.Select(r => new DirtyBitmap(r.PageCount)).ToArray();

    /// <summary>The set pages of a bitmap as a sorted list.</summary>
    internal static List<ulong> Pages(DirtyBitmap bitmap)
    {
        var pages = new List<ulong>();
        foreach (ulong p in bitmap.EnumerateSetPages())
        {
            pages.Add(p);
        }

        return pages;
    }

    /// <summary>The pages (relative to a region starting at <paramref name="regionBase"/>) a stride sweep writes.</summary>
    internal static List<ulong> SweepPages(ulong start, ulong end, ulong stride, ulong regionBase = 0)
    {
        var pages = new List<ulong>();
        for (ulong a = start; a < end; a += stride)
        {
            pages.Add((a - regionBase) / 4096);
        }

        return pages;
    }

    /// <summary>Waits for a pass and fails with the VM's status when it does not come.</summary>
    internal static void WaitForPass(MicroVm vm, uint pass, int vcpu = 0)
    {
        if (!vm.WaitForPass(pass, PassTimeout, vcpu))
        {
            Assert.Fail($"vCPU {vcpu} did not reach pass {pass}: {vm.GetStatus()[vcpu]}");
        }
    }

    /// <summary>Asserts two page lists are equal, naming the first difference.</summary>
    internal static void AssertSamePages(IReadOnlyList<ulong> expected, IReadOnlyList<ulong> actual, string what)
    {
        var missing = expected.Except(actual).Take(5).ToArray();
        var extra = actual.Except(expected).Take(5).ToArray();
        Assert.IsTrue(missing.Length == 0 && extra.Length == 0 && expected.Count == actual.Count,
            $"{what}: expected {expected.Count} pages, got {actual.Count}; missing e.g. [{string.Join(", ", missing)}], unexpected e.g. [{string.Join(", ", extra)}]");
    }
}
