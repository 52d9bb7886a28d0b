using System;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class PopulateAheadTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [TestMethod]
    public void FreshRegion_IsBackedUpToTheWindow_AndNoFurtherUntilDataArrives()
    {
        using GuestMemoryLayout memory = FreshMemory.Of(1024);
        GuestMemoryRegion region = memory.Regions[0];
        using var ahead = new PopulateAhead([region], windowPages: 256, chunkPages: 64);
        ahead.Begin();

        Assert.IsTrue(SpinWait.SpinUntil(() => ahead.Covers(0, 256), Patience));
        Thread.Sleep(50);
        Assert.AreEqual(256UL, FreshMemory.Populated(region).Count(), "nothing past the window while no data arrived");
        Assert.IsFalse(ahead.Covers(0, 257));

        ahead.Advance(0, 600);
        Assert.IsTrue(SpinWait.SpinUntil(() => ahead.Covers(0, 856), Patience));
        Thread.Sleep(50);

        // Pages 256..600 are the receiver's (it wrote them): the populator skipped to the data.
        Assert.AreEqual(256UL + 256UL, FreshMemory.Populated(region).Count());
        ahead.Advance(0, 1024);
    }

    [TestMethod]
    public void Covers_TheWholeRegion_WhenTheDataCameWithinAWindowOfItsEnd()
    {
        using GuestMemoryLayout memory = FreshMemory.Of(512);
        using var ahead = new PopulateAhead([memory.Regions[0]], windowPages: 256, chunkPages: 64);
        ahead.Begin();
        ahead.Advance(0, 300);
        Assert.IsTrue(SpinWait.SpinUntil(() => ahead.Covers(0, 512), Patience));

        // The pages past the data at least; whatever it backed before the data came, at most.
        Assert.IsGreaterThanOrEqualTo(512UL - 300UL, FreshMemory.Populated(memory.Regions[0]).Count());
    }

    [TestMethod]
    public void NotBegun_BacksNothing_UntilBegin()
    {
        using GuestMemoryLayout memory = FreshMemory.Of(512);
        GuestMemoryRegion region = memory.Regions[0];
        using var ahead = new PopulateAhead([region], windowPages: 256, chunkPages: 64);
        Thread.Sleep(50);
        Assert.IsFalse(ahead.Covers(0, 1));
        Assert.AreEqual(0UL, FreshMemory.Populated(region).Count());

        ahead.Begin();
        ahead.Begin();
        Assert.IsTrue(SpinWait.SpinUntil(() => ahead.Covers(0, 256), Patience));
    }

    [TestMethod]
    public void Begin_AfterDispose_StartsNothing()
    {
        using GuestMemoryLayout memory = FreshMemory.Of(512);
        var ahead = new PopulateAhead([memory.Regions[0]], windowPages: 256, chunkPages: 64);
        ahead.Dispose();
        ahead.Begin();
        Thread.Sleep(50);
        Assert.IsTrue(ahead.Finished);
        Assert.AreEqual(0UL, FreshMemory.Populated(memory.Regions[0]).Count());
    }

    [TestMethod]
    public void RegionsThatHeldData_AreLeftAlone()
    {
        using GuestMemoryLayout memory = FreshMemory.Of(256);
        using var ahead = new PopulateAhead([null], windowPages: 256, chunkPages: 64);
        ahead.Begin();
        Thread.Sleep(50);
        Assert.IsFalse(ahead.Covers(0, 1));
        Assert.AreEqual(0UL, FreshMemory.Populated(memory.Regions[0]).Count());
    }

    [TestMethod]
    public void Dispose_StopsIt_BeforeTheMemoryIsReleased()
    {
        GuestMemoryLayout memory = FreshMemory.Of(1024);
        var ahead = new PopulateAhead([memory.Regions[0]], windowPages: 1024, chunkPages: 1);
        ahead.Begin();
        ahead.Dispose();
        ulong populated = FreshMemory.Populated(memory.Regions[0]).Count();
        Thread.Sleep(50);
        Assert.AreEqual(populated, FreshMemory.Populated(memory.Regions[0]).Count(), "nothing populated after Dispose returned");
        memory.Dispose();
        ahead.Dispose();
    }

    [TestMethod]
    public void ReleasedMemory_EndsItQuietly()
    {
        GuestMemoryLayout memory = FreshMemory.Of(1024);
        memory.Dispose();
        using var ahead = new PopulateAhead([memory.Regions[0]], windowPages: 256, chunkPages: 64);
        ahead.Begin();
        Thread.Sleep(50);
        Assert.IsFalse(ahead.Covers(0, 1));
    }

    [TestMethod]
    public void Chunks_MustFitTheWindow() =>
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new PopulateAhead([null], windowPages: 64, chunkPages: 65));
}
