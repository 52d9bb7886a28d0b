using System;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>
/// Faults on real sockets, phase by phase: the real engine and a real receiver over plain TCP on
/// 127.0.0.1 with a <see cref="FaultProxy"/> between them. Each case checks the end state of both
/// sides: the VM runs on the source only (running, unthrottled), the destination ended and
/// released what it built, and every page the destination lacks is pending on the source.
/// Subclasses supply the kind of VM (<see cref="ProxiedMigration.OnHostVms"/>,
/// <see cref="ProxiedMigration.OnMicroVms"/>) and the requirement that skips them where it is absent.
/// </summary>
public abstract class FaultInjectionTests
{
    /// <summary>Starts the source VM, the destination's listener and the proxy between them.</summary>
    private protected abstract ProxiedMigration StartMigration();

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task BlackHoleInsideAPagesFrameOfRound0_EndsTheAttemptWithinTheResponseTimeout_AndLeavesTheVmOnTheSource() =>
        await AssertSourceKeepsTheVmAsync(Fault.BlackHole, Trigger.InsideFrame(FrameType.Pages, 1000, occurrence: 3), ProxiedMigration.ManyRounds(), MigrationPhase.Send);

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task WithoutAFault_TheMigrationThroughTheProxyCompletesByteForByte()
    {
        await using ProxiedMigration migration = StartMigration();
        ProxiedOutcome outcome = await migration.RunAsync(ProxiedMigration.SwitchOverAfterRound0());
        outcome.AssertCompleted();
        Assert.AreEqual(migration.Proxy.BytesForwarded(Direction.ToDestination), outcome.Received.BytesReceived, "the proxy forwarded every byte the destination read");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task DelayWellBelowTheResponseTimeout_OnlySlowsTheMigration_WhichCompletesByteForByte()
    {
        await using ProxiedMigration migration = StartMigration();
        migration.Proxy.Arm(Fault.Delay(TimeSpan.FromMilliseconds(2)));

        // The default response timeout (30 s): the slowed switchover takes longer than 2 s, which the
        // switchover's deadline (the response timeout, over the whole final transfer) would refuse.
        ProxiedOutcome outcome = await migration.RunAsync(new MigrationOptions { BandwidthLimit = 128L << 20, MaxDowntime = TimeSpan.FromSeconds(10) });
        outcome.AssertCompleted();
    }

    [TestMethod]
    [DataRow("reset")]
    [DataRow("cut")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task FaultWhileTheHelloIsInFlight_LeavesTheVmOnTheSource(string fault) =>
        await AssertSourceKeepsTheVmAsync(Named(fault), Trigger.InsideFrame(FrameType.Hello, 12), ProxiedMigration.ManyRounds(), MigrationPhase.Handshake);

    [TestMethod]
    [DataRow("reset")]
    [DataRow("cut")]
    [DataRow("half-open")]
    [DataRow("half-open toward the destination")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task FaultInsideAPagesFrameOfRound0_LeavesTheVmOnTheSource_WithEveryUnacknowledgedPagePending(string fault) =>
        await AssertSourceKeepsTheVmAsync(Named(fault), Trigger.InsideFrame(FrameType.Pages, 100_000, occurrence: 3), ProxiedMigration.ManyRounds(), MigrationPhase.Send);

    [TestMethod]
    [DataRow("reset", 1)]
    [DataRow("black-hole", 1)]
    [DataRow("reset", 3)]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task FaultInsideAnEncodedPagesFrame_LeavesTheVmOnTheSource_WithEveryUnacknowledgedPagePending(string fault, int occurrence) =>
        await AssertSourceKeepsTheVmAsync(Named(fault), Trigger.InsideFrame(FrameType.EncodedPages, 100, occurrence), ProxiedMigration.Encoded(), MigrationPhase.Send);

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task FaultAfterTheRoundEndOfRound1_WithEncodedPages_LeavesTheVmOnTheSource_WithEveryUnacknowledgedPagePending() =>
        await AssertSourceKeepsTheVmAsync(Fault.Reset, Trigger.AfterRoundEnd(1), ProxiedMigration.Encoded(), MigrationPhase.Send, MigrationPhase.Harvest);

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task CutAfterTheFirstMiB_EndsRound0_AndLeavesTheVmOnTheSource() =>
        await AssertSourceKeepsTheVmAsync(Fault.CutAfter(1 << 20), Trigger.Now, ProxiedMigration.ManyRounds(), MigrationPhase.Send);

    [TestMethod]
    [DataRow("reset")]
    [DataRow("black-hole")]
    [DataRow("delay")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task FaultAfterTheRoundEndOfRound2_LeavesTheVmOnTheSource_UnthrottledWithEveryUnacknowledgedPagePending(string fault)
    {
        // Black-hole and delay silence the RoundAck: the response timeout (2 s) ends the wait.
        ProxiedOutcome outcome = await AssertSourceKeepsTheVmAsync(Named(fault), Trigger.AfterRoundEnd(2), ProxiedMigration.ManyRounds(), MigrationPhase.Send);
        Assert.HasCount(2, outcome.Report.RoundsDetail, "rounds 0 and 1 were acknowledged");
        Assert.IsGreaterThan(0, outcome.Report.MaxThrottlePercent, "the guest was throttled before the fault, and the throttle was lifted after it");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task LinkClosedRightAfterTheRoundAckOfRound1_EndsRound2_AndLeavesTheVmOnTheSource()
    {
        // The source sees the link go while it harvests after the RoundAck or while it sends round 2.
        ProxiedOutcome outcome = await AssertSourceKeepsTheVmAsync(Fault.CutAfter(0, Direction.ToSource), Trigger.AfterRoundAck(1), ProxiedMigration.ManyRounds(), MigrationPhase.Harvest, MigrationPhase.Send);
        Assert.HasCount(2, outcome.Report.RoundsDetail);
    }

    [TestMethod]
    [DataRow("reset")]
    [DataRow("cut")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task FaultInsideAPagesFrameOfTheSwitchover_ResumesTheSource_WithEverySwitchoverPagePending(string fault)
    {
        // After the last RoundAck the source pauses and sends the rest: cut inside its 2nd Pages frame.
        Trigger insideTheSwitchover = Trigger.AfterRoundAck(0).Then(Trigger.InsideFrame(FrameType.Pages, 4096, occurrence: 2));
        ProxiedOutcome outcome = await AssertSourceKeepsTheVmAsync(Named(fault), insideTheSwitchover, ProxiedMigration.SwitchOverAfterRound0(), MigrationPhase.Switchover);
        Assert.HasCount(1, outcome.Report.RoundsDetail);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task ResetBeforeComplete_ResumesTheSource_WithEverySwitchoverPagePending() =>
        await AssertSourceKeepsTheVmAsync(Fault.Reset, Trigger.BeforeFrame(FrameType.Complete), ProxiedMigration.SwitchOverAfterRound0(), MigrationPhase.Switchover);

    /// <summary>
    /// Migrates with <paramref name="fault"/> armed on <paramref name="when"/>, checks that it
    /// fired, and that the VM stayed on the source (see <see cref="ProxiedOutcome.AssertSourceKeepsTheVm"/>).
    /// </summary>
    private protected async Task<ProxiedOutcome> AssertSourceKeepsTheVmAsync(Fault fault, Trigger when, MigrationOptions options, params MigrationPhase[] phases)
    {
        await using ProxiedMigration migration = StartMigration();
        ArmedFault armed = migration.Proxy.Arm(fault, when);
        ProxiedOutcome outcome = await migration.RunAsync(options);
        Assert.IsTrue(armed.HasFired, $"the fault never fired; the migration ended {outcome.Report.Status}: {outcome.Report.Reason}");
        outcome.AssertSourceKeepsTheVm(phases);
        return outcome;
    }

    private static Fault Named(string fault) => fault switch
    {
        "reset" => Fault.Reset,
        "cut" => Fault.CutAfter(0),
        "half-open" => Fault.HalfOpen(Direction.ToSource),
        "half-open toward the destination" => Fault.HalfOpen(Direction.ToDestination),
        "black-hole" => Fault.BlackHole,
        "delay" => Fault.Delay(ProxiedMigration.ResponseTimeout * 1.5),
        _ => throw new ArgumentOutOfRangeException(nameof(fault), fault, "no such fault"),
    };
}

/// <summary>The fault cases on HostVms, tracked with userfaultfd write-protection.</summary>
[TestClass]
[TestCategory("WriteProtect")]
public sealed class HostVmFaultInjectionTests : FaultInjectionTests
{
    [TestInitialize]
    public void Require() => WriteTrackingRequirement.Require();

    private protected override ProxiedMigration StartMigration() => ProxiedMigration.OnHostVms();
}

/// <summary>The fault cases on MicroVms on real KVM, tracked with the dirty log.</summary>
[TestClass]
[TestCategory("Kvm")]
public sealed class MicroVmFaultInjectionTests : FaultInjectionTests
{
    [TestInitialize]
    public void Require() => KvmRequirement.Require();

    private protected override ProxiedMigration StartMigration() => ProxiedMigration.OnMicroVms();
}
