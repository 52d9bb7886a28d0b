using System;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>The engine with page encodings (deltas, LZ4) over the scripted source and an in-memory link.</summary>
[TestClass]
public sealed class PreCopyEngineEncodingTests
{
    [TestMethod]
    public async Task Encoded_CopiesMemoryByteForByte_WithFarFewerBytesThanRawPages()
    {
        MigrationReport raw;
        await using (var h = new EngineHarness(EngineHarness.Converging))
        {
            (raw, _) = await h.RunAsync(EngineHarness.Options());
            Assert.AreEqual(MigrationStatus.Completed, raw.Status, raw.Reason);
            Assert.IsTrue(raw.RoundsDetail.All(r => r.DeltaPages == 0 && r.CompressedPages == 0), "no encodings when they are off");
        }

        await using var e = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, ReceiveResult received) = await e.RunAsync(EngineHarness.Options(o => EngineHarness.Encoded(o)));
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);
        Assert.IsTrue(report.DigestsMatched);
        Assert.IsTrue(report.SourceMemoryVerified);
        EngineHarness.AssertSameMemory(e.Memory, e.Target!.Memory);
        Assert.AreEqual(received.PagesReceived, report.PagesSent);

        // The harness's pages are one byte repeated with an 8-byte stamp: round 0 compresses them;
        // a page rewritten with another byte compresses better than its delta; a hot page
        // rewritten with the same byte changes its stamp only, so the switchover sends deltas.
        RoundReport first = report.RoundsDetail[0];
        Assert.AreEqual(first.PagesSent, first.CompressedPages);
        Assert.IsLessThan(first.PagesSent * 100, first.CompressedBytes);
        RoundReport last = report.RoundsDetail[^1];
        Assert.AreEqual(RoundAction.Switchover, last.Action);
        Assert.IsGreaterThanOrEqualTo((ulong)EngineHarness.Hot.Length, last.DeltaPages);
        Assert.AreEqual(last.PagesSent, last.DeltaPages + last.CompressedPages);
        Assert.IsLessThanOrEqualTo(last.DeltaPages * 16, last.DeltaBytes);
        Assert.IsTrue(report.RoundsDetail.All(r => r.DeltaBytes <= r.DeltaPages * 512 && r.CompressedBytes <= r.CompressedPages * 100), "every page went in a small form");
        Assert.IsLessThan(raw.BytesSent / 10, report.BytesSent);
    }

    [TestMethod]
    public async Task HotPagesWithSmallDeltas_AreNotHeldBack_AndTheForecastPricesThemByTheirDelta()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        var progress = new ListProgress<MigrationProgress>();
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options(o => EngineHarness.Encoded(o)), progress);
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        MigrationProgress[] p = progress.Items.ToArray();
        Assert.IsTrue(p.All(x => x.DeferredPages == 0), "a hot page that costs a few bytes is sent every round, not deferred");
        Assert.IsGreaterThan(0UL, p[^1].HotPages);

        // After round 1 the 3 hot pages are cheap (a delta each): pending is priced far below raw pages.
        Assert.IsLessThan(p[1].DirtyPages * EngineHarness.PageWireBytes / 8, p[1].Forecast.PendingBytes);
        Assert.IsGreaterThan(0UL, p[1].Forecast.PendingBytes);
        Assert.AreEqual(report.Rounds, p.Length);
    }

    [TestMethod]
    public async Task DeltasOnly_SendRoundZeroRaw_ThenDeltas()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options(o => EngineHarness.Encoded(o, PageEncodings.Delta)));
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        EngineHarness.AssertSameMemory(h.Memory, h.Target!.Memory);
        Assert.IsTrue(report.RoundsDetail.All(r => r.CompressedPages == 0));
        Assert.AreEqual(report.RoundsDetail[0].PagesSent, report.RoundsDetail[0].DeltaCacheMisses);
        Assert.IsGreaterThan(0UL, report.RoundsDetail[1].DeltaPages);
    }

}
