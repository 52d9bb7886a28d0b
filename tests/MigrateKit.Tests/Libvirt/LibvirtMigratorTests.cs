using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using Moq;

namespace MigrateKit.Tests.Libvirt;

/// <summary>Two hosts in memory: domain states, scripted job statistics, a scripted migrate call.</summary>
internal sealed class FakeHosts : ILibvirtHostFactory
{
    internal const string Source = "qemu:///source";
    internal const string Destination = "qemu:///destination";

    internal ConcurrentDictionary<string, DomainState> SourceDomains { get; } = new();
    internal ConcurrentDictionary<string, DomainState> DestinationDomains { get; } = new();
    internal ConcurrentQueue<string> Calls { get; } = new();
    internal Func<JobStats> Stats { get; set; } = () => new JobStats { Type = DomainJobType.None };
    internal Action<FakeHosts> MigrateCall { get; set; } = _ => { };
    internal ManualResetEventSlim Aborted { get; } = new();
    internal ManualResetEventSlim MigrateEntered { get; } = new();
    internal volatile bool DestinationUnreachable;

    public ILibvirtHost Open(string uri) => uri == Destination && DestinationUnreachable
        ? throw new LibvirtException("virConnectOpenAuth", LibvirtErrorCodes.SystemError, LibvirtErrorDomains.Rpc, $"Failed to connect socket to '{uri}': Connection refused")
        : new Host(this, uri);

    private sealed class Host(FakeHosts hosts, string uri) : ILibvirtHost
    {
        private ConcurrentDictionary<string, DomainState> Domains => uri == Source ? hosts.SourceDomains : hosts.DestinationDomains;

        public string Uri => uri;

        public HostVersions Versions() => new(new Version(9, 0, 0), new Version(7, 2, 0));

        public DomainStateInfo? GetState(string domain) => uri == Destination && hosts.DestinationUnreachable
            ? throw new LibvirtException("virDomainGetState", LibvirtErrorCodes.SystemError, LibvirtErrorDomains.Rpc, "End of file while reading data")
            : Domains.TryGetValue(domain, out DomainState s) ? new DomainStateInfo(s, 0) : null;

        public JobStats GetJobStats(string domain, bool completed) =>
            completed ? new JobStats { Type = DomainJobType.Completed, DowntimeMs = 42, MemoryIteration = 3, DataProcessed = 1 << 20 } : hosts.Stats();

        public void SetMaxDowntime(string domain, TimeSpan limit) => hosts.Calls.Enqueue($"{uri} downtime {limit.TotalMilliseconds}");

        public void SetCompressionCache(string domain, ulong bytes) => hosts.Calls.Enqueue($"{uri} xbzrle-cache {bytes >> 20} MiB");

        public void StartPostCopy(string domain) => hosts.Calls.Enqueue($"{uri} postcopy");

        public void AbortJob(string domain)
        {
            hosts.Calls.Enqueue($"{uri} abort");
            hosts.Aborted.Set();
        }

        public void Resume(string domain)
        {
            hosts.Calls.Enqueue($"{uri} resume");
            Domains[domain] = DomainState.Running;
        }

        public void Suspend(string domain) => Domains[domain] = DomainState.Paused;

        public ulong GetMemoryBytes(string domain) => Domains.ContainsKey(domain)
            ? 256UL << 20
            : throw new LibvirtException("virDomainLookupByName", LibvirtErrorCodes.NoDomain, 10, $"Domain not found: no domain with matching name '{domain}'");

        public string GetVirtType(string domain) => "kvm";

        public void StartDirtyRateCalc(string domain, TimeSpan period, DirtyRateMode mode) => throw new NotSupportedException();

        public DirtyRateInfo GetDirtyRate(string domain) => throw new NotSupportedException();

        public void Migrate(string domain, ILibvirtHost destination, DomainMigrationParameters parameters, MigrationFlags flags)
        {
            hosts.Calls.Enqueue($"migrate {flags}");
            hosts.MigrateEntered.Set();
            hosts.MigrateCall(hosts);
        }

        public IDisposable WatchIterations(string domain, Action<int> onIteration) => new CancellationTokenSource();

        public void Dispose()
        {
        }
    }
}

[TestClass]
public sealed class LibvirtMigratorTests
{
    private const string Vm = "web1";

    private static LibvirtMigrationOptions Options(TimeSpan? deadline = null, TimeProvider? time = null, bool tls = false) => new()
    {
        Tls = tls,
        MeasureDirtyRate = false,
        CalibratePause = false,
        PollInterval = TimeSpan.FromMilliseconds(10),
        Deadline = deadline ?? TimeSpan.FromSeconds(30),
        ReconnectTimeout = TimeSpan.FromSeconds(2),
        TimeProvider = time ?? TimeProvider.System,
    };

    /// <summary>Migrates on a fake clock, advanced poll interval by poll interval until the migration ends.</summary>
    private static Task<MigrationReport> MigrateOnAFakeClockAsync(FakeHosts hosts, TimeSpan? deadline = null)
    {
        var time = new FakeTimeProvider();
        LibvirtMigrationOptions options = Options(deadline, time);
        return time.AdvanceUntilDoneAsync(new LibvirtMigrator(hosts, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, options), options.PollInterval);
    }

    private static FakeHosts Hosts()
    {
        var hosts = new FakeHosts();
        hosts.SourceDomains[Vm] = DomainState.Running;
        return hosts;
    }

    /// <summary>Hosts whose migrate call succeeds: the domain leaves the source and runs on the destination.</summary>
    private static FakeHosts HostsWhereTheDomainMoves()
    {
        FakeHosts hosts = Hosts();
        hosts.MigrateCall = h =>
        {
            h.SourceDomains.TryRemove(Vm, out _);
            h.DestinationDomains[Vm] = DomainState.Running;
        };
        return hosts;
    }

    [TestMethod]
    public async Task MigrateAsync_Completes_ReportsLibvirtsDowntime()
    {
        FakeHosts hosts = HostsWhereTheDomainMoves();

        MigrationReport report = await new LibvirtMigrator(hosts, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options());

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual(42.0, report.DowntimeMs);
        Assert.AreEqual(256UL << 20, report.MemoryBytes);
        Assert.AreEqual(300.0, report.DowntimeLimitMs);
        Assert.IsTrue(hosts.Calls.Contains("migrate Live, AutoConverge"), string.Join(" | ", hosts.Calls));
    }

    [TestMethod]
    public async Task MigrateAsync_Tls_ReachesTheMigrateCallAsVirMigrateTls()
    {
        FakeHosts hosts = HostsWhereTheDomainMoves();

        MigrationReport report = await new LibvirtMigrator(hosts, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options(tls: true));

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.IsTrue(hosts.Calls.Contains("migrate Live, AutoConverge, Tls"), string.Join(" | ", hosts.Calls));
    }

    [TestMethod]
    public async Task MigrateAsync_CallFailsWithTheSourcePaused_ResumesTheSourceAndReportsTheFailure()
    {
        FakeHosts hosts = Hosts();
        hosts.MigrateCall = h =>
        {
            h.SourceDomains[Vm] = DomainState.Paused;
            throw new LibvirtException("virDomainMigrate3", LibvirtErrorCodes.OperationFailed, 10, "operation failed: migration out job: unexpectedly failed");
        };

        MigrationReport report = await new LibvirtMigrator(hosts, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options());

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        StringAssert.Contains(report.Reason, "unexpectedly failed");
        Assert.IsInstanceOfType<LibvirtException>(report.Error);
        Assert.IsTrue(hosts.Calls.Contains($"{FakeHosts.Source} resume"));
        Assert.AreEqual(DomainState.Running, hosts.SourceDomains[Vm]);
        Assert.IsFalse(report.OutcomeUnknown);
        Assert.AreEqual(MigrationPhase.Switchover, report.FailedPhase, "QEMU pauses the source only for the stop-and-copy");
    }

    [TestMethod]
    public async Task MigrateAsync_CallFailsAfterTheDestinationTookOver_IsCompleted()
    {
        FakeHosts hosts = Hosts();
        hosts.MigrateCall = h =>
        {
            h.SourceDomains.TryRemove(Vm, out _);
            h.DestinationDomains[Vm] = DomainState.Running;
            throw new LibvirtException("virDomainMigrate3", LibvirtErrorCodes.SystemError, LibvirtErrorDomains.Rpc, "End of file while reading data: Input/output error");
        };

        MigrationReport report = await new LibvirtMigrator(hosts, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options());

        Assert.AreEqual(MigrationStatus.Completed, report.Status);
        StringAssert.Contains(report.Reason, "runs on the destination");
        Assert.IsNull(report.Error);
    }

    [TestMethod]
    public async Task MigrateAsync_DeadlinePassesWithoutConvergence_AbortsAndLeavesTheSourceRunning()
    {
        FakeHosts hosts = Hosts();
        int polls = 0;
        hosts.Stats = () => new JobStats
        {
            Type = DomainJobType.Unbounded,
            MemoryIteration = (ulong)(2 + (Interlocked.Increment(ref polls) / 5)),
            MemoryRemaining = 99UL << 20,
            MemoryTotal = 256UL << 20,
            MemoryBps = 100UL << 20,
            MemoryDirtyRate = 30_000,
            MemoryPageSize = 4096,
            DataProcessed = (ulong)polls << 20,
        };
        hosts.MigrateCall = h =>
        {
            Assert.IsTrue(h.Aborted.Wait(TimeSpan.FromSeconds(10)), "the migrator never aborted");
            throw new LibvirtException("virDomainMigrate3", LibvirtErrorCodes.OperationAborted, 10, "operation aborted: migration out job: canceled by client");
        };

        MigrationReport report = await MigrateOnAFakeClockAsync(hosts, TimeSpan.FromMilliseconds(300));

        Assert.AreEqual(MigrationStatus.Aborted, report.Status);
        StringAssert.Contains(report.Reason, "deadline of 0.3 s");
        Assert.AreEqual(DomainState.Running, hosts.SourceDomains[Vm]);
        Assert.IsGreaterThan(0, report.RoundsDetail.Count);
        Assert.IsTrue(hosts.Calls.Contains($"{FakeHosts.Source} downtime 300"), string.Join(" | ", hosts.Calls));
    }

    /// <summary>Hosts whose job shows 10 MiB left at 1000 MiB/s unlimited for a while, then moves (libvirt reports 42 ms downtime).</summary>
    private static FakeHosts HostsWithAJobThatMoves()
    {
        FakeHosts hosts = HostsWhereTheDomainMoves();
        hosts.Stats = () => new JobStats
        {
            Type = DomainJobType.Unbounded,
            MemoryIteration = 2,
            MemoryRemaining = 10UL << 20,
            MemoryTotal = 256UL << 20,
            MemoryBps = 1000UL << 20,
            MemoryDirtyRate = 0,
            MemoryPageSize = 4096,
            DataProcessed = 300UL << 20,
        };
        Action<FakeHosts> move = hosts.MigrateCall;
        hosts.MigrateCall = h =>
        {
            Thread.Sleep(200);
            move(h);
        };
        return hosts;
    }

    private static LibvirtMigrationOptions StoreOptions(TimeProvider time, ICalibrationStore store) => new()
    {
        MeasureDirtyRate = false,
        CalibratePause = false,
        PollInterval = TimeSpan.FromMilliseconds(10),
        TimeProvider = time,
        CalibrationStore = store,
    };

    [TestMethod]
    public async Task MigrateAsync_WithAStore_LearnsThePairFromTheJobStats_AndTheNextMigrationForecastsWithIt()
    {
        var store = new InMemoryCalibrationStore();
        var time = new FakeTimeProvider();
        LibvirtMigrationOptions options = StoreOptions(time, store);

        MigrationReport first = await time.AdvanceUntilDoneAsync(new LibvirtMigrator(HostsWithAJobThatMoves(), null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, options), options.PollInterval);

        Assert.AreEqual(MigrationStatus.Completed, first.Status, first.Reason);
        Assert.AreEqual(new CostOrigins(CostSource.Assumed, CostSource.LearnedInRun, 0), first.Costs);
        HostPairCalibration learned = PairCalibrationStore.Load(store, FakeHosts.Source, FakeHosts.Destination)!;

        // 42 ms reported, of which 10 MiB at 1000 MiB/s are the transfer: 32 ms are fixed.
        Assert.AreEqual(1000.0 * (1 << 20), learned.StopAndCopyBytesPerSecond);
        Assert.AreEqual(32, learned.FixedDowntime.TotalMilliseconds, 1e-6);

        MigrationReport second = await time.AdvanceUntilDoneAsync(new LibvirtMigrator(HostsWithAJobThatMoves(), null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, options), options.PollInterval);

        Assert.AreEqual(new CostOrigins(CostSource.Store, CostSource.Store, 1), second.Costs);
        Assert.AreEqual(42, second.PredictedDowntimeMs!.Value, 1e-6);
        Assert.AreEqual(2, store.Load(PairCalibrationStore.Key(FakeHosts.Source, FakeHosts.Destination))!.Samples);
    }

    [TestMethod]
    public async Task MigrateAsync_AStoreThatCannotBeWritten_CostsAWarningNotTheMigration()
    {
        var store = new Mock<ICalibrationStore>();
        store.Setup(s => s.Save(It.IsAny<string>(), It.IsAny<CalibrationEntry>())).Throws(new IOException("read-only file system"));
        var time = new FakeTimeProvider();
        LibvirtMigrationOptions options = StoreOptions(time, store.Object);

        MigrationReport report = await time.AdvanceUntilDoneAsync(new LibvirtMigrator(HostsWithAJobThatMoves(), null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, options), options.PollInterval);

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        store.Verify(s => s.Save(It.IsAny<string>(), It.IsAny<CalibrationEntry>()), Times.Once());
    }

    [TestMethod]
    public async Task MigrateAsync_TheLongestDeadline_IsNoOverflowWhilePolling()
    {
        FakeHosts hosts = Hosts();
        hosts.MigrateCall = h =>
        {
            // Long enough for the loop to poll, and so to compare the time with the deadline, a few times.
            Thread.Sleep(100);
            h.SourceDomains.TryRemove(Vm, out _);
            h.DestinationDomains[Vm] = DomainState.Running;
        };

        MigrationReport report = await MigrateOnAFakeClockAsync(hosts, TimeSpan.MaxValue);

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
    }

    [TestMethod]
    public async Task MigrateAsync_CallFailsWhileTheDestinationRunsIt_NeverResumesTheSource()
    {
        FakeHosts hosts = Hosts();
        hosts.MigrateCall = h =>
        {
            h.SourceDomains[Vm] = DomainState.Paused;
            h.DestinationDomains[Vm] = DomainState.Running;
            throw new LibvirtException("virDomainMigrate3", LibvirtErrorCodes.OperationFailed, 10, "operation failed: confirm phase failed");
        };

        MigrationReport report = await new LibvirtMigrator(hosts, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options());

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.IsTrue(report.OutcomeUnknown, report.Reason);
        Assert.AreEqual(DomainState.Paused, hosts.SourceDomains[Vm], "two running copies would share the disks");
        Assert.IsFalse(hosts.Calls.Contains($"{FakeHosts.Source} resume"));
        StringAssert.Contains(report.Reason, "running on the destination");
    }

    [TestMethod]
    public async Task MigrateAsync_CallFailsAndTheDestinationCannotBeAsked_NeverResumesTheSource()
    {
        FakeHosts hosts = Hosts();
        hosts.MigrateCall = h =>
        {
            h.SourceDomains[Vm] = DomainState.Paused;
            h.DestinationUnreachable = true;
            throw new LibvirtException("virDomainMigrate3", LibvirtErrorCodes.SystemError, LibvirtErrorDomains.Rpc, "End of file while reading data");
        };

        MigrationReport report = await new LibvirtMigrator(hosts, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options());

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.IsTrue(report.OutcomeUnknown);
        Assert.AreEqual(DomainState.Paused, hosts.SourceDomains[Vm]);
        StringAssert.Contains(report.Reason, "unreachable");
    }

    [TestMethod]
    public async Task MigrateAsync_CallSucceedsButTheDestinationCannotBeAskedAfterwards_IsCompleted()
    {
        FakeHosts hosts = Hosts();
        hosts.MigrateCall = h =>
        {
            h.SourceDomains.TryRemove(Vm, out _);
            h.DestinationDomains[Vm] = DomainState.Running;
            h.DestinationUnreachable = true;
        };

        MigrationReport report = await new LibvirtMigrator(hosts, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options());

        Assert.AreEqual(MigrationStatus.Completed, report.Status);
        Assert.IsNull(report.DowntimeMs, "no completed statistics without the destination");
    }

    [TestMethod]
    public async Task MigrateAsync_Cancelled_AbortsUntilTheCallReturnsAndReportsInsteadOfThrowing()
    {
        FakeHosts hosts = Hosts();
        hosts.MigrateCall = h =>
        {
            Assert.IsTrue(h.Aborted.Wait(TimeSpan.FromSeconds(10)), "the migrator never aborted");
            throw new LibvirtException("virDomainMigrate3", LibvirtErrorCodes.OperationAborted, 10, "operation aborted: migration out job: canceled by client");
        };
        using var cts = new CancellationTokenSource();

        Task<MigrationReport> running = new LibvirtMigrator(hosts, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options(), null, cts.Token);
        Assert.IsTrue(hosts.MigrateEntered.Wait(TimeSpan.FromSeconds(10)));
        cts.Cancel();
        MigrationReport report = await running;

        Assert.AreEqual(MigrationStatus.Aborted, report.Status);
        Assert.AreEqual("cancelled by the caller", report.Reason);
        Assert.AreEqual(DomainState.Running, hosts.SourceDomains[Vm]);
    }

    [TestMethod]
    public async Task MigrateAsync_UnknownDomain_IsLibvirtsNoDomainError()
    {
        var ex = await Assert.ThrowsExactlyAsync<LibvirtException>(() =>
            new LibvirtMigrator(Hosts(), null).MigrateAsync(FakeHosts.Source, "nope", FakeHosts.Destination, Options()));

        Assert.IsTrue(ex.IsNoDomain);
        StringAssert.Contains(ex.Message, "nope");
    }

    [TestMethod]
    public async Task MigrateAsync_DomainNotRunningOrAlreadyOnTheDestination_SaysSo()
    {
        FakeHosts paused = Hosts();
        paused.SourceDomains[Vm] = DomainState.Paused;
        var ex = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() =>
            new LibvirtMigrator(paused, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options()));
        StringAssert.Contains(ex.Message, "paused, not running");

        FakeHosts both = Hosts();
        both.DestinationDomains[Vm] = DomainState.Shutoff;
        ex = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() =>
            new LibvirtMigrator(both, null).MigrateAsync(FakeHosts.Source, Vm, FakeHosts.Destination, Options()));
        StringAssert.Contains(ex.Message, "already has a domain");
    }

    [TestMethod]
    public async Task MigrateAsync_CallFailsBeforeTheJobShowsUp_FailedInTheHandshake()
    {
        FakeHosts hosts = Hosts();
        hosts.MigrateCall = _ => throw new LibvirtException("virDomainMigrate3", LibvirtErrorCodes.OperationFailed, 10, "operation failed: Failed to connect to remote libvirt URI");

        MigrationReport report = await MigrateOnAFakeClockAsync(hosts);

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual(MigrationPhase.Handshake, report.FailedPhase);
        Assert.AreEqual(DomainState.Running, hosts.SourceDomains[Vm]);
    }

    [TestMethod]
    public async Task MigrateAsync_CallFailsWhilePreCopyRuns_FailedInSend()
    {
        FakeHosts hosts = Hosts();
        using var polled = new ManualResetEventSlim();
        hosts.Stats = () =>
        {
            polled.Set();
            return new JobStats { Type = DomainJobType.Unbounded, MemoryIteration = 1, DataProcessed = 1 << 20 };
        };
        hosts.MigrateCall = _ =>
        {
            Assert.IsTrue(polled.Wait(TimeSpan.FromSeconds(10)), "the migrator never polled");
            throw new LibvirtException("virDomainMigrate3", LibvirtErrorCodes.OperationFailed, 10, "operation failed: migration out job: Unable to write to socket: Broken pipe");
        };

        MigrationReport report = await MigrateOnAFakeClockAsync(hosts);

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual(MigrationPhase.Send, report.FailedPhase);
    }
}
