using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;
using Moq;

namespace MigrateKit.Tests.Migration;

/// <summary>What a run does with its tracker when it ends: stopped after a failure, an abort or a cancellation unless kept.</summary>
[TestClass]
public sealed class PreCopyRunTests
{
    public enum Ending
    {
        Failed,
        Aborted,
        Cancelled,
    }

    /// <summary>A Moq'd tracker over the harness's memory that reports no dirty page and records Start/Stop in IsTracking.</summary>
    private static Mock<IDirtyPageTracker> MockTracker(EngineHarness h)
    {
        bool tracking = false;
        var tracker = new Mock<IDirtyPageTracker>(MockBehavior.Strict);
        tracker.SetupGet(t => t.Regions).Returns(h.Memory.Regions);
        tracker.SetupGet(t => t.IsTracking).Returns(() => tracking);
        tracker.SetupGet(t => t.Kind).Returns("mock");
        tracker.Setup(t => t.Start()).Callback(() => tracking = true);
        tracker.Setup(t => t.Stop()).Callback(() => tracking = false);
        tracker.Setup(t => t.Harvest(It.IsAny<IReadOnlyList<DirtyBitmap>>())).Returns(new HarvestResult(0, TimeSpan.FromMilliseconds(1)));
        tracker.Setup(t => t.HarvestFinal(It.IsAny<IReadOnlyList<DirtyBitmap>>())).Returns(new HarvestResult(0, TimeSpan.FromMilliseconds(1)));
        tracker.SetupGet(t => t.FinalHarvestRearms).Returns(true);
        return tracker;
    }

    /// <summary>Runs a migration that ends as <paramref name="ending"/>: the destination refuses the state, the pause is too slow, or the switchover's pause cancels.</summary>
    private static async Task RunToAsync(EngineHarness h, Ending ending, bool keep)
    {
        using var cts = new CancellationTokenSource();
        switch (ending)
        {
            case Ending.Failed:
                h.ConfigureTarget = t => t.RestoreFailure = new InvalidOperationException("no vCPU for you");
                break;
            case Ending.Aborted:
                h.PauseLatency = _ => TimeSpan.FromSeconds(1);
                break;
            case Ending.Cancelled:
                h.OnPause = n =>
                {
                    if (n == 1)
                    {
                        cts.Cancel();
                    }
                };
                break;
        }

        MigrationOptions options = keep ? EngineHarness.Options(EngineHarness.KeepingTracking) : EngineHarness.Options();
        (Task<MigrationReport> migrating, Task<ReceiveResult> receiving) = h.Start(options, cancellationToken: cts.Token);
        if (ending == Ending.Cancelled)
        {
            await Assert.ThrowsAsync<OperationCanceledException>(() => migrating);
        }
        else
        {
            MigrationReport report = await migrating;
            Assert.AreEqual(ending == Ending.Failed ? MigrationStatus.Failed : MigrationStatus.Aborted, report.Status, report.Reason);
        }

        await receiving;
    }

    [TestMethod]
    [DataRow(Ending.Failed, false)]
    [DataRow(Ending.Aborted, false)]
    [DataRow(Ending.Cancelled, false)]
    [DataRow(Ending.Failed, true)]
    [DataRow(Ending.Aborted, true)]
    [DataRow(Ending.Cancelled, true)]
    public async Task RunNotCompleted_StopsTheTracker_UnlessAskedToKeepIt(Ending ending, bool keep)
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        Mock<IDirtyPageTracker> tracker = MockTracker(h);
        h.EngineTracker = tracker.Object;
        Assert.IsFalse(new MigrationOptions().KeepTrackingOnFailure, "stopping is the default");

        await RunToAsync(h, ending, keep);

        tracker.Verify(t => t.Start(), Times.Once());
        tracker.Verify(t => t.Stop(), keep ? Times.Never() : Times.Once());
        Assert.AreEqual(keep, tracker.Object.IsTracking);
        Assert.IsFalse(h.Paused, "the source runs on");
    }

    [TestMethod]
    public async Task CompletedRun_StopsTheTrackerOnce()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        Mock<IDirtyPageTracker> tracker = MockTracker(h);
        h.EngineTracker = tracker.Object;

        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        tracker.Verify(t => t.Stop(), Times.Once());
    }

    [TestMethod]
    public async Task HandshakeFailure_NeverTouchesTheTracker()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        Mock<IDirtyPageTracker> tracker = MockTracker(h);
        var engine = new PreCopyEngine(h.Source.Object, tracker.Object, EngineHarness.Options());
        (IMigrationConnection source, IMigrationConnection gone) = MigrationConnector.CreateInMemoryPair();
        await gone.DisposeAsync();
        await using (source)
        {
            MigrationReport report = await engine.MigrateAsync(source).WaitAsync(EngineHarness.Timeout);
            Assert.AreEqual(MigrationPhase.Handshake, report.FailedPhase);
        }

        tracker.Verify(t => t.Start(), Times.Never());
        tracker.Verify(t => t.Stop(), Times.Never());
    }

    [TestMethod]
    public async Task TrackerThatCannotStop_LeavesTheReportWithTheMigrationsOwnFailure()
    {
        await using var h = new EngineHarness(EngineHarness.Converging)
        {
            ConfigureTarget = t => t.RestoreFailure = new InvalidOperationException("no vCPU for you"),
        };
        Mock<IDirtyPageTracker> tracker = MockTracker(h);
        tracker.Setup(t => t.Stop()).Throws(new DirtyTrackingException("KVM_SET_USER_MEMORY_REGION", 5));
        h.EngineTracker = tracker.Object;

        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.Contains("no vCPU for you", report.Reason!);
        tracker.Verify(t => t.Stop(), Times.Once());
    }

    [TestMethod]
    public async Task PageWrittenWhileTheTrackerWasStopped_IsSentByTheNextMigration()
    {
        // The first migration fails at the switchover and stops the tracker; the guest then writes
        // a page no harvest will ever report. The next migration of the same engine restarts the
        // tracker and must still deliver that page.
        await using var h = new EngineHarness(EngineHarness.Converging);
        bool refuse = true;
        h.ConfigureTarget = t => t.RestoreFailure = refuse ? new InvalidOperationException("no vCPU for you") : null;
        (Task<MigrationReport> first, Task<ReceiveResult> firstReceived) = h.Start(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Failed, (await first).Status);
        await firstReceived;
        Assert.IsFalse(h.Tracker.IsTracking);

        var unseen = new PageWrite(1, 14, 0x5E);
        ScriptedTracker.Write(h.Memory, unseen, 99);

        refuse = false;
        (Task<MigrationReport> second, Task<ReceiveResult> secondReceived) = h.StartAgain();
        MigrationReport report = await second;
        ReceiveResult received = await secondReceived;

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);
        Assert.IsTrue(report.DigestsMatched);
        Assert.IsTrue(h.Memory.Regions[1].GetPage(14).SequenceEqual(h.Target!.Memory.Regions[1].GetPage(14)), "the page written while tracking was off arrived");
        Assert.AreSequenceEqual(new[] { "Start", "Stop", "Start" }, h.Calls.Where(c => c is "Start" or "Stop").Take(3).ToArray());
    }
}
