using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Tracking;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// <see cref="MigrationPlanner.ObserveAsync"/> on a tracker whose guest writes a hot set at every
/// moment and sweeps a cold set at a fixed speed, on a fake clock.
/// </summary>
[TestClass]
public sealed class MigrationPlannerTests
{
    private const ulong Page = GuestMemoryLayout.PageSize;

    [TestMethod]
    public async Task Observe_BuildsTheCumulativeDistinctCurve_ItSaturatesAtTheWorkingSet_AndTheHotSetIsWhatEveryWindowWrote()
    {
        var time = new FakeTimeProvider();
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 1024 * Page)]);

        // 10 hot pages always; a sweep of 300 pages at 1000 pages/s (saturates after 0.3 s).
        using var tracker = new SweepTracker(memory, time, hot: 10, sweepStart: 100, sweepPages: 300, pagesPerSecond: 1000);
        var planner = new MigrationPlanner(new MigrationPlannerOptions { TimeProvider = time });

        DirtyObservation seen = await time.AdvanceUntilDoneAsync(planner.ObserveAsync(tracker), TimeSpan.FromMilliseconds(10));

        long[] pages = [.. seen.Curve.Points.Select(p => p.DistinctPages)];
        CollectionAssert.AreEqual(new long[] { 110, 210, 310, 310, 310, 310 }, pages);
        CollectionAssert.AreEqual(new[] { 0.1, 0.2, 0.5, 1, 2, 5 }, seen.Curve.Points.Select(p => Math.Round(p.Elapsed.TotalSeconds, 2)).ToArray());
        Assert.AreEqual(10, seen.Curve.HotPages);
        Assert.AreEqual(1024 * Page, seen.MemoryBytes);
        Assert.AreEqual("sweep", seen.TrackerKind);
        Assert.IsFalse(tracker.IsTracking, "tracking is stopped after the observation");
        Assert.AreEqual(6, tracker.Harvests);
    }

    [TestMethod]
    public async Task Observe_ATrackerAlreadyTracking_IsRefusedBeforeAnythingStarts()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 64 * Page)]);
        using var tracker = new SweepTracker(memory, TimeProvider.System, 1, 2, 2, 1);
        tracker.Start();

        var refused = await Assert.ThrowsExactlyAsync<ObservationRefusedException>(() => new MigrationPlanner().ObserveAsync(tracker));

        StringAssert.Contains(refused.Message, "already tracking");
        Assert.AreEqual(0, tracker.Harvests);
        Assert.IsTrue(tracker.IsTracking, "the other user's tracking is left alone");
    }

    [TestMethod]
    public async Task Observe_TheSameMemoryTwiceAtOnce_RefusesTheSecond()
    {
        var time = new FakeTimeProvider();
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 64 * Page)]);
        using var first = new SweepTracker(memory, time, 1, 2, 2, 1);
        using var second = new SweepTracker(memory, time, 1, 2, 2, 1);
        var planner = new MigrationPlanner(new MigrationPlannerOptions { TimeProvider = time });
        Task<DirtyObservation> observing = planner.ObserveAsync(first);

        var refused = await Assert.ThrowsExactlyAsync<ObservationRefusedException>(() => planner.ObserveAsync(second));

        StringAssert.Contains(refused.Message, "already being observed");
        await time.AdvanceUntilDoneAsync(observing, TimeSpan.FromMilliseconds(50));
        Assert.IsFalse(second.IsTracking);

        // Once the first is done, the memory may be observed again.
        DirtyObservation again = await time.AdvanceUntilDoneAsync(planner.ObserveAsync(second), TimeSpan.FromMilliseconds(50));
        Assert.HasCount(6, again.Curve.Points);
    }

    [TestMethod]
    public async Task Observe_MemoryAnotherTrackerHolds_IsRefusedNamingIt()
    {
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 64 * Page)]);
        using var tracker = new SweepTracker(memory, TimeProvider.System, 1, 2, 2, 1) { StartFailure = new DirtyTrackingException("UFFDIO_REGISTER", 16) };

        var refused = await Assert.ThrowsExactlyAsync<ObservationRefusedException>(() => new MigrationPlanner().ObserveAsync(tracker));

        StringAssert.Contains(refused.Message, "already tracked by another");
        Assert.IsInstanceOfType<DirtyTrackingException>(refused.InnerException);
    }

    [TestMethod]
    public async Task Observe_Cancelled_StopsTracking()
    {
        var time = new FakeTimeProvider();
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 64 * Page)]);
        using var tracker = new SweepTracker(memory, time, 1, 2, 2, 1);
        using var cts = new CancellationTokenSource();
        Task<DirtyObservation> observing = new MigrationPlanner(new MigrationPlannerOptions { TimeProvider = time }).ObserveAsync(tracker, cts.Token);
        time.Advance(TimeSpan.FromMilliseconds(300));
        await cts.CancelAsync();

        await Assert.ThrowsAsync<OperationCanceledException>(() => observing);

        Assert.IsFalse(tracker.IsTracking);
    }

    [TestMethod]
    public async Task Observe_AHarvestThatFails_StopsTrackingAndThrowsItsError()
    {
        var time = new FakeTimeProvider();
        using var memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 64 * Page)]);
        using var tracker = new SweepTracker(memory, time, 1, 2, 2, 1) { FailAt = 3 };

        Task<DirtyObservation> observing = new MigrationPlanner(new MigrationPlannerOptions { TimeProvider = time }).ObserveAsync(tracker);

        await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => time.AdvanceUntilDoneAsync(observing, TimeSpan.FromMilliseconds(10)));
        Assert.IsFalse(tracker.IsTracking);
    }

    [TestMethod]
    [DataRow(new double[0], "at least one")]
    [DataRow(new[] { 0.5, 0.2 }, "increasing")]
    [DataRow(new[] { 0.0 }, "positive")]
    [DataRow(new[] { 700.0 }, "within 10 minutes")]
    public void BadMarks_AreRejectedNamingTheProblem(double[] seconds, string problem)
    {
        var options = new MigrationPlannerOptions { Marks = [.. seconds.Select(TimeSpan.FromSeconds)] };

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new MigrationPlanner(options)).Message, problem);
    }

    /// <summary>A guest that writes pages 0 to hot-1 all the time and sweeps [sweepStart, sweepStart + sweepPages) at a fixed speed, once round.</summary>
    private sealed class SweepTracker(GuestMemoryLayout memory, TimeProvider time, ulong hot, ulong sweepStart, ulong sweepPages, double pagesPerSecond) : IDirtyPageTracker
    {
        private long _started;
        private double _swept;

        public IReadOnlyList<GuestMemoryRegion> Regions => memory.Regions;

        public bool IsTracking { get; private set; }

        public string Kind => "sweep";

        public int Harvests { get; private set; }

        public int FailAt { get; init; } = int.MaxValue;

        public Exception? StartFailure { get; init; }

        public void Start()
        {
            if (StartFailure is not null)
            {
                throw StartFailure;
            }

            IsTracking = true;
            _started = time.GetTimestamp();
            _swept = 0;
        }

        public HarvestResult Harvest(IReadOnlyList<DirtyBitmap> into)
        {
            if (++Harvests == FailAt)
            {
                throw new InvalidOperationException("harvest failed");
            }

            into[0].SetRange(0, hot);
            double now = time.GetElapsedTime(_started).TotalSeconds * pagesPerSecond;
            for (double p = Math.Floor(_swept); p < Math.Min(Math.Floor(now), _swept + sweepPages); p++)
            {
                into[0].Set(sweepStart + ((ulong)p % sweepPages));
            }

            _swept = Math.Floor(now);
            return new HarvestResult(into[0].Count(), TimeSpan.FromMilliseconds(1));
        }

        public void Stop() => IsTracking = false;

        public void Dispose() => Stop();
    }
}
