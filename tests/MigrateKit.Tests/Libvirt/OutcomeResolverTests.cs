using System;
using System.Linq;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class OutcomeResolverTests
{
    private const string Vm = "web1";

    private static readonly LibvirtException CallFailed =
        new("virDomainMigrate3", LibvirtErrorCodes.OperationFailed, 10, "operation failed: migration out job: unexpectedly failed");

    private readonly FakeTimeProvider _time = new();

    private Task<MigrationOutcome> ResolveAsync(FakeHosts hosts, LibvirtRunState run, Exception? failure)
    {
        // Unreachable hosts are retried until the reconnect timeout, on the fake clock.
        Task<MigrationOutcome> resolving = Task.Run(() =>
        {
            using var source = new ResilientHost(hosts, FakeHosts.Source, TimeSpan.FromSeconds(30), _time, NullLogger.Instance);
            using var destination = new ResilientHost(hosts, FakeHosts.Destination, TimeSpan.FromSeconds(30), _time, NullLogger.Instance);
            return new OutcomeResolver(NullLogger.Instance).Resolve(source, destination, Vm, run, failure);
        });
        return _time.AdvanceUntilDoneAsync(resolving, TimeSpan.FromSeconds(1));
    }

    private LibvirtRunState NewRun() => new(_time, TimeSpan.FromMilliseconds(300));

    private static FakeHosts Hosts(DomainState? onSource, DomainState? onDestination)
    {
        var hosts = new FakeHosts();
        if (onSource is { } s)
        {
            hosts.SourceDomains[Vm] = s;
        }

        if (onDestination is { } d)
        {
            hosts.DestinationDomains[Vm] = d;
        }

        return hosts;
    }

    [TestMethod]
    public async Task Resolve_CallReturned_IsCompletedWithTheDestinationsStatistics()
    {
        MigrationOutcome outcome = await ResolveAsync(Hosts(null, DomainState.Running), NewRun(), null);

        Assert.AreEqual(MigrationStatus.Completed, outcome.Status);
        Assert.IsNull(outcome.Reason);
        Assert.IsNull(outcome.FailedPhase);
        Assert.AreEqual(42UL, outcome.Final?.DowntimeMs);
        Assert.IsFalse(outcome.Unknown);
    }

    [TestMethod]
    public async Task Resolve_CallFailedButOnlyTheDestinationRunsIt_IsCompletedWithoutAnError()
    {
        MigrationOutcome outcome = await ResolveAsync(Hosts(null, DomainState.Running), NewRun(), CallFailed);

        Assert.AreEqual(MigrationStatus.Completed, outcome.Status);
        StringAssert.Contains(outcome.Reason, "runs on the destination");
        Assert.IsNull(outcome.Error);
    }

    [TestMethod]
    public async Task Resolve_CallFailedBeforeTheJobShowedUp_FailsInTheHandshake()
    {
        FakeHosts hosts = Hosts(DomainState.Running, null);

        MigrationOutcome outcome = await ResolveAsync(hosts, NewRun(), CallFailed);

        Assert.AreEqual(MigrationStatus.Failed, outcome.Status);
        Assert.AreEqual(MigrationPhase.Handshake, outcome.FailedPhase);
        Assert.AreSame(CallFailed, outcome.Error);
        Assert.IsFalse(outcome.Unknown);
        Assert.IsFalse(hosts.Calls.Contains($"{FakeHosts.Source} resume"), "a running source needs no resume");
    }

    [TestMethod]
    public async Task Resolve_CallFailedWhilePreCopyRan_FailsInSend()
    {
        LibvirtRunState run = NewRun();
        run.MarkJobSeen();

        MigrationOutcome outcome = await ResolveAsync(Hosts(DomainState.Running, null), run, CallFailed);

        Assert.AreEqual(MigrationStatus.Failed, outcome.Status);
        Assert.AreEqual(MigrationPhase.Send, outcome.FailedPhase);
    }

    [TestMethod]
    public async Task Resolve_CallFailedAfterTheStopAndCopyWasSeen_FailsInTheSwitchover()
    {
        LibvirtRunState run = NewRun();
        run.MarkJobSeen();
        run.MarkSwitchover();

        MigrationOutcome outcome = await ResolveAsync(Hosts(DomainState.Running, null), run, CallFailed);

        Assert.AreEqual(MigrationPhase.Switchover, outcome.FailedPhase);
    }

    [TestMethod]
    public async Task Resolve_CallFailedWithTheSourcePaused_ResumesItAndFailsInTheSwitchover()
    {
        FakeHosts hosts = Hosts(DomainState.Paused, null);

        MigrationOutcome outcome = await ResolveAsync(hosts, NewRun(), CallFailed);

        Assert.AreEqual(MigrationStatus.Failed, outcome.Status);
        Assert.AreEqual(MigrationPhase.Switchover, outcome.FailedPhase, "QEMU pauses the source only for the stop-and-copy");
        Assert.IsTrue(hosts.Calls.Contains($"{FakeHosts.Source} resume"));
        Assert.AreEqual(DomainState.Running, hosts.SourceDomains[Vm]);
        Assert.IsFalse(outcome.Unknown);
    }

    [TestMethod]
    public async Task Resolve_AbortAsked_IsAbortedWithTheReasonAndNoFailedPhase()
    {
        LibvirtRunState run = NewRun();
        run.MarkJobSeen();
        run.RequestAbort("deadline of 1.0 s reached");

        MigrationOutcome outcome = await ResolveAsync(Hosts(DomainState.Running, null), run, CallFailed);

        Assert.AreEqual(MigrationStatus.Aborted, outcome.Status);
        Assert.AreEqual("deadline of 1.0 s reached", outcome.Reason);
        Assert.IsNull(outcome.FailedPhase);
    }

    [TestMethod]
    public async Task Resolve_BothHostsRunIt_NeverResumesAndIsUnknown()
    {
        FakeHosts hosts = Hosts(DomainState.Paused, DomainState.Running);

        MigrationOutcome outcome = await ResolveAsync(hosts, NewRun(), CallFailed);

        Assert.AreEqual(MigrationStatus.Failed, outcome.Status);
        Assert.IsTrue(outcome.Unknown);
        Assert.AreEqual(DomainState.Paused, hosts.SourceDomains[Vm], "two running copies would share the disks");
        StringAssert.Contains(outcome.Reason, "paused on the source and running on the destination");
    }

    [TestMethod]
    public async Task Resolve_DestinationUnreachable_NeverResumesAndIsUnknown()
    {
        FakeHosts hosts = Hosts(DomainState.Paused, null);
        hosts.DestinationUnreachable = true;

        MigrationOutcome outcome = await ResolveAsync(hosts, NewRun(), CallFailed);

        Assert.IsTrue(outcome.Unknown);
        Assert.AreEqual(DomainState.Paused, hosts.SourceDomains[Vm]);
        StringAssert.Contains(outcome.Reason, "unknown (host unreachable) on the destination");
    }

    [TestMethod]
    public async Task Resolve_FailedInPostcopy_NeverResumesTheSource()
    {
        FakeHosts hosts = Hosts(DomainState.Paused, null);
        LibvirtRunState run = NewRun();
        run.MarkPostcopy();

        MigrationOutcome outcome = await ResolveAsync(hosts, run, CallFailed);

        Assert.IsTrue(outcome.Unknown, "postcopy moved the guest's state: resume it with libvirt's postcopy recovery");
        Assert.AreEqual(DomainState.Paused, hosts.SourceDomains[Vm]);
        Assert.AreEqual(MigrationPhase.Switchover, outcome.FailedPhase);
    }

    [TestMethod]
    public async Task Resolve_CallFailedWithTheDomainOnNeitherHost_IsUnknownAndSaysWhereItIsNot()
    {
        MigrationOutcome outcome = await ResolveAsync(Hosts(null, null), NewRun(), CallFailed);

        Assert.AreEqual(MigrationStatus.Failed, outcome.Status);
        Assert.IsTrue(outcome.Unknown);
        StringAssert.Contains(outcome.Reason, "absent on the source and absent on the destination");
    }
}
