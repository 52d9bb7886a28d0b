using System;
using System.Linq;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class LibvirtDirtyRateProbeOptionsTests
{
    [TestMethod]
    public void Defaults_AreValid_OneTwoAndFiveSecondsOfPageSampling()
    {
        var options = new LibvirtDirtyRateProbeOptions();

        options.Validate();

        Assert.AreSequenceEqual(new[] { 1.0, 2.0, 5.0 }, options.Periods.Select(p => p.TotalSeconds).ToArray());
        Assert.AreEqual(DirtyRateMode.PageSampling, options.Mode);
        Assert.AreEqual(TimeSpan.FromSeconds(10), options.Grace);
        Assert.AreEqual(TimeSpan.FromMilliseconds(100), options.PollInterval);
        Assert.AreSame(TimeProvider.System, options.TimeProvider);
    }

    [TestMethod]
    [DataRow(500.0)]
    [DataRow(1500.0)]
    [DataRow(0.0)]
    [DataRow(61_000.0)]
    [DataRow(-1000.0)]
    public void Validate_APeriodThatIsNotWholeSecondsFrom1To60_IsRejected(double milliseconds)
    {
        var options = new LibvirtDirtyRateProbeOptions { Periods = [TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(milliseconds)] };

        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);

        Assert.AreEqual(nameof(LibvirtDirtyRateProbeOptions.Periods), ex.ParamName);
        StringAssert.Contains(ex.Message, "whole seconds from 1 to 60");
    }

    [TestMethod]
    public void Validate_NoPeriods_IsRejected()
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(new LibvirtDirtyRateProbeOptions { Periods = [] }.Validate);

        StringAssert.Contains(ex.Message, "at least one period");
    }

    [TestMethod]
    public void Validate_OutOfRangeWaitsAndModes_NameTheOption()
    {
        Assert.AreEqual("Grace", Assert.ThrowsExactly<ArgumentException>(new LibvirtDirtyRateProbeOptions { Grace = TimeSpan.Zero }.Validate).ParamName);
        Assert.AreEqual("PollInterval", Assert.ThrowsExactly<ArgumentException>(new LibvirtDirtyRateProbeOptions { PollInterval = TimeSpan.FromSeconds(6) }.Validate).ParamName);
        Assert.AreEqual("Mode", Assert.ThrowsExactly<ArgumentException>(new LibvirtDirtyRateProbeOptions { Mode = (DirtyRateMode)7 }.Validate).ParamName);
    }
}
