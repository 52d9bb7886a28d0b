using System;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class LibvirtRunStateTests
{
    private static LibvirtRunState NewRun(FakeTimeProvider? time = null) => new(time ?? new FakeTimeProvider(), TimeSpan.FromMilliseconds(300));

    [TestMethod]
    public void Phase_StartsAtTheHandshake_AndOnlyMovesForward()
    {
        LibvirtRunState run = NewRun();
        Assert.AreEqual(MigrationPhase.Handshake, run.Phase);

        run.MarkJobSeen();
        Assert.AreEqual(MigrationPhase.Send, run.Phase);

        run.MarkSwitchover();
        run.MarkJobSeen();
        Assert.AreEqual(MigrationPhase.Switchover, run.Phase);
    }

    [TestMethod]
    public void MarkPostcopy_IsTheSwitchoverPhase_AndEndsAPendingAbort()
    {
        LibvirtRunState run = NewRun();
        run.RequestAbort("deadline");
        Assert.IsTrue(run.AbortPending);

        run.MarkPostcopy();

        Assert.IsTrue(run.PostcopyStarted);
        Assert.IsFalse(run.AbortPending, "postcopy moved the guest: there is nothing to abort to");
        Assert.AreEqual(MigrationPhase.Switchover, run.Phase);
        Assert.IsFalse(run.SwitchoverSeen, "postcopy is not QEMU's stop-and-copy");
    }

    [TestMethod]
    public void RequestAbort_KeepsTheFirstReason()
    {
        LibvirtRunState run = NewRun();

        Assert.IsTrue(run.RequestAbort("cancelled by the caller"));
        Assert.IsFalse(run.RequestAbort("deadline"));

        Assert.AreEqual("cancelled by the caller", run.AbortReason);
    }

    [TestMethod]
    public void MarkSwitchoverAndMarkPollingLost_SayTrueOnlyTheFirstTime()
    {
        LibvirtRunState run = NewRun();

        Assert.IsTrue(run.MarkSwitchover());
        Assert.IsFalse(run.MarkSwitchover());
        Assert.IsTrue(run.MarkPollingLost());
        Assert.IsFalse(run.MarkPollingLost());
        Assert.IsTrue(run.SwitchoverSeen);
        Assert.IsTrue(run.PollingLost);
    }

    [TestMethod]
    public void Elapsed_FollowsTheInjectedClockFromConstruction()
    {
        var time = new FakeTimeProvider();
        time.Advance(TimeSpan.FromMinutes(5));
        LibvirtRunState run = NewRun(time);

        time.Advance(TimeSpan.FromSeconds(3));

        Assert.AreEqual(TimeSpan.FromSeconds(3), run.Elapsed);
        Assert.AreEqual(TimeSpan.FromMilliseconds(300), run.QemuLimit);
    }
}
