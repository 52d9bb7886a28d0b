using System;
using System.Collections.Generic;
using System.Text.Json;
using System.Text.Json.Serialization;
using MigrateKit.Estimation;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>How a migration ended.</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<MigrationStatus>))]
public enum MigrationStatus
{
    /// <summary>The destination runs the VM; the source is paused for good.</summary>
    Completed,

    /// <summary>The policy gave up (limit, deadline, no convergence); the source keeps running.</summary>
    Aborted,

    /// <summary>Something broke (connection, destination, digest); the source keeps running.</summary>
    Failed,
}

/// <summary>The phase a migration was in when it failed.</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<MigrationPhase>))]
public enum MigrationPhase
{
    /// <summary>Exchanging Hello and HelloAck.</summary>
    Handshake,

    /// <summary>Starting dirty logging.</summary>
    StartTracking,

    /// <summary>Sending a pre-copy round.</summary>
    Send,

    /// <summary>Harvesting the dirty log.</summary>
    Harvest,

    /// <summary>Pausing, sending the rest, waiting for the destination to resume.</summary>
    Switchover,
}

/// <summary>A migration failed; the source was left running with its memory intact.</summary>
public sealed class MigrationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MigrationException(MigrationPhase phase, string message, Exception? inner = null)
        : base($"Migration failed during {phase}: {message}", inner)
    {
        Phase = phase;
        Detail = message;
    }

    /// <summary>The message without its "Migration failed during …" prefix, for wrapping it in another.</summary>
    internal string Detail { get; }

    /// <summary>Where it failed.</summary>
    public MigrationPhase Phase { get; }
}

/// <summary>Progress after each round, as reported through <see cref="IProgress{T}"/>.</summary>
public sealed record MigrationProgress
{
    /// <summary>The round just finished (0 is the full copy).</summary>
    public required int Round { get; init; }

    /// <summary>Time since the start.</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>Bytes on the wire so far.</summary>
    public required ulong BytesSent { get; init; }

    /// <summary>Bytes a switchover would send now.</summary>
    public required ulong RemainingBytes { get; init; }

    /// <summary>Pages the round's harvest found.</summary>
    public required ulong DirtyPages { get; init; }

    /// <summary>Pages hot by the k-of-n rule.</summary>
    public required ulong HotPages { get; init; }

    /// <summary>Hot pages held back for the switchover.</summary>
    public required ulong DeferredPages { get; init; }

    /// <summary>Dirtying rate measured over the round.</summary>
    public required double DirtyRatePagesPerSecond { get; init; }

    /// <summary>The bandwidth estimate.</summary>
    public required double BandwidthBytesPerSecond { get; init; }

    /// <summary>The throttle in force for the next round.</summary>
    public required int ThrottlePercent { get; init; }

    /// <summary>The forecast made after the round.</summary>
    public required Forecast Forecast { get; init; }

    /// <summary>What the policy decided.</summary>
    public required MigrationAction Action { get; init; }

    /// <summary>Decisions taken since the previous progress report, with their reasons.</summary>
    public IReadOnlyList<MigrationDecision> Decisions { get; init; } = [];

    /// <summary>Pages the round sent with data, in whatever form.</summary>
    public ulong PagesSent { get; init; }

    /// <summary>Of <see cref="PagesSent"/>, those sent as deltas against the copy sent before.</summary>
    public ulong DeltaPages { get; init; }

    /// <summary>Of <see cref="PagesSent"/>, those sent LZ4-compressed.</summary>
    public ulong CompressedPages { get; init; }

    /// <summary>Sets the encoded page counts from the engine's.</summary>
    internal EncodingTally Encoding
    {
        init
        {
            DeltaPages = value.DeltaPages;
            CompressedPages = value.CompressedPages;
        }
    }
}

/// <summary>One row of a report: a pre-copy round, or the switchover.</summary>
public sealed class RoundReport
{
    /// <summary>The round (the switchover is the last row, <see cref="Action"/> <see cref="RoundAction.Switchover"/>).</summary>
    public int Round { get; init; }

    /// <summary>Bytes on the wire in this round.</summary>
    public ulong BytesSent { get; init; }

    /// <summary>Pages sent with their data.</summary>
    public ulong PagesSent { get; init; }

    /// <summary>Pages sent as zero runs (no data).</summary>
    public ulong ZeroPages { get; init; }

    /// <summary>How long the round took (sending and harvesting), in milliseconds.</summary>
    public double DurationMs { get; init; }

    /// <summary>How long sending the round's pages took, until the last byte was handed to the connection, in milliseconds.</summary>
    public double SendMs { get; init; }

    /// <summary>How long the harvest after the round took (the switchover's row: the final harvest, guest paused), in milliseconds.</summary>
    public double HarvestMs { get; init; }

    /// <summary>Pages found dirty by the harvest after the round.</summary>
    public ulong DirtyPages { get; init; }

    /// <summary>Hot pages after the round.</summary>
    public ulong HotPages { get; init; }

    /// <summary>Hot pages deferred to the switchover.</summary>
    public ulong DeferredPages { get; init; }

    /// <summary>Dirtying rate over the round, pages per second.</summary>
    public double DirtyRate { get; init; }

    /// <summary>Bandwidth estimate after the round, bytes per second.</summary>
    public double Bandwidth { get; init; }

    /// <summary>Throttle in force during the round, percent.</summary>
    public int ThrottlePercent { get; init; }

    /// <summary>Pages sent delta-encoded against the copy sent before (libvirt: QEMU's xbzrle).</summary>
    public ulong DeltaPages { get; init; }

    /// <summary>The wire bytes of <see cref="DeltaPages"/>.</summary>
    public ulong DeltaBytes { get; init; }

    /// <summary>Re-dirtied pages the delta encoder found no earlier copy of (its cache missed), sent whole.</summary>
    public ulong DeltaCacheMisses { get; init; }

    /// <summary>Re-dirtied pages whose delta came out larger than the page (they changed too much), sent whole.</summary>
    public ulong DeltaOverflows { get; init; }

    /// <summary>Pages sent LZ4-compressed (engine only).</summary>
    public ulong CompressedPages { get; init; }

    /// <summary>The bytes of <see cref="CompressedPages"/>.</summary>
    public ulong CompressedBytes { get; init; }

    /// <summary>Sets the delta and compression figures from the engine's counts.</summary>
    internal EncodingTally Encoding
    {
        init
        {
            DeltaPages = value.DeltaPages;
            DeltaBytes = value.DeltaBytes;
            DeltaCacheMisses = value.CacheMisses;
            DeltaOverflows = value.Overflows;
            CompressedPages = value.CompressedPages;
            CompressedBytes = value.CompressedBytes;
        }
    }

    /// <summary>Predicted downtime after the round, milliseconds.</summary>
    public double PredictedDowntimeMs { get; init; }

    /// <summary>The low end of the forecast's interval after the round, milliseconds.</summary>
    public double PredictedDowntimeLowMs { get; init; }

    /// <summary>The high end of the forecast's interval after the round, milliseconds: what the switchover is decided on.</summary>
    public double PredictedDowntimeHighMs { get; init; }

    /// <summary>Predicted total time after the round, milliseconds (null: not converging as things stand).</summary>
    public double? PredictedTotalMs { get; init; }

    /// <summary>The forecast's verdict after the round: converging, stalled or diverging (unknown before there is a trend).</summary>
    [JsonConverter(typeof(CamelCaseEnumConverter<ConvergenceVerdict>))]
    public ConvergenceVerdict Verdict { get; init; }

    /// <summary>What the round ended with: the policy's decision, or <see cref="RoundAction.Switchover"/> on the switchover's row.</summary>
    public RoundAction Action { get; init; }
}

/// <summary>A downtime split into its parts, milliseconds.</summary>
/// <param name="PauseMs">Stopping the vCPUs.</param>
/// <param name="HarvestMs">The final harvest.</param>
/// <param name="TransferMs">Sending the remaining pages, device state and digests, until the destination has them: measured, until its
/// Ready less the checks it reports (so the way back of that exchange counts here).</param>
/// <param name="ResumeMs">The rest of the commit step, up to the destination's Ack: its checks and restore, Commit, its start.</param>
public sealed record DowntimeParts(double PauseMs, double HarvestMs, double TransferMs, double ResumeMs);

/// <summary>The outcome of a migration, with every round, predicted next to actual.</summary>
public sealed record MigrationReport
{
    /// <summary>Completed, aborted or failed.</summary>
    public MigrationStatus Status { get; init; }

    /// <summary>Why it was aborted or failed.</summary>
    public string? Reason { get; init; }

    /// <summary>The phase of a failure.</summary>
    public MigrationPhase? FailedPhase { get; init; }

    /// <summary>Guest memory size in bytes.</summary>
    public ulong MemoryBytes { get; init; }

    /// <summary>Pre-copy rounds run (the switchover not counted).</summary>
    public int Rounds { get; init; }

    /// <summary>Bytes on the wire in total.</summary>
    public ulong BytesSent { get; init; }

    /// <summary>Pages sent with data in total.</summary>
    public ulong PagesSent { get; init; }

    /// <summary>Time from start to the end, milliseconds.</summary>
    public double TotalMs { get; init; }

    /// <summary>Measured downtime: source pause to destination vCPUs running, milliseconds.</summary>
    public double? DowntimeMs { get; init; }

    /// <summary>The forecast of the downtime at the moment of the switchover, milliseconds.</summary>
    public double? PredictedDowntimeMs { get; init; }

    /// <summary>The low end of the interval of the forecast the switchover was decided on, milliseconds.</summary>
    public double? PredictedDowntimeLowMs { get; init; }

    /// <summary>The high end of the interval of the forecast the switchover was decided on, milliseconds (the bound that had to fit the limit).</summary>
    public double? PredictedDowntimeHighMs { get; init; }

    /// <summary>The downtime limit the migration ran under, milliseconds (null: not recorded).</summary>
    public double? DowntimeLimitMs { get; init; }

    /// <summary>The predicted downtime's parts at the switchover.</summary>
    public DowntimeParts? PredictedDowntimeParts { get; init; }

    /// <summary>
    /// Of the predicted commit part (<see cref="DowntimeParts.ResumeMs"/>), milliseconds, what past
    /// switchovers of the kind took beyond their forecast (<see cref="Forecast.FixedCorrection"/>):
    /// the history's correction for a miss of any part, not a cost of the commit itself.
    /// </summary>
    public double? PredictedCorrectionMs { get; init; }

    /// <summary>The measured downtime's parts.</summary>
    public DowntimeParts? ActualDowntimeParts { get; init; }

    /// <summary>|predicted − actual| / actual, percent.</summary>
    public double? PredictionErrorPercent { get; init; }

    /// <summary>The destination's time from Complete to running vCPUs, milliseconds.</summary>
    public double? ResumeMs { get; init; }

    /// <summary>
    /// The commit step's share of the downtime, milliseconds: from the destination's Ready
    /// arriving to its Ack (Commit out, the destination's start, Ack back). Part of the last downtime part.
    /// </summary>
    public double? CommitMs { get; init; }

    /// <summary>The strongest throttle applied, percent.</summary>
    public int MaxThrottlePercent { get; init; }

    /// <summary>Hot pages that were held back and sent only during the switchover.</summary>
    public ulong HotPagesDeferred { get; init; }

    /// <summary>Pages sent during the switchover.</summary>
    public ulong SwitchoverPages { get; init; }

    /// <summary>Whether the destination's digests of what it received matched the source's.</summary>
    public bool? DigestsMatched { get; init; }

    /// <summary>Whether the source's memory, hashed after the switchover, equals what was sent (no write was missed).</summary>
    public bool? SourceMemoryVerified { get; init; }

    /// <summary>
    /// True when the source sent Commit (or was cancelled or timed out waiting for the answer to
    /// Complete) and could not learn whether the destination started the VM: it may be running it,
    /// so the source was left paused. <see cref="Reason"/> says what each side is known to have
    /// done; <see cref="MigrationRecovery.QueryAsync"/> (<c>migratekit recover</c>) with
    /// <see cref="SessionId"/> asks the destination.
    /// </summary>
    public bool OutcomeUnknown { get; init; }

    /// <summary>The migration's session, as its Hello named it (32 hex digits); for a Query after an unknown outcome.</summary>
    public string? SessionId { get; init; }

    /// <summary>How often the link was lost and the engine reconnected and continued.</summary>
    public int Reconnections { get; init; }

    /// <summary>Every round, then the switchover.</summary>
    public IReadOnlyList<RoundReport> RoundsDetail { get; init; } = [];

    /// <summary>The strategy the migration ran with (libvirt migrations: <c>precopy</c>, <c>xbzrle</c>, <c>multifd</c>, <c>postcopy</c>); null when not recorded.</summary>
    public string? Strategy { get; init; }

    /// <summary>Every decision taken, with its reason: the strategy at the start, then each change while it ran.</summary>
    public IReadOnlyList<MigrationDecision> Decisions { get; init; } = [];

    /// <summary>Where the forecast's fixed costs and switchover speed came from (libvirt migrations); null when not recorded.</summary>
    public CostOrigins? Costs { get; init; }

    /// <summary>The typed failure, when <see cref="Status"/> is not Completed.</summary>
    [JsonIgnore]
    public Exception? Error { get; init; }

    /// <summary>The report as indented JSON (camelCase).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, MigrationJsonContext.Default.MigrationReport);

    /// <summary>Reads a report written by <see cref="ToJson"/>.</summary>
    public static MigrationReport FromJson(string json) =>
        JsonSerializer.Deserialize(json, MigrationJsonContext.Default.MigrationReport) ?? throw new JsonException("The JSON holds no report.");
}

/// <summary>Source-generated JSON metadata for reports (trimming- and AOT-safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MigrationReport))]
internal sealed partial class MigrationJsonContext : JsonSerializerContext
{
}

/// <summary>
/// Enum values as the CLI's JSON spells them ("completed", "switchover", "raiseLimit"); reading also
/// takes the PascalCase names earlier reports were written with.
/// </summary>
internal sealed class CamelCaseEnumConverter<TEnum>() : JsonStringEnumConverter<TEnum>(JsonNamingPolicy.CamelCase)
    where TEnum : struct, Enum;
