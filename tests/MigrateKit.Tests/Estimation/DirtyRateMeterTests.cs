using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;

namespace MigrateKit.Tests.Estimation;

/// <summary>DirtyRateMeter: pages per second per harvest interval, EWMA plus the latest sample.</summary>
[TestClass]
public sealed class DirtyRateMeterTests
{
    private const double Tolerance = 1e-9;

    [TestMethod]
    public void FirstSample_IsTakenAsIs()
    {
        var meter = new DirtyRateMeter();
        Assert.AreEqual(0d, meter.PagesPerSecond);
        Assert.AreEqual(0, meter.SampleCount);

        meter.Record(100, TimeSpan.FromSeconds(1));
        Assert.AreEqual(100d, meter.PagesPerSecond, Tolerance);
        Assert.AreEqual(100d, meter.LastPagesPerSecond, Tolerance);
        Assert.AreEqual(1, meter.SampleCount);
    }

    [TestMethod]
    public void LaterSamples_AreSmoothed_AndTheLastIsKept()
    {
        var meter = new DirtyRateMeter(smoothing: 0.5);
        meter.Record(100, TimeSpan.FromSeconds(1));          // 100 pages/s
        meter.Record(300, TimeSpan.FromMilliseconds(500));   // 600 pages/s -> 0.5 * 600 + 0.5 * 100
        Assert.AreEqual(350d, meter.PagesPerSecond, Tolerance);
        Assert.AreEqual(600d, meter.LastPagesPerSecond, Tolerance);

        meter.Record(0, TimeSpan.FromMilliseconds(250));     // 0 pages/s -> 175
        Assert.AreEqual(175d, meter.PagesPerSecond, Tolerance);
        Assert.AreEqual(0d, meter.LastPagesPerSecond);
        Assert.AreEqual(3, meter.SampleCount);
    }

    [TestMethod]
    public void CustomSmoothing_WeighsTheNewSample()
    {
        var meter = new DirtyRateMeter(smoothing: 0.25);
        meter.Record(1000, TimeSpan.FromSeconds(1));
        meter.Record(2000, TimeSpan.FromSeconds(1));

        // 0.25 * 2000 + 0.75 * 1000.
        Assert.AreEqual(1250d, meter.PagesPerSecond, Tolerance);
    }

    [TestMethod]
    public void EmptyOrNegativeInterval_IsIgnored()
    {
        var meter = new DirtyRateMeter();
        meter.Record(100, TimeSpan.FromSeconds(1));
        meter.Record(5000, TimeSpan.Zero);
        meter.Record(5000, TimeSpan.FromSeconds(-1));
        Assert.AreEqual(1, meter.SampleCount);
        Assert.AreEqual(100d, meter.PagesPerSecond, Tolerance);
        Assert.AreEqual(100d, meter.LastPagesPerSecond, Tolerance);
    }

    [TestMethod]
    public void Reset_ForgetsTheHistory()
    {
        var meter = new DirtyRateMeter();
        meter.Record(1000, TimeSpan.FromSeconds(1));
        meter.Record(3000, TimeSpan.FromSeconds(1));
        meter.Reset();
        Assert.AreEqual(0d, meter.PagesPerSecond);
        Assert.AreEqual(0d, meter.LastPagesPerSecond);
        Assert.AreEqual(0, meter.SampleCount);

        // After a reset the next sample is taken as-is again, not blended with the old average.
        meter.Record(10, TimeSpan.FromSeconds(1));
        Assert.AreEqual(10d, meter.PagesPerSecond, Tolerance);
    }

    [TestMethod]
    [DataRow(0d)]
    [DataRow(1.5)]
    [DataRow(double.NaN)]
    public void BadSmoothing_Throws(double smoothing) =>
        Assert.AreEqual("smoothing", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new DirtyRateMeter(smoothing)).ParamName);
}
