using System;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// A VM is handed over once: no second engine migrates it while one does, and no engine sets
/// running a source that a completed migration (or its owner) left paused.
/// </summary>
[TestClass]
public sealed class SourceOwnershipTests
{
    [TestMethod]
    public async Task ASecondEngineOnTheSameVm_IsRefused_WhileTheFirstMigrates_AndMayStartOnceItEnded()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (IMigrationConnection unused, IMigrationConnection other) = MigrationConnector.CreateInMemoryPair();
        await using IMigrationConnection a = unused;
        await using IMigrationConnection b = other;
        Task<MigrationReport>? second = null;
        Task<DirtyObservation>? observing = null;
        h.OnPause = n =>
        {
            if (n == 0)
            {
                // Inside the first migration's calibration pause: the VM is that migration's.
                second = new PreCopyEngine(h.Source.Object, h.Tracker, EngineHarness.Options()).MigrateAsync(unused);
                observing = new MigrationPlanner().ObserveAsync(h.Tracker);
            }
        };

        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);
        InvalidOperationException refused = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => second!);
        Assert.Contains("is already being migrated in this process", refused.Message);
        ObservationRefusedException notObserved = await Assert.ThrowsExactlyAsync<ObservationRefusedException>(() => observing!);
        Assert.AreEqual("Memory region 0 is already being migrated.", notObserved.Message);
        Assert.AreEqual(2, h.Calls.Count(c => c == "Pause"), "the calibration and the switchover, nothing of the refused engine");
    }

    [TestMethod]
    public async Task AfterACompletedMigration_TheSourceStaysPaused_AndNoEngineMigratesItAgain()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        int calls = h.Calls.Length;

        (Task<MigrationReport> again, _) = h.StartAgain();
        InvalidOperationException sameEngine = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => again);
        (IMigrationConnection unused, IMigrationConnection other) = MigrationConnector.CreateInMemoryPair();
        await using IMigrationConnection a = unused;
        await using IMigrationConnection b = other;
        InvalidOperationException newEngine = await Assert.ThrowsExactlyAsync<InvalidOperationException>(
            () => new PreCopyEngine(h.Source.Object, h.Tracker, EngineHarness.Options()).MigrateAsync(unused));

        foreach (InvalidOperationException ex in new[] { sameEngine, newEngine })
        {
            Assert.Contains("vm-under-test is paused", ex.Message);
        }

        Assert.IsTrue(h.Paused, "the VM runs on the destination: the source must not run again");
        Assert.HasCount(calls, h.Calls, string.Join(", ", h.Calls.Skip(calls)));
    }

    [TestMethod]
    public async Task ASourceItsOwnerPaused_IsRefused_AndLeftPaused()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        h.Source.Object.Pause();

        (Task<MigrationReport> migrating, _) = h.Start(EngineHarness.Options());

        await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => migrating);
        Assert.IsTrue(h.Paused);
        Assert.AreSequenceEqual(new[] { "Pause" }, h.Calls);

        // Once its owner resumes it, it migrates.
        h.Source.Object.Resume();
        (Task<MigrationReport> next, Task<ReceiveResult> receiving) = h.StartAgain();
        Assert.AreEqual(MigrationStatus.Completed, (await next).Status);
        Assert.AreEqual(MigrationStatus.Completed, (await receiving).Status);
    }
}
