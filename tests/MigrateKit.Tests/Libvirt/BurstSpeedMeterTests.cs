using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;

namespace MigrateKit.Tests.Libvirt;

/// <summary>BurstSpeedMeter: the speed inside the bursts of a rate-limited byte counter, not its average.</summary>
[TestClass]
public sealed class BurstSpeedMeterTests
{
    private const ulong MiB = 1UL << 20;

    /// <summary>
    /// A counter that a 100 MiB/s limiter lets climb 10 MiB at <paramref name="linkMiBps"/> at the start of
    /// every 100 ms window, polled every <paramref name="pollMs"/> ms starting at <paramref name="phaseMs"/>.
    /// </summary>
    private static BurstSpeedMeter Feed(double linkMiBps, double pollMs, double phaseMs, int windows = 4)
    {
        var meter = new BurstSpeedMeter();
        double burstMs = 10.0 / linkMiBps * 1000;
        for (double t = phaseMs; t < windows * 100; t += pollMs)
        {
            double inWindow = t % 100;
            double bytes = (Math.Floor(t / 100) * 10 * MiB) + (Math.Min(inWindow, burstMs) / burstMs * 10 * MiB);
            meter.Add(TimeSpan.FromMilliseconds(t), TimeSpan.FromMilliseconds(pollMs / 100), (ulong)bytes);
        }

        return meter;
    }

    [TestMethod]
    [DataRow(1000.0, 1.0, 0.3)]
    [DataRow(2500.0, 0.7, 0.1)]
    [DataRow(500.0, 2.0, 1.1)]
    public void BytesPerSecond_IsTheLinkSpeedInsideTheBursts_NotTheRateLimit(double linkMiBps, double pollMs, double phaseMs)
    {
        BurstSpeedMeter meter = Feed(linkMiBps, pollMs, phaseMs);

        Assert.IsGreaterThanOrEqualTo(3, meter.Bursts);
        Assert.AreEqual(linkMiBps * MiB, meter.BytesPerSecond!.Value, linkMiBps * MiB * 0.02);
    }

    [TestMethod]
    public void PollsTooSlowToSeeInsideABurst_GiveNoSpeed()
    {
        // A 5 ms burst polled every 20 ms: each burst shows as one jump.
        BurstSpeedMeter meter = Feed(2000, 20, 3);

        Assert.AreEqual(0, meter.Bursts);
        Assert.IsNull(meter.BytesPerSecond);
    }

    [TestMethod]
    public void ACounterThatNeverMoves_GivesNoSpeed()
    {
        var meter = new BurstSpeedMeter();
        for (int t = 0; t < 100; t++)
        {
            meter.Add(TimeSpan.FromMilliseconds(t), TimeSpan.FromMilliseconds(0.1), 5 * MiB);
        }

        Assert.IsNull(meter.BytesPerSecond);
    }

    [TestMethod]
    public void TheFastestBurstCounts_ASlowedOneDoesNotDragItDown()
    {
        var meter = new BurstSpeedMeter();
        TimeSpan call = TimeSpan.FromMilliseconds(0.01);
        void Burst(double startMs, double mibPerMs, ulong startBytes)
        {
            meter.Add(TimeSpan.FromMilliseconds(startMs - 1), call, startBytes);
            for (int i = 0; i <= 5; i++)
            {
                meter.Add(TimeSpan.FromMilliseconds(startMs + i), call, startBytes + (ulong)((i + 1) * mibPerMs * MiB));
            }

            meter.Add(TimeSpan.FromMilliseconds(startMs + 6), call, startBytes + (ulong)(6 * mibPerMs * MiB));
        }

        Burst(0, 2, 0);
        Burst(100, 1, 20 * MiB);

        Assert.AreEqual(2, meter.Bursts);
        Assert.AreEqual(2000.0 * MiB, meter.BytesPerSecond!.Value, 20.0 * MiB);
    }

    [TestMethod]
    public void ABurstTimedBySlowPolls_CountsAtTheSlowestItsPollsAllow()
    {
        var meter = new BurstSpeedMeter();
        TimeSpan slow = TimeSpan.FromMilliseconds(4);
        meter.Add(TimeSpan.Zero, slow, 0);
        meter.Add(TimeSpan.FromMilliseconds(2), slow, 2 * MiB);
        meter.Add(TimeSpan.FromMilliseconds(4), slow, 4 * MiB);
        meter.Add(TimeSpan.FromMilliseconds(6), slow, 6 * MiB);
        meter.Add(TimeSpan.FromMilliseconds(8), slow, 7 * MiB);
        meter.Add(TimeSpan.FromMilliseconds(10), slow, 7 * MiB);

        // 4 MiB from 2 ms to 6 ms, each of the two moments unsure by 2 ms: at least 4 MiB in 8 ms.
        Assert.AreEqual(1, meter.Bursts);
        Assert.AreEqual(500.0 * MiB, meter.BytesPerSecond!.Value, 1.0);
    }
}
