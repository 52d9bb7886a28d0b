using System;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class StartPlanTests
{
    private const long MiB = 1L << 20;

    [TestMethod]
    public void Choose_GuestAtTheLinksSpeed_SizesTheFirstThrottleStepFromTheRatio()
    {
        var options = new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB };

        StartPlan plan = StartPlan.Choose(options, 100.0 * MiB);

        // q = 1: the guest must run at most 40 % of the time for the rate to be 40 % of the link.
        Assert.IsTrue(plan.AutoConverge);
        Assert.AreEqual(60, plan.ThrottleInitial);
        Assert.AreEqual(13, plan.ThrottleIncrement);
        Assert.AreEqual(100UL, plan.BandwidthMiBps);
        StringAssert.Contains(plan.Reason, "100%");
    }

    [TestMethod]
    public void Choose_GuestFarFasterThanTheLink_StartsNearTheCap()
    {
        StartPlan plan = StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = 10 * MiB }, 1000.0 * MiB);

        Assert.AreEqual(99, plan.ThrottleInitial);
        Assert.AreEqual(5, plan.ThrottleIncrement);
    }

    [TestMethod]
    public void Choose_SlowGuest_KeepsQemusSteps()
    {
        StartPlan plan = StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB }, 10.0 * MiB);

        Assert.IsTrue(plan.AutoConverge);
        Assert.IsNull(plan.ThrottleInitial);
        Assert.IsNull(plan.ThrottleIncrement);
    }

    [TestMethod]
    public void Choose_UnlimitedOrUnmeasured_LeavesQemusSteps()
    {
        Assert.IsNull(StartPlan.Choose(new LibvirtMigrationOptions(), 500.0 * MiB).ThrottleInitial);
        Assert.IsNull(StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = MiB }, null).ThrottleInitial);
    }

    [TestMethod]
    public void Choose_AutoConvergeNotAllowed_TurnsItOff()
    {
        StartPlan plan = StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = MiB, AllowAutoConverge = false, AllowPostcopy = true }, 100.0 * MiB);

        Assert.IsFalse(plan.AutoConverge);
        Assert.IsTrue(plan.Postcopy);
    }

    [TestMethod]
    public void BandwidthLimit_IsRoundedUpToWholeMiBps()
    {
        Assert.AreEqual(2UL, StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = MiB + 1 }, null).BandwidthMiBps);
        Assert.IsNull(StartPlan.Choose(new LibvirtMigrationOptions(), null).BandwidthMiBps);
    }

    [TestMethod]
    public void Validate_NamesTheBadOption()
    {
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { MaxDowntime = TimeSpan.Zero }.Validate()).Message, "MaxDowntime");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { DowntimeBudget = TimeSpan.FromMilliseconds(10) }.Validate()).Message, "DowntimeBudget");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { BandwidthLimit = 0 }.Validate()).Message, "BandwidthLimit");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { DirtyRatePeriod = TimeSpan.FromMilliseconds(1500) }.Validate()).Message, "DirtyRatePeriod");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { PollInterval = TimeSpan.Zero }.Validate()).Message, "PollInterval");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { SwitchoverBandwidth = -1 }.Validate()).Message, "SwitchoverBandwidth");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { Deadline = TimeSpan.Zero }.Validate()).Message, "Deadline");
    }

    [TestMethod]
    public void Parameters_CarryThePlansSpeedAndThrottleSteps()
    {
        StartPlan plan = StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB }, 100.0 * MiB);

        DomainMigrationParameters parameters = plan.Parameters("tcp://10.0.0.2");

        Assert.AreEqual("tcp://10.0.0.2", parameters.MigrationUri);
        Assert.AreEqual(100UL, parameters.BandwidthMiBps);
        Assert.AreEqual(60, parameters.AutoConvergeInitial);
        Assert.AreEqual(13, parameters.AutoConvergeIncrement);
    }

    [TestMethod]
    public void Flags_AreLiveWithWhatThePlanAndTheOptionsTurnOn()
    {
        var plain = new LibvirtMigrationOptions { AllowAutoConverge = false };
        var all = new LibvirtMigrationOptions { AllowPostcopy = true, Unsafe = true, PersistOnDestination = true, UndefineSource = true };

        Assert.AreEqual(MigrationFlags.Live, StartPlan.Choose(plain, null).Flags(plain));
        Assert.AreEqual(
            MigrationFlags.Live | MigrationFlags.AutoConverge | MigrationFlags.Postcopy | MigrationFlags.Unsafe | MigrationFlags.PersistDestination | MigrationFlags.UndefineSource,
            StartPlan.Choose(all, null).Flags(all));
    }

    [TestMethod]
    public void Flags_Tls_AddsVirMigrateTlsAndNothingElse()
    {
        var plain = new LibvirtMigrationOptions { AllowAutoConverge = false };
        var tls = new LibvirtMigrationOptions { AllowAutoConverge = false, Tls = true };

        Assert.IsFalse(plain.Tls);
        Assert.AreEqual(MigrationFlags.Live | MigrationFlags.Tls, StartPlan.Choose(tls, null).Flags(tls));
    }
}
