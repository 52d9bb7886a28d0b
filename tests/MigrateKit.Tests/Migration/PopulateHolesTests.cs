using System;
using System.Runtime.InteropServices;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class PopulateHolesTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [TestMethod]
    public void ShortZeroRunsBetweenData_AreBacked_LongOnesAndTheEdgesAreNot()
    {
        using GuestMemoryLayout memory = FreshMemory.Of(1024);
        GuestMemoryRegion region = memory.Regions[0];
        DirtyBitmap held = Write(region, (10, 10), (25, 5), (100, 5), (110, 2), (600, 1));

        using var holes = new PopulateHoles([region], [held]);
        Assert.IsTrue(SpinWait.SpinUntil(() => holes.Finished, Patience));

        // Holes 20..24 and 105..109 (5 pages each); 30..99 and 112..599 are longer than 16 pages.
        Assert.AreEqual(10UL, holes.PagesPopulated);
        DirtyBitmap present = FreshMemory.Populated(region);
        Assert.AreEqual(23UL + 10UL, present.Count());
        foreach (ulong page in new ulong[] { 20, 24, 105, 109 })
        {
            Assert.IsTrue(present.Test(page), $"hole page {page}");
        }

        foreach (ulong page in new ulong[] { 0, 9, 30, 99, 112, 599, 601, 1023 })
        {
            Assert.IsFalse(present.Test(page), $"page {page}");
        }
    }

    [TestMethod]
    public void Contents_AreUnchanged()
    {
        using GuestMemoryLayout memory = FreshMemory.Of(256);
        GuestMemoryRegion region = memory.Regions[0];
        DirtyBitmap held = Write(region, (0, 3), (5, 1), (8, 200));

        using var holes = new PopulateHoles([region], [held]);
        Assert.IsTrue(SpinWait.SpinUntil(() => holes.Finished, Patience));

        Assert.AreEqual(4UL, holes.PagesPopulated);
        for (ulong page = 0; page < region.PageCount; page++)
        {
            Span<byte> bytes = region.GetPage(page);
            byte expected = held.Test(page) ? Marker(page) : (byte)0;
            Assert.AreEqual(expected, bytes[0], $"page {page}");
            Assert.IsTrue(bytes[1..].IndexOfAnyExcept(held.Test(page) ? Marker(page) : (byte)0) < 0, $"page {page}");
        }
    }

    [TestMethod]
    public void ManyHolesAcrossLongDataRuns_AreAllBacked()
    {
        // Holes of 1–3 pages every 700 data pages: each span is cut at SpanPages, no hole is lost.
        using GuestMemoryLayout memory = FreshMemory.Of(8192);
        GuestMemoryRegion region = memory.Regions[0];
        var held = new DirtyBitmap(region.PageCount);
        ulong expectedHoles = 0;
        ulong page = 0;
        for (ulong hole = 1; ; hole = (hole % 3) + 1)
        {
            ulong run = Math.Min(700, region.PageCount - page);
            held.SetRange(page, run);
            page += run + hole;
            if (page >= region.PageCount)
            {
                break;
            }

            expectedHoles += hole;
        }

        WriteHeld(region, held);
        using var holes = new PopulateHoles([region], [held]);
        Assert.IsTrue(SpinWait.SpinUntil(() => holes.Finished, Patience));

        Assert.AreEqual(expectedHoles, holes.PagesPopulated);
        Assert.AreEqual(held.Count() + expectedHoles, FreshMemory.Populated(region).Count());
    }

    [TestMethod]
    public void NoMoreThanRoundZeroHeld()
    {
        // Two data pages, a 16-page hole between them: backing it would put 16 pages beside 2.
        using GuestMemoryLayout memory = FreshMemory.Of(64);
        GuestMemoryRegion region = memory.Regions[0];
        DirtyBitmap held = Write(region, (0, 1), (17, 1));

        using var holes = new PopulateHoles([region], [held]);
        Assert.IsTrue(SpinWait.SpinUntil(() => holes.Finished, Patience));

        Assert.AreEqual(0UL, holes.PagesPopulated);
        Assert.AreEqual(2UL, FreshMemory.Populated(region).Count());
    }

    [TestMethod]
    public void RegionsThatHeldMemoryBefore_AreLeftAlone()
    {
        using GuestMemoryLayout memory = FreshMemory.Of(64);
        GuestMemoryRegion region = memory.Regions[0];
        DirtyBitmap held = Write(region, (0, 10), (12, 10));

        using var holes = new PopulateHoles([null], [held]);
        Assert.IsTrue(holes.Finished);
        Assert.AreEqual(20UL, FreshMemory.Populated(region).Count());
    }

    [TestMethod]
    public void Dispose_StopsIt_BeforeTheMemoryIsReleased()
    {
        GuestMemoryLayout memory = FreshMemory.Of(16384);
        GuestMemoryRegion region = memory.Regions[0];
        var held = new DirtyBitmap(region.PageCount);
        for (ulong page = 0; page < region.PageCount; page += 2)
        {
            held.Set(page);
        }

        var holes = new PopulateHoles([region], [held]);
        holes.Dispose();
        Assert.IsTrue(holes.Finished);
        ulong populated = FreshMemory.Populated(region).Count();
        Thread.Sleep(50);
        Assert.AreEqual(populated, FreshMemory.Populated(region).Count(), "nothing backed after Dispose returned");
        memory.Dispose();
    }

    [TestMethod]
    public void ReleasedMemory_EndsItQuietly()
    {
        GuestMemoryLayout memory = FreshMemory.Of(64);
        var held = new DirtyBitmap(64);
        held.Set(0);
        held.Set(2);
        memory.Dispose();
        using var holes = new PopulateHoles([memory.Regions[0]], [held]);
        Assert.IsTrue(SpinWait.SpinUntil(() => holes.Finished, Patience));
        Assert.AreEqual(0UL, holes.PagesPopulated);
    }

    [TestMethod]
    public void Touch_KeepsWhatAnotherThreadWritesMeanwhile()
    {
        using GuestMemoryLayout memory = FreshMemory.Of(64);
        GuestMemoryRegion region = memory.Regions[0];
        using var stop = new CancellationTokenSource();
        var toucher = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                region.Touch(0, region.PageCount);
            }
        });
        toucher.Start();
        for (ulong value = 1; value <= 20_000; value++)
        {
            ulong page = value % region.PageCount;
            MemoryMarshal.Cast<byte, ulong>(region.GetPage(page))[0] = value;
        }

        stop.Cancel();
        toucher.Join();
        for (ulong page = 0; page < region.PageCount; page++)
        {
            ulong last = 20_000 - ((20_000 - page) % region.PageCount);
            Assert.AreEqual(last, MemoryMarshal.Cast<byte, ulong>(region.GetPage(page))[0], $"page {page}");
        }
    }

    [TestMethod]
    public void TheThread_RunsOnlyOnIdleCpus()
    {
        // The scheduling policy is field 41 of a thread's stat (SCHED_IDLE is 5); the fields
        // are counted after the command name's closing parenthesis, which may hold spaces.
        int result = -1;
        string policy = "";
        var thread = new Thread(() =>
        {
            result = MigrateKit.Interop.NativeMethods.ThreadIdle();
            string stat = System.IO.File.ReadAllText("/proc/thread-self/stat");
            policy = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[41 - 3];
        });
        thread.Start();
        thread.Join();

        Assert.AreEqual(0, result);
        Assert.AreEqual("5", policy);
    }

    [TestMethod]
    public void Touch_OutsideTheRegion_Throws() =>
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
        {
            using GuestMemoryLayout memory = FreshMemory.Of(4);
            memory.Regions[0].Touch(3, 2);
        });

    private static byte Marker(ulong page) => (byte)((page % 251) + 1);

    /// <summary>Writes the runs (first page, count) as data and returns them as the pages held.</summary>
    private static DirtyBitmap Write(GuestMemoryRegion region, params (ulong First, ulong Count)[] runs)
    {
        var held = new DirtyBitmap(region.PageCount);
        foreach ((ulong first, ulong count) in runs)
        {
            held.SetRange(first, count);
        }

        WriteHeld(region, held);
        return held;
    }

    private static void WriteHeld(GuestMemoryRegion region, DirtyBitmap held)
    {
        foreach (ulong page in held.EnumerateSetPages())
        {
            region.GetPage(page).Fill(Marker(page));
        }
    }
}
