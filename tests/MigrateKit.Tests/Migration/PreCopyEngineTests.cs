using System;
using System.IO.Pipelines;
using System.Linq;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;
using Moq;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// PreCopyEngine against a Moq'd source over real memory, a scripted tracker, and a real
/// MigrationReceiver over an in-memory connection.
/// </summary>
[TestClass]
public sealed class PreCopyEngineTests
{
    private const ulong Wire = EngineHarness.PageWireBytes;

    private static readonly (int, ulong)[] HotPages = [(0, 5), (0, 6), (1, 3)];

    private static void AssertSameMemory(GuestMemoryLayout expected, GuestMemoryLayout actual)
    {
        Assert.HasCount(expected.Regions.Count, actual.Regions);
        for (int r = 0; r < expected.Regions.Count; r++)
        {
            GuestMemoryRegion a = expected.Regions[r];
            GuestMemoryRegion b = actual.Regions[r];
            Assert.AreEqual(a.Size, b.Size);
            for (ulong p = 0; p < a.PageCount; p++)
            {
                Assert.IsTrue(a.GetPage(p).SequenceEqual(b.GetPage(p)), $"region {r} page {p} differs");
            }
        }
    }

    [TestMethod]
    public async Task Completed_CopiesMemoryByteForByte_AndRestoresTheSwitchoverState()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.IsNull(report.Reason);
        Assert.IsNull(report.Error);
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);
        Assert.IsNotNull(h.Target);
        Assert.AreSame(h.Target, received.Target);
        Assert.IsTrue(h.Target.Started);
        Assert.IsFalse(h.Target.Disposed);
        Assert.AreEqual("vm-under-test", h.Target.Hello.SourceName);
        Assert.AreEqual(2, h.Target.Hello.VcpuCount);

        // The device state saved during the switchover (not the calibration one) is restored.
        Assert.AreSequenceEqual(EngineHarness.FinalState, h.Target.RestoredState!);

        AssertSameMemory(h.Memory, h.Target.Memory);
        Assert.IsTrue(report.DigestsMatched);
        Assert.IsTrue(report.SourceMemoryVerified);
        Assert.AreEqual(h.Memory.TotalSize, report.MemoryBytes);
        Assert.AreEqual(received.PagesReceived, report.PagesSent);
        Assert.AreEqual(received.Rounds, report.Rounds);
        Assert.AreEqual((ulong)received.BytesReceived, report.BytesSent);
    }

    [TestMethod]
    public async Task ADestinationWhoseResumeCostOverflowsTheForecast_FailsTheHandshake_AndTheSourceRuns()
    {
        // It failed in mid-harvest with "TimeSpan overflowed because the duration is too long".
        await using var h = new EngineHarness(EngineHarness.Converging);
        h.ConfigureTarget = t => t.ResumeCost = TimeSpan.MaxValue;
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual(MigrationPhase.Handshake, report.FailedPhase);
        StringAssert.Contains(report.Reason, "EstimateResumeCost returned");
        Assert.AreEqual(MigrationStatus.Failed, received.Status);
        Assert.IsFalse(h.Paused, "the source runs");
        Assert.IsTrue(h.Target!.Disposed);
    }

    [TestMethod]
    public async Task AReadOnlyFinalHarvest_IsTimedAfterTheStart_AndPricesTheSwitchoversHarvest()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        h.Tracker.ReadOnlyFinal = true;
        h.Tracker.FinalHarvestTime = TimeSpan.FromMilliseconds(0.25);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        // The probe right after the start, then the rounds' harvests; the switchover's is the final kind.
        Assert.AreSequenceEqual(
            new[] { "Pause", "SaveDeviceState", "Resume", "Start", "HarvestFinal", "Harvest", "Harvest", "Harvest", "Pause", "HarvestFinal", "SaveDeviceState", "Stop" },
            h.Calls);
        Assert.AreEqual(0.25, report.PredictedDowntimeParts!.HarvestMs, 1e-9, "priced at the probe (1 ms per rounds' harvest otherwise)");
        AssertSameMemory(h.Memory, h.Target!.Memory);
        Assert.IsTrue(report.DigestsMatched);
    }

    [TestMethod]
    public async Task Completed_CallsTheSourceInOrder_AndLeavesItPaused()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        // A calibration pause (pause cost, device-state size) before tracking; then three rounds;
        // then exactly one more pause for the switchover, with the final harvest while paused.
        // The source is not resumed after a completed migration: the destination runs the VM.
        Assert.AreSequenceEqual(
            new[] { "Pause", "SaveDeviceState", "Resume", "Start", "Harvest", "Harvest", "Harvest", "Pause", "Harvest", "SaveDeviceState", "Stop" },
            h.Calls);
        h.Source.Verify(s => s.Pause(), Times.Exactly(2));
        h.Source.Verify(s => s.Resume(), Times.Once());
        h.Source.Verify(s => s.SetThrottlePercent(It.IsAny<int>()), Times.Never());
        Assert.IsTrue(h.Paused);
        Assert.IsFalse(h.Tracker.IsTracking);
        Assert.AreEqual(0, report.MaxThrottlePercent);
    }

    [TestMethod]
    public async Task HotPages_AreDeferredToTheSwitchover()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        // Round 0: every populated non-zero page (50 + 12), the never-touched ones as zero runs (14 + 4).
        // Round 1: the 30 warm pages and the 3 hot ones of harvest 0.
        // Round 2: the 28 warm pages of harvest 1 and one zeroed page, but not the 3 hot pages:
        //          dirty in 2 of the last 4 rounds, they are held back.
        // Switchover: the 3 hot pages only.
        Assert.AreEqual(3, report.Rounds);
        Assert.HasCount(4, report.RoundsDetail);
        Assert.AreSequenceEqual(new ulong[] { 62, 33, 28, 3 }, report.RoundsDetail.Select(r => r.PagesSent).ToArray());
        Assert.AreSequenceEqual(new ulong[] { 18, 0, 1, 0 }, report.RoundsDetail.Select(r => r.ZeroPages).ToArray());
        Assert.AreSequenceEqual(new ulong[] { 33, 32, 3, 3 }, report.RoundsDetail.Select(r => r.DirtyPages).ToArray());
        Assert.AreSequenceEqual(new ulong[] { 0, 3, 3, 3 }, report.RoundsDetail.Select(r => r.HotPages).ToArray());
        Assert.AreSequenceEqual(new ulong[] { 0, 3, 3, 3 }, report.RoundsDetail.Select(r => r.DeferredPages).ToArray());
        Assert.AreSequenceEqual(new[] { RoundAction.Continue, RoundAction.Defer, RoundAction.Switchover, RoundAction.Switchover }, report.RoundsDetail.Select(r => r.Action).ToArray());
        Assert.AreSequenceEqual(new[] { 0, 1, 2, 3 }, report.RoundsDetail.Select(r => r.Round).ToArray());

        Assert.AreEqual(3UL, report.HotPagesDeferred);
        Assert.AreEqual(3UL, report.SwitchoverPages);
        Assert.AreEqual(62UL + 33 + 28 + 3, report.PagesSent);
        Assert.AreEqual(report.PagesSent, received.PagesReceived);
        Assert.AreEqual(18UL + 1, received.ZeroPagesReceived);

        // The rows' bytes add up to all but the Hello (the switchover row includes state, digests and Complete).
        ulong rows = report.RoundsDetail.Aggregate(0UL, (sum, r) => sum + r.BytesSent);
        Assert.IsLessThan(report.BytesSent, rows);
        Assert.IsLessThan(1024UL, report.BytesSent - rows);
    }

    [TestMethod]
    public async Task EachRow_CarriesItsHarvest_TheSwitchoversBeingTheFinalOne()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        // The harness's tracker reports 1 ms for every pre-copy harvest; the final one is timed
        // from the pause, as the downtime's harvest part is.
        Assert.AreSequenceEqual(new[] { 1.0, 1.0, 1.0 }, report.RoundsDetail.Take(report.Rounds).Select(r => r.HarvestMs).ToArray());
        Assert.AreEqual(report.ActualDowntimeParts!.HarvestMs, report.RoundsDetail[^1].HarvestMs);
        Assert.IsGreaterThan(0.0, report.RoundsDetail[^1].HarvestMs);
    }

    [TestMethod]
    public async Task Progress_IsReportedOncePerRound_WithTheForecast()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        var progress = new ListProgress<MigrationProgress>();
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options(), progress);
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        MigrationProgress[] p = progress.Items.ToArray();
        Assert.HasCount(report.Rounds, p);
        Assert.AreSequenceEqual(new[] { 0, 1, 2 }, p.Select(x => x.Round).ToArray());
        Assert.AreSequenceEqual(new[] { MigrationAction.Continue, MigrationAction.Defer, MigrationAction.SwitchOver }, p.Select(x => x.Action).ToArray());
        Assert.AreSequenceEqual(new ulong[] { 33, 32, 3 }, p.Select(x => x.DirtyPages).ToArray());
        Assert.AreSequenceEqual(new ulong[] { 0, 3, 3 }, p.Select(x => x.DeferredPages).ToArray());
        Assert.AreSequenceEqual(new ulong[] { 0, 3, 3 }, p.Select(x => x.HotPages).ToArray());
        Assert.IsTrue(p.Zip(p.Skip(1)).All(pair => pair.First.BytesSent < pair.Second.BytesSent), "bytes sent grow from round to round");
        Assert.IsLessThan(report.BytesSent, p[^1].BytesSent);

        // What a switchover would send, in wire bytes per page, with the deferred hot pages apart.
        Assert.AreEqual(33 * Wire, p[0].Forecast.PendingBytes);
        Assert.AreEqual(33 * Wire, p[0].RemainingBytes);
        Assert.AreEqual(0UL, p[0].Forecast.DeferredBytes);
        Assert.AreEqual(32 * Wire, p[1].Forecast.PendingBytes);
        Assert.AreEqual(3 * Wire, p[1].Forecast.DeferredBytes);
        Assert.AreEqual(29 * Wire, p[1].Forecast.NextRoundBytes);

        // The fixed costs are measured: the source's pause latency (0 here) and the destination's resume estimate.
        foreach (MigrationProgress x in p)
        {
            Assert.AreEqual(TimeSpan.Zero, x.Forecast.Breakdown.Pause);
            Assert.AreEqual(TimeSpan.FromMilliseconds(5), x.Forecast.Breakdown.Resume);
            Assert.IsLessThanOrEqualTo(1024d * 1024, x.BandwidthBytesPerSecond, "the forecast never assumes more than the limit");
            Assert.AreEqual(x.Forecast.BandwidthBytesPerSecond, x.BandwidthBytesPerSecond);
            Assert.AreEqual(0, x.ThrottlePercent);
        }

        // Rounds 0 and 1 were over the 100 ms limit; round 2 fit, and that forecast is the report's prediction.
        Assert.IsGreaterThan(TimeSpan.FromMilliseconds(100), p[0].Forecast.PredictedDowntime);
        Assert.IsGreaterThan(TimeSpan.FromMilliseconds(100), p[1].Forecast.PredictedDowntime);
        Assert.IsLessThanOrEqualTo(TimeSpan.FromMilliseconds(100), p[2].Forecast.PredictedDowntime);
        Assert.AreEqual(p[2].Forecast.PredictedDowntime.TotalMilliseconds, report.PredictedDowntimeMs);
        Assert.AreEqual(p[2].Forecast.PredictedDowntime.TotalMilliseconds, report.RoundsDetail[2].PredictedDowntimeMs);
    }

    [TestMethod]
    public async Task Report_SerializesToJson_WithPredictedAndActualDowntime()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.IsNotNull(report.DowntimeMs);
        Assert.IsGreaterThanOrEqualTo(0d, report.DowntimeMs.Value);
        Assert.IsNotNull(report.PredictedDowntimeMs);
        Assert.IsNotNull(report.PredictionErrorPercent);
        Assert.AreEqual(received.ResumeDuration!.Value.TotalMilliseconds, report.ResumeMs);

        string json = report.ToJson();
        using (JsonDocument doc = JsonDocument.Parse(json))
        {
            JsonElement root = doc.RootElement;
            Assert.AreEqual("completed", root.GetProperty("status").GetString());
            Assert.AreEqual(report.DowntimeMs.Value, root.GetProperty("downtimeMs").GetDouble());
            Assert.AreEqual(report.PredictedDowntimeMs.Value, root.GetProperty("predictedDowntimeMs").GetDouble());
            Assert.AreEqual(EngineHarness.Options().MaxDowntime.TotalMilliseconds, root.GetProperty("downtimeLimitMs").GetDouble());
            Assert.AreEqual(3, root.GetProperty("rounds").GetInt32());
            Assert.AreEqual(4, root.GetProperty("roundsDetail").GetArrayLength());
            Assert.AreEqual("switchover", root.GetProperty("roundsDetail")[3].GetProperty("action").GetString());
            Assert.IsFalse(root.TryGetProperty("reason", out _), "nulls are left out");
            Assert.IsFalse(root.TryGetProperty("error", out _), "the exception is not serialized");
            Assert.IsFalse(root.TryGetProperty("Status", out _), "camelCase");
        }

        Assert.Contains("\n", json, "indented");
        MigrationReport back = MigrationReport.FromJson(json);
        Assert.AreEqual(report.Status, back.Status);
        Assert.AreEqual(report.DowntimeMs, back.DowntimeMs);
        Assert.AreEqual(report.PredictedDowntimeMs, back.PredictedDowntimeMs);
        Assert.AreEqual(report.BytesSent, back.BytesSent);
        Assert.AreEqual(report.HotPagesDeferred, back.HotPagesDeferred);
        Assert.AreSequenceEqual(report.RoundsDetail.Select(r => r.PagesSent).ToArray(), back.RoundsDetail.Select(r => r.PagesSent).ToArray());
        Assert.AreSequenceEqual(report.RoundsDetail.Select(r => r.Verdict).ToArray(), back.RoundsDetail.Select(r => r.Verdict).ToArray());
    }

    [TestMethod]
    public async Task PolicyAbort_LeavesTheSourceRunning_AndTellsTheDestination()
    {
        // A one-second pause alone overruns the 100 ms limit: no round can help.
        // The tracker is kept running here (the call sequence ends with the harvest); PreCopyRunTests covers the default stop.
        await using var h = new EngineHarness(EngineHarness.Converging) { PauseLatency = _ => TimeSpan.FromSeconds(1) };
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options(EngineHarness.KeepingTracking));

        Assert.AreEqual(MigrationStatus.Aborted, report.Status);
        Assert.IsNotNull(report.Reason);
        Assert.Contains("fixed costs", report.Reason);
        Assert.IsNull(report.FailedPhase);
        Assert.AreEqual(1, report.Rounds);
        Assert.AreEqual(RoundAction.Abort, report.RoundsDetail.Single().Action);
        Assert.IsNull(report.DowntimeMs);

        Assert.AreSequenceEqual(new[] { "Pause", "SaveDeviceState", "Resume", "Start", "Harvest" }, h.Calls);
        Assert.IsFalse(h.Paused);
        h.Source.Verify(s => s.SetThrottlePercent(It.IsAny<int>()), Times.Never());

        Assert.AreEqual(MigrationStatus.Aborted, received.Status);
        Assert.IsNotNull(received.Reason);
        Assert.Contains("fixed costs", received.Reason);
        Assert.IsTrue(h.Target!.Disposed);
        Assert.IsFalse(h.Target.Started);
    }

    [TestMethod]
    public async Task Throttle_FollowsThePolicy_AndIsLiftedWhenAborted()
    {
        await using var h = new EngineHarness(EngineHarness.AllDirty);
        var progress = new ListProgress<MigrationProgress>();
        MigrationOptions options = EngineHarness.Options(o => new MigrationOptions
        {
            MaxDowntime = o.MaxDowntime,
            Encodings = o.Encodings,
            BandwidthLimit = o.BandwidthLimit,
            AllowThrottling = true,
            MaxThrottlePercent = 60,
            MaxRounds = 3,
        });
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(options, progress);

        // Every page is dirtied every round: it never fits, and the third round is the last.
        Assert.AreEqual(MigrationStatus.Aborted, report.Status);
        Assert.Contains("3 rounds", report.Reason!);
        Assert.AreEqual(MigrationStatus.Aborted, received.Status);
        Assert.IsFalse(h.Paused);

        // Each Throttle decision was applied, in order, with the proportional value computed from
        // the round's ratio; the abort then set the guest back to full speed.
        MigrationProgress[] p = progress.Items.ToArray();
        Assert.HasCount(3, p);
        Assert.AreEqual(MigrationAction.Throttle, p[0].Action, $"ratio {p[0].Forecast.ConvergenceRatio}");
        int current = 0;
        var expected = new System.Collections.Generic.List<int>();
        foreach (MigrationProgress x in p.Where(x => x.Action == MigrationAction.Throttle))
        {
            double speed = (100 - current) / 100.0 * (options.ConvergenceTarget / x.Forecast.ConvergenceRatio);
            int wanted = Math.Clamp((int)Math.Ceiling(100 * (1 - speed)), current + 1, 60);
            Assert.AreEqual(wanted, x.ThrottlePercent);
            expected.Add(wanted);
            current = wanted;
        }

        expected.Add(0);
        Assert.AreSequenceEqual(expected.ToArray(), h.Throttles);
        Assert.IsTrue(h.Throttles.SkipLast(1).All(t => t is > 0 and <= 60));
        Assert.AreEqual(h.Throttles.Max(), report.MaxThrottlePercent);
        Assert.AreEqual(MigrationAction.Abort, p[^1].Action);
        Assert.AreEqual(report.RoundsDetail[1].ThrottlePercent, p[0].ThrottlePercent, "round 1 ran with round 0's throttle");
    }

    [TestMethod]
    public async Task ThrottlingDisallowed_NeverTouchesTheThrottle()
    {
        await using var h = new EngineHarness(EngineHarness.AllDirty);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options(o => new MigrationOptions
        {
            MaxDowntime = o.MaxDowntime,
            Encodings = o.Encodings,
            BandwidthLimit = o.BandwidthLimit,
            AllowThrottling = false,
            MaxRounds = 3,
        }));

        Assert.AreEqual(MigrationStatus.Aborted, report.Status);
        Assert.Contains("3 rounds", report.Reason!);
        Assert.AreEqual(3, report.Rounds);
        h.Source.Verify(s => s.SetThrottlePercent(It.IsAny<int>()), Times.Never());
        Assert.AreEqual(0, report.MaxThrottlePercent);
        Assert.IsTrue(report.RoundsDetail.All(r => r.Action is RoundAction.Continue or RoundAction.Defer or RoundAction.Abort));
    }

    [TestMethod]
    public async Task MaxBytes_Aborts()
    {
        await using var h = new EngineHarness(EngineHarness.AllDirty);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options(o => new MigrationOptions
        {
            MaxDowntime = o.MaxDowntime,
            Encodings = o.Encodings,
            BandwidthLimit = o.BandwidthLimit,
            AllowThrottling = false,
            MaxBytesFactor = 1.5,
            DeferBudgetFraction = 0,
        }));

        // Round 0 sends the 80 pages once (1x memory); after round 1 it is 2x, over 1.5x.
        Assert.AreEqual(MigrationStatus.Aborted, report.Status);
        Assert.Contains("x the guest memory", report.Reason!);
        Assert.AreEqual(2, report.Rounds);
        Assert.IsGreaterThanOrEqualTo((ulong)(1.5 * h.Memory.TotalSize), report.BytesSent);
        Assert.IsFalse(h.Paused);
    }

    [TestMethod]
    public async Task DestinationFailureAtSwitchover_ResumesTheSource_AndKeepsTheSwitchoverPagesPending()
    {
        await using var h = new EngineHarness(EngineHarness.Converging)
        {
            ConfigureTarget = t => t.RestoreFailure = new InvalidOperationException("no vCPU for you"),
        };

        // Kept for a resume; PreCopyRunTests covers the default, which stops the tracker.
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options(EngineHarness.KeepingTracking));

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual(MigrationPhase.Switchover, report.FailedPhase);
        MigrationException error = Assert.IsInstanceOfType<MigrationException>(report.Error);
        Assert.AreEqual(MigrationPhase.Switchover, error.Phase);
        Assert.Contains("DestinationFailure", error.Message);
        Assert.Contains("no vCPU for you", report.Reason!);

        // Paused for the switchover, then resumed: the source runs on; the tracker too.
        Assert.AreSequenceEqual(
            new[] { "Pause", "SaveDeviceState", "Resume", "Start", "Harvest", "Harvest", "Harvest", "Pause", "Harvest", "SaveDeviceState", "Resume" },
            h.Calls);
        Assert.IsFalse(h.Paused);
        Assert.IsTrue(h.Tracker.IsTracking);

        // The hot pages were taken from the tracker and sent, but never confirmed: pending again.
        Assert.AreSequenceEqual(HotPages, h.PendingPages());

        Assert.AreEqual(MigrationStatus.Failed, received.Status);
        Assert.IsTrue(h.Target!.Disposed);
        Assert.IsFalse(h.Target.Started);
    }

    [TestMethod]
    public async Task DeviceStateFailureAtSwitchover_ResumesTheSource_AndKeepsTheSwitchoverPagesPending()
    {
        await using var h = new EngineHarness(EngineHarness.Converging)
        {
            SaveDeviceState = n => n == 0 ? EngineHarness.CalibrationState : throw new InvalidOperationException("device busy"),
        };
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual(MigrationPhase.Switchover, report.FailedPhase);
        Assert.IsInstanceOfType<InvalidOperationException>(report.Error!.InnerException);
        Assert.Contains("device busy", report.Reason!);
        Assert.IsFalse(h.Paused);
        h.Source.Verify(s => s.Resume(), Times.Exactly(2));

        // The hot pages' dirty bits were taken by the final harvest and their frames written, but
        // the switchover never completed: the destination may lack them, so they must be pending.
        Assert.AreSequenceEqual(HotPages, h.PendingPages());
        Assert.AreEqual(MigrationStatus.Aborted, received.Status);
    }

    [TestMethod]
    public async Task NoAckAfterComplete_LeavesTheSourcePaused_SoTheVmNeverRunsTwice()
    {
        // The destination resumes the VM but answers too late: the source cannot know whether
        // the VM runs there, so it must not resume it as well. The engine's clock is fake: the
        // destination holds its Ack back until the engine waits for it, moves the clock past the
        // response timeout, and answers once the engine has given up. There is no bandwidth limit
        // here: its pacing would wait on the fake clock too.
        TimeSpan responseTimeout = TimeSpan.FromMilliseconds(300);
        var clock = new AckWaitClock(responseTimeout);
        var migrating = new TaskCompletionSource<Task<MigrationReport>>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var h = new EngineHarness(EngineHarness.Converging)
        {
            ConfigureTarget = t => t.BeforeStart = () =>
            {
                Assert.IsTrue(clock.WaitingForAck.Wait(EngineHarness.Timeout), "the engine waits for the Ack");
                clock.Advance(responseTimeout);
                Assert.IsTrue(migrating.Task.Result.Wait(EngineHarness.Timeout), "the engine gave up");
            },
        };
        MigrationOptions options = EngineHarness.Options(o => new MigrationOptions
        {
            MaxDowntime = o.MaxDowntime,
            Encodings = o.Encodings,
            AllowThrottling = o.AllowThrottling,
            ResponseTimeout = responseTimeout,
            TimeProvider = clock,
        });
        (Task<MigrationReport> running, Task<ReceiveResult> receiving) = h.Start(options);
        migrating.SetResult(running);
        MigrationReport report = await running;
        await receiving;

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.IsTrue(report.OutcomeUnknown);
        Assert.Contains("stays paused", report.Reason!);

        // The phase was named twice ("Migration failed during Switchover: Migration failed during Switchover: …").
        Assert.AreEqual(1, System.Text.RegularExpressions.Regex.Count(report.Reason!, "Migration failed during"), report.Reason);
        Assert.IsTrue(h.Paused, "the source must stay paused");
        h.Source.Verify(s => s.Resume(), Times.Once()); // the calibration pause only
        Assert.IsTrue(h.Target!.Started, "the destination did resume the VM");
    }

    [TestMethod]
    public async Task CancelledAtSwitchover_ResumesTheSource_AndKeepsTheSwitchoverPagesPending()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        using var cts = new CancellationTokenSource();
        h.OnPause = n =>
        {
            if (n == 1)
            {
                cts.Cancel();
            }
        };

        (Task<MigrationReport> migrating, Task<ReceiveResult> receiving) = h.Start(EngineHarness.Options(), cancellationToken: cts.Token);
        await Assert.ThrowsAsync<OperationCanceledException>(() => migrating);

        Assert.IsFalse(h.Paused, "cancellation leaves the source running");
        h.Source.Verify(s => s.Pause(), Times.Exactly(2));
        h.Source.Verify(s => s.Resume(), Times.Exactly(2));
        Assert.AreSequenceEqual(HotPages, h.PendingPages());

        ReceiveResult received = await receiving;
        Assert.AreEqual(MigrationStatus.Aborted, received.Status);
        Assert.Contains("cancelled", received.Reason!);
    }

    [TestMethod]
    public async Task CancelledDuringPreCopy_LiftsTheThrottle_AndNeverPauses()
    {
        await using var h = new EngineHarness(EngineHarness.AllDirty);
        using var cts = new CancellationTokenSource();
        h.Tracker.BeforeHarvest = n =>
        {
            if (n == 1)
            {
                cts.Cancel();
            }
        };

        MigrationOptions options = EngineHarness.Options(o => new MigrationOptions { MaxDowntime = o.MaxDowntime, Encodings = o.Encodings, BandwidthLimit = o.BandwidthLimit, AllowThrottling = true });
        (Task<MigrationReport> migrating, Task<ReceiveResult> receiving) = h.Start(options, cancellationToken: cts.Token);
        await Assert.ThrowsAsync<OperationCanceledException>(() => migrating);

        // Only the calibration pause; the throttle set after round 0 is lifted.
        h.Source.Verify(s => s.Pause(), Times.Once());
        h.Source.Verify(s => s.Resume(), Times.Once());
        Assert.IsFalse(h.Paused);
        int[] throttles = h.Throttles;
        Assert.IsGreaterThanOrEqualTo(2, throttles.Length);
        Assert.IsGreaterThan(0, throttles[0]);
        Assert.AreEqual(0, throttles[^1]);
        Assert.AreEqual(2, h.Tracker.Harvests);

        ReceiveResult received = await receiving;
        Assert.AreEqual(MigrationStatus.Aborted, received.Status);
    }

    [TestMethod]
    public async Task TrackerFailure_FailsInTheHarvestPhase_AndLiftsTheThrottle()
    {
        await using var h = new EngineHarness(EngineHarness.AllDirty);
        h.Tracker.BeforeHarvest = n =>
        {
            if (n == 1)
            {
                throw new InvalidOperationException("dirty log gone");
            }
        };

        MigrationOptions options = EngineHarness.Options(o => new MigrationOptions { MaxDowntime = o.MaxDowntime, Encodings = o.Encodings, BandwidthLimit = o.BandwidthLimit, AllowThrottling = true });
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(options);

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual(MigrationPhase.Harvest, report.FailedPhase);
        MigrationException error = Assert.IsInstanceOfType<MigrationException>(report.Error);
        Assert.AreEqual(MigrationPhase.Harvest, error.Phase);
        Assert.IsInstanceOfType<InvalidOperationException>(error.InnerException);
        Assert.Contains("dirty log gone", report.Reason!);
        Assert.AreEqual(1, report.Rounds, "round 0 completed");

        Assert.IsFalse(h.Paused);
        int[] throttles = h.Throttles;
        Assert.IsGreaterThan(0, throttles[0]);
        Assert.AreEqual(0, throttles[^1]);
        Assert.AreEqual(MigrationStatus.Aborted, received.Status);
    }

    [TestMethod]
    public async Task DestinationRefusingTheHello_FailsTheHandshake_WithoutPausing()
    {
        await using var h = new EngineHarness(EngineHarness.Converging)
        {
            // The destination builds a VM with a smaller region 1: it refuses the source's layout.
            CreateTarget = hello => new TestTarget(hello, [hello.Regions[0], new GuestMemoryRegionSpec(hello.Regions[1].GuestPhysicalAddress, GuestMemoryLayout.PageSize)]),
        };
        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());

        Assert.AreEqual(MigrationStatus.Failed, report.Status);
        Assert.AreEqual(MigrationPhase.Handshake, report.FailedPhase);
        Assert.Contains("does not match", report.Reason!);
        Assert.IsEmpty(h.Calls);
        Assert.AreEqual(0, report.Rounds);
        Assert.AreEqual(MigrationStatus.Failed, received.Status);
    }

    [TestMethod]
    public async Task MigrateAsync_RefusesASecondMigrationWhileOneRuns_AndTakesOneAfterIt()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        var engine = new PreCopyEngine(h.Source.Object, h.Tracker, EngineHarness.Options());
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        {
            // Nobody answers the Hello: the first migration waits until it is cancelled.
            using var cts = new CancellationTokenSource();
            Task<MigrationReport> first = engine.MigrateAsync(source, cancellationToken: cts.Token);

            InvalidOperationException refused = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => engine.MigrateAsync(source));
            Assert.Contains("already running", refused.Message);
            Assert.IsFalse(first.IsCompleted, "the running migration goes on");

            await cts.CancelAsync();
            await Assert.ThrowsAsync<OperationCanceledException>(() => first.WaitAsync(EngineHarness.Timeout));
        }

        // Once it ended, the engine migrates again (here to a destination that is already gone).
        (IMigrationConnection again, IMigrationConnection gone) = MigrationConnector.CreateInMemoryPair();
        await gone.DisposeAsync();
        await using (again)
        {
            MigrationReport report = await engine.MigrateAsync(again).WaitAsync(EngineHarness.Timeout);
            Assert.AreEqual(MigrationStatus.Failed, report.Status);
            Assert.AreEqual(MigrationPhase.Handshake, report.FailedPhase);
        }

        Assert.IsEmpty(h.Calls, "the source was never paused");
    }

    [TestMethod]
    public async Task Migration_WritesAndReadsWithTheConnectionsOptions()
    {
        // Frames of at most 4 pages: the engine's default writer (256 pages a frame) would send
        // the 64-page region in frames this connection's receiver refuses as over its limit.
        await using var h = new EngineHarness(EngineHarness.Converging)
        {
            StreamOptions = new PageStreamOptions { MaxFramePayload = 8 + (4 * (16 + MigrationProtocol.PageSize)), MaxPagesPerFrame = 4, PauseWriterThreshold = 64 << 10, ResumeWriterThreshold = 32 << 10 },
        };

        (MigrationReport report, ReceiveResult received) = await h.RunAsync(EngineHarness.Options());

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);
    }

    [TestMethod]
    public async Task Calibration_CompilesEveryPartOfTheEngine_SoTheSwitchoverNeverWaitsOnTheJit()
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        (MigrationReport report, _) = await h.RunAsync(EngineHarness.Options());
        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);

        // Every part the run drives (the types of its fields that belong to this namespace) and the run itself.
        Type run = typeof(PreCopyEngine).Assembly.GetType("MigrateKit.Migration.PreCopyRun", throwOnError: true)!;
        Type[] parts = run.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)
            .Select(f => f.FieldType)
            .Where(t => t.Namespace == typeof(PreCopyEngine).Namespace && t.IsClass && t != typeof(MigrationPolicy) && t != typeof(MigrationOptions))
            .Append(run)
            .Append(typeof(PreCopyEngine))
            .Append(typeof(HotPageDeferral))
            .Append(typeof(EngineRegion))
            .Append(typeof(Switchover))
            .ToArray();
        Assert.IsGreaterThanOrEqualTo(11, parts.Length);
        foreach (Type part in parts)
        {
            Assert.IsTrue(JitWarmup.IsPrepared(part), part.Name);
        }
    }

    [TestMethod]
    public void Constructor_RequiresTheSourcesRegions_AndValidOptions()
    {
        using var other = GuestMemoryLayout.Create(4 * GuestMemoryLayout.PageSize);
        var source = new Mock<IMigrationSource>();
        source.SetupGet(s => s.Memory).Returns(other);

        using var memory = GuestMemoryLayout.Create(4 * GuestMemoryLayout.PageSize);
        var tracker = new ScriptedTracker(memory, _ => [], () => false, _ => { });
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => new PreCopyEngine(source.Object, tracker));
        Assert.AreEqual("tracker", ex.ParamName);

        source.SetupGet(s => s.Memory).Returns(memory);
        Assert.AreEqual("MaxRounds", Assert.ThrowsExactly<ArgumentException>(() => new PreCopyEngine(source.Object, tracker, new MigrationOptions { MaxRounds = 0 })).ParamName);

        // The page stream's own minimum is checked here too, not first inside MigrateAsync.
        Assert.AreEqual("BandwidthLimit", Assert.ThrowsExactly<ArgumentException>(() => new PreCopyEngine(source.Object, tracker, new MigrationOptions { BandwidthLimit = 4095 })).ParamName);
        Assert.ThrowsExactly<ArgumentNullException>(() => new PreCopyEngine(null!, tracker));
        Assert.ThrowsExactly<ArgumentNullException>(() => new PreCopyEngine(source.Object, null!));

        // Same regions, valid options: nothing pending before a run.
        var engine = new PreCopyEngine(source.Object, tracker);
        Assert.HasCount(1, engine.PendingPages);
        Assert.IsTrue(engine.PendingPages[0].IsEmpty);
    }

    [TestMethod]
    public async Task DestinationThatStopsReadingAfterTheHandshake_FailsTheMigrationAfterTheResponseTimeout_SourceRunningUnthrottledEveryPagePending()
    {
        // 8 MiB of data against a pipe that pauses at about 2 MiB, and a destination that answers
        // HelloAck and then reads nothing: round 0 stops on the full pipe until the deadline.
        var time = new FakeTimeProvider();
        var connectionOptions = new PageStreamOptions { PauseWriterThreshold = (2 << 20) + 64, ResumeWriterThreshold = 1 << 20 };
        (IMigrationConnection src, IMigrationConnection dst) = MigrationConnector.CreateInMemoryPair(connectionOptions);
        await using IMigrationConnection s = src;
        await using IMigrationConnection d = dst;
        using GuestMemoryLayout memory = TransportTestSupport.RandomMemory(2048, seed: 12);
        var source = new Mock<IMigrationSource>();
        source.SetupGet(x => x.Name).Returns("vm");
        source.SetupGet(x => x.Memory).Returns(memory);
        source.SetupGet(x => x.VcpuCount).Returns(1);
        source.Setup(x => x.SaveDeviceState()).Returns([1, 2, 3]);
        using var tracker = new ScriptedTracker(memory, _ => [], () => false, _ => { });
        var engine = new PreCopyEngine(source.Object, tracker, new MigrationOptions { ResponseTimeout = TimeSpan.FromSeconds(2), TimeProvider = time });

        Task<MigrationReport> migrating = engine.MigrateAsync(src);
        ReadResult hello = await dst.Input.ReadAsync().AsTask().WaitAsync(EngineHarness.Timeout);
        dst.Input.AdvanceTo(hello.Buffer.End);
        var answer = new PageStreamWriter(dst.Output);
        answer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.FromMilliseconds(1)));
        await answer.FlushAsync();
        FakeClock.WaitFor(() => RoundZeroArrives(dst.Input), "round 0 is on its way");
        DateTimeOffset sending = time.GetUtcNow();
        MigrationReport report = await time.AdvanceUntilDoneAsync(migrating, TimeSpan.FromMilliseconds(100));

        Assert.AreEqual(MigrationStatus.Failed, report.Status, report.Reason);
        Assert.AreEqual(MigrationPhase.Send, report.FailedPhase);
        Assert.EndsWith("the destination took no data for 2 s during round 0", report.Reason!);
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(2), time.GetUtcNow() - sending, "not before the deadline on the fake clock");
        source.Verify(x => x.Resume(), Times.Once()); // the calibration pause only: the source runs
        source.Verify(x => x.SetThrottlePercent(It.Is<int>(p => p != 0)), Times.Never());
        Assert.AreEqual(2048UL, engine.PendingPages[0].Count(), "nothing was acknowledged: every page stays pending");
    }

    // Peeks (consumes nothing): whether frames came after the Hello.
    private static bool RoundZeroArrives(PipeReader input)
    {
        if (!input.TryRead(out ReadResult read))
        {
            return false;
        }

        input.AdvanceTo(read.Buffer.Start);
        return !read.Buffer.IsEmpty;
    }
}
