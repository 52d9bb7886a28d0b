using System;
using System.Linq;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;

namespace MigrateKit.Tests.Estimation;

/// <summary>
/// The forecast runs after every harvest, just before a possible switchover while the guest
/// still writes: its statistics sort on the stack and allocate nothing.
/// </summary>
[TestClass]
public sealed class ForecastAllocationTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [TestMethod]
    public void Sort_OrdersLikeArraySort()
    {
        Gen.Double[-1e6, 1e6].Array[0, 64].Sample(values =>
        {
            double[] expected = values.Order().ToArray();
            double[] actual = (double[])values.Clone();
            Quantile.Sort(actual);
            CollectionAssert.AreEqual(expected, actual);
        });
    }

    [TestMethod]
    public void HistoryCorrection_OfAFullHistory_AllocatesNothing()
    {
        var history = new DowntimeHistory();
        for (int i = 0; i < DowntimeHistory.Capacity; i++)
        {
            // Measured transfers slower than forecast, with misses either side of the line.
            history.Record("k", Ms(10 + (3 * i)), Ms(2), Ms(13 + (3.3 * i) + ((i % 3) - 1)), Ms(11 + (3.3 * i)));
        }

        DowntimeCorrection warm = history.Correction("k");
        long before = GC.GetAllocatedBytesForCurrentThread();
        DowntimeCorrection measured = history.Correction("k");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.AreEqual(0L, allocated);
        Assert.AreEqual(warm, measured);
        Assert.AreEqual(DowntimeHistory.Capacity, measured.Samples);
        Assert.IsGreaterThan(1.0, measured.TransferRatio);
    }

    [TestMethod]
    public void ConservativeBandwidth_AllocatesNothing()
    {
        var meter = new BandwidthMeter(minimumWindow: TimeSpan.FromMilliseconds(1));
        for (int i = 0; i < 40; i++)
        {
            meter.Record((long)(1_000_000 + (i % 7 * 100_000)), Ms(2));
        }

        double warm = meter.Conservative();
        long before = GC.GetAllocatedBytesForCurrentThread();
        double measured = meter.Conservative();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.AreEqual(0L, allocated);
        Assert.AreEqual(warm, measured);
        Assert.IsLessThan(meter.Current, measured * 0.999, "the 20th percentile of varied windows lies below the average");
    }
}
