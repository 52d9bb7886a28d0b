using System;

namespace MigrateKit.Estimation;

/// <summary>Whether a migration is on its way to a switchover that fits the downtime limit.</summary>
public enum ConvergenceVerdict
{
    /// <summary>Not enough rounds to tell.</summary>
    Unknown,

    /// <summary>Remaining work shrinks from round to round; a switchover within the limit is ahead.</summary>
    Converging,

    /// <summary>Remaining work neither shrinks nor grows much.</summary>
    Stalled,

    /// <summary>The guest dirties memory faster than it can be sent.</summary>
    Diverging,
}

/// <summary>What a switchover started now would spend its downtime on.</summary>
public readonly record struct DowntimeBreakdown(TimeSpan Pause, TimeSpan FinalHarvest, TimeSpan Transfer, TimeSpan DeviceState, TimeSpan Resume)
{
    /// <summary>The sum of the parts.</summary>
    public TimeSpan Total => Pause + FinalHarvest + Transfer + DeviceState + Resume;

    /// <summary>The parts that do not depend on how much memory is dirty.</summary>
    public TimeSpan Fixed => Pause + FinalHarvest + DeviceState + Resume;
}

/// <summary>A forecast made after a round's harvest.</summary>
public sealed record Forecast
{
    /// <summary>The round just harvested.</summary>
    public required int Round { get; init; }

    /// <summary>Downtime if the switchover started now.</summary>
    public required TimeSpan PredictedDowntime { get; init; }

    private readonly TimeSpan? _low;
    private readonly TimeSpan? _high;

    /// <summary>The low end of the interval the downtime is expected in.</summary>
    /// <value>The default is <see cref="PredictedDowntime"/>: no interval.</value>
    public TimeSpan DowntimeLow { get => _low ?? PredictedDowntime; init => _low = value; }

    /// <summary>
    /// The high end of the interval: the point estimate plus what the spread of the measurements,
    /// the errors of this migration's earlier predictions and the machine's past switchovers allow.
    /// The engine switches over only when this fits the limit.
    /// </summary>
    /// <value>The default is <see cref="PredictedDowntime"/>: no interval.</value>
    public TimeSpan DowntimeHigh { get => _high ?? PredictedDowntime; init => _high = value; }

    /// <summary>The parts of <see cref="PredictedDowntime"/>.</summary>
    public required DowntimeBreakdown Breakdown { get; init; }

    /// <summary>
    /// Of the breakdown's resume part, what this machine's past switchovers of the kind took beyond
    /// their forecast (see <see cref="DowntimeHistory"/>; negative where they took less): a miss of
    /// any part lands there, so a report can tell it from the resume estimate. Zero without history.
    /// </summary>
    public TimeSpan FixedCorrection { get; init; }

    /// <summary>Predicted time from the start of the migration to its end, if it converges as it goes; null when it would not converge without a change.</summary>
    public TimeSpan? PredictedTotalTime { get; init; }

    /// <summary>Converging, stalled or diverging.</summary>
    public required ConvergenceVerdict Verdict { get; init; }

    /// <summary>The bandwidth the forecast assumes (conservative).</summary>
    public required double BandwidthBytesPerSecond { get; init; }

    /// <summary>How fast the guest dirties pages that are re-sent each round.</summary>
    public required double DirtyBytesPerSecond { get; init; }

    /// <summary>What a switchover would send now.</summary>
    public required ulong PendingBytes { get; init; }

    /// <summary>What the next pre-copy round would send.</summary>
    public required ulong NextRoundBytes { get; init; }

    /// <summary>Hot pages held back for the switchover.</summary>
    public required ulong DeferredBytes { get; init; }

    /// <summary>Dirtying rate over bandwidth: each round sends about this fraction of the previous one.</summary>
    public required double ConvergenceRatio { get; init; }
}

/// <summary>What the engine knows right after a harvest.</summary>
public readonly record struct ForecastInput
{
    /// <summary>The round just harvested.</summary>
    public required int Round { get; init; }

    /// <summary>Time since the migration started.</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>Bytes a switchover would send now (all dirty or never-sent non-zero pages, framing included).</summary>
    public required ulong PendingBytes { get; init; }

    /// <summary>Bytes the next pre-copy round would send (pending minus deferred).</summary>
    public required ulong NextRoundBytes { get; init; }

    /// <summary>Bytes of hot pages held back for the switchover.</summary>
    public required ulong DeferredBytes { get; init; }

    /// <summary>Dirtying rate of pages that are not deferred.</summary>
    public required double WarmDirtyBytesPerSecond { get; init; }

    /// <summary>Dirtying rate of all pages.</summary>
    public required double TotalDirtyBytesPerSecond { get; init; }

    /// <summary>
    /// How long the guest has been writing pages the last harvest will not report: half the
    /// harvest (it re-protects pages as it goes) and the time since it ended. A switchover's
    /// final harvest finds what the guest dirtied in that time and until the vCPUs stop.
    /// </summary>
    /// <value>Zero when unknown (the pause alone is counted then).</value>
    public TimeSpan DirtyingSinceHarvest { get; init; }

    /// <summary>
    /// The 2 MiB chunks of guest memory the switchover's final harvest is expected to find a
    /// dirty page in, which prices it where the history has learnt a cost per chunk (see
    /// <see cref="DowntimeHistory.FinalHarvestCost"/>); null: unknown.
    /// </summary>
    public double? HarvestChunks { get; init; }

    /// <summary>Size of the device state.</summary>
    public required ulong DeviceStateBytes { get; init; }

    /// <summary>Guest memory size (the final harvest covers all of it).</summary>
    public required ulong MemoryBytes { get; init; }

    /// <summary>The downtime limit.</summary>
    public required TimeSpan MaxDowntime { get; init; }

    /// <summary>The bandwidth to expect (the point forecast's).</summary>
    public required double BandwidthBytesPerSecond { get; init; }

    /// <summary>A low quantile of the bandwidth measurements, for the forecast's upper bound; null: the same as <see cref="BandwidthBytesPerSecond"/>.</summary>
    public double? BandwidthLowBytesPerSecond { get; init; }

    /// <summary>Bytes a bandwidth limiter lets through at once before its rate applies (0 without a limiter).</summary>
    public ulong BurstBytes { get; init; }

    /// <summary>The bandwidth of the stop-and-copy when it differs from the pre-copy rounds'
    /// (QEMU lifts its rate limit once the guest is stopped); null: the same as <see cref="BandwidthBytesPerSecond"/>.</summary>
    public double? SwitchoverBandwidthBytesPerSecond { get; init; }

    /// <summary>
    /// The switchover's transfer when the caller prices it from its own measurements (the
    /// sender's work per page, the link's rate, the destination's work per page once the bytes
    /// arrive), the pages written until the vCPUs stop included and a limiter's burst credited;
    /// null: <see cref="PendingBytes"/> and the pause's writes at the switchover bandwidth, less
    /// <see cref="BurstBytes"/>.
    /// </summary>
    public TimeSpan? SwitchoverTransfer { get; init; }

    /// <summary>What a limiter's burst took off <see cref="SwitchoverTransfer"/> (the interval's top does not count on it); used only with it.</summary>
    public TimeSpan SwitchoverBurstCredit { get; init; }
}
