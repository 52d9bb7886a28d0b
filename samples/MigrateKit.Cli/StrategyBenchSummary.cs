using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.Json.Serialization;

namespace MigrateKit.Cli;

/// <summary>One configuration's runs on one guest and their medians (over the converged runs).</summary>
internal sealed record StrategyBenchConfigSummary
{
    public required string Config { get; init; }

    public required IReadOnlyList<StrategyBenchRun> Runs { get; init; }

    public double? MedianWallMs { get; init; }

    public double? MedianJobMs { get; init; }

    public double? MedianDowntimeMs { get; init; }

    public double? MedianMiB { get; init; }

    /// <summary>Runs that converged, of <see cref="Runs"/>.</summary>
    public int Converged { get; init; }

    public int Failed { get; init; }

    public double? WorstDowntimeMs { get; init; }

    /// <summary>MigrateKit's median forecast of the downtime (null for plain libvirt).</summary>
    public double? MedianPredictedDowntimeMs { get; init; }

    public double? MedianForecastErrorMs { get; init; }

    /// <summary>Converged runs whose forecast was within max(10 ms, 25 %) (null for plain libvirt).</summary>
    public int? ForecastsWithin { get; init; }

    internal static StrategyBenchConfigSummary Of(string config, IReadOnlyList<StrategyBenchRun> runs)
    {
        StrategyBenchRun[] ok = [.. runs.Where(r => r.Outcome == StrategyBenchOutcome.Converged)];
        static double? Median(IEnumerable<double?> values) => ForecastSummary.Median(values.OfType<double>());
        bool forecasts = ok.Any(r => r.PredictedDowntimeMs is not null) || config == StrategyBenchConfig.MigrateKitAuto.Name();
        return new StrategyBenchConfigSummary
        {
            Config = config,
            Runs = runs,
            MedianWallMs = Median(ok.Select(r => r.WallMs)),
            MedianJobMs = Median(ok.Select(r => r.JobMs)),
            MedianDowntimeMs = Median(ok.Select(r => r.DowntimeMs)),
            MedianMiB = Median(ok.Select(r => r.Bytes / 1048576.0)),
            Converged = ok.Length,
            Failed = runs.Count(r => r.Outcome == StrategyBenchOutcome.Failed),
            WorstDowntimeMs = ok.Select(r => r.DowntimeMs).Max(),
            MedianPredictedDowntimeMs = forecasts ? Median(ok.Select(r => r.PredictedDowntimeMs)) : null,
            MedianForecastErrorMs = forecasts ? Median(ok.Select(r => r.ForecastErrorMs)) : null,
            ForecastsWithin = forecasts ? ok.Count(r => r.ForecastWithin == true) : null,
        };
    }
}

/// <summary>One of the issue's targets on one guest: met or missed, and the figures it was judged on.</summary>
internal sealed record StrategyBenchTarget(bool Met, string Detail);

/// <summary>
/// The issue's three targets for MigrateKit's <c>auto</c> on one guest: its median wall time at most
/// the best plain configuration's, its downtime within the limit, its forecast within max(10 ms, 25 %).
/// </summary>
internal sealed record StrategyBenchTargets(StrategyBenchTarget WallTime, StrategyBenchTarget Downtime, StrategyBenchTarget Forecast)
{
    internal bool AllMet => WallTime.Met && Downtime.Met && Forecast.Met;
}

/// <summary>Everything the bench concludes on one guest.</summary>
internal sealed record StrategyBenchGuestResult
{
    public required string Guest { get; init; }

    public string? Description { get; init; }

    /// <summary>How long one pass of the guest took after it booted (how fast it dirties its set on this machine).</summary>
    public double? PassMs { get; init; }

    public required IReadOnlyList<StrategyBenchConfigSummary> Configs { get; init; }

    /// <summary>
    /// The plain libvirt configuration <c>auto</c> is measured against: of those that converged most
    /// often, the one with the lowest median wall time (null when none converged).
    /// </summary>
    public string? BestPlainConfig { get; init; }

    public double? BestPlainMedianWallMs { get; init; }

    public double? AutoMedianWallMs { get; init; }

    /// <summary>MigrateKit's median wall time / the best plain configuration's (the target is at most 1.0).</summary>
    public double? AutoVsBest { get; init; }

    public StrategyBenchTargets? Targets { get; init; }

    public bool TargetsMet { get; init; }

    /// <summary>Summarizes one guest's runs (every configuration's, grouped by <see cref="StrategyBenchRun.Config"/>) against the downtime limit <paramref name="limitMs"/>.</summary>
    internal static StrategyBenchGuestResult Of(string guest, string? description, IEnumerable<StrategyBenchRun> runs, double limitMs)
    {
        var byConfig = runs.GroupBy(r => r.Config).ToDictionary(g => g.Key, g => (IReadOnlyList<StrategyBenchRun>)[.. g.OrderBy(r => r.Run)]);
        StrategyBenchConfigSummary[] configs = [.. StrategyBenchConfigs.All.Select(c => c.Name()).Where(byConfig.ContainsKey).Select(c => StrategyBenchConfigSummary.Of(c, byConfig[c]))];
        StrategyBenchConfigSummary? best = configs
            .Where(c => c.Config != StrategyBenchConfig.MigrateKitAuto.Name() && c.Converged > 0)
            .OrderByDescending(c => c.Converged).ThenBy(c => c.MedianWallMs).FirstOrDefault();
        StrategyBenchConfigSummary? auto = configs.FirstOrDefault(c => c.Config == StrategyBenchConfig.MigrateKitAuto.Name());
        double? ratio = auto?.MedianWallMs is double a && best?.MedianWallMs is double b && b > 0 ? a / b : null;
        StrategyBenchTargets? targets = auto is null ? null : new(WallTarget(auto, best, ratio), DowntimeTarget(auto, limitMs), ForecastTarget(auto));
        return new StrategyBenchGuestResult
        {
            Guest = guest,
            Description = description,
            Configs = configs,
            BestPlainConfig = best?.Config,
            BestPlainMedianWallMs = best?.MedianWallMs,
            AutoMedianWallMs = auto?.MedianWallMs,
            AutoVsBest = ratio,
            Targets = targets,
            TargetsMet = targets?.AllMet ?? false,
        };
    }

    private static string F(double? v, string format = "F0") => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "-";

    private static StrategyBenchTarget WallTarget(StrategyBenchConfigSummary auto, StrategyBenchConfigSummary? best, double? ratio)
    {
        string converged = $"converged {auto.Converged}/{auto.Runs.Count}";
        if (auto.Converged < auto.Runs.Count || auto.Converged == 0)
        {
            return new(false, $"auto {converged}: every run must converge");
        }

        return best is null
            ? new(true, $"auto {F(auto.MedianWallMs)} ms, {converged}; no plain configuration converged")
            : new(ratio <= 1.0, $"auto {F(auto.MedianWallMs)} ms vs {best.Config} {F(best.MedianWallMs)} ms: {F(ratio, "F2")}× (at most 1.00×)");
    }

    private static StrategyBenchTarget DowntimeTarget(StrategyBenchConfigSummary auto, double limitMs)
    {
        StrategyBenchRun[] ok = [.. auto.Runs.Where(r => r.Outcome == StrategyBenchOutcome.Converged)];
        int over = ok.Count(r => r.DowntimeMs is not double d || d > limitMs);
        return new(ok.Length > 0 && over == 0,
            ok.Length == 0 ? "no converged run" : $"worst {F(auto.WorstDowntimeMs, "F1")} ms of {F(limitMs)} ms; {over} of {ok.Length} converged runs over the limit");
    }

    private static StrategyBenchTarget ForecastTarget(StrategyBenchConfigSummary auto)
    {
        StrategyBenchRun[] ok = [.. auto.Runs.Where(r => r.Outcome == StrategyBenchOutcome.Converged)];
        StrategyBenchRun? worst = ok.OrderByDescending(r => r.ForecastErrorMs ?? double.PositiveInfinity).FirstOrDefault();
        int within = ok.Count(r => r.ForecastWithin == true);
        return new(ok.Length > 0 && within == ok.Length,
            worst is null ? "no converged run"
            : $"{within}/{ok.Length} within max(10 ms, 25 %); worst: forecast {F(worst.PredictedDowntimeMs, "F1")} ms vs actual {F(worst.DowntimeMs, "F1")} ms");
    }
}

/// <summary>The one object <c>bench libvirt-strategies --json</c> prints (and <c>--out</c> saves).</summary>
internal sealed record StrategyBenchJson
{
    public required string From { get; init; }

    public required string To { get; init; }

    /// <summary>Runs of each configuration on each guest.</summary>
    public required int Runs { get; init; }

    public required ulong MemoryBytes { get; init; }

    public required long BandwidthBytesPerSecond { get; init; }

    public required double MaxDowntimeMs { get; init; }

    public required double DeadlineMs { get; init; }

    /// <summary>The xbzrle cache of the libvirt-xbzrle configuration.</summary>
    public required ulong XbzrleCacheBytes { get; init; }

    /// <summary>How long the bench ran; null when it summarized a saved file.</summary>
    public double? Seconds { get; init; }

    public required IReadOnlyList<StrategyBenchGuestResult> Guests { get; init; }

    /// <summary>Every guest met every target.</summary>
    public bool TargetsMet { get; init; }

    /// <summary>The object for <paramref name="runs"/> (per guest, every configuration's rows).</summary>
    internal static StrategyBenchJson Of(StrategyBenchSettings s, IReadOnlyList<StrategyBenchGuestRuns> runs, double? seconds)
    {
        StrategyBenchGuestResult[] guests = [.. runs.Select(g =>
            StrategyBenchGuestResult.Of(g.Guest.Name, g.Guest.Description, g.Runs, s.MaxDowntime.TotalMilliseconds) with { PassMs = Math.Round(g.PassMs) })];
        return new StrategyBenchJson
        {
            From = s.From,
            To = s.To,
            Runs = s.Runs,
            MemoryBytes = s.Memory,
            BandwidthBytesPerSecond = s.Bandwidth,
            MaxDowntimeMs = s.MaxDowntime.TotalMilliseconds,
            DeadlineMs = s.Deadline.TotalMilliseconds,
            XbzrleCacheBytes = s.XbzrleCacheBytes,
            Seconds = seconds,
            Guests = guests,
            TargetsMet = guests.Length > 0 && guests.All(g => g.TargetsMet),
        };
    }

    /// <summary>The same object with every summary worked out again from the runs it holds (for <c>--summarize</c>).</summary>
    internal StrategyBenchJson Resummarized()
    {
        StrategyBenchGuestResult[] guests = [.. Guests.Select(g => StrategyBenchGuestResult.Of(g.Guest, g.Description,
            g.Configs.SelectMany(c => c.Runs.Select(r => r.WithForecastError())), MaxDowntimeMs) with { PassMs = g.PassMs })];
        return this with { Seconds = null, Guests = guests, TargetsMet = guests.Length > 0 && guests.All(g => g.TargetsMet) };
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.Never, WriteIndented = false)]
[JsonSerializable(typeof(StrategyBenchJson))]
[JsonSerializable(typeof(StrategyBenchPlanJson))]
internal sealed partial class StrategyBenchJsonContext : JsonSerializerContext
{
}

/// <summary>What <c>--plan</c> prints: the schedule, nothing run.</summary>
internal sealed record StrategyBenchPlanJson(IReadOnlyList<StrategyBenchPlanSlot> Schedule);

/// <summary>One migration of the schedule as <c>--plan --json</c> prints it.</summary>
internal sealed record StrategyBenchPlanSlot(string Guest, int Run, int Position, string Config);
