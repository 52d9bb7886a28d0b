using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;
using Moq;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// Runs that end without a switchover keep their promises: the deadline cuts a round that would
/// outlast it, and a source that cannot be resumed is reported, to the caller and the destination,
/// instead of escaping as an exception.
/// </summary>
[TestClass]
public sealed class RunEndingsTests
{
    [TestMethod]
    public async Task TheDeadline_EndsARoundThatWouldOutlastIt_WithTheSourceRunningAndEveryPagePending()
    {
        var time = new FakeTimeProvider();
        await using var h = new EngineHarness(EngineHarness.Converging);

        // 62 pages with data at 16 KiB/s: round 0 alone would take about 16 s.
        MigrationOptions options = new()
        {
            MaxDowntime = TimeSpan.FromMilliseconds(100),
            BandwidthLimit = 16 << 10,
            AllowThrottling = false,
            Encodings = PageEncodings.None,
            Deadline = TimeSpan.FromSeconds(2),
            TimeProvider = time,
        };
        (Task<MigrationReport> migrating, Task<ReceiveResult> receiving) = h.Start(options);
        MigrationReport report = await time.AdvanceUntilDoneAsync(migrating, TimeSpan.FromMilliseconds(50));
        ReceiveResult received = await receiving;

        Assert.AreEqual(MigrationStatus.Aborted, report.Status, report.Reason);
        Assert.StartsWith("deadline of 2.0 s reached during Send of round 0, before the migration could switch over", report.Reason!);
        Assert.IsLessThan(3_000, report.TotalMs, "the round was cut at the deadline, not at its end");
        Assert.AreEqual(0, report.Rounds);
        Assert.IsFalse(h.Paused, "the source runs on");
        Assert.AreEqual(MigrationStatus.Aborted, received.Status);
        StringAssert.Contains(received.Reason, "deadline of 2.0 s reached");
        Assert.IsGreaterThanOrEqualTo(62, h.PendingPages().Length, "what the destination did not acknowledge is pending");
    }

    [TestMethod]
    public async Task ASourceThatCannotBeResumed_IsReported_NotThrown_AndTheDestinationIsTold()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        h.Source.Setup(s => s.Resume()).Throws(new IOException("injected resume failure"));

        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.IsFalse(report.OutcomeUnknown, "the destination never started the VM");
        Assert.AreEqual("Migration failed during Handshake: injected resume failure; the source could not be resumed and stays paused: injected resume failure", report.Reason);
        Assert.IsInstanceOfType<MigrationException>(report.Error);
        Assert.AreEqual(MigrationStatus.Aborted, received.Status, "told at once, not after its idle timeout");
        StringAssert.Contains(received.Reason, "the source could not be resumed");
        Assert.IsFalse(h.Target?.Started ?? false);
    }

    [TestMethod]
    public async Task CancelledWithASourceThatCannotBeResumed_SaysSoInTheCancellation()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        using var cancel = new System.Threading.CancellationTokenSource();
        int resumes = 0;
        h.OnPause = n =>
        {
            if (n == 1)
            {
                // The switchover's pause: the cancellation is seen before Commit, and the source must come back.
                cancel.Cancel();
            }
        };
        h.Source.Setup(s => s.Resume()).Callback(() =>
        {
            if (resumes++ > 0)
            {
                throw new IOException("injected resume failure");
            }
        });

        (Task<MigrationReport> migrating, _) = h.Start(EngineHarness.Options(), cancellationToken: cancel.Token);

        OperationCanceledException ex = await Assert.ThrowsAsync<OperationCanceledException>(() => migrating);
        Assert.AreEqual("The migration was cancelled, and the source could not be resumed: injected resume failure. It stays paused.", ex.Message);
        Assert.IsInstanceOfType<IOException>(ex.InnerException);
    }
}
