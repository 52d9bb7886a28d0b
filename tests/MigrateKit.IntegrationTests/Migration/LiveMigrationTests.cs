using System;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>
/// The live-migration scenarios every kind of VM must pass, over real connections with the
/// real engine, stream and receiver. Subclasses supply the VM (MicroVm on KVM, HostVm with
/// userfaultfd write tracking) and the requirement that skips them where it is absent.
/// </summary>
public abstract class LiveMigrationTests
{
    /// <summary>1 MiB.</summary>
    protected const ulong MiB = 1UL << 20;

    /// <summary>Where workloads start in guest memory.</summary>
    protected const ulong Base = MiB;

    /// <summary>Starts a VM of <paramref name="memory"/> bytes running <paramref name="workload"/> (sweep, hotcold, random, verify, fill, phased, bursty over its range) and waits for its first pass.</summary>
    protected abstract IWorkloadVm StartSource(ulong memory, string workload, ulong start, ulong end);

    /// <summary>Builds a destination VM from a Hello.</summary>
    protected abstract IMigrationTarget CreateTarget(MigrationHello hello);

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task OneGiBVerifier_MigratesOverTcp_AndKeepsPassingItsChecksOnTheDestination()
    {
        using IWorkloadVm source = StartSource(1UL << 30, "verify", Base, Base + (64 * MiB));
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        Task<ReceiveResult> receiving = ReceiveAsync(listener);
        MigrationReport report;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress))
        {
            using IDirtyPageTracker tracker = source.CreateTracker();
            report = await new PreCopyEngine(source, tracker).MigrateAsync(connection);
        }

        ReceiveResult received = await receiving;
        using IWorkloadVm destination = (IWorkloadVm)received.Target!;
        AssertCompleted(report, received);
        Assert.IsFalse(source.IsRunning, "the source stays paused after handing over");
        AssertKeepsPassing(destination, passes: 2);
    }

    [TestMethod]
    public async Task ACompletedMigrationsSource_StaysPaused_WhenMigratedAgain()
    {
        using IWorkloadVm source = StartSource(256 * MiB, "verify", Base, Base + (32 * MiB));
        using IDirtyPageTracker tracker = source.CreateTracker();
        var engine = new PreCopyEngine(source, tracker);
        (IMigrationConnection src, IMigrationConnection dst) = MigrationConnector.CreateInMemoryPair();
        await using (src)
        await using (dst)
        {
            Task<ReceiveResult> receiving = Task.Run(() => Receiver().ReceiveAsync(dst));
            MigrationReport report = await engine.MigrateAsync(src);
            ReceiveResult received = await receiving;
            using IWorkloadVm destination = (IWorkloadVm)received.Target!;
            AssertCompleted(report, received);
        }

        // The VM runs on the destination: a retry, by this engine or another, must not set the source running again.
        VcpuStatus handedOver = source.GetStatus()[0];
        (IMigrationConnection again, IMigrationConnection unused) = MigrationConnector.CreateInMemoryPair();
        await using (again)
        await using (unused)
        {
            await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => engine.MigrateAsync(again));
            await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => new PreCopyEngine(source, tracker).MigrateAsync(again));
        }

        Assert.IsTrue(source.IsPaused);
        Assert.IsFalse(source.IsRunning);
        Thread.Sleep(200);
        Assert.AreEqual(handedOver.PagesWritten, source.GetStatus()[0].PagesWritten, "the source wrote after it was handed over");
    }

    [TestMethod]
    [DataRow("sweep")]
    [DataRow("hotcold")]
    [DataRow("random")]
    [DataRow("verify")]
    [DataRow("fill")]
    [DataRow("phased")]
    [DataRow("bursty")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task EveryWorkload_MigratesByteForByte_OverAUnixSocket(string workload)
    {
        using IWorkloadVm source = StartWorkload(workload);
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"mk-{Guid.NewGuid():N}.sock");
        await using MigrationListener listener = MigrationListener.Listen("unix:" + path);
        Task<ReceiveResult> receiving = ReceiveAsync(listener);
        MigrationReport report;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress))
        {
            using IDirtyPageTracker tracker = source.CreateTracker();
            report = await new PreCopyEngine(source, tracker, new MigrationOptions { BandwidthLimit = 400L << 20 }).MigrateAsync(connection);
        }

        ReceiveResult received = await receiving;
        using IWorkloadVm destination = (IWorkloadVm)received.Target!;
        AssertCompleted(report, received);
        Assert.IsTrue(report.SourceMemoryVerified, "the source's memory differs from what was sent: a write was missed");
        if (workload == "verify")
        {
            AssertKeepsPassing(destination, passes: 2);
        }
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Verifier_MigratesByteForByte_OverMutualTls()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 authority = MigrationTlsCertificates.CreateAuthority("integration CA", now.AddHours(-1), now.AddHours(1));
        var sourceTls = new MigrationTlsOptions { Certificate = MigrationTlsCertificates.CreateIssued(authority, "source", now.AddHours(-1), now.AddHours(1)), CertificateAuthority = authority, AllowedNames = ["destination"] };
        var destinationTls = new MigrationTlsOptions { Certificate = MigrationTlsCertificates.CreateIssued(authority, "destination", now.AddHours(-1), now.AddHours(1)), CertificateAuthority = authority, AllowedNames = ["source"] };

        using IWorkloadVm source = StartWorkload("verify");
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", destinationTls, null);
        Task<ReceiveResult> receiving = ReceiveAsync(listener);
        MigrationReport report;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress, sourceTls, null))
        {
            using IDirtyPageTracker tracker = source.CreateTracker();
            report = await new PreCopyEngine(source, tracker).MigrateAsync(connection);
        }

        ReceiveResult received = await receiving;
        using IWorkloadVm destination = (IWorkloadVm)received.Target!;
        AssertCompleted(report, received);
        Assert.IsTrue(report.SourceMemoryVerified, "the source's memory differs from what was sent: a write was missed");
        AssertKeepsPassing(destination, passes: 2);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task DestinationGoneMidRound_LeavesTheSourceRunningWithItsMemoryIntact()
    {
        // The 10th frame is inside round 0: the destination vanishes there.
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
        using IWorkloadVm source = StartSource(256 * MiB, "fill", Base, 129 * MiB);
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        Task<ReceiveResult> receiving = ReceiveAsync(listener);
        MigrationReport report;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress))
        {
            using IDirtyPageTracker tracker = source.CreateTracker();
            // Raw pages: the limiter is judged on a stream that fills the link (the fill guest's pages compress to a few bytes).
            report = await new PreCopyEngine(source, tracker, new MigrationOptions { BandwidthLimit = limit, Encodings = PageEncodings.None }).MigrateAsync(connection);
        }

        ReceiveResult received = await receiving;
        using IWorkloadVm destination = (IWorkloadVm)received.Target!;
        AssertCompleted(report, received);

        // Round 0 carries the 128 MiB of non-zero memory. The limit is a ceiling: the writer's
        // token bucket starts full with max(limit / 20, 64 KiB) bytes, so nothing beyond that burst
        // goes faster than the limit (2 % for clock granularity). Below it, the destination's
        // first touch of each page (about 12 µs per page fault on a paravirtual-KVM host) can hold
        // the sender back.
        RoundReport round0 = report.RoundsDetail[0];
        long burst = Math.Max(limit / 20, 64 * 1024);
        double rate = (round0.BytesSent - (double)burst) / (round0.SendMs / 1000);
        string detail = $"round 0 moved {rate / (1 << 20):F1} MiB/s beyond the initial burst against a limit of {limit >> 20} MiB/s ({round0.BytesSent} bytes in {round0.SendMs:F0} ms)";
        Assert.IsLessThanOrEqualTo(limit * 1.02, rate, detail);
        Assert.IsGreaterThanOrEqualTo(limit * 0.85, rate, detail);
    }

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task TightLimit_IsKeptOrEndsByPolicy_NeverSwitchesOverAboveAQuarterMore()
    {
        await AssertDowntimePromise(TimeSpan.FromMilliseconds(30));
    }

    /// <summary>
    /// Migrates the random-write workload three times over loopback TCP with <paramref name="limit"/>
    /// and no bandwidth limit, the migrations sharing one downtime history as a process's do:
    /// each completes within 1.25x the limit or ends by policy with a reason, never above.
    /// </summary>
    protected async Task AssertDowntimePromise(TimeSpan limit)
    {
        var history = new Estimation.DowntimeHistory();
        var outcomes = new System.Collections.Generic.List<string>();
        int completed = 0;
        string kind = "";
        for (int run = 0; run < 3; run++)
        {
            using IWorkloadVm source = StartWorkload("random");
            await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
            Task<ReceiveResult> receiving = ReceiveAsync(listener);
            MigrationReport report;
            await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress))
            {
                using IDirtyPageTracker tracker = source.CreateTracker();
                kind = tracker.Kind;
                report = await new PreCopyEngine(source, tracker, new MigrationOptions { MaxDowntime = limit, DowntimeHistory = history }).MigrateAsync(connection);
            }

            ReceiveResult received = await receiving;
            using IWorkloadVm? destination = received.Target as IWorkloadVm;
            outcomes.Add($"{report.Status}: {report.DowntimeMs:F1} ms (predicted {report.PredictedDowntimeMs:F1}, up to {report.PredictedDowntimeHighMs:F1}) {report.Reason}");
            if (report.Status == MigrationStatus.Completed)
            {
                completed++;
                Assert.IsLessThanOrEqualTo(1.25 * limit.TotalMilliseconds, report.DowntimeMs!.Value, string.Join("; ", outcomes));
                Assert.IsLessThanOrEqualTo(limit.TotalMilliseconds, report.PredictedDowntimeHighMs!.Value, "switched over with the bound above the limit");
            }
            else
            {
                Assert.AreEqual(MigrationStatus.Aborted, report.Status, string.Join("; ", outcomes));
                Assert.IsFalse(string.IsNullOrEmpty(report.Reason), "an abort names its reason");
                Assert.IsTrue(source.IsRunning, "an aborted migration leaves the source running");
            }
        }

        Console.WriteLine($"{limit.TotalMilliseconds} ms limit: {string.Join("; ", outcomes)}");

        // Each listener had a port of its own; the switchovers are learned for the host, and for every destination.
        Assert.AreEqual(completed, history.Count($"engine/{kind}/unlimited@tcp:127.0.0.1"));
        Assert.AreEqual(completed, history.Count($"engine/{kind}/unlimited"));
    }

    /// <summary>Starts one of the standard workloads in 128 MiB of memory.</summary>
    protected IWorkloadVm StartWorkload(string workload) => workload switch
    {
        "sweep" => StartSource(128 * MiB, workload, Base, Base + (16 * MiB)),
        "hotcold" => StartSource(128 * MiB, workload, Base, Base + (4 * MiB)),
        "random" => StartSource(128 * MiB, workload, Base, Base + (32 * MiB)),
        "verify" => StartSource(128 * MiB, workload, Base, Base + (16 * MiB)),
        "phased" => StartSource(128 * MiB, workload, Base, Base + (32 * MiB)),
        "bursty" => StartSource(128 * MiB, workload, Base, Base + (16 * MiB)),
        _ => StartSource(128 * MiB, "fill", Base, 128 * MiB),
    };

    /// <summary>Migrates to an in-memory destination and checks both ends.</summary>
    protected async Task MigrateInMemoryAndCheck(IWorkloadVm source, MigrationOptions options, bool verifier)
    {
        MigrationReport report;
        ReceiveResult received;
        (IMigrationConnection src, IMigrationConnection dst) = MigrationConnector.CreateInMemoryPair();
        await using (src)
        await using (dst)
        {
            using IDirtyPageTracker tracker = source.CreateTracker();
            Task<ReceiveResult> receiving = Task.Run(() => Receiver().ReceiveAsync(dst));
            report = await new PreCopyEngine(source, tracker, options).MigrateAsync(src);
            received = await receiving;
        }

        using IWorkloadVm destination = (IWorkloadVm)received.Target!;
        AssertCompleted(report, received);
        Assert.IsTrue(report.SourceMemoryVerified, "the source's memory differs from what was sent: a write was missed");
        if (verifier)
        {
            AssertKeepsPassing(destination, passes: 2);
        }
    }

    private async Task<MigrationReport> AssertSourceSurvives(Func<FrameType, int, FrameProxy.Fault> fault, MigrationPhase? phase)
    {
        using IWorkloadVm source = StartSource(256 * MiB, "verify", Base, Base + (32 * MiB));
        (IMigrationConnection src, IMigrationConnection dst, FrameProxy proxy) = FrameProxy.Create(fault);
        await using (proxy)
        await using (src)
        await using (dst)
        {
            Task<ReceiveResult> receiving = Task.Run(() => Receiver().ReceiveAsync(dst));
            using IDirtyPageTracker tracker = source.CreateTracker();
            // Raw pages keep the rounds long enough that the switchover always has pages in flight.
            var engine = new PreCopyEngine(source, tracker, new MigrationOptions { BandwidthLimit = 256L << 20, ResponseTimeout = TimeSpan.FromSeconds(10), Encodings = PageEncodings.None });
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
            Assert.IsTrue(source.IsRunning, "the source must run after a failed migration");
            Assert.AreEqual(0, source.ThrottlePercent);
            AssertKeepsPassing(source, passes: 2);

            // No dirty bit lost: what was taken but not delivered is pending again.
            Assert.IsGreaterThan(0UL, engine.PendingPages[0].Count());
            return report;
        }
    }

    private MigrationReceiver Receiver() => new(CreateTarget);

    private async Task<ReceiveResult> ReceiveAsync(MigrationListener listener)
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

    /// <summary>The passes the phased workload writes a quarter of its range before all of it: a few, so the set grows during the migration.</summary>
    protected const uint PhasedGrowAfter = 4;

    /// <summary>The bursty workload's quiet ticks after each burst: three bursts' worth.</summary>
    protected static uint BurstyQuietTicks(ulong start, ulong end) => (uint)((end - start) / 4096 * 3);

    /// <summary>Asserts the guest completes more passes without a self-check failure.</summary>
    protected static void AssertKeepsPassing(IWorkloadVm vm, uint passes)
    {
        VcpuStatus before = vm.GetStatus()[0];
        Assert.IsTrue(vm.WaitForPass(before.Passes + passes, TimeSpan.FromSeconds(60)), $"stuck at {vm.GetStatus()[0]}");
        VcpuStatus after = vm.GetStatus()[0];
        Assert.AreEqual(0L, after.Failures, $"self-check failed first at page {after.FirstFailedPage}");
        Assert.IsNull(after.Fault);
    }
}

/// <summary>The scenarios on HostVms, tracked with userfaultfd write-protection.</summary>
[TestClass]
[TestCategory("WriteProtect")]
public sealed class HostVmMigrationTests : LiveMigrationTests
{
    // The dirty rate a MicroVm guest reaches on the reference machine under tracking.
    private const double GuestPace = 25_000;

    [TestInitialize]
    public void Require() => WriteTrackingRequirement.Require();

    protected override IWorkloadVm StartSource(ulong memory, string workload, ulong start, ulong end)
    {
        HostWorkload w = workload switch
        {
            "sweep" => HostWorkload.Sweep(start, end),
            "hotcold" => HostWorkload.HotCold(new GuestRange(start, end), new GuestRange(end, end + (60 * MiB)), 1000),
            "random" => HostWorkload.RandomWrites(start, end, 12345),
            "verify" => HostWorkload.Verifier(start, end),
            "phased" => HostWorkload.Phased(start, end, start + ((end - start) / 4), PhasedGrowAfter),
            "bursty" => HostWorkload.Bursty(start, end, BurstyQuietTicks(start, end)),
            _ => HostWorkload.Fill(start, end),
        };
        var vm = new HostVm(memory);
        try
        {
            vm.Load(w);
            vm.SetPaceLimit(GuestPace);
            vm.Start();
            bool ready = w.Kind == HostWorkloadKind.Fill
                ? SpinWait.SpinUntil(() => vm.GetStatus().Halted, TimeSpan.FromSeconds(60))
                : vm.WaitForPass(1, TimeSpan.FromSeconds(60));
            Assert.IsTrue(ready, $"no first pass: {vm.GetStatus()}");
            return vm;
        }
        catch
        {
            // The test gets no VM to dispose of when the start fails.
            vm.Dispose();
            throw;
        }
    }

    protected override IMigrationTarget CreateTarget(MigrationHello hello) => new HostVm(hello.Regions);
}
