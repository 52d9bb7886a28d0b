using System;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// The destination's metrics, on the scripted migrations of <see cref="EngineHarness"/>: the
/// received bytes and pages add up to the <see cref="ReceiveResult"/>, and each receive is counted
/// by outcome. Not run in parallel with other tests: the meter is static.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class ReceiverTelemetryTests
{
    [TestMethod]
    public async Task Completed_CountersAddUpToTheReceiveResult()
    {
        using var capture = new TelemetryCapture();
        (MigrationReport report, ReceiveResult received, _) = await MigrateAsync(new EngineHarness(EngineHarness.Converging));
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);

        Assert.IsGreaterThan(0L, received.BytesReceived);
        Assert.AreEqual((double)received.BytesReceived, capture.Sum("migratekit.bytes.received"));
        Assert.AreEqual((double)received.PagesReceived, capture.Sum("migratekit.pages.received"));
        Assert.AreEqual((double)received.ZeroPagesReceived, capture.Sum("migratekit.zero_pages.received"));
        Assert.AreEqual((double)report.PagesSent, capture.Sum("migratekit.pages.received"), "every page sent with data was received");
        Assert.AreEqual("By", capture.Measurements("migratekit.bytes.received")[0].Unit);
        Assert.AreEqual("{page}", capture.Measurements("migratekit.pages.received")[0].Unit);

        // Counted at the round ends and the connection's end, not per frame.
        Assert.IsLessThanOrEqualTo(received.Rounds + 1, capture.Measurements("migratekit.bytes.received").Length);

        Measured outcome = capture.Measurements("migratekit.migrations.received").Single();
        Assert.AreEqual(1, outcome.Value);
        Assert.AreEqual("completed", outcome.Tags["migratekit.status"]);

        Measured resume = capture.Measurements("migratekit.resume.duration").Single();
        Assert.AreEqual(received.ResumeDuration!.Value.TotalMilliseconds, resume.Value);
        Assert.AreEqual("ms", resume.Unit);

        string[] receiverInstruments = ["migratekit.bytes.received", "migratekit.pages.received", "migratekit.zero_pages.received", "migratekit.migrations.received",
            "migratekit.resume.duration", "migratekit.receive.data.total", "migratekit.receive.data.processed"];
        foreach (Measured m in capture.All.Where(m => receiverInstruments.Contains(m.Instrument)))
        {
            Assert.AreEqual("receiver", m.Tags["migratekit.source"], m.Instrument);
        }
    }

    [TestMethod]
    public async Task Completed_GaugesHoldTheMemoryAndEndAtTheBytesReceived()
    {
        using var capture = new TelemetryCapture();
        (_, ReceiveResult received, ulong memoryBytes) = await MigrateAsync(new EngineHarness(EngineHarness.Converging));
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);

        Assert.AreEqual((double)memoryBytes, capture.Measurements("migratekit.receive.data.total").Single().Value);
        Measured[] processed = capture.Measurements("migratekit.receive.data.processed");
        Assert.AreEqual(0.0, processed[0].Value, "nothing read when the Hello arrives");
        Assert.AreEqual((double)received.BytesReceived, processed[^1].Value);
        Assert.IsTrue(processed.Zip(processed.Skip(1)).All(p => p.First.Value <= p.Second.Value), "processed never goes back");
    }

    [TestMethod]
    public async Task SourceAbort_CountsAnAbortedReceive_WithWhatArrived()
    {
        using var capture = new TelemetryCapture();

        // A one-second pause alone overruns the 100 ms limit: the source gives up after round 0.
        (_, ReceiveResult received, _) = await MigrateAsync(new EngineHarness(EngineHarness.Converging) { PauseLatency = _ => TimeSpan.FromSeconds(1) });
        Assert.AreEqual(MigrationStatus.Aborted, received.Status);

        Assert.AreEqual("aborted", capture.Measurements("migratekit.migrations.received").Single().Tags["migratekit.status"]);
        Assert.AreEqual((double)received.BytesReceived, capture.Sum("migratekit.bytes.received"));
        Assert.AreEqual((double)received.PagesReceived, capture.Sum("migratekit.pages.received"));
        Assert.IsEmpty(capture.Measurements("migratekit.resume.duration"));
    }

    [TestMethod]
    public async Task DestinationFailure_CountsAFailedReceive()
    {
        using var capture = new TelemetryCapture();
        (_, ReceiveResult received, _) = await MigrateAsync(new EngineHarness(EngineHarness.Converging) { ConfigureTarget = t => t.RestoreFailure = new InvalidOperationException("no vCPU for you") });
        Assert.AreEqual(MigrationStatus.Failed, received.Status);

        Assert.AreEqual("failed", capture.Measurements("migratekit.migrations.received").Single().Tags["migratekit.status"]);
        Assert.IsEmpty(capture.Measurements("migratekit.resume.duration"));
    }

    /// <summary>Runs the harness's migration with its default options and disposes the harness.</summary>
    private static async Task<(MigrationReport Report, ReceiveResult Received, ulong MemoryBytes)> MigrateAsync(EngineHarness harness)
    {
        await using EngineHarness h = harness;
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());
        return (report, received, h.Memory.TotalSize);
    }
}
