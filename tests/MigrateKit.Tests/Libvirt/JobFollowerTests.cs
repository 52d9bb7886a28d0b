using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class JobFollowerTests
{
    private const string Vm = "web1";
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(50);

    private readonly FakeTimeProvider _time = new();
    private readonly FakeHosts _hosts = new();
    private readonly TaskCompletionSource _migrate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _wake = new(0);
    private int _polls;
    private ResilientHost? _source;
    private IterationRecorder? _recorder;
    private LibvirtRunState? _run;
    private Task? _following;

    private LibvirtRunState Run => _run!;

    private IterationRecorder Recorder => _recorder!;

    [TestCleanup]
    public async Task EndTheCall()
    {
        _migrate.TrySetResult();
        if (_following is not null)
        {
            await _following.WaitAsync(TimeSpan.FromSeconds(20));
        }

        _recorder?.Dispose();
        _source?.Dispose();
        _wake.Dispose();
    }

    /// <summary>Starts following with every poll answered by <paramref name="stats"/>.</summary>
    private void Start(Func<int, JobStats> stats, TimeSpan? deadline = null, CancellationToken ct = default, ulong? xbzrleCache = null)
    {
        _hosts.SourceDomains[Vm] = DomainState.Running;
        _hosts.Stats = () => stats(Interlocked.Increment(ref _polls));
        var options = new LibvirtMigrationOptions
        {
            PollInterval = Interval,
            Deadline = deadline ?? TimeSpan.FromMinutes(10),
            ReconnectTimeout = TimeSpan.FromSeconds(2),
            TimeProvider = _time,
        };
        _source = new ResilientHost(_hosts, FakeHosts.Source, options.ReconnectTimeout, _time, NullLogger.Instance);
        _recorder = new IterationRecorder(new MigrationRoute(FakeHosts.Source, Vm, FakeHosts.Destination), options, null, NullLogger.Instance);
        _run = new LibvirtRunState(_time, TimeSpan.FromMilliseconds(300)) { XbzrleCache = xbzrleCache, MemoryBytes = 1UL << 30 };
        var forecaster = new JobForecaster(new DowntimeEstimator(), options.MaxDowntime, null, null, deltas: xbzrleCache is not null);
        var follower = new JobFollower(_source, Vm, options, forecaster, _recorder, _run, NullLogger.Instance);
        _following = follower.FollowAsync(_migrate.Task, _wake, ct);
    }

    private static JobStats NoJob(int poll) => new() { Type = DomainJobType.None };

    private int Calls(string call) => _hosts.Calls.Count(c => c == $"{FakeHosts.Source} {call}");

    [TestMethod]
    public void FollowAsync_PollsOncePerIntervalOfTheInjectedClock()
    {
        Start(NoJob);
        Thread.Sleep(50);
        _time.Advance(Interval - TimeSpan.FromMilliseconds(1));
        Thread.Sleep(50);
        Assert.AreEqual(0, Volatile.Read(ref _polls), "polled before the interval passed");

        _time.Advance(TimeSpan.FromMilliseconds(1));
        FakeClock.WaitFor(() => Volatile.Read(ref _polls) == 1, "the first poll");
        _time.Advance(Interval);
        FakeClock.WaitFor(() => Volatile.Read(ref _polls) == 2, "the second poll");
    }

    [TestMethod]
    public void FollowAsync_AnIterationEvent_PollsWithoutWaitingForTheInterval()
    {
        Start(NoJob);

        _wake.Release();

        FakeClock.WaitFor(() => Volatile.Read(ref _polls) == 1, "a poll woken by the event");
    }

    [TestMethod]
    public async Task FollowAsync_CallReturns_EndsTheFollowing()
    {
        Start(NoJob);

        _migrate.SetResult();

        await _following!.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.AreEqual(MigrationPhase.Handshake, Run.Phase, "no poll saw a job");
    }

    [TestMethod]
    public void FollowAsync_TheJobShowsUp_SetsQemusLimitOnceAndMovesToSend()
    {
        Start(_ => new JobStats { Type = DomainJobType.Unbounded, MemoryIteration = 1 });

        _time.AdvanceUntil(() => Volatile.Read(ref _polls) >= 3, Interval, "three polls");

        Assert.AreEqual(1, Calls("downtime 300"));
        Assert.AreEqual(MigrationPhase.Send, Run.Phase);
    }

    [TestMethod]
    public void FollowAsync_Cancelled_AbortsAtOnceAndAgainEveryTwoSeconds()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Start(NoJob, ct: cts.Token);
        FakeClock.WaitFor(() => Calls("abort") == 1, "the first abort");
        Assert.AreEqual("cancelled by the caller", Run.AbortReason);

        _time.AdvanceUntil(() => Volatile.Read(ref _polls) >= 30, Interval, "polls for 1.5 s");
        Assert.AreEqual(1, Calls("abort"), "re-sent before the retry interval");

        _time.AdvanceUntil(() => Calls("abort") == 2, Interval, "the abort re-sent");
        Assert.IsTrue(Run.Elapsed >= JobFollower.AbortRetryInterval, $"re-sent after {Run.Elapsed}");
    }

    [TestMethod]
    public void FollowAsync_DeadlinePassesWithoutAForecast_Aborts()
    {
        Start(NoJob, deadline: TimeSpan.FromSeconds(1));

        _time.AdvanceUntil(() => Calls("abort") == 1, Interval, "the deadline abort");

        Assert.AreEqual("deadline of 1.0 s reached", Run.AbortReason);
        Assert.IsTrue(Run.Elapsed >= TimeSpan.FromSeconds(1) + Interval + Interval, $"aborted after {Run.Elapsed}");
    }

    [TestMethod]
    public void FollowAsync_StopAndCopySeen_MarksTheSwitchoverAndForecastsNothing()
    {
        Start(_ => new JobStats { Type = DomainJobType.Unbounded, MemoryIteration = 2, MemoryRemaining = 0, MemoryTotal = 1UL << 30, MemoryBps = 1UL << 30 });

        _time.AdvanceUntil(() => Run.SwitchoverSeen, Interval, "the stop-and-copy");

        Assert.AreEqual(MigrationPhase.Switchover, Run.Phase);
        Assert.IsNull(Recorder.LastForecast);
        Assert.IsNull(Recorder.LastStats);
    }

    [TestMethod]
    public void FollowAsync_AfterTheStopAndCopyIsSeen_PollsNoMore_ButTheDeadlineStillAborts()
    {
        // An iteration that sent the whole dirty set reads as the stop-and-copy too; if QEMU then
        // goes on iterating, the call must not run past the deadline.
        Start(_ => new JobStats { Type = DomainJobType.Unbounded, MemoryIteration = 2, MemoryRemaining = 0, MemoryTotal = 1UL << 30, MemoryBps = 1UL << 30 }, deadline: TimeSpan.FromSeconds(1));
        _time.AdvanceUntil(() => Run.SwitchoverSeen, Interval, "the stop-and-copy");
        int polls = Volatile.Read(ref _polls);

        _time.AdvanceUntil(() => Calls("abort") == 1, Interval, "the deadline abort");

        Assert.AreEqual("deadline of 1.0 s reached", Run.AbortReason);
        Assert.AreEqual(polls, Volatile.Read(ref _polls), "no poll between the stop-and-copy and the abort");
        Assert.IsFalse(_following!.IsCompleted, "the call decides the outcome");
    }

    [TestMethod]
    public void FollowAsync_ANewDirtySync_RecordsTheIterationItEnded()
    {
        Start(poll => poll < 3 ? ScriptedLibvirt.Poll(1, 900, 124) : ScriptedLibvirt.Poll(2, 20, 1030));

        _time.AdvanceUntil(() => Recorder.Rounds.Count == 1, Interval, "a row for iteration 1");

        RoundReport row = Recorder.Rounds[0];
        Assert.AreEqual(1, row.Round);
        Assert.AreEqual(1030UL << 20, row.BytesSent);
        Assert.IsNotNull(Recorder.LastForecast);
    }

    [TestMethod]
    public void FollowAsync_XbzrleMissingItsCache_GrowsItOnce_AndRecordsWhy()
    {
        // Every poll a new iteration of 10,000 pages: the first two without deltas, then 60 % cache misses each.
        Start(poll => new JobStats
        {
            Type = DomainJobType.Unbounded,
            MemoryIteration = (ulong)poll,
            MemoryRemaining = 40UL << 20,
            MemoryTotal = 1UL << 30,
            MemoryBps = 100UL << 20,
            MemoryDirtyRate = 10000,
            MemoryPageSize = 4096,
            MemoryNormal = (ulong)poll * 10000 - (ulong)Math.Max(0, poll - 2) * 4000,
            MemoryNormalBytes = ((ulong)poll * 10000 - (ulong)Math.Max(0, poll - 2) * 4000) * 4096,
            CompressionPages = (ulong)Math.Max(0, poll - 2) * 4000,
            CompressionBytes = (ulong)Math.Max(0, poll - 2) * 4000 * 20,
            CompressionCacheMisses = (ulong)Math.Max(0, poll - 1) * 6000,
        }, xbzrleCache: 64UL << 20);

        _time.AdvanceUntil(() => Calls("xbzrle-cache 128 MiB") == 1, Interval, "the cache grown");
        _time.AdvanceUntil(() => Volatile.Read(ref _polls) >= 12, Interval, "more iterations");

        Assert.AreEqual(1, _hosts.Calls.Count(c => c.Contains("xbzrle-cache", StringComparison.Ordinal)), "grown once: a bigger cache would not fit a working set it already covers twice");
        Assert.AreEqual(128UL << 20, Run.XbzrleCache);
        MigrationDecision grown = Recorder.Report(new MigrationOutcome { Status = MigrationStatus.Aborted, Reason = "test" }, false, Run.Elapsed, TimeSpan.FromMilliseconds(300))
            .Decisions.Single(d => d.Action == "xbzrle-cache");
        StringAssert.Contains(grown.Reason, "64 MiB -> 128 MiB");
        StringAssert.Contains(grown.Reason, "60%");
    }
}
