using System;
using System.Linq;
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
        var options = new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB, Strategy = LibvirtStrategy.Precopy };

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
        StartPlan plan = StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = 10 * MiB, Strategy = LibvirtStrategy.Precopy }, 1000.0 * MiB);

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
        StartPlan plan = StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB, Strategy = LibvirtStrategy.Precopy }, 100.0 * MiB);

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

    [TestMethod]
    public void Auto_GuestNearTheLimit_ChoosesXbzrle_WithACacheOfTwiceTheHotSet_AndAutoConvergeForDeltasThatLose()
    {
        var options = new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB, MeasureDirtyRate = true };

        StartPlan plan = StartPlan.Choose(options, 99.0 * MiB, 1024 * (ulong)MiB);

        Assert.AreEqual(LibvirtStrategy.Xbzrle, plan.Strategy);
        Assert.AreEqual(256UL * (ulong)MiB, plan.XbzrleCacheBytes, "2 x 99 MiB, as a power of two");
        Assert.IsTrue(plan.AutoConverge, "what converges a guest whose deltas do not help");
        Assert.AreEqual(60, plan.ThrottleInitial, "sized from the measured rate, as for pre-copy");
        StringAssert.Contains(plan.Reason, "auto chose xbzrle");
        StringAssert.Contains(plan.Reason, "99%");
        Assert.AreEqual(MigrationFlags.Live | MigrationFlags.Compressed | MigrationFlags.AutoConverge, plan.Flags(options));
        var noThrottle = new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB, MeasureDirtyRate = true, AllowAutoConverge = false };
        Assert.IsFalse(StartPlan.Choose(noThrottle, 99.0 * MiB, 1024 * (ulong)MiB).AutoConverge);
        DomainMigrationParameters parameters = plan.Parameters(null);
        CollectionAssert.AreEqual(new[] { MigrationCompression.Xbzrle }, parameters.CompressionMethods!.ToArray());
        Assert.AreEqual(256UL * (ulong)MiB, parameters.XbzrleCacheBytes);
    }

    [TestMethod]
    public void Auto_SlowGuest_ChoosesPrecopy_WithAutoConvergeAsASafetyNet()
    {
        StartPlan plan = StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB }, 10.0 * MiB, 1024 * (ulong)MiB);

        Assert.AreEqual(LibvirtStrategy.Precopy, plan.Strategy);
        Assert.IsNull(plan.XbzrleCacheBytes);
        Assert.IsTrue(plan.AutoConverge);
        StringAssert.Contains(plan.Reason, "auto chose pre-copy");
    }

    [TestMethod]
    public void Auto_UnmeasuredUnderALimit_ChoosesXbzrle_WithHalfTheMemory()
    {
        var options = new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB };

        Assert.IsFalse(options.MeasuresDirtyRate, "auto does not wait a second for a rate its choice does not need");
        StartPlan plan = StartPlan.Choose(options, null, 1024 * (ulong)MiB);

        Assert.AreEqual(LibvirtStrategy.Xbzrle, plan.Strategy);
        Assert.AreEqual(512UL * (ulong)MiB, plan.XbzrleCacheBytes);
        Assert.AreEqual(StartPlan.MaxUnmeasuredCache, StartPlan.Choose(options, null, 64UL << 30).XbzrleCacheBytes);
        Assert.AreEqual(1024UL * (ulong)MiB, StartPlan.Choose(options, null, 3UL << 30).XbzrleCacheBytes, "half of 3 GiB, down to a power of two");
        Assert.AreEqual(StartPlan.MinXbzrleCache, StartPlan.Choose(options, null, 128 * (ulong)MiB).XbzrleCacheBytes);
    }

    [TestMethod]
    public void Auto_Unlimited_ChoosesPrecopy()
    {
        StartPlan plan = StartPlan.Choose(new LibvirtMigrationOptions(), null, 1024 * (ulong)MiB);

        Assert.AreEqual(LibvirtStrategy.Precopy, plan.Strategy);
        StringAssert.Contains(plan.Reason, "unlimited bandwidth");
    }

    [TestMethod]
    public void Auto_LimitAboveWhatOneStreamCarried_ChoosesMultifd()
    {
        var options = new LibvirtMigrationOptions { BandwidthLimit = 1000 * MiB, ParallelConnections = 4 };

        StartPlan plan = StartPlan.Choose(options, null, 1024 * (ulong)MiB, streamBytesPerSecond: 400.0 * MiB);

        Assert.AreEqual(LibvirtStrategy.Multifd, plan.Strategy);
        Assert.AreEqual(4, plan.ParallelConnections);
        Assert.AreEqual(4, plan.Parameters(null).ParallelConnections);
        Assert.IsTrue(plan.Flags(options).HasFlag(MigrationFlags.Parallel));
        StringAssert.Contains(plan.Reason, "400 MiB/s");
    }

    [TestMethod]
    public void ExplicitStrategies_AreKept_AndSaySo()
    {
        foreach (LibvirtStrategy strategy in new[] { LibvirtStrategy.Precopy, LibvirtStrategy.Xbzrle, LibvirtStrategy.Multifd, LibvirtStrategy.Postcopy })
        {
            StartPlan plan = StartPlan.Choose(new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB, Strategy = strategy }, 99.0 * MiB, 1024 * (ulong)MiB);

            Assert.AreEqual(strategy, plan.Strategy);
            StringAssert.Contains(plan.Reason, "chosen by the caller");
            Assert.AreEqual(strategy == LibvirtStrategy.Postcopy, plan.Postcopy);
            Assert.AreEqual(strategy == LibvirtStrategy.Xbzrle, plan.XbzrleCacheBytes is not null);
            Assert.AreEqual(strategy == LibvirtStrategy.Multifd, plan.ParallelConnections is not null);
        }
    }

    [TestMethod]
    public void ExplicitCache_OverridesTheSizing()
    {
        var options = new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB, Strategy = LibvirtStrategy.Xbzrle, XbzrleCacheBytes = 32 * (ulong)MiB };

        Assert.AreEqual(32 * (ulong)MiB, StartPlan.Choose(options, 99.0 * MiB, 1024 * (ulong)MiB).XbzrleCacheBytes);
    }

    [TestMethod]
    public void CacheFor_IsAPowerOfTwo_FromTheMinimumToHalfTheMemory()
    {
        TimeSpan second = TimeSpan.FromSeconds(1);
        Assert.AreEqual(StartPlan.MinXbzrleCache, StartPlan.CacheFor(1.0 * MiB, second, 1024 * (ulong)MiB));
        Assert.AreEqual(512 * (ulong)MiB, StartPlan.CacheFor(900.0 * MiB, second, 1024 * (ulong)MiB));
        Assert.AreEqual(512 * (ulong)MiB, StartPlan.CacheFor(200.0 * MiB, second, 1024 * (ulong)MiB), "2 x 200 MiB rounds up to 512 MiB");
        Assert.AreEqual(256 * (ulong)MiB, StartPlan.CacheFor(50.0 * MiB, TimeSpan.FromSeconds(2), 1024 * (ulong)MiB), "the hot set is the rate over the period");
    }

    [TestMethod]
    public void Validate_NamesTheBadStrategyOption()
    {
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { Strategy = (LibvirtStrategy)42 }.Validate()).Message, "Strategy");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { XbzrleCacheBytes = 4096 }.Validate()).Message, "XbzrleCacheBytes");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new LibvirtMigrationOptions { ParallelConnections = 0 }.Validate()).Message, "ParallelConnections");
    }

    [TestMethod]
    public void Reason_NamesTheToolsTheHostLacks()
    {
        var options = new LibvirtMigrationOptions { BandwidthLimit = 100 * MiB, Strategy = LibvirtStrategy.Multifd };

        StartPlan old = StartPlan.Choose(options, null, 1024 * (ulong)MiB, null, new HostVersions(new Version(9, 0, 0), new Version(7, 2, 0)));
        StartPlan newer = StartPlan.Choose(options, null, 1024 * (ulong)MiB, null, new HostVersions(new Version(10, 0, 0), new Version(7, 2, 0)));
        StartPlan newest = StartPlan.Choose(options, null, 1024 * (ulong)MiB, null, new HostVersions(new Version(10, 0, 0), new Version(8, 2, 0)));

        StringAssert.Contains(old.Reason, "dirty-limit unavailable: QEMU 7.2.0 has none");
        StringAssert.Contains(old.Reason, "channels uncompressed (libvirt 9.0.0 compresses multifd from 9.4)");
        Assert.DoesNotContain("uncompressed", newer.Reason);
        StringAssert.Contains(newest.Reason, "dirty-limit not used");
        StringAssert.Contains(StartPlan.Choose(options, null, 0, null, new HostVersions(new Version(9, 0, 0), new Version(8, 2, 0))).Reason, "libvirt 9.0.0 has no flag");
    }
}
