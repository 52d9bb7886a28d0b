using System;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>One cell of <c>bench plan</c>: the plan made before the migration, and the migration that followed with the same options.</summary>
internal sealed record PlanBenchRun
{
    public required int Run { get; init; }

    public required string Vm { get; init; }

    public required string Tracker { get; init; }

    public required string Workload { get; init; }

    public required ulong MemoryBytes { get; init; }

    public required ulong HotBytes { get; init; }

    public required ulong BandwidthBytesPerSecond { get; init; }

    public required double LimitMs { get; init; }

    /// <summary>"completed" or "aborted" (the migration's own outcome), or "failed" (no plan or no outcome: not judged).</summary>
    public required string Status { get; init; }

    public string? Reason { get; init; }

    /// <summary>The plan's verdict: "converges", "convergesWithThrottle" or "doesNotConverge".</summary>
    public string? PlannedVerdict { get; init; }

    public bool? PlannedConverges { get; init; }

    public double? PredictedTotalMs { get; init; }

    public ulong? PredictedBytes { get; init; }

    public double? PredictedDowntimeMs { get; init; }

    public int? PredictedRounds { get; init; }

    public int? PredictedMaxThrottlePercent { get; init; }

    public double? TotalMs { get; init; }

    public ulong? BytesSent { get; init; }

    public double? DowntimeMs { get; init; }

    public int? Rounds { get; init; }

    public int? MaxThrottlePercent { get; init; }

    /// <summary>Whether the plan's converge/no-converge verdict matched the migration (completed or aborted by policy); null when not judged.</summary>
    public bool? VerdictRight { get; init; }

    /// <summary>|predicted − actual| / actual × 100, when both the plan and the migration converged.</summary>
    public double? TotalErrorPct { get; init; }

    public double? BytesErrorPct { get; init; }

    /// <summary>How much slower the guest ran while observed, percent.</summary>
    public double? SlowdownPct { get; init; }

    internal static PlanBenchRun Of(ForecastCell cell, int run, PlanResult planned, MigrationReport actual)
    {
        MigrationPlan plan = planned.Plan;
        bool judged = actual.Status is MigrationStatus.Completed or MigrationStatus.Aborted;
        bool bothConverged = plan.Converges && actual.Status == MigrationStatus.Completed;
        return Row(cell, run) with
        {
            Status = actual.Status.ToString().ToLowerInvariant(),
            Reason = actual.Reason,
            PlannedVerdict = System.Text.Json.JsonNamingPolicy.CamelCase.ConvertName(plan.Verdict.ToString()),
            PlannedConverges = plan.Converges,
            PredictedTotalMs = Math.Round(plan.TotalTime.TotalMilliseconds, 1),
            PredictedBytes = plan.BytesSent,
            PredictedDowntimeMs = plan.Downtime is TimeSpan d ? Math.Round(d.TotalMilliseconds, 2) : null,
            PredictedRounds = plan.Rounds.Count,
            PredictedMaxThrottlePercent = plan.MaxThrottlePercent,
            TotalMs = actual.TotalMs,
            BytesSent = actual.BytesSent,
            DowntimeMs = actual.DowntimeMs,
            Rounds = actual.Rounds,
            MaxThrottlePercent = actual.MaxThrottlePercent,
            VerdictRight = judged ? plan.Converges == (actual.Status == MigrationStatus.Completed) : null,
            TotalErrorPct = bothConverged ? ErrorPct(plan.TotalTime.TotalMilliseconds, actual.TotalMs) : null,
            BytesErrorPct = bothConverged ? ErrorPct(plan.BytesSent, actual.BytesSent) : null,
            SlowdownPct = planned.Cost.SlowdownPct,
        };
    }

    internal static PlanBenchRun Failed(ForecastCell cell, int run, Exception ex) => Row(cell, run) with { Reason = ex.Message };

    private static double? ErrorPct(double predicted, double actual) => actual > 0 ? Math.Round(Math.Abs(predicted - actual) / actual * 100, 1) : null;

    private static PlanBenchRun Row(ForecastCell cell, int run) => new()
    {
        Run = run,
        Vm = cell.Vm,
        Tracker = cell.Tracker,
        Workload = cell.Workload,
        MemoryBytes = cell.Memory,
        HotBytes = cell.Hot,
        BandwidthBytesPerSecond = cell.Bandwidth ?? 0,
        LimitMs = cell.Limit.TotalMilliseconds,
        Status = "failed",
    };
}
