using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Serialization;

namespace MigrateKit.Cli;

/// <summary>One migration of <c>bench vs-qemu</c>, QEMU's or MigrateKit's, as <c>--json</c> prints it.</summary>
internal sealed record VsQemuRun
{
    internal const string Completed = "completed";
    internal const string NotConverged = "notConverged";
    internal const string Failed = "failed";

    /// <summary>The repetition, from 1.</summary>
    public required int Run { get; init; }

    /// <summary>"completed", "notConverged" (still migrating at the cut-off, or MigrateKit's policy gave up) or "failed".</summary>
    public required string Status { get; init; }

    /// <summary>Why it did not converge or failed, or what the destination check found.</summary>
    public string? Reason { get; init; }

    /// <summary>The migration's total time (QEMU's <c>total-time</c>, MigrateKit's report); the cut-off when it did not converge.</summary>
    public double? TotalMs { get; init; }

    public double? DowntimeMs { get; init; }

    /// <summary>QEMU's RAM bytes transferred, or MigrateKit's bytes sent (at the cut-off when it did not converge).</summary>
    public ulong? BytesSent { get; init; }

    /// <summary>QEMU's dirty syncs, or MigrateKit's rounds.</summary>
    public int? Rounds { get; init; }

    /// <summary>QEMU's last <c>expected-downtime</c> before it switched over, or MigrateKit's forecast at the switchover.</summary>
    public double? PredictedDowntimeMs { get; init; }

    /// <summary>|predicted − actual| / actual × 100.</summary>
    public double? PredictionErrorPct { get; init; }

    /// <summary>|predicted − actual| in ms.</summary>
    public double? PredictionErrorMs { get; init; }

    /// <summary>
    /// The error the targets score (the rule of <c>bench forecast</c>): a downtime under 20 ms
    /// predicted within 5 ms scores 0 %, where scheduling noise on the host is as large as the downtime.
    /// </summary>
    public double? ScoredErrorPct { get; init; }

    /// <summary>The highest vCPU throttle applied.</summary>
    public int? MaxThrottlePercent { get; init; }

    /// <summary>Whether the guest ran on at the destination (and, for MigrateKit, memory digests matched).</summary>
    public bool Verified { get; init; }

    /// <summary>QEMU's xbzrle figures, in a scenario where QEMU runs with xbzrle.</summary>
    public VsQemuDeltas? Xbzrle { get; init; }

    /// <summary>MigrateKit's delta figures (the counterpart of QEMU's xbzrle), where it sent deltas.</summary>
    public VsQemuDeltas? Deltas { get; init; }

    /// <summary>MigrateKit's pages sent LZ4-compressed.</summary>
    public ulong? CompressedPages { get; init; }

    /// <summary>This row with its prediction error worked out.</summary>
    internal VsQemuRun WithError() =>
        PredictedDowntimeMs is double p && DowntimeMs is double a && a > 0
            ? this with
            {
                PredictionErrorMs = Math.Abs(p - a),
                PredictionErrorPct = Math.Abs(p - a) / a * 100,
                ScoredErrorPct = a < ForecastRun.SmallDowntimeMs && Math.Abs(p - a) <= ForecastRun.AllowanceMs ? 0 : Math.Abs(p - a) / a * 100,
            }
            : this;
}

/// <summary>The medians of one side of a scenario.</summary>
internal sealed record VsQemuSide
{
    /// <summary>Runs that completed (and were verified).</summary>
    public int Converged { get; init; }

    /// <summary>Whether the medians are over completed runs; false: no run converged and they are the figures at the cut-off.</summary>
    public bool MediansOfConverged { get; init; }

    public double? TotalMs { get; init; }

    public double? DowntimeMs { get; init; }

    public double? BytesSent { get; init; }

    public double? Rounds { get; init; }

    public double? PredictedDowntimeMs { get; init; }

    public double? PredictionErrorPct { get; init; }

    public double? PredictionErrorMs { get; init; }

    /// <summary>The median of the runs' <see cref="VsQemuRun.ScoredErrorPct"/>: what the targets compare.</summary>
    public double? ScoredErrorPct { get; init; }

    /// <summary>The medians of QEMU's xbzrle figures, in a scenario where QEMU runs with xbzrle.</summary>
    public VsQemuDeltas? Xbzrle { get; init; }

    /// <summary>The medians of MigrateKit's delta figures, where it sent deltas.</summary>
    public VsQemuDeltas? Deltas { get; init; }

    /// <summary>The median of MigrateKit's compressed pages.</summary>
    public double? CompressedPages { get; init; }

    public required IReadOnlyList<VsQemuRun> Runs { get; init; }

    internal static VsQemuSide Of(IReadOnlyList<VsQemuRun> runs)
    {
        VsQemuRun[] converged = [.. runs.Where(r => r.Status == VsQemuRun.Completed && r.Verified)];
        VsQemuRun[] basis = converged.Length > 0 ? converged : [.. runs.Where(r => r.Status == VsQemuRun.NotConverged)];
        return new VsQemuSide
        {
            Converged = converged.Length,
            MediansOfConverged = converged.Length > 0,
            TotalMs = Median(basis.Select(r => r.TotalMs)),
            DowntimeMs = Median(basis.Select(r => r.DowntimeMs)),
            BytesSent = Median(basis.Select(r => (double?)r.BytesSent)),
            Rounds = Median(basis.Select(r => (double?)r.Rounds)),
            PredictedDowntimeMs = Median(basis.Select(r => r.PredictedDowntimeMs)),
            PredictionErrorPct = Median(basis.Select(r => r.PredictionErrorPct)),
            PredictionErrorMs = Median(basis.Select(r => r.PredictionErrorMs)),
            ScoredErrorPct = Median(basis.Select(r => r.ScoredErrorPct)),
            Xbzrle = VsQemuDeltas.Median(basis.Select(r => r.Xbzrle)),
            Deltas = VsQemuDeltas.Median(basis.Select(r => r.Deltas)),
            CompressedPages = Median(basis.Select(r => (double?)r.CompressedPages)),
            Runs = runs,
        };
    }

    private static double? Median(IEnumerable<double?> values) => ForecastSummary.Median(values.OfType<double>());
}

/// <summary>A target of the issue and whether this run met it.</summary>
internal sealed record VsQemuTarget(string What, bool Met, string Detail);

/// <summary>One scenario: both sides, MigrateKit/QEMU ratios of the medians, the targets.</summary>
internal sealed record VsQemuScenarioResult
{
    public required string Name { get; init; }

    public required string Description { get; init; }

    public required VsQemuSide Qemu { get; init; }

    [JsonPropertyName("migratekit")]
    public required VsQemuSide MigrateKit { get; init; }

    /// <summary>MigrateKit with its page encodings off, in a scenario that compares them (<see cref="VsQemuScenario.ComparesEncodings"/>).</summary>
    [JsonPropertyName("migratekitNoEncodings")]
    public VsQemuSide? MigrateKitNoEncodings { get; init; }

    /// <summary>MigrateKit's median total time / QEMU's (null unless both have one).</summary>
    public double? TotalRatio { get; init; }

    public double? DowntimeRatio { get; init; }

    public double? BytesRatio { get; init; }

    public required IReadOnlyList<VsQemuTarget> Targets { get; init; }

    /// <summary>The medians, ratios and targets of a scenario's runs; <paramref name="noEncodingsRuns"/> only where it compares encodings.</summary>
    internal static VsQemuScenarioResult Of(VsQemuScenario scenario, IReadOnlyList<VsQemuRun> qemuRuns, IReadOnlyList<VsQemuRun> migrateKitRuns, IReadOnlyList<VsQemuRun>? noEncodingsRuns = null)
    {
        VsQemuSide q = VsQemuSide.Of(qemuRuns), m = VsQemuSide.Of(migrateKitRuns);
        var result = new VsQemuScenarioResult
        {
            Name = scenario.Name,
            Description = scenario.Description,
            Qemu = q,
            MigrateKit = m,
            MigrateKitNoEncodings = scenario.ComparesEncodings ? VsQemuSide.Of(noEncodingsRuns ?? []) : null,
            TotalRatio = Ratio(m.TotalMs, q.TotalMs),
            DowntimeRatio = Ratio(m.DowntimeMs, q.DowntimeMs),
            BytesRatio = Ratio(m.BytesSent, q.BytesSent),
            Targets = [],
        };
        return result with { Targets = VsQemuTargets.For(scenario, result) };
    }

    private static double? Ratio(double? a, double? b) => a is double x && b is double y && y > 0 ? x / y : null;
}

/// <summary>The one object <c>bench vs-qemu --json</c> prints.</summary>
internal sealed record VsQemuJson
{
    public required string Date { get; init; }

    public required int Repeat { get; init; }

    public required double CutoffSeconds { get; init; }

    public string? QemuVersion { get; init; }

    public required IReadOnlyList<VsQemuScenarioResult> Scenarios { get; init; }

    public double? Seconds { get; init; }

    /// <summary>Every target of every scenario met.</summary>
    public bool TargetsMet => Scenarios.All(s => s.Targets.All(t => t.Met));

    /// <summary>The same runs with medians, ratios and targets worked out again (for <c>--summarize</c>).</summary>
    /// <exception cref="FormatException">A scenario's name is unknown.</exception>
    internal VsQemuJson Resummarized() => this with
    {
        Scenarios = [.. Scenarios.Select(s => VsQemuScenarioResult.Of(VsQemuScenario.Select(s.Name).Single(), Again(s.Qemu), Again(s.MigrateKit), s.MigrateKitNoEncodings is VsQemuSide off ? Again(off) : null))],
    };

    private static VsQemuRun[] Again(VsQemuSide side) => [.. side.Runs.Select(r => r.WithError())];
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(VsQemuJson))]
internal sealed partial class VsQemuJsonContext : JsonSerializerContext
{
}
