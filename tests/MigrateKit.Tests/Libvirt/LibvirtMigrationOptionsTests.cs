using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;

namespace MigrateKit.Tests.Libvirt;

/// <summary>LibvirtMigrationOptions: what libvirt and QEMU would refuse or silently change is rejected by Validate.</summary>
[TestClass]
public sealed class LibvirtMigrationOptionsTests
{
    private const long MiB = 1L << 20;

    [TestMethod]
    public void QemusDowntimeRange_IsValid()
    {
        new LibvirtMigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(1), DowntimeBudget = TimeSpan.FromSeconds(2000) }.Validate();
        new LibvirtMigrationOptions { MaxDowntime = TimeSpan.FromSeconds(2000), DowntimeBudget = TimeSpan.FromSeconds(2000) }.Validate();
    }

    [TestMethod]
    [DataRow(nameof(LibvirtMigrationOptions.MaxDowntime), 0.0)]
    [DataRow(nameof(LibvirtMigrationOptions.MaxDowntime), -1.0)]
    [DataRow(nameof(LibvirtMigrationOptions.MaxDowntime), 0.9999)]
    [DataRow(nameof(LibvirtMigrationOptions.MaxDowntime), 2_000_000.0001)]
    [DataRow(nameof(LibvirtMigrationOptions.DowntimeBudget), 2_000_001.0)]
    public void DowntimeOutsideQemusRange_IsNamed(string option, double milliseconds)
    {
        TimeSpan value = TimeSpan.FromMilliseconds(milliseconds);
        LibvirtMigrationOptions options = option == nameof(LibvirtMigrationOptions.MaxDowntime)
            ? new LibvirtMigrationOptions { MaxDowntime = value }
            : new LibvirtMigrationOptions { DowntimeBudget = value };

        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);

        Assert.AreEqual(option, ex.ParamName);
        Assert.StartsWith($"{option} must be from 1 ms to 2000 s, QEMU's range", ex.Message);
    }

    [TestMethod]
    [DataRow(1.0, 1.0)]
    [DataRow(300.4999, 300.0)]
    [DataRow(300.5, 301.0)]
    [DataRow(1000.9999, 1001.0)]
    [DataRow(2_000_000.0, 2_000_000.0)]
    public void MaxDowntime_ReachesQemuRoundedToWholeMilliseconds(double milliseconds, double handedToQemu)
    {
        var options = new LibvirtMigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(milliseconds), AllowAutoConverge = false };
        options.Validate();
        Assert.AreEqual(TimeSpan.FromMilliseconds(handedToQemu), StartPlan.Choose(options, null).MaxDowntime);
    }

    [TestMethod]
    public void DowntimeBudget_BelowMaxDowntime_IsNamed()
    {
        var options = new LibvirtMigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(300), DowntimeBudget = TimeSpan.FromMilliseconds(299) };
        Assert.AreEqual(nameof(LibvirtMigrationOptions.DowntimeBudget), Assert.ThrowsExactly<ArgumentException>(options.Validate).ParamName);
    }

    [TestMethod]
    [DataRow(0L)]
    [DataRow(-1L)]
    [DataRow((long.MaxValue >> 20 << 20) + 1)]
    [DataRow(long.MaxValue)]
    public void BandwidthLimit_OutsideWhatLibvirtTakes_IsNamed(long limit)
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(new LibvirtMigrationOptions { BandwidthLimit = limit }.Validate);

        Assert.AreEqual(nameof(LibvirtMigrationOptions.BandwidthLimit), ex.ParamName);
        Assert.Contains("at most 8796093022207 MiB/s", ex.Message);
    }

    [TestMethod]
    [DataRow(1L, 1UL)]
    [DataRow(MiB - 1, 1UL)]
    [DataRow(MiB, 1UL)]
    [DataRow(MiB + 1, 2UL)]
    [DataRow(long.MaxValue >> 20 << 20, 8796093022207UL)]
    public void BandwidthLimit_IsRoundedUpToWholeMiBps_NeverToZero(long limit, ulong mebibytesPerSecond)
    {
        var options = new LibvirtMigrationOptions { BandwidthLimit = limit };
        options.Validate();
        Assert.AreEqual(mebibytesPerSecond, options.BandwidthMiBps);
    }
}
