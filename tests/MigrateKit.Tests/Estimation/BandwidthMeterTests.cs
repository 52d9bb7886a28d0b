using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;

namespace MigrateKit.Tests.Estimation;

/// <summary>BandwidthMeter: windows of sending time, EWMA over closed windows, conservative quantile.</summary>
[TestClass]
public sealed class BandwidthMeterTests
{
    private const double Tolerance = 1e-6;

    private static TimeSpan Ms(int ms) => TimeSpan.FromMilliseconds(ms);

    [TestMethod]
    public void Defaults()
    {
        var meter = new BandwidthMeter();
        Assert.AreEqual(Ms(50), meter.MinimumWindow);
        Assert.AreEqual(0d, meter.BytesPerSecond);
        Assert.AreEqual(0d, meter.Current);
        Assert.AreEqual(0d, meter.Conservative());
        Assert.AreEqual(0, meter.SampleCount);
    }

    [TestMethod]
    public void ShortReports_StayInTheOpenWindow()
    {
        var meter = new BandwidthMeter();
        meter.Record(1000, Ms(10));
        meter.Record(1000, Ms(10));

        Assert.AreEqual(0, meter.SampleCount);
        Assert.AreEqual(0d, meter.BytesPerSecond);

        // Before any window closes, Current and Conservative give the open window's rate: 2000 B / 20 ms.
        Assert.AreEqual(100_000d, meter.Current, Tolerance);
        Assert.AreEqual(100_000d, meter.Conservative(), Tolerance);
        Assert.AreEqual(2000L, meter.TotalBytes);
        Assert.AreEqual(Ms(20), meter.TotalTime);
    }

    [TestMethod]
    public void FirstWindow_IsTakenAsIs_ThenEwmaWithSmoothing()
    {
        var meter = new BandwidthMeter(smoothing: 0.3);

        // 5000 B over 10 + 40 ms = 50 ms closes the first window: 100 000 B/s.
        meter.Record(1000, Ms(10));
        meter.Record(4000, Ms(40));
        Assert.AreEqual(1, meter.SampleCount);
        Assert.AreEqual(100_000d, meter.BytesPerSecond, Tolerance);

        // 2 000 000 B / 100 ms = 20 MB/s: 0.3 * 20e6 + 0.7 * 1e5 = 6 070 000.
        meter.Record(2_000_000, Ms(100));
        Assert.AreEqual(2, meter.SampleCount);
        Assert.AreEqual(6_070_000d, meter.BytesPerSecond, Tolerance);

        // 250 000 B / 50 ms = 5 MB/s: 0.3 * 5e6 + 0.7 * 6.07e6 = 5 749 000.
        meter.Record(250_000, Ms(50));
        Assert.AreEqual(3, meter.SampleCount);
        Assert.AreEqual(5_749_000d, meter.BytesPerSecond, Tolerance);
        Assert.AreEqual(5_749_000d, meter.Current, Tolerance);
        Assert.AreEqual(2_255_000L, meter.TotalBytes);
        Assert.AreEqual(Ms(200), meter.TotalTime);
    }

    [TestMethod]
    public void SmoothingOfOne_FollowsTheLatestWindow()
    {
        var meter = new BandwidthMeter(smoothing: 1);
        meter.Record(1000, Ms(50));
        meter.Record(9000, Ms(50));
        Assert.AreEqual(180_000d, meter.BytesPerSecond, Tolerance);
    }

    [TestMethod]
    public void IdleTimeWithoutBytes_DoesNotCloseAWindow_ButCountsInIt()
    {
        var meter = new BandwidthMeter();
        meter.Record(0, Ms(60));
        Assert.AreEqual(0, meter.SampleCount);

        // The next bytes close the window over the whole 60 ms: 600 B / 60 ms.
        meter.Record(600, TimeSpan.Zero);
        Assert.AreEqual(1, meter.SampleCount);
        Assert.AreEqual(10_000d, meter.BytesPerSecond, Tolerance);
    }

    [TestMethod]
    public void CustomMinimumWindow_ClosesEachReport()
    {
        var meter = new BandwidthMeter(minimumWindow: Ms(1));
        meter.Record(1000, Ms(1));
        meter.Record(3000, Ms(1));
        Assert.AreEqual(2, meter.SampleCount);
        Assert.AreEqual(Ms(1), meter.MinimumWindow);

        // 0.3 * 3e6 + 0.7 * 1e6 = 1.6e6.
        Assert.AreEqual(1_600_000d, meter.BytesPerSecond, Tolerance);
    }

    [TestMethod]
    public void Conservative_WithFewerThanThreeSamples_IsTheAverage()
    {
        var meter = new BandwidthMeter();
        meter.Record(5000, Ms(50));
        meter.Record(1_000_000, Ms(50));
        Assert.AreEqual(meter.BytesPerSecond, meter.Conservative(0));
        Assert.AreEqual(meter.BytesPerSecond, meter.Conservative(1));
    }

    [TestMethod]
    public void Conservative_InterpolatesTheQuantile_CappedByTheAverage()
    {
        var meter = new BandwidthMeter(smoothing: 0.3);
        meter.Record(5000, Ms(50));        // 1e5
        meter.Record(2_000_000, Ms(100));  // 2e7
        meter.Record(250_000, Ms(50));     // 5e6; average 5.749e6

        // Sorted [1e5, 5e6, 2e7]; q = 0.2 sits at 0.4: 1e5 + 0.4 * (5e6 - 1e5) = 2 060 000.
        Assert.AreEqual(2_060_000d, meter.Conservative(), Tolerance);
        Assert.AreEqual(2_060_000d, meter.Conservative(0.2), Tolerance);

        // q = 0 is the lowest window.
        Assert.AreEqual(100_000d, meter.Conservative(0), Tolerance);

        // q = 0.5 is the median 5e6, below the average.
        Assert.AreEqual(5_000_000d, meter.Conservative(0.5), Tolerance);

        // q = 0.9 sits at 1.8: 5e6 + 0.8 * 1.5e7 = 1.7e7, above the average 5.749e6: the average wins.
        Assert.AreEqual(5_749_000d, meter.Conservative(0.9), Tolerance);
        Assert.AreEqual(5_749_000d, meter.Conservative(1), Tolerance);
    }

    [TestMethod]
    public void Conservative_LooksOnlyAtTheLastHistorySamples()
    {
        var meter = new BandwidthMeter(smoothing: 0.5, history: 3);
        meter.Record(50, Ms(50));      // 1 000 B/s, pushed out by the fourth window
        meter.Record(500, Ms(50));     // 10 000
        meter.Record(1000, Ms(50));    // 20 000
        meter.Record(1500, Ms(50));    // 30 000
        Assert.AreEqual(4, meter.SampleCount);

        // Average: 1000 -> 5500 -> 12750 -> 21375. Lowest of the last three windows: 10 000.
        Assert.AreEqual(21_375d, meter.BytesPerSecond, Tolerance);
        Assert.AreEqual(10_000d, meter.Conservative(0), Tolerance);

        // Median of [10 000, 20 000, 30 000] is 20 000, below the average.
        Assert.AreEqual(20_000d, meter.Conservative(0.5), Tolerance);
    }

    [TestMethod]
    [DataRow(0d)]
    [DataRow(-0.1)]
    [DataRow(1.01)]
    [DataRow(double.NaN)]
    public void BadSmoothing_Throws(double smoothing)
    {
        ArgumentOutOfRangeException ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new BandwidthMeter(smoothing));
        Assert.AreEqual("smoothing", ex.ParamName);
    }

    [TestMethod]
    public void BadHistoryOrWindow_Throws()
    {
        Assert.AreEqual("history", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new BandwidthMeter(history: 0)).ParamName);
        Assert.AreEqual("minimumWindow", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new BandwidthMeter(minimumWindow: TimeSpan.Zero)).ParamName);
        Assert.AreEqual("minimumWindow", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new BandwidthMeter(minimumWindow: Ms(-1))).ParamName);
    }

    [TestMethod]
    public void BadReports_Throw_AndChangeNothing()
    {
        var meter = new BandwidthMeter();
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => meter.Record(-1, Ms(10)));
        Assert.AreEqual("elapsed", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => meter.Record(10, Ms(-1))).ParamName);
        Assert.AreEqual(0L, meter.TotalBytes);
        Assert.AreEqual(TimeSpan.Zero, meter.TotalTime);
    }

    [TestMethod]
    [DataRow(-0.01)]
    [DataRow(1.01)]
    [DataRow(double.NaN)]
    public void BadQuantile_Throws(double quantile)
    {
        var meter = new BandwidthMeter();
        Assert.AreEqual("quantile", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => meter.Conservative(quantile)).ParamName);
    }
}
