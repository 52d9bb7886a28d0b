using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Serialization;

namespace MigrateKit.Cli;

/// <summary>
/// What <c>bench plan</c> concludes: the share of runs whose converge/no-converge verdict the
/// migration bore out (target 95 %), and over the runs both planned and completed, the median
/// error of the predicted total time and bytes (target 20 %).
/// </summary>
internal sealed record PlanBenchSummary
{
    internal const double VerdictTargetPct = 95;

    internal const double ErrorTargetPct = 20;

    public required int Runs { get; init; }

    /// <summary>Runs with a plan and a migration that completed or was aborted by policy.</summary>
    public required int Judged { get; init; }

    public required int Failed { get; init; }

    public required int VerdictsRight { get; init; }

    public double? RightVerdictPct { get; init; }

    /// <summary>Runs both planned to converge and completed: the ones time and bytes are compared on.</summary>
    public required int Compared { get; init; }

    public double? MedianTotalErrorPct { get; init; }

    public double? P90TotalErrorPct { get; init; }

    public double? MedianBytesErrorPct { get; init; }

    public double? P90BytesErrorPct { get; init; }

    public double? MedianSlowdownPct { get; init; }

    public double VerdictTarget { get; init; } = VerdictTargetPct;

    public double ErrorTarget { get; init; } = ErrorTargetPct;

    /// <summary>Right verdicts at or over <see cref="VerdictTarget"/> and both medians at or under <see cref="ErrorTarget"/>.</summary>
    public required bool TargetsMet { get; init; }

    /// <summary>How long the bench ran; null when it summarized a saved file.</summary>
    public double? Seconds { get; init; }

    internal static PlanBenchSummary Of(IReadOnlyList<PlanBenchRun> runs)
    {
        PlanBenchRun[] judged = [.. runs.Where(r => r.VerdictRight is not null)];
        PlanBenchRun[] compared = [.. runs.Where(r => r.TotalErrorPct is not null && r.BytesErrorPct is not null)];
        double? right = judged.Length == 0 ? null : 100.0 * judged.Count(r => r.VerdictRight == true) / judged.Length;
        double? total = ForecastSummary.Median(compared.Select(r => r.TotalErrorPct!.Value));
        double? bytes = ForecastSummary.Median(compared.Select(r => r.BytesErrorPct!.Value));
        return new PlanBenchSummary
        {
            Runs = runs.Count,
            Judged = judged.Length,
            Failed = runs.Count - judged.Length,
            VerdictsRight = judged.Count(r => r.VerdictRight == true),
            RightVerdictPct = right,
            Compared = compared.Length,
            MedianTotalErrorPct = total,
            P90TotalErrorPct = ForecastSummary.Percentile(compared.Select(r => r.TotalErrorPct!.Value), 90),
            MedianBytesErrorPct = bytes,
            P90BytesErrorPct = ForecastSummary.Percentile(compared.Select(r => r.BytesErrorPct!.Value), 90),
            MedianSlowdownPct = ForecastSummary.Median(runs.Where(r => r.SlowdownPct is not null).Select(r => r.SlowdownPct!.Value)),
            TargetsMet = right >= VerdictTargetPct && total <= ErrorTargetPct && bytes <= ErrorTargetPct,
        };
    }
}

/// <summary>The one object <c>bench plan --json</c> prints (and <c>--out</c> saves).</summary>
internal sealed record PlanBenchJson(PlanBenchSummary Summary, IReadOnlyList<PlanBenchRun> Runs);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.Never, WriteIndented = false)]
[JsonSerializable(typeof(PlanBenchJson))]
internal sealed partial class PlanBenchJsonContext : JsonSerializerContext
{
}
