using System;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>One migration of <c>bench forecast</c>: its cell, what the engine forecast and what happened.</summary>
internal sealed record ForecastRun
{
    /// <summary>Downtimes under this are scored by their absolute error against <see cref="AllowanceMs"/> (issue 13's accuracy rule).</summary>
    internal const double SmallDowntimeMs = 20;

    /// <summary>The absolute error a downtime under <see cref="SmallDowntimeMs"/> may have and still count as accurate.</summary>
    internal const double AllowanceMs = 5;

    /// <summary>Which repetition of the cell (1, 2, …).</summary>
    public required int Run { get; init; }

    public required string Vm { get; init; }

    public required string Tracker { get; init; }

    public required string Workload { get; init; }

    public required ulong MemoryBytes { get; init; }

    public required ulong HotBytes { get; init; }

    /// <summary>Null when unlimited.</summary>
    public ulong? BandwidthBytesPerSecond { get; init; }

    public required double LimitMs { get; init; }

    /// <summary>"completed", "aborted" (ended by policy: neither kept nor broken the limit) or "failed".</summary>
    public required string Status { get; init; }

    /// <summary>Why a run was aborted or failed, or why a completed one did not verify.</summary>
    public string? Reason { get; init; }

    /// <summary>Whether the destination guest ran on (and passed its self-checks) with memory equal to the source's.</summary>
    public bool Verified { get; init; }

    public double? PredictedDowntimeMs { get; init; }

    public double? PredictedDowntimeLowMs { get; init; }

    public double? PredictedDowntimeHighMs { get; init; }

    public double? ActualDowntimeMs { get; init; }

    /// <summary>|predicted − actual| / actual × 100.</summary>
    public double? ErrorPct { get; init; }

    /// <summary>|predicted − actual| in ms.</summary>
    public double? ErrorMs { get; init; }

    /// <summary>Within the summary's accuracy target (25 %), or within 5 ms for a downtime under 20 ms; null unless scored.</summary>
    public bool? Accurate => Scored ? AccurateWithin(ForecastSummary.TargetPct) : null;

    /// <summary>Whether the actual downtime stayed within the limit; null unless completed.</summary>
    public bool? LimitKept { get; init; }

    /// <summary>Actual downtime / limit.</summary>
    public double? OvershootRatio { get; init; }

    public double TotalMs { get; init; }

    public ulong BytesSent { get; init; }

    public int Rounds { get; init; }

    public DowntimeParts? PredictedParts { get; init; }

    public DowntimeParts? ActualParts { get; init; }

    /// <summary>Completed with both a forecast and a measured downtime: the runs the summary scores.</summary>
    internal bool Scored => Status == "completed" && ErrorPct is not null && ErrorMs is not null;

    /// <summary>
    /// The relative error the summary ranks: a downtime under 20 ms within 5 ms of its forecast
    /// met its allowance and scores 0 %; every other run scores its <see cref="ErrorPct"/>.
    /// </summary>
    internal double ScoredErrorPct => ActualDowntimeMs < SmallDowntimeMs && ErrorMs <= AllowanceMs ? 0 : ErrorPct ?? double.NaN;

    /// <summary>Within <paramref name="targetPct"/>, or within 5 ms for a downtime under 20 ms.</summary>
    internal bool AccurateWithin(double targetPct) => Scored && (ErrorPct <= targetPct || (ActualDowntimeMs < SmallDowntimeMs && ErrorMs <= AllowanceMs));

    /// <summary>The row for a migration that ran to an outcome.</summary>
    internal static ForecastRun Of(ForecastCell cell, int run, RunOutcome outcome)
    {
        MigrationReport r = outcome.Report;
        bool completed = r.Status == MigrationStatus.Completed;
        double? errorMs = completed && r.PredictedDowntimeMs is double p && r.DowntimeMs is double a ? Math.Abs(p - a) : null;
        double limitMs = cell.Limit.TotalMilliseconds;
        return Row(cell, run) with
        {
            Status = r.Status.ToString().ToLowerInvariant(),
            Reason = completed ? (outcome.Verified ? null : outcome.VerifyDetail) : r.Reason ?? outcome.VerifyDetail,
            Verified = completed && outcome.Verified,
            PredictedDowntimeMs = r.PredictedDowntimeMs,
            PredictedDowntimeLowMs = r.PredictedDowntimeLowMs,
            PredictedDowntimeHighMs = r.PredictedDowntimeHighMs,
            ActualDowntimeMs = r.DowntimeMs,
            ErrorMs = errorMs,
            ErrorPct = errorMs is double e && r.DowntimeMs is > 0 ? e / r.DowntimeMs.Value * 100 : null,
            LimitKept = completed && r.DowntimeMs is double kept ? kept <= limitMs : null,
            OvershootRatio = completed && r.DowntimeMs is double actual ? actual / limitMs : null,
            TotalMs = r.TotalMs,
            BytesSent = r.BytesSent,
            Rounds = r.Rounds,
            PredictedParts = r.PredictedDowntimeParts,
            ActualParts = r.ActualDowntimeParts,
        };
    }

    /// <summary>The row for a migration that threw before it had an outcome.</summary>
    internal static ForecastRun Failed(ForecastCell cell, int run, Exception ex) => Row(cell, run) with { Status = "failed", Reason = ex.Message };

    private static ForecastRun Row(ForecastCell cell, int run) => new()
    {
        Run = run,
        Vm = cell.Vm,
        Tracker = cell.Tracker,
        Workload = cell.Workload,
        MemoryBytes = cell.Memory,
        HotBytes = cell.Hot,
        BandwidthBytesPerSecond = cell.Bandwidth,
        LimitMs = cell.Limit.TotalMilliseconds,
        Status = "failed",
    };
}
