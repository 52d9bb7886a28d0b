using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using MigrateKit.Tests.Libvirt;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Libvirt;

/// <summary>
/// Two libvirt hosts played by a script: the source answers job statistics from a list (repeating
/// the last), the migrate call returns once the list is used up, unless <see cref="CompletesAfterScript"/>
/// is false, or fails once the job is aborted; after it returns the domain runs on the destination.
/// </summary>
internal sealed class ScriptedLibvirt : ILibvirtHostFactory
{
    private const ulong MiB = 1UL << 20;

    private readonly JobStats[] _polls;
    private readonly ManualResetEventSlim _done = new();
    private int _next;
    private volatile bool _aborted;
    private volatile bool _migrated;

    public ScriptedLibvirt(JobStats[] polls, JobStats final)
    {
        _polls = polls;
        Final = final;
        string id = Guid.NewGuid().ToString("N");
        Source = $"test:///source-{id}";
        Destination = $"test:///destination-{id}";
    }

    public string Source { get; }

    public string Destination { get; }

    public JobStats Final { get; }

    public bool Aborted => _aborted;

    public bool CompletesAfterScript { get; init; } = true;

    /// <summary>A poll of an iteration, in MiB.</summary>
    public static JobStats Poll(ulong iteration, ulong remainingMiB, ulong processedMiB, double bpsMiB = 1000, ulong dirtyPagesPerSecond = 256) => new()
    {
        Type = DomainJobType.Unbounded,
        MemoryIteration = iteration,
        MemoryRemaining = remainingMiB * MiB,
        MemoryTotal = 1024 * MiB,
        MemoryBps = (ulong)(bpsMiB * MiB),
        MemoryDirtyRate = dirtyPagesPerSecond,
        MemoryPageSize = 4096,
        DataProcessed = processedMiB * MiB,
        MemoryNormal = processedMiB * 256,
        AutoConvergeThrottle = 0,
    };

    public ILibvirtHost Open(string uri) => new Host(this, uri);

    private JobStats NextPoll()
    {
        int i = Interlocked.Increment(ref _next) - 1;
        if (i >= _polls.Length - 1 && CompletesAfterScript)
        {
            _done.Set();
        }

        return _polls[Math.Min(i, _polls.Length - 1)];
    }

    private sealed class Host(ScriptedLibvirt hosts, string uri) : ILibvirtHost
    {
        private bool IsSource => uri == hosts.Source;

        public string Uri => uri;

        public HostVersions Versions() => new(new Version(9, 0, 0), new Version(7, 2, 0));

        public DomainStateInfo? GetState(string domain) => IsSource == hosts._migrated ? null : new DomainStateInfo(DomainState.Running, 1);

        public JobStats GetJobStats(string domain, bool completed) => completed ? hosts.Final : hosts.NextPoll();

        public void SetMaxDowntime(string domain, TimeSpan limit)
        {
        }

        public void StartPostCopy(string domain) => throw new NotSupportedException();

        public void SetCompressionCache(string domain, ulong bytes) => throw new NotSupportedException();

        public void AbortJob(string domain)
        {
            hosts._aborted = true;
            hosts._done.Set();
        }

        public void Resume(string domain)
        {
        }

        public void Suspend(string domain)
        {
        }

        public ulong GetMemoryBytes(string domain) => 1024 * MiB;

        public string GetVirtType(string domain) => "kvm";

        public void StartDirtyRateCalc(string domain, TimeSpan period, DirtyRateMode mode) => throw new NotSupportedException();

        public DirtyRateInfo GetDirtyRate(string domain) => throw new NotSupportedException();

        public void Migrate(string domain, ILibvirtHost destination, DomainMigrationParameters parameters, MigrationFlags flags)
        {
            if (!hosts._done.Wait(TimeSpan.FromSeconds(30)))
            {
                throw new TimeoutException("The script was not played to its end.");
            }

            if (hosts._aborted)
            {
                throw LibvirtTestErrors.Create(55, 10, "operation aborted: migration out job: canceled by client");
            }

            hosts._migrated = true;
        }

        public IDisposable WatchIterations(string domain, Action<int> onIteration) => new Unwatch();

        public void Dispose()
        {
        }

        private sealed class Unwatch : IDisposable
        {
            public void Dispose()
            {
            }
        }
    }
}

/// <summary>
/// The libvirt migrator's metrics and spans, against scripted hosts. Not run in parallel with
/// other tests: the meter is static.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class LibvirtTelemetryTests
{
    private static LibvirtMigrationOptions Options(FakeTimeProvider time, TimeSpan? deadline = null) => new()
    {
        MeasureDirtyRate = false,
        CalibratePause = false,
        PollInterval = TimeSpan.FromMilliseconds(10),
        Deadline = deadline ?? TimeSpan.FromSeconds(60),
        TimeProvider = time,
    };

    /// <summary>Migrates on a fake clock, advanced poll interval by poll interval until the migration ends.</summary>
    private static Task<MigrationReport> MigrateAsync(ScriptedLibvirt hosts, TimeSpan? deadline = null)
    {
        var time = new FakeTimeProvider();
        LibvirtMigrationOptions options = Options(time, deadline);
        return time.AdvanceUntilDoneAsync(new LibvirtMigrator(hosts, null).MigrateAsync(hosts.Source, "vm1", hosts.Destination, options), options.PollInterval);
    }

    // Three iterations seen by polling (rows for the two that ended), then QEMU's stop-and-copy; libvirt counts four.
    private static ScriptedLibvirt FourIterations() => new(
        [
            ScriptedLibvirt.Poll(1, 900, 124),
            ScriptedLibvirt.Poll(1, 400, 624),
            ScriptedLibvirt.Poll(2, 20, 1030),
            ScriptedLibvirt.Poll(3, 5, 1050),
            ScriptedLibvirt.Poll(3, 0, 1055),
        ],
        new JobStats { Type = DomainJobType.Completed, MemoryIteration = 4, DataProcessed = 1060UL << 20, MemoryNormal = 1060 * 256, DowntimeMs = 42, TimeElapsedMs = 500 });

    [TestMethod]
    public async Task Completed_CountsPollsAndTheEnd_AndTracesEachIteration()
    {
        ScriptedLibvirt hosts = FourIterations();
        using var capture = new TelemetryCapture();

        MigrationReport report = await MigrateAsync(hosts);

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual(4, report.Rounds);
        Assert.AreEqual((double)report.BytesSent, capture.Sum("migratekit.bytes.sent"));
        Assert.AreEqual((double)report.PagesSent, capture.Sum("migratekit.pages.sent"));
        Assert.AreEqual(report.Rounds, capture.Sum("migratekit.rounds"));
        Assert.AreEqual(42.0, capture.Measurements("migratekit.downtime.actual").Single().Value);
        Measured[] predicted = capture.Measurements("migratekit.downtime.predicted");
        Assert.HasCount(4, predicted, "one forecast per poll before the stop-and-copy");
        Assert.IsTrue(predicted.All(m => m.Value > 0));
        Assert.IsTrue(capture.Measurements("migratekit.dirty_rate").All(m => m.Value == 256));
        Assert.HasCount(4, capture.Measurements("migratekit.throttle"));
        Assert.AreEqual("completed", capture.Measurements("migratekit.migrations").Single().Tags["migratekit.status"]);
        Assert.IsTrue(capture.All.All(m => (string?)m.Tags["migratekit.source"] == "libvirt"));

        Activity migration = capture.Spans("migratekit.migrate").Single();
        Assert.AreEqual(ActivityStatusCode.Ok, migration.Status);
        Assert.AreEqual("vm1", migration.GetTagItem("migratekit.vm.name"));
        Assert.AreEqual(42.0, migration.GetTagItem("migratekit.downtime.actual_ms"));
        Assert.AreEqual(report.PredictedDowntimeMs, migration.GetTagItem("migratekit.downtime.predicted_ms"));
        Assert.AreEqual(4, migration.GetTagItem("migratekit.rounds"));
        Assert.AreEqual(1024L << 20, migration.GetTagItem("migratekit.memory.bytes"));
        // The strategy chosen at the start, then the switchover.
        Assert.AreSequenceEqual(new[] { "migratekit.decision", "migratekit.switchover" }, migration.Events.Select(e => e.Name).ToArray());
        Assert.AreEqual("strategy", migration.Events.First().Tags.Single(t => t.Key == "action").Value);

        Activity[] rounds = capture.Spans("migratekit.round");
        // A round's span closes at the sync that ends it: rounds 1 and 2 end at the polls that saw 2 and 3.
        Assert.AreSequenceEqual(new object?[] { 1, 2 }, rounds.Select(r => r.GetTagItem("migratekit.round")).ToArray());
        Assert.IsTrue(rounds.All(r => r.ParentSpanId == migration.SpanId));
        Assert.AreSequenceEqual(new object?[] { 1030L << 20, 20L << 20 }, rounds.Select(r => r.GetTagItem("migratekit.bytes.sent")).ToArray());
        Assert.AreSequenceEqual(new object?[] { 1030L * 256, 20L * 256 }, rounds.Select(r => r.GetTagItem("migratekit.pages.sent")).ToArray());
    }

    [TestMethod]
    public async Task Completed_GaugesFollowThePollsAndEndWithNothingRemaining()
    {
        ScriptedLibvirt hosts = FourIterations();
        using var capture = new TelemetryCapture();

        MigrationReport report = await MigrateAsync(hosts);

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual((double)(1024L << 20), capture.Measurements("migratekit.migration.data.total").Last().Value);
        Measured[] processed = capture.Measurements("migratekit.migration.data.processed");
        Assert.AreEqual(0.0, processed[0].Value, "nothing sent when the memory is known");
        Assert.AreEqual((double)report.BytesSent, processed[^1].Value);
        Assert.IsTrue(processed.Zip(processed.Skip(1)).All(p => p.First.Value <= p.Second.Value), "processed never goes back");
        Measured[] remaining = capture.Measurements("migratekit.migration.data.remaining");
        Assert.AreEqual((double)(1024L << 20), remaining[0].Value, "everything remains at the start");
        Assert.IsTrue(remaining.Skip(1).SkipLast(1).All(m => m.Value > 0 && m.Value < 1024L << 20), "the forecasts' remainders");
        Assert.AreEqual(0.0, remaining[^1].Value);
        Assert.IsTrue(capture.Measurements("migratekit.migration.dirty_memory_rate").All(m => m.Value == 256.0 * 4096));
        Measured[] transfer = capture.Measurements("migratekit.migration.memory_transfer_rate");
        Assert.IsNotEmpty(transfer);
        Assert.IsTrue(transfer.All(m => m.Value > 0));
        Assert.AreEqual(report.PredictedDowntimeMs!.Value, capture.Measurements("migratekit.migration.downtime.predicted").Last().Value);
        Measured actual = capture.Measurements("migratekit.migration.downtime.actual").Single();
        Assert.AreEqual(42.0, actual.Value);
        Assert.AreEqual("ms", actual.Unit);
    }

    [TestMethod]
    public async Task DeadlineAbort_SetsTheSpanStatusToErrorWithTheReason()
    {
        // The guest outruns a slow link forever; the deadline ends it.
        var hosts = new ScriptedLibvirt([ScriptedLibvirt.Poll(2, 500, 600, bpsMiB: 10, dirtyPagesPerSecond: 25600)], new JobStats()) { CompletesAfterScript = false };
        using var capture = new TelemetryCapture();

        MigrationReport report = await MigrateAsync(hosts, TimeSpan.FromMilliseconds(300));

        Assert.AreEqual(MigrationStatus.Aborted, report.Status, report.Reason);
        Assert.IsTrue(hosts.Aborted);
        Activity migration = capture.Spans("migratekit.migrate").Single();
        Assert.AreEqual(ActivityStatusCode.Error, migration.Status);
        Assert.AreEqual(report.Reason, migration.StatusDescription);
        Assert.Contains("deadline", migration.StatusDescription!);
        Assert.AreEqual("aborted", capture.Measurements("migratekit.migrations").Single().Tags["migratekit.status"]);
        Assert.IsEmpty(capture.Measurements("migratekit.downtime.actual"));
    }
}
