using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Serialization;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>The one object <c>plan --json</c> prints (and <c>--report</c> saves).</summary>
internal sealed record PlanJson
{
    public required string Vm { get; init; }

    public required string Workload { get; init; }

    public required bool Converges { get; init; }

    /// <summary>"converges", "convergesWithThrottle" or "doesNotConverge".</summary>
    public required string Verdict { get; init; }

    public required string Reason { get; init; }

    public required double PredictedTotalMs { get; init; }

    public required ulong PredictedBytes { get; init; }

    /// <summary>Null when it does not converge.</summary>
    public double? PredictedDowntimeMs { get; init; }

    public required int PredictedRounds { get; init; }

    public required int MaxThrottlePercent { get; init; }

    public required double BandwidthBytesPerSecond { get; init; }

    public required double MaxDowntimeMs { get; init; }

    public double? DeadlineMs { get; init; }

    public required bool WithinDeadline { get; init; }

    public double? MinimumBandwidthBytesPerSecond { get; init; }

    public required PlanJsonRecommendation Recommended { get; init; }

    public required ulong MemoryBytes { get; init; }

    public ulong? PopulatedPages { get; init; }

    public required long HotPages { get; init; }

    public required IReadOnlyList<PlanJsonPoint> Curve { get; init; }

    public required IReadOnlyList<PlanJsonRound> Rounds { get; init; }

    public required PlanJsonObservation Observation { get; init; }

    internal static PlanJson Of(PlanResult r, string vm, string workload, TimeSpan? deadline) => new()
    {
        Vm = vm,
        Workload = workload,
        Converges = r.Plan.Converges,
        Verdict = System.Text.Json.JsonNamingPolicy.CamelCase.ConvertName(r.Plan.Verdict.ToString()),
        Reason = r.Plan.Reason,
        PredictedTotalMs = Ms(r.Plan.TotalTime),
        PredictedBytes = r.Plan.BytesSent,
        PredictedDowntimeMs = r.Plan.Downtime is TimeSpan d ? Ms(d) : null,
        PredictedRounds = r.Plan.Rounds.Count,
        MaxThrottlePercent = r.Plan.MaxThrottlePercent,
        BandwidthBytesPerSecond = r.Plan.BandwidthBytesPerSecond,
        MaxDowntimeMs = Ms(r.Plan.MaxDowntime),
        DeadlineMs = deadline is TimeSpan dl ? Ms(dl) : null,
        WithinDeadline = r.Plan.WithinDeadline,
        MinimumBandwidthBytesPerSecond = r.Plan.MinimumBandwidthBytesPerSecond,
        Recommended = new PlanJsonRecommendation(r.Plan.Recommended.BandwidthBytesPerSecond, Ms(r.Plan.Recommended.MaxDowntime), r.Plan.Recommended.MaxThrottlePercent, r.Plan.Recommended.Postcopy, r.Plan.Recommended.Reason),
        MemoryBytes = r.Observation.MemoryBytes,
        PopulatedPages = r.Observation.PopulatedPages,
        HotPages = r.Observation.Curve.HotPages,
        Curve = [.. r.Observation.Curve.Points.Select(p => new PlanJsonPoint(Ms(p.Elapsed), p.DistinctPages))],
        Rounds = [.. r.Plan.Rounds.Select(PlanJsonRound.Of)],
        Observation = new PlanJsonObservation(r.Observation.TrackerKind, Ms(r.Observation.Duration), Ms(r.Observation.HarvestCost),
            Math.Round(r.Cost.UnobservedPagesPerSecond), Math.Round(r.Cost.ObservedPagesPerSecond), r.Cost.SlowdownPct, Math.Round(r.Cost.RunShare * 100, 1)),
    };

    private static double Ms(TimeSpan t) => Math.Round(t.TotalMilliseconds, 2);
}

/// <summary>The recommended setting.</summary>
internal sealed record PlanJsonRecommendation(double BandwidthBytesPerSecond, double MaxDowntimeMs, int MaxThrottlePercent, bool Postcopy, string Reason);

/// <summary>One point of the curve: distinct pages dirtied within the window.</summary>
internal sealed record PlanJsonPoint(double ElapsedMs, long DistinctPages);

/// <summary>One predicted round.</summary>
internal sealed record PlanJsonRound
{
    public required int Round { get; init; }

    public required double DurationMs { get; init; }

    public required ulong BytesSent { get; init; }

    public required ulong DirtyPages { get; init; }

    public required ulong DeferredPages { get; init; }

    public required int ThrottlePercent { get; init; }

    public required double PredictedDowntimeMs { get; init; }

    public required string Action { get; init; }

    internal static PlanJsonRound Of(PlannedRound x) => new()
    {
        Round = x.Round,
        DurationMs = Math.Round(x.Duration.TotalMilliseconds, 2),
        BytesSent = x.BytesSent,
        DirtyPages = x.DirtyPages,
        DeferredPages = x.DeferredPages,
        ThrottlePercent = x.ThrottlePercent,
        PredictedDowntimeMs = Math.Round(x.PredictedDowntime.TotalMilliseconds, 2),
        Action = System.Text.Json.JsonNamingPolicy.CamelCase.ConvertName(x.Action.ToString()),
    };
}

/// <summary>How the guest was observed and what that cost it.</summary>
internal sealed record PlanJsonObservation(string Tracker, double DurationMs, double HarvestCostMs, double UnobservedPagesPerSecond, double ObservedPagesPerSecond, double? SlowdownPct, double GuestRunSharePct);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.Never, WriteIndented = false)]
[JsonSerializable(typeof(PlanJson))]
internal sealed partial class PlanJsonContext : JsonSerializerContext
{
}
