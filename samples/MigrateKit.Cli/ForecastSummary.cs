using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Serialization;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>
/// What <c>bench forecast</c> concludes over its completed runs: forecast accuracy (median, p90
/// and worst error, scored by <see cref="ForecastRun.ScoredErrorPct"/>), and whether the limit
/// was kept. Aborted runs count in <see cref="Aborted"/> only: ended by policy, they neither kept
/// nor broke the limit.
/// </summary>
internal sealed record ForecastSummary
{
    /// <summary>The accuracy <see cref="AccuratePct"/> counts against: issue 13's worst-case target.</summary>
    internal const double TargetPct = 25;

    public required int Runs { get; init; }

    public required int Completed { get; init; }

    public required int Aborted { get; init; }

    public required int Failed { get; init; }

    /// <summary>Completed runs whose destination did not verify.</summary>
    public required int NotVerified { get; init; }

    public double? MedianErrorPct { get; init; }

    public double? P90ErrorPct { get; init; }

    public double? WorstErrorPct { get; init; }

    /// <summary>The same as <see cref="MedianErrorPct"/> without the 5 ms allowance for small downtimes.</summary>
    public double? RawMedianErrorPct { get; init; }

    public double? RawP90ErrorPct { get; init; }

    public double? RawWorstErrorPct { get; init; }

    public double? MedianErrorMs { get; init; }

    public double? P90ErrorMs { get; init; }

    public double? WorstErrorMs { get; init; }

    /// <summary>The relative error <see cref="AccuratePct"/> counts against.</summary>
    public double AccuracyTargetPct { get; init; } = TargetPct;

    /// <summary>Share of completed runs within <see cref="AccuracyTargetPct"/>, or within 5 ms where the downtime was under 20 ms.</summary>
    public double? AccuratePct { get; init; }

    /// <summary>Share of completed runs whose actual downtime stayed within the limit.</summary>
    public double? WithinLimitPct { get; init; }

    public int LimitsBroken { get; init; }

    /// <summary>The largest actual downtime / limit of a completed run.</summary>
    public double? WorstOvershootRatio { get; init; }

    /// <summary>
    /// Share of completed runs with an interval whose actual downtime was at or below its top:
    /// the bound the switchover was decided on, so how often that bound held.
    /// </summary>
    public double? BelowHighPct { get; init; }

    /// <summary>Share of completed runs with an interval whose actual downtime lay inside it.</summary>
    public double? InsideIntervalPct { get; init; }

    /// <summary>How long the bench ran; null when it summarized a saved file.</summary>
    public double? Seconds { get; init; }

    /// <summary>Where the error sits, per VM and workload.</summary>
    public IReadOnlyList<ForecastGroup> ByWorkload { get; init; } = [];

    /// <summary>Summarizes <paramref name="runs"/>.</summary>
    internal static ForecastSummary Of(IReadOnlyList<ForecastRun> runs)
    {
        ForecastRun[] completed = [.. runs.Where(r => r.Status == "completed")];
        ForecastRun[] scored = [.. completed.Where(r => r.Scored)];
        ForecastRun[] limited = [.. completed.Where(r => r.LimitKept is not null)];
        ForecastRun[] bounded = [.. completed.Where(r => r.ActualDowntimeMs is not null && r.PredictedDowntimeLowMs is not null && r.PredictedDowntimeHighMs is not null)];
        return new ForecastSummary
        {
            Runs = runs.Count,
            Completed = completed.Length,
            Aborted = runs.Count(r => r.Status == "aborted"),
            Failed = runs.Count(r => r.Status == "failed"),
            NotVerified = completed.Count(r => !r.Verified),
            MedianErrorPct = Median(scored.Select(r => r.ScoredErrorPct)),
            P90ErrorPct = Percentile(scored.Select(r => r.ScoredErrorPct), 90),
            WorstErrorPct = Max(scored.Select(r => r.ScoredErrorPct)),
            RawMedianErrorPct = Median(scored.Select(r => r.ErrorPct!.Value)),
            RawP90ErrorPct = Percentile(scored.Select(r => r.ErrorPct!.Value), 90),
            RawWorstErrorPct = Max(scored.Select(r => r.ErrorPct!.Value)),
            MedianErrorMs = Median(scored.Select(r => r.ErrorMs!.Value)),
            P90ErrorMs = Percentile(scored.Select(r => r.ErrorMs!.Value), 90),
            WorstErrorMs = Max(scored.Select(r => r.ErrorMs!.Value)),
            AccuratePct = Share(scored, r => r.AccurateWithin(TargetPct)),
            WithinLimitPct = Share(limited, r => r.LimitKept == true),
            LimitsBroken = limited.Count(r => r.LimitKept == false),
            WorstOvershootRatio = Max(limited.Select(r => r.OvershootRatio!.Value)),
            BelowHighPct = Share(bounded, r => r.ActualDowntimeMs <= r.PredictedDowntimeHighMs),
            InsideIntervalPct = Share(bounded, r => r.ActualDowntimeMs >= r.PredictedDowntimeLowMs && r.ActualDowntimeMs <= r.PredictedDowntimeHighMs),
            ByWorkload = [.. scored.GroupBy(r => (r.Vm, r.Workload)).Select(ForecastGroup.Of)],
        };
    }

    /// <summary>The middle value (the mean of the two middle ones for an even count); null for none.</summary>
    internal static double? Median(IEnumerable<double> values)
    {
        double[] v = [.. values.Order()];
        return v.Length == 0 ? null : v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>The nearest-rank percentile: the smallest value at least <paramref name="percent"/> % of the values do not exceed; null for none.</summary>
    internal static double? Percentile(IEnumerable<double> values, double percent)
    {
        double[] v = [.. values.Order()];
        return v.Length == 0 ? null : v[Math.Max(0, (int)Math.Ceiling(percent / 100 * v.Length) - 1)];
    }

    private static double? Max(IEnumerable<double> values) => values.Select(v => (double?)v).Max();

    private static double? Share(ForecastRun[] runs, Func<ForecastRun, bool> counted) =>
        runs.Length == 0 ? null : 100.0 * runs.Count(counted) / runs.Length;
}

/// <summary>The error of one VM kind's runs of one workload, and the part of the downtime it comes from.</summary>
internal sealed record ForecastGroup
{
    public required string Vm { get; init; }

    public required string Workload { get; init; }

    public required int Runs { get; init; }

    public double? MedianErrorPct { get; init; }

    public double? WorstErrorPct { get; init; }

    /// <summary>The mean of predicted − actual per part (pause, harvest, transfer, resume), in ms: which part the forecast misses.</summary>
    public DowntimeParts? MeanPartErrorMs { get; init; }

    internal static ForecastGroup Of(IGrouping<(string Vm, string Workload), ForecastRun> runs)
    {
        ForecastRun[] withParts = [.. runs.Where(r => r.PredictedParts is not null && r.ActualParts is not null)];
        double Mean(Func<DowntimeParts, double> part) => withParts.Average(r => part(r.PredictedParts!) - part(r.ActualParts!));
        return new ForecastGroup
        {
            Vm = runs.Key.Vm,
            Workload = runs.Key.Workload,
            Runs = runs.Count(),
            MedianErrorPct = ForecastSummary.Median(runs.Select(r => r.ScoredErrorPct)),
            WorstErrorPct = runs.Max(r => r.ScoredErrorPct),
            MeanPartErrorMs = withParts.Length == 0 ? null : new DowntimeParts(Mean(p => p.PauseMs), Mean(p => p.HarvestMs), Mean(p => p.TransferMs), Mean(p => p.ResumeMs)),
        };
    }
}

/// <summary>The one object <c>bench forecast --json</c> prints (and <c>--out</c> saves).</summary>
internal sealed record ForecastJson(ForecastSummary Summary, IReadOnlyList<ForecastRun> Runs);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.Never, WriteIndented = false)]
[JsonSerializable(typeof(ForecastJson))]
internal sealed partial class ForecastJsonContext : JsonSerializerContext
{
}
