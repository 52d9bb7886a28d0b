using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>PaceControl: the settings every pacer of a VM reads.</summary>
[TestClass]
public sealed class PaceControlTests
{
    [TestMethod]
    public void Settings_StartUnlimited()
    {
        var control = new PaceControl();
        Assert.AreEqual(0d, control.PaceLimit);
        Assert.AreEqual(0, control.ThrottlePercent);
    }

    [TestMethod]
    public void EveryChange_BumpsTheGeneration()
    {
        var control = new PaceControl();
        int before = control.Generation;
        control.SetPaceLimit(25_000);
        control.SetThrottlePercent(30);
        Assert.AreEqual(before + 2, control.Generation);
        Assert.AreEqual(25_000d, control.PaceLimit);
        Assert.AreEqual(30, control.ThrottlePercent);
    }

    [TestMethod]
    [DataRow(-1.0)]
    [DataRow(double.NaN)]
    public void SetPaceLimit_RejectsANegativeOrNaNLimit(double limit)
    {
        var control = new PaceControl();
        ArgumentOutOfRangeException ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => control.SetPaceLimit(limit));
        Assert.AreEqual("pagesPerSecond", ex.ParamName);
    }

    [TestMethod]
    [DataRow(-1)]
    [DataRow(100)]
    public void SetThrottlePercent_RejectsValuesOutside0To99(int percent)
    {
        var control = new PaceControl();
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => control.SetThrottlePercent(percent));
        Assert.AreEqual(0, control.Generation);
    }
}
