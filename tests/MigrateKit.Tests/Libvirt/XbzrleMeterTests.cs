using System;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class XbzrleMeterTests
{
    private static JobStats Counters(ulong normal, ulong deltaPages, ulong deltaBytes, ulong misses) => new()
    {
        Type = DomainJobType.Unbounded,
        MemoryNormal = normal,
        MemoryNormalBytes = normal * 4096,
        CompressionPages = deltaPages,
        CompressionBytes = deltaBytes,
        CompressionCacheMisses = misses,
    };

    [TestMethod]
    public void IterationStarted_MeasuresTheIterationBefore_FromTheCounterDifferences()
    {
        var meter = new XbzrleMeter();
        meter.IterationStarted(Counters(30000, 0, 0, 25000), TimeSpan.FromSeconds(2));

        // 25,000 pages encoded in ~10 bytes each, 300 sent whole, in 200 ms.
        meter.IterationStarted(Counters(30300, 25000, 250000, 25300), TimeSpan.FromSeconds(2.2));

        XbzrleIteration last = meter.Last!.Value;
        Assert.AreEqual(25300UL, last.Pages);
        Assert.AreEqual(25000UL, last.DeltaPages);
        Assert.AreEqual(250000UL + (300 * 4096), last.WireBytes);
        Assert.AreEqual(300UL, last.CacheMisses);
        Assert.AreEqual(0.0145, last.WireRatio, 0.0005);
        Assert.AreEqual(126500, last.PageRate, 1);
        Assert.AreEqual(300 / 25300.0, last.MissRatio, 1e-9);
        Assert.AreEqual(1, meter.Measured);
    }

    [TestMethod]
    public void AnIterationWithoutDeltas_IsNotMeasured()
    {
        var meter = new XbzrleMeter();
        meter.IterationStarted(Counters(0, 0, 0, 0), TimeSpan.Zero);
        meter.IterationStarted(Counters(25000, 0, 0, 25000), TimeSpan.FromSeconds(1));

        Assert.IsNull(meter.Last, "the first iteration with xbzrle on fills the cache: all misses, no deltas");
        Assert.AreEqual(0, meter.Measured);
    }

    [TestMethod]
    public void WireRatio_OfPagesThatOverflow_StaysNearOne()
    {
        var random = new XbzrleIteration(1000, 10, 10 * 4000 + (990 * 4096), 10 * 4000, 0, TimeSpan.FromSeconds(1));

        Assert.IsGreaterThan(0.95, random.WireRatio);
    }
}
