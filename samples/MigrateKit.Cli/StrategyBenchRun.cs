using System;
using System.Collections.Generic;
using System.Text.Json.Serialization;

namespace MigrateKit.Cli;

/// <summary>How one migration of the bench ended.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<StrategyBenchOutcome>))]
internal enum StrategyBenchOutcome
{
    /// <summary>The domain runs on the other host and its passes go on there.</summary>
    [JsonStringEnumMemberName("converged")]
    Converged,

    /// <summary>Still migrating at the deadline (or MigrateKit's policy gave up): aborted, the domain goes on on its host.</summary>
    [JsonStringEnumMemberName("notConverged")]
    NotConverged,

    /// <summary>libvirt refused or broke the migration, or the guest did not go on where it should run.</summary>
    [JsonStringEnumMemberName("failed")]
    Failed,
}

/// <summary>One migration the bench made, as <c>--json</c> prints it.</summary>
internal sealed record StrategyBenchRun
{
    /// <summary>The run, from 1.</summary>
    public required int Run { get; init; }

    /// <summary>The migration's place in its run, from 1 (the order rotates per run).</summary>
    public required int Position { get; init; }

    public required string Config { get; init; }

    /// <summary>True when the domain went from <c>--from</c> to <c>--to</c>, false when it came back.</summary>
    public required bool Forward { get; init; }

    public StrategyBenchOutcome Outcome { get; init; }

    /// <summary>Why it did not converge, or failed.</summary>
    public string? Reason { get; init; }

    /// <summary>From the call to its return: everything the caller waits for, MigrateKit's measurements before it starts included.</summary>
    public double? WallMs { get; init; }

    /// <summary>libvirt's job time (completed job statistics on the arriving host), or MigrateKit's total.</summary>
    public double? JobMs { get; init; }

    /// <summary>The downtime libvirt measured.</summary>
    public double? DowntimeMs { get; init; }

    /// <summary>Bytes sent (libvirt's data processed, or MigrateKit's bytes sent).</summary>
    public ulong? Bytes { get; init; }

    /// <summary>When the plain runs' downtime limit was set on the job, ms after the call (null: the job ended first, or a MigrateKit run).</summary>
    public double? LimitSetAtMs { get; init; }

    /// <summary>The strategy MigrateKit chose (MigrateKit runs only).</summary>
    public string? Strategy { get; init; }

    /// <summary>MigrateKit's forecast of the downtime at the switchover.</summary>
    public double? PredictedDowntimeMs { get; init; }

    /// <summary>|forecast − actual downtime|.</summary>
    public double? ForecastErrorMs { get; init; }

    /// <summary>Whether the forecast was within max(10 ms, 25 %) of the actual downtime.</summary>
    public bool? ForecastWithin { get; init; }

    /// <summary>MigrateKit's decisions, each with its reason.</summary>
    public IReadOnlyList<string>? Decisions { get; init; }

    /// <summary>The forecast allowance: 25 % of the actual downtime, at least 10 ms.</summary>
    internal static double ForecastAllowanceMs(double actualMs) => Math.Max(10, 0.25 * actualMs);

    /// <summary>This row with the forecast's error worked out from <see cref="PredictedDowntimeMs"/> and <see cref="DowntimeMs"/>.</summary>
    internal StrategyBenchRun WithForecastError() =>
        PredictedDowntimeMs is double p && DowntimeMs is double a
            ? this with { ForecastErrorMs = Math.Abs(p - a), ForecastWithin = Math.Abs(p - a) <= ForecastAllowanceMs(a) }
            : this;
}
