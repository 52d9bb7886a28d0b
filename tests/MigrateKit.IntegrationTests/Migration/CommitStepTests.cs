using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>
/// One test per row of the failure-point table in docs/PROTOCOL.md §2.3: a source that reconnects
/// and a destination that listens, over real sockets with a <see cref="FaultProxy"/> between them,
/// the link failing at each point of the migration and the commit step. Each asserts which copy
/// runs afterwards (never both) and what each side reports.
/// </summary>
[TestClass]
[TestCategory("WriteProtect")]
public sealed class CommitStepTests
{
    private const int Ready = 12;
    private const int Commit = 13;

    [TestInitialize]
    public void Require() => WriteTrackingRequirement.Require();

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task HelloInFlight_FailsTheAttempt_TheSourceRuns_NoVmBuilt()
    {
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        ArmedFault armed = migration.Proxy.Arm(Fault.Reset, Trigger.InsideFrame(FrameType.Hello, 12));

        ProxiedOutcome outcome = await migration.RunResumableAsync(ProxiedMigration.ManyRounds());

        Assert.IsTrue(armed.HasFired);
        Assert.AreEqual(MigrationStatus.Failed, outcome.Report.Status);
        Assert.AreEqual(MigrationPhase.Handshake, outcome.Report.FailedPhase);
        Assert.IsFalse(outcome.Report.OutcomeUnknown);
        Assert.IsTrue(migration.Source.IsRunning);
        Assert.IsNull(outcome.Target, "no Hello arrived whole, so nothing was built");
    }

    [TestMethod]
    [DataRow(false, DisplayName = "reset after round 2's RoundEnd")]
    [DataRow(true, DisplayName = "closed inside round 3's first Pages frame")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task LinkLostAfterRound2_TheSourceReconnectsAndResumesTheSession_AndTheMigrationCompletes(bool closedInsideAFrame)
    {
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        ArmedFault armed = closedInsideAFrame
            ? migration.Proxy.Arm(Fault.CutAfter(0), Trigger.AfterRoundEnd(2).Then(Trigger.InsideFrame(FrameType.Pages, 1000)))
            : migration.Proxy.Arm(Fault.Reset, Trigger.AfterRoundEnd(2));

        // Rounds that cannot converge until the link is back; then the guest slows down and the migration can finish.
        Task slowDown = Task.Run(async () =>
        {
            while (!armed.HasFired)
            {
                await Task.Delay(10);
            }

            migration.Source.SetPaceLimit(1000);
        });
        MigrationOptions options = ProxiedMigration.ManyRounds();
        ProxiedOutcome outcome = await migration.RunResumableAsync(new MigrationOptions
        {
            BandwidthLimit = options.BandwidthLimit,
            ResponseTimeout = options.ResponseTimeout,
            Encodings = options.Encodings,
            MaxBytesFactor = 30,
            MaxRounds = 100,
        });
        await slowDown.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.IsTrue(armed.HasFired);
        outcome.AssertCompleted();
        Assert.AreEqual(1, outcome.Report.Reconnections);
        Assert.AreEqual(1, outcome.Received.Reconnections, "the destination continued the same session");
        Assert.AreEqual(outcome.Report.SessionId, outcome.Received.SessionId?.ToString("N"));
        Assert.AreEqual(2, migration.Proxy.Connections);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task LinkResetDuringTheSwitchoverTransfer_TheSourceResumesItsVm_ReconnectsAndCompletesLater()
    {
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        ArmedFault armed = migration.Proxy.Arm(Fault.Reset, Trigger.AfterRoundAck(0).Then(Trigger.InsideFrame(FrameType.Pages, 4096, occurrence: 2)));

        ProxiedOutcome outcome = await migration.RunResumableAsync(ProxiedMigration.SwitchOverAfterRound0());

        Assert.IsTrue(armed.HasFired);
        outcome.AssertCompleted();
        Assert.AreEqual(1, outcome.Report.Reconnections);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task LinkResetRightAfterComplete_BeforeReady_NoCommitWasSent_SoTheSourceResumesAndCompletesLater()
    {
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        ArmedFault armed = migration.Proxy.Arm(Fault.Reset, Trigger.AfterFrame(FrameType.Complete));

        ProxiedOutcome outcome = await migration.RunResumableAsync(ProxiedMigration.SwitchOverAfterRound0());

        Assert.IsTrue(armed.HasFired);
        outcome.AssertCompleted();
        Assert.AreEqual(1, outcome.Report.Reconnections);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task LinkResetBeforeReadyReachesTheSource_TheReadyVmStaysPaused_TheSourceResumesAndCompletesLater()
    {
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        ArmedFault armed = migration.Proxy.Arm(Fault.Reset, Trigger.BeforeFrame((FrameType)Ready, direction: Direction.ToSource));

        ProxiedOutcome outcome = await migration.RunResumableAsync(ProxiedMigration.SwitchOverAfterRound0());

        Assert.IsTrue(armed.HasFired);
        outcome.AssertCompleted();
        Assert.AreEqual(1, outcome.Report.Reconnections);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task CommitLostOnTheWay_TheSourceStaysPaused_AsksWithACommitQuery_AndTheDestinationStartsTheVm()
    {
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        ArmedFault armed = migration.Proxy.Arm(Fault.Reset, Trigger.BeforeFrame((FrameType)Commit));

        ProxiedOutcome outcome = await migration.RunResumableAsync(ProxiedMigration.SwitchOverAfterRound0());

        Assert.IsTrue(armed.HasFired);
        outcome.AssertCompleted();
        Assert.AreEqual(1, outcome.Report.Reconnections, "one new connection, for the query");
    }

    [TestMethod]
    [DataRow(false, DisplayName = "reset before the Ack")]
    [DataRow(true, DisplayName = "closed before the Ack, as by a proxy")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task AckLostOnTheWay_TheDestinationRunsTheVm_TheSourceLearnsItByAQuery_AndStaysPaused(bool closed)
    {
        // A close reads to the destination like the hang-up of a source that has the Ack; only the
        // missing Done tells it otherwise, so it stays to answer the source's query.
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        ArmedFault armed = migration.Proxy.Arm(closed ? Fault.CutAfter(0, Direction.ToSource) : Fault.Reset, Trigger.BeforeFrame(FrameType.Ack, direction: Direction.ToSource));

        ProxiedOutcome outcome = await migration.RunResumableAsync(ProxiedMigration.SwitchOverAfterRound0());

        Assert.IsTrue(armed.HasFired);
        outcome.AssertCompleted();
        Assert.AreEqual(1, outcome.Report.Reconnections);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task CommitSentAndTheDestinationUnreachable_BothStayPaused_OutcomeUnknown_ThenRecoverCommitsIt()
    {
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        ArmedFault armed = migration.Proxy.Arm(Fault.Reset, Trigger.BeforeFrame((FrameType)Commit));
        var options = new MigrationOptions
        {
            BandwidthLimit = 128L << 20,
            MaxDowntime = TimeSpan.FromSeconds(10),
            ResponseTimeout = ProxiedMigration.ResponseTimeout,
            ReconnectAttempts = 2,
            ReconnectDelay = TimeSpan.FromMilliseconds(50),
        };

        // Every reconnection is refused, as when the destination's network is gone.
        ProxiedOutcome outcome = await migration.RunResumableAsync(options, _ => Task.FromException<IMigrationConnection>(new MigrationConnectionException("tcp:192.0.2.1:7000", "unreachable")));

        Assert.IsTrue(armed.HasFired);
        MigrationReport report = outcome.Report;
        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.IsTrue(report.OutcomeUnknown, report.Reason);
        StringAssert.StartsWith(report.Reason, "Migration failed during Switchover: Commit was sent but its answer was lost (");

        // It read "…: Migration failed during Switchover: Commit was sent but its answer was lost (A task was canceled.), … after Commit was sent."
        Assert.AreEqual(1, System.Text.RegularExpressions.Regex.Count(report.Reason!, "Migration failed during"), report.Reason);
        Assert.AreEqual(1, System.Text.RegularExpressions.Regex.Count(report.Reason!, "Commit was sent"), report.Reason);
        Assert.IsFalse(report.Reason!.Contains("A task was canceled", StringComparison.Ordinal), report.Reason);
        StringAssert.Contains(report.Reason, "--session " + report.SessionId);
        Assert.IsFalse(migration.Source.IsRunning, "the source stays paused: the destination may run the VM");
        Assert.IsNotNull(outcome.Target);
        Assert.IsFalse(outcome.Target.Started, "no Commit reached the destination: it waits, paused");

        // The operator asks the destination (directly) and tells it to start the VM.
        Guid session = Guid.Parse(report.SessionId!);
        SessionStatus asked = await QueryAsync(migration, session, SessionQueryAction.Ask);
        Assert.AreEqual(DestinationSessionState.Ready, asked.State, asked.Message);
        SessionStatus committed = await QueryAsync(migration, session, SessionQueryAction.Commit);
        Assert.AreEqual(DestinationSessionState.Started, committed.State, committed.Message);

        ReceiveResult received = await ProxiedMigration.Bounded(migration.Pending!, "the destination's ReceiveAsync");
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);
        Assert.IsTrue(outcome.Target.Started);
        Assert.IsFalse(migration.Source.IsRunning, "exactly one copy runs: the destination's");
        ProxiedOutcome.AssertKeepsPassing(outcome.Target.Vm);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task CommitSentAndTheDestinationUnreachable_RecoverAbortReleasesTheDestinationsCopy_SoTheSourceMayResume()
    {
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        migration.Proxy.Arm(Fault.Reset, Trigger.BeforeFrame((FrameType)Commit));
        var options = new MigrationOptions { BandwidthLimit = 128L << 20, MaxDowntime = TimeSpan.FromSeconds(10), ResponseTimeout = ProxiedMigration.ResponseTimeout, ReconnectAttempts = 0 };

        ProxiedOutcome outcome = await migration.RunResumableAsync(options);

        Assert.IsTrue(outcome.Report.OutcomeUnknown, outcome.Report.Reason);
        Guid session = Guid.Parse(outcome.Report.SessionId!);
        SessionStatus aborted = await QueryAsync(migration, session, SessionQueryAction.Abort);
        Assert.AreEqual(DestinationSessionState.Discarded, aborted.State, aborted.Message);
        ReceiveResult received = await ProxiedMigration.Bounded(migration.Pending!, "the destination's ReceiveAsync");
        Assert.AreEqual(MigrationStatus.Aborted, received.Status);
        Assert.IsTrue(outcome.Target is { Started: false, Disposed: true }, "released, never started");

        // Only now may the operator resume the source: exactly one copy runs.
        migration.Source.Resume();
        ProxiedOutcome.AssertKeepsPassing(migration.Source);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task DestinationAnswersError_TheSourceResumes_WithoutReconnecting()
    {
        await using ProxiedMigration migration = ProxiedMigration.OnHostVms();
        migration.ReceiverOptions = new MigrationReceiverOptions { ExpectedVcpus = 2 };

        ProxiedOutcome outcome = await migration.RunResumableAsync(ProxiedMigration.ManyRounds());

        Assert.AreEqual(MigrationStatus.Failed, outcome.Report.Status);
        StringAssert.Contains(outcome.Report.Reason, "expects exactly 2");
        Assert.AreEqual(0, outcome.Report.Reconnections, "a refusal is not retried");
        Assert.IsFalse(outcome.Report.OutcomeUnknown);
        Assert.IsTrue(migration.Source.IsRunning);
        Assert.AreEqual(1, migration.Proxy.Connections);
    }

    private static async Task<SessionStatus> QueryAsync(ProxiedMigration migration, Guid session, SessionQueryAction action)
    {
        await using IMigrationConnection connection = await MigrationConnector.ConnectAsync(migration.DestinationAddress).WaitAsync(TimeSpan.FromSeconds(10));
        return await MigrationRecovery.QueryAsync(connection, session, action, TimeSpan.FromSeconds(10));
    }
}
