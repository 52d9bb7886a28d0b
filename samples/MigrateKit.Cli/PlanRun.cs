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

/// <summary>The guest's progress (page writes per second) while unobserved and while observed; what the observation costs it.</summary>
internal sealed record ObservationCost(double UnobservedPagesPerSecond, double ObservedPagesPerSecond)
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
    internal static async Task<PlanResult> ObserveAndPlanAsync(IWorkloadVm vm, SourceSettings s, TimeSpan? deadline, MigrationPlannerOptions planner, LiveStatus status, CancellationToken ct)
    {
        if (s.Bandwidth is not ulong bandwidth)
        {
            throw new ArgumentException("--bandwidth: name the bandwidth the migration gets, e.g. 100MiB/s: a plan cannot model an unlimited link.");
        }

        // Unobserved half before and half after, so a guest whose speed drifts (or a busy host) does not pass for the observation's cost.
        status.Set($"measuring the {s.Workload} workload's progress unobserved for {UnobservedWindow.TotalSeconds / 2:0.#} s");
        double before = await ProgressRateAsync(vm, () => Task.Delay(UnobservedWindow / 2, ct)).ConfigureAwait(false);

        status.Set($"observing the guest's dirty pages for {planner.Marks[^1].TotalSeconds:0.#} s (no migration)");
        DirtyObservation observation = null!;
        double observed = await ProgressRateAsync(vm, async () =>
        {
            using IDirtyPageTracker tracker = vm.CreateTracker();
            observation = await new MigrationPlanner(planner).ObserveAsync(tracker, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);

        status.Set($"measuring the {s.Workload} workload's progress unobserved again for {UnobservedWindow.TotalSeconds / 2:0.#} s");
        double after = await ProgressRateAsync(vm, () => Task.Delay(UnobservedWindow / 2, ct)).ConfigureAwait(false);
        double unobserved = (before + after) / 2;

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
            PauseCost = pause,
            ResumeCost = resume,
            TrackerKind = observation.TrackerKind,

            // A HostVm writes far faster than any pace it is held to: the throttle's holds fall within the pace's.
            ThrottleSlowsGuest = !(vm is HostVm && vm.PaceLimit > 0),
        });
        return new PlanResult(observation, new ObservationCost(unobserved, observed), plan);
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

    // Page writes per second the workload reports over what `during` takes.
    private static async Task<double> ProgressRateAsync(IWorkloadVm vm, Func<Task> during)
    {
        long before = vm.GetStatus().Sum(v => v.PagesWritten);
        long start = Stopwatch.GetTimestamp();
        await during().ConfigureAwait(false);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        long after = vm.GetStatus().Sum(v => v.PagesWritten);
        return seconds > 0 ? (after - before) / seconds : 0;
    }
}
