using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Vmm;

namespace MigrateKit.Cli;

/// <summary>What <c>plan</c> found: the observation, what it cost the guest, and the plan made from it.</summary>
/// <param name="Observation">The curve, the hot set and the harvest cost.</param>
/// <param name="Cost">The guest's progress observed and unobserved.</param>
/// <param name="Plan">The model's answer.</param>
internal sealed record PlanResult(DirtyObservation Observation, ObservationCost Cost, MigrationPlan Plan);

/// <summary>
/// The guest's progress (page writes per second) while unobserved and while observed, what the
/// observation costs it, and the share of its time it ran unobserved (below 1 when it waits for a pace).
/// </summary>
internal sealed record ObservationCost(double UnobservedPagesPerSecond, double ObservedPagesPerSecond, double RunShare = 1)
{
    /// <summary>How much slower the guest ran while observed, percent (negative: faster); null when it made no progress unobserved.</summary>
    public double? SlowdownPct => UnobservedPagesPerSecond > 0 ? Math.Round((1 - (ObservedPagesPerSecond / UnobservedPagesPerSecond)) * 100, 1) : null;
}

/// <summary>Observes a running VM with <see cref="MigrationPlanner"/> and plans its migration, as <c>plan</c> and <c>bench plan</c> do.</summary>
internal static class PlanRun
{
    /// <summary>How long the guest's unobserved progress is measured: half before the observation, half after.</summary>
    internal static readonly TimeSpan UnobservedWindow = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Measures the guest's progress unobserved (<see cref="UnobservedWindow"/>), observes it through
    /// a new tracker (measuring its progress meanwhile), and plans the migration <paramref name="s"/> describes.
    /// </summary>
    /// <param name="destination">The address the migration would go to, whose past switchovers correct the plan; null: every destination's.</param>
    internal static async Task<PlanResult> ObserveAndPlanAsync(IWorkloadVm vm, SourceSettings s, TimeSpan? deadline, MigrationPlannerOptions planner, LiveStatus status, string? destination, CancellationToken ct)
    {
        if (s.Bandwidth is not ulong bandwidth)
        {
            throw new ArgumentException("--bandwidth: name the bandwidth the migration gets, e.g. 100MiB/s: a plan cannot model an unlimited link.");
        }

        // Unobserved half before and half after, so a guest whose speed drifts (or a busy host) does not pass for the observation's cost.
        status.Set($"measuring the {s.Workload} workload's progress unobserved for {UnobservedWindow.TotalSeconds / 2:0.#} s");
        Progress before = await ProgressAsync(vm, () => Task.Delay(UnobservedWindow / 2, ct)).ConfigureAwait(false);

        status.Set($"observing the guest's dirty pages for {planner.Marks[^1].TotalSeconds:0.#} s (no migration)");
        DirtyObservation observation = null!;
        Progress observed = await ProgressAsync(vm, async () =>
        {
            using IDirtyPageTracker tracker = vm.CreateTracker();
            observation = await new MigrationPlanner(planner).ObserveAsync(tracker, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);

        status.Set($"measuring the {s.Workload} workload's progress unobserved again for {UnobservedWindow.TotalSeconds / 2:0.#} s");
        Progress after = await ProgressAsync(vm, () => Task.Delay(UnobservedWindow / 2, ct)).ConfigureAwait(false);
        var cost = new ObservationCost((before.PagesPerSecond + after.PagesPerSecond) / 2, observed.PagesPerSecond, (before.RunShare + after.RunShare) / 2);

        // The engine pauses the guest once to measure this before its first round; so does the plan.
        TimeSpan pause = vm.Pause();
        vm.Resume();

        // The destination's start, as its receiver would estimate it: a new VM of the same kind, measured and thrown away.
        TimeSpan resume = ResumeCost(s);

        status.Set("modelling the migration");
        MigrationPlan plan = MigrationPlanner.Plan(new PlanInput
        {
            Curve = observation.Curve,
            MemoryBytes = observation.MemoryBytes,
            PopulatedPages = observation.PopulatedPages,
            BandwidthBytesPerSecond = bandwidth,
            Options = s.MigrationOptions(),
            Deadline = deadline,
            HarvestCost = observation.HarvestCost,
            FinalHarvestCost = observation.FinalHarvestCost,
            PauseCost = pause,
            ResumeCost = resume,
            TrackerKind = observation.TrackerKind,
            Destination = destination,

            // A guest held to a pace waits part of its time: the throttle's holds slow it only beyond that.
            GuestRunShare = cost.RunShare,
        });
        return new PlanResult(observation, cost, plan);
    }

    /// <summary>The planner's marks up to <paramref name="longest"/> (at least the first).</summary>
    internal static MigrationPlannerOptions Marks(TimeSpan longest)
    {
        IReadOnlyList<TimeSpan> all = new MigrationPlannerOptions().Marks;
        return new MigrationPlannerOptions { Marks = [.. all.Where((m, i) => i == 0 || m <= longest)] };
    }

    private static TimeSpan ResumeCost(SourceSettings s)
    {
        using IMigrationTarget probe = s.Vm == VmKind.Host ? new HostVm(s.Memory) : MicroVm.Create(new MicroVmOptions { MemorySize = s.Memory });
        return probe.EstimateResumeCost();
    }

    // Page writes per second the workload reports over what `during` takes, and the share of that
    // time its threads ran rather than being held by their pace (no throttle applies while planning).
    private static async Task<Progress> ProgressAsync(IWorkloadVm vm, Func<Task> during)
    {
        IReadOnlyList<VcpuStatus> before = vm.GetStatus();
        long start = Stopwatch.GetTimestamp();
        await during().ConfigureAwait(false);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        IReadOnlyList<VcpuStatus> after = vm.GetStatus();
        if (seconds <= 0)
        {
            return new Progress(0, 1);
        }

        double pages = after.Sum(v => v.PagesWritten) - before.Sum(v => v.PagesWritten);
        double held = (after.Sum(v => v.Held.TotalSeconds) - before.Sum(v => v.Held.TotalSeconds)) / Math.Max(1, after.Count);
        return new Progress(pages / seconds, Math.Clamp(1 - (held / seconds), 0.01, 1));
    }

    private readonly record struct Progress(double PagesPerSecond, double RunShare);
}
