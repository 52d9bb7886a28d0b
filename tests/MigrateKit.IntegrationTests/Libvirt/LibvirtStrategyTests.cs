using System;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Libvirt;
using MigrateKit.Migration;

namespace MigrateKit.IntegrationTests.Libvirt;

/// <summary>
/// QEMU's tools chosen through libvirt on the two hosts of tests/harness/libvirt-hosts.sh: xbzrle
/// (its parameters, its cache and its statistics), multifd and postcopy as strategies, and auto's choice
/// on the anchor workload.
/// </summary>
[TestClass]
[TestCategory("Libvirt")]
public sealed class LibvirtStrategyTests
{
    private const ulong MiB = 1UL << 20;
    private static string Src => LibvirtHosts.SourceUri;
    private static string Dst => LibvirtHosts.DestinationUri;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void RequireHosts() => LibvirtHosts.Require();

    private static LibvirtMigrationOptions Options(LibvirtStrategy strategy, long? bandwidth) => new()
    {
        MigrationUri = "tcp://127.0.0.1",
        Unsafe = true,
        Strategy = strategy,
        BandwidthLimit = bandwidth,
        Deadline = TimeSpan.FromSeconds(60),
    };

    /// <summary>
    /// The anchor (1 GiB, a 99 MiB set rewritten one byte per page, 100 MiB/s, 300 ms), which plain pre-copy
    /// never finishes: auto starts with xbzrle, the re-dirtied pages go as deltas, and it completes in seconds
    /// within the limit, its forecast priced by what the deltas cost.
    /// </summary>
    [TestMethod]
    public async Task Anchor_Auto_ChoosesXbzrle_SendsDeltas_AndCompletesWithinTheLimit()
    {
        using TestDomain vm = TestDomain.Start(Src, () => GuestPrograms.Sweep(MiB, 100 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress), 1024 * MiB);
        var clock = Stopwatch.StartNew();

        MigrationReport report = await new LibvirtMigrator().MigrateAsync(Src, vm.Name, Dst, Options(LibvirtStrategy.Auto, 100L << 20), null, TestContext.CancellationToken);

        clock.Stop();
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual(DomainState.Running, vm.StateOn(Dst));
        Assert.AreEqual("xbzrle", report.Strategy);
        MigrationDecision start = report.Decisions[0];
        Assert.AreEqual("strategy", start.Action);
        StringAssert.Contains(start.Reason, "auto chose xbzrle");

        // Re-dirtied pages go as deltas from the third iteration on; once the second iteration's bursts show the
        // link's speed, the limit may be raised there and QEMU switch before any delta round.
        RoundReport? deltas = report.RoundsDetail.FirstOrDefault(r => r.DeltaPages > 1000);
        bool raisedEarly = report.Decisions.Any(d => d.Action == "raise-limit" && d.Round <= 2);
        Assert.IsTrue(deltas is not null || raisedEarly, "re-dirtied pages went as deltas, or the switchover came in the second iteration");
        if (deltas is not null)
        {
            Assert.IsLessThan(deltas.DeltaPages * 512, deltas.DeltaBytes, "a one-byte change costs far less than an eighth of a page");
        }

        double actual = report.DowntimeMs!.Value;
        double predicted = report.PredictedDowntimeMs!.Value;
        TestContext.WriteLine(FormattableString.Invariant(
            $"auto: {report.TotalMs:F0} ms job, {clock.ElapsedMilliseconds} ms wall, {report.BytesSent >> 20} MiB, downtime {actual:F0} ms, forecast {predicted:F1} ms"));
        Assert.IsLessThanOrEqualTo(300.0, actual);
        // Plain pre-copy never finishes this guest (it runs to the 60 s deadline). A KVM domain's job ends
        // within 10 s; under TCG the emulated vCPU and both QEMUs share two cores and one CI run's job took 10 s
        // (12.1 s wall), so there the bound is a third of the deadline.
        Assert.IsLessThan(BootSectorDomain.KvmAvailable ? 10_000 : 20_000, clock.ElapsedMilliseconds, "seconds, not the deadline");
        Assert.IsLessThan(400UL * MiB, report.BytesSent, "deltas, not the hot set again and again");

        // The bench measures the max(10 ms, 25 %) over repeated runs. One run holds the promise's side: the
        // forecast may be cautious (a switchover QEMU makes mid-iteration sends deltas of pages it priced whole),
        // never far optimistic. Held for KVM domains: under TCG the downtime of identical runs varies by 2x and
        // more (the emulated vCPU and both QEMUs share two cores); one CI run forecast 21 ms for 50 ms there.
        if (BootSectorDomain.KvmAvailable)
        {
            Assert.IsGreaterThanOrEqualTo(actual - Math.Max(15, actual / 2), predicted, FormattableString.Invariant($"forecast {predicted:F1} ms vs {actual:F0} ms"));
        }
        vm.WaitForPass(vm.Guest.ReadSerial().LastPass + 1, TimeSpan.FromSeconds(30));
    }

    /// <summary>LibvirtSharp's compression parameters reach QEMU, and the cache is read and resized while the job runs.</summary>
    [TestMethod]
    public async Task XbzrleParameters_ReachQemu_AndTheCacheResizesWhileMigrating()
    {
        using TestDomain vm = TestDomain.Start(Src, () => GuestPrograms.Sweep(MiB, 33 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress), 256 * MiB);
        using LibvirtConnection src = LibvirtConnection.Open(Src);
        using LibvirtConnection dst = LibvirtConnection.Open(Dst);
        using LibvirtDomain domain = src.LookupDomain(vm.Name);
        var parameters = new DomainMigrationParameters
        {
            MigrationUri = "tcp://127.0.0.1",
            BandwidthMiBps = 8,
            CompressionMethods = [MigrationCompression.Xbzrle],
            XbzrleCacheBytes = 32 * MiB,
        };

        // 8 MiB/s keeps the job running while it is watched; it is aborted at the end.
        Task migrate = Task.Run(() => domain.Migrate(dst, parameters, MigrationFlags.Live | MigrationFlags.Unsafe | MigrationFlags.Compressed).Dispose());
        JobStats? running = null;
        var clock = Stopwatch.StartNew();
        while (running is null && clock.Elapsed < TimeSpan.FromSeconds(30) && !migrate.IsCompleted)
        {
            JobStats s = domain.GetJobStats();
            running = s.Type == DomainJobType.Unbounded && s.MemoryProcessed > 0 ? s : null;
            await Task.Delay(50);
        }

        Assert.IsNotNull(running, "the job did not start");
        Assert.AreEqual(32 * MiB, domain.GetCompressionCache());
        domain.SetCompressionCache(64 * MiB);
        Assert.AreEqual(64 * MiB, domain.GetCompressionCache());
        JobStats after = domain.GetJobStats();
        Assert.AreEqual(64 * MiB, after.CompressionCache, "job stats carry the cache size");
        Assert.IsNotNull(after.CompressionCacheMisses, "job stats carry xbzrle's counters");

        domain.AbortJob();
        LibvirtException aborted = await Assert.ThrowsExactlyAsync<LibvirtException>(() => migrate);
        TestContext.WriteLine(aborted.Message);
        Assert.AreEqual(DomainState.Running, vm.StateOn(Src), "an aborted migration leaves the source running");
    }

    [TestMethod]
    public async Task PostcopyStrategy_SwitchesAfterTheFirstPass_AndArrivesIntact()
    {
        using TestDomain vm = TestDomain.Start(Src, () => GuestPrograms.Verifier(MiB, 65 * MiB, GuestPorts.Com1, BootSector.ProgramAddress), 256 * MiB);

        MigrationReport report = await new LibvirtMigrator().MigrateAsync(Src, vm.Name, Dst, Options(LibvirtStrategy.Postcopy, 32L << 20), null, TestContext.CancellationToken);

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual("completed in postcopy", report.Reason);
        Assert.AreEqual("postcopy", report.Strategy);
        MigrationDecision postcopy = report.Decisions.Single(d => d.Action == "postcopy");
        StringAssert.Contains(postcopy.Reason, "first full pass");
        Assert.AreEqual(DomainState.Running, vm.StateOn(Dst));
        GuestSerialLog log = vm.WaitForPass(vm.Guest.ReadSerial().LastPass + 2, TimeSpan.FromSeconds(60));
        CollectionAssert.AreEqual(Enumerable.Range(1, log.Passes.Count).Select(i => (uint)i).ToArray(), log.Passes.ToArray());
    }

    [TestMethod]
    public async Task MultifdStrategy_MigratesOverParallelConnections_AndKeepsTheGuestChecking()
    {
        using TestDomain vm = TestDomain.Start(Src, () => GuestPrograms.Verifier(MiB, 65 * MiB, GuestPorts.Com1, BootSector.ProgramAddress), 256 * MiB);

        MigrationReport report = await new LibvirtMigrator().MigrateAsync(Src, vm.Name, Dst, Options(LibvirtStrategy.Multifd, null), null, TestContext.CancellationToken);

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual("multifd", report.Strategy);
        StringAssert.Contains(report.Decisions[0].Reason, "2 connections");
        Assert.AreEqual(DomainState.Running, vm.StateOn(Dst));
        GuestSerialLog log = vm.WaitForPass(vm.Guest.ReadSerial().LastPass + 2, TimeSpan.FromSeconds(60));
        CollectionAssert.AreEqual(Enumerable.Range(1, log.Passes.Count).Select(i => (uint)i).ToArray(), log.Passes.ToArray());
    }
}
