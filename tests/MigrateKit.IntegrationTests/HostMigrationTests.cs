using System;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Migration;
using MigrateKit.Transport;
using MigrateKit.Vmm;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.IntegrationTests;

/// <summary>
/// Live migration of HostVms: the same engine, stream and receiver as for MicroVms, with guest
/// writes tracked by the kernel through userfaultfd write-protection, over real connections.
/// </summary>
[TestClass]
[TestCategory("WriteProtect")]
public sealed class HostMigrationTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong Base = MiB;

    // The dirty rate a MicroVm guest reaches on this kind of machine under tracking (DESIGN.md §6).
    private const double GuestPace = 25_000;

    [TestInitialize]
    public void Require() => WriteTrackingRequirement.Require();

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task OneGiBVerifier_MigratesOverTcp_AndKeepsPassingItsChecksOnTheDestination()
    {
        using HostVm source = StartSource(1UL << 30, HostWorkload.Verifier(Base, Base + (64 * MiB)));
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        Task<ReceiveResult> receiving = ReceiveAsync(listener);
        MigrationReport report;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress))
        {
            report = await new PreCopyEngine(source, source.CreateTracker()).MigrateAsync(connection);
        }

        ReceiveResult received = await receiving;
        using var destination = (HostVm)received.Target!;
        AssertCompleted(report, received);
        AssertKeepsPassing(destination, passes: 2);
    }

    [TestMethod]
    [DataRow("sweep")]
    [DataRow("hotcold")]
    [DataRow("random")]
    [DataRow("verify")]
    [DataRow("fill")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task EveryWorkload_MigratesByteForByte_OverAUnixSocket(string workload)
    {
        const ulong memory = 128 * MiB;
        HostWorkload w = workload switch
        {
            "sweep" => HostWorkload.Sweep(Base, Base + (16 * MiB)),
            "hotcold" => HostWorkload.HotCold(new GuestRange(Base, Base + (4 * MiB)), new GuestRange(Base + (4 * MiB), Base + (64 * MiB)), 1000),
            "random" => HostWorkload.RandomWrites(Base, Base + (32 * MiB), 12345),
            "verify" => HostWorkload.Verifier(Base, Base + (16 * MiB)),
            _ => HostWorkload.Fill(Base, memory),
        };
        using HostVm source = StartSource(memory, w);
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"mk-{Guid.NewGuid():N}.sock");
        await using MigrationListener listener = MigrationListener.Listen("unix:" + path);
        Task<ReceiveResult> receiving = ReceiveAsync(listener);
        MigrationReport report;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress))
        {
            report = await new PreCopyEngine(source, source.CreateTracker(), new MigrationOptions { BandwidthLimit = 400L << 20 }).MigrateAsync(connection);
        }

        ReceiveResult received = await receiving;
        using var destination = (HostVm)received.Target!;
        AssertCompleted(report, received);
        Assert.IsTrue(report.SourceMemoryVerified, "the source's memory differs from what was sent: a write was missed");
        if (workload == "verify")
        {
            AssertKeepsPassing(destination, passes: 2);
        }
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task DestinationGoneMidRound_LeavesTheSourceRunningWithItsMemoryIntact()
    {
        await AssertSourceSurvives((type, index) => index == 10 ? FrameProxy.Fault.Disconnect : FrameProxy.Fault.Forward, MigrationPhase.Send);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task DestinationGoneMidSwitchover_ResumesTheSource()
    {
        await AssertSourceSurvives((type, _) => type == FrameType.DeviceState ? FrameProxy.Fault.Disconnect : FrameProxy.Fault.Forward, MigrationPhase.Switchover);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task CorruptedFrame_EndsTheMigrationWithAProtocolError_AndTheSourceRuns()
    {
        MigrationReport report = await AssertSourceSurvives((_, index) => index == 25 ? FrameProxy.Fault.CorruptReserved : FrameProxy.Fault.Forward, phase: null);
        StringAssert.Contains(report.Reason, "reserved");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task BandwidthLimit_IsNeverExceeded_AndMostlyUsed()
    {
        const long limit = 64L << 20;
        using HostVm source = StartSource(256 * MiB, HostWorkload.Fill(Base, 129 * MiB));
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        Task<ReceiveResult> receiving = ReceiveAsync(listener);
        MigrationReport report;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress))
        {
            report = await new PreCopyEngine(source, source.CreateTracker(), new MigrationOptions { BandwidthLimit = limit }).MigrateAsync(connection);
        }

        ReceiveResult received = await receiving;
        using var destination = (HostVm)received.Target!;
        AssertCompleted(report, received);

        // Round 0 carries the 128 MiB of non-zero memory. Its duration also holds the zero-page
        // scan and the harvest, so the wire rate sits a little under the limit; it must never
        // exceed it (the limiter's precision itself is a unit test of PageStreamWriter).
        RoundReport round0 = report.RoundsDetail[0];
        double rate = round0.BytesSent / (round0.DurationMs / 1000);
        string detail = $"round 0 moved {rate / (1 << 20):F1} MiB/s against a limit of {limit >> 20} MiB/s ({round0.BytesSent} bytes in {round0.DurationMs:F0} ms; total {report.TotalMs:F0} ms)";
        Assert.IsLessThanOrEqualTo(limit * 1.02, rate, detail);
        Assert.IsGreaterThanOrEqualTo(limit * 0.85, rate, detail);
    }

    private static async Task<MigrationReport> AssertSourceSurvives(Func<FrameType, int, FrameProxy.Fault> fault, MigrationPhase? phase)
    {
        using HostVm source = StartSource(256 * MiB, HostWorkload.Verifier(Base, Base + (32 * MiB)));
        (IMigrationConnection src, IMigrationConnection dst, FrameProxy proxy) = FrameProxy.Create(fault);
        await using (proxy)
        {
            Task<ReceiveResult> receiving = Task.Run(() => Receiver().ReceiveAsync(dst));
            var engine = new PreCopyEngine(source, source.CreateTracker(), new MigrationOptions { BandwidthLimit = 256L << 20, ResponseTimeout = TimeSpan.FromSeconds(10) });
            MigrationReport report = await engine.MigrateAsync(src);
            ReceiveResult received = await receiving;

            Assert.IsTrue(proxy.Faulted, "the fault was never injected");
            Assert.AreNotEqual(MigrationStatus.Completed, report.Status, "the migration completed despite the fault");
            Assert.IsInstanceOfType<MigrationException>(report.Error);
            if (phase is { } p)
            {
                Assert.AreEqual(p, report.FailedPhase, report.Reason);
            }

            Assert.AreNotEqual(MigrationStatus.Completed, received.Status);

            // The source runs on, unthrottled, and its memory is intact: the verifier keeps passing.
            Assert.AreEqual(0, source.ThrottlePercent);
            AssertKeepsPassing(source, passes: 2);

            // No dirty bit lost: what was taken but not delivered is pending again.
            Assert.IsGreaterThan(0UL, engine.PendingPages[0].Count());
            await src.DisposeAsync();
            await dst.DisposeAsync();
            return report;
        }
    }

    private static HostVm StartSource(ulong memory, HostWorkload workload)
    {
        var vm = new HostVm(memory);
        vm.Load(workload);
        vm.SetPaceLimit(GuestPace);
        vm.Start();
        if (workload.Kind == HostWorkloadKind.Fill)
        {
            Assert.IsTrue(SpinWait.SpinUntil(() => vm.GetStatus().Halted, TimeSpan.FromSeconds(60)), "fill did not finish");
        }
        else
        {
            Assert.IsTrue(vm.WaitForPass(1, TimeSpan.FromSeconds(60)), $"no first pass: {vm.GetStatus()}");
        }

        return vm;
    }

    private static MigrationReceiver Receiver() => new(hello => new HostVm(hello.Regions));

    private static async Task<ReceiveResult> ReceiveAsync(MigrationListener listener)
    {
        await using IMigrationConnection connection = await listener.AcceptAsync();
        return await Receiver().ReceiveAsync(connection);
    }

    private static void AssertCompleted(MigrationReport report, ReceiveResult received)
    {
        Assert.AreEqual(MigrationStatus.Completed, report.Status, $"source: {report.Reason}; destination: {received.Reason}");
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);
        Assert.IsTrue(report.DigestsMatched);
        Assert.IsNotNull(report.DowntimeMs);
        Assert.IsNotNull(report.PredictedDowntimeMs);
        Assert.IsNotNull(received.Target);
    }

    private static void AssertKeepsPassing(HostVm vm, uint passes)
    {
        VcpuStatus before = vm.GetStatus();
        Assert.IsTrue(vm.WaitForPass(before.Passes + passes, TimeSpan.FromSeconds(60)), $"stuck at {vm.GetStatus()}");
        VcpuStatus after = vm.GetStatus();
        Assert.AreEqual(0L, after.Failures, $"self-check failed first at page {after.FirstFailedPage}");
        Assert.IsNull(after.Fault);
    }
}
