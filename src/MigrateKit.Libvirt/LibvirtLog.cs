using System;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using MigrateKit.Migration;

namespace MigrateKit.Libvirt;

/// <summary>
/// The log messages of <see cref="LibvirtMigrator"/> and its helpers (event ids 100–149):
/// Information at the start, the switchover and the end, Debug per iteration, Warning when a
/// migration is aborted or fails.
/// </summary>
internal static partial class LibvirtLog
{
    [LoggerMessage(100, LogLevel.Information, "Migrating {Domain} from {Source} to {Destination}: {Plan}")]
    internal static partial void MigrationStarting(ILogger logger, string domain, string source, string destination, string plan);

    [LoggerMessage(101, LogLevel.Debug, "Iteration events unavailable on {Uri}; polling only")]
    internal static partial void IterationEventsUnavailable(ILogger logger, Exception exception, string uri);

    [LoggerMessage(102, LogLevel.Debug, "Pause costs {Pause:F2} ms, resume {Resume:F2} ms")]
    internal static partial void PauseCalibrated(ILogger logger, double pause, double resume);

    [LoggerMessage(103, LogLevel.Information, "Dirty rate of {Domain}: {Rate} MiB/s ({Mode})")]
    internal static partial void DirtyRateMeasured(ILogger logger, string domain, ulong rate, DirtyRateMode mode);

    [LoggerMessage(104, LogLevel.Warning, "The dirty-rate calculation of {Domain} did not finish; starting without it")]
    internal static partial void DirtyRateUnfinished(ILogger logger, string domain);

    [LoggerMessage(105, LogLevel.Warning, "The dirty-rate calculation of {Domain} failed; starting without it")]
    internal static partial void DirtyRateFailed(ILogger logger, Exception exception, string domain);

    private const string IterationMessage =
        "Iteration {Iteration} of {Domain}: {BytesSent} bytes in {DurationMs:F0} ms, {PendingBytes} bytes pending, dirty rate {DirtyRate:F0} pages/s, throttle {Throttle}%, deltas {DeltaPages} pages in {DeltaBytes} bytes ({CacheMisses} cache misses, {Overflows} overflows); predicted downtime {PredictedDowntimeMs:F1} ms ({Verdict}); {Action}";

    /// <summary>Event 106, Debug: an iteration seen by polling, what it sent and the forecast after it, each figure a named value.</summary>
    internal static void Iteration(ILogger logger, string domain, RoundReport row, ulong pendingBytes)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            logger.Log(LogLevel.Debug, new EventId(106, nameof(Iteration)), IterationMessage, row.Round, domain, row.BytesSent, row.DurationMs, pendingBytes,
                row.DirtyRate, row.ThrottlePercent, row.DeltaPages, row.DeltaBytes, row.DeltaCacheMisses, row.DeltaOverflows, row.PredictedDowntimeMs,
                ReportNames.Of(row.Verdict), ReportNames.Of(row.Action));
        }
    }

    [LoggerMessage(107, LogLevel.Information, "{Domain} is in the stop-and-copy after {Iterations} iterations: predicted downtime {PredictedDowntimeMs:F1} ms")]
    internal static partial void SwitchoverSeen(ILogger logger, string domain, int iterations, double? predictedDowntimeMs);

    [LoggerMessage(108, LogLevel.Error, "Lost the source host while polling {Domain}")]
    internal static partial void PollingLost(ILogger logger, Exception exception, string domain);

    [LoggerMessage(109, LogLevel.Warning, "Aborting the migration of {Domain}: {Reason}")]
    internal static partial void Aborting(ILogger logger, string domain, string? reason);

    [LoggerMessage(110, LogLevel.Information, "Raising QEMU's downtime limit of {Domain} to {Limit} ms: {Reason}")]
    internal static partial void RaisingLimit(ILogger logger, string domain, double limit, string? reason);

    [LoggerMessage(111, LogLevel.Information, "Switching {Domain} to postcopy: {Reason}")]
    internal static partial void StartingPostcopy(ILogger logger, string domain, string? reason);

    [LoggerMessage(112, LogLevel.Warning, "Postcopy could not start for {Domain}")]
    internal static partial void PostcopyFailed(ILogger logger, Exception exception, string domain);

    [LoggerMessage(113, LogLevel.Debug, "Could not set the downtime limit of {Domain}")]
    internal static partial void SetDowntimeFailed(ILogger logger, Exception exception, string domain);

    [LoggerMessage(114, LogLevel.Warning, "Could not abort the migration of {Domain}")]
    internal static partial void AbortFailed(ILogger logger, Exception exception, string domain);

    [LoggerMessage(115, LogLevel.Warning, "No completed job statistics for {Domain} on the destination")]
    internal static partial void NoCompletedStats(ILogger logger, Exception exception, string domain);

    [LoggerMessage(116, LogLevel.Error, "Could not resume {Domain} on the source after the failed migration")]
    internal static partial void ResumeFailed(ILogger logger, Exception exception, string domain);

    [LoggerMessage(117, LogLevel.Information, "Migrated {Domain} in {TotalMs:F0} ms: downtime {DowntimeMs:F1} ms (predicted {PredictedDowntimeMs:F1} ms), {BytesSent} bytes in {Iterations} iterations")]
    internal static partial void MigrationCompleted(ILogger logger, string domain, double totalMs, double? downtimeMs, double? predictedDowntimeMs, ulong bytesSent, int iterations);

    [LoggerMessage(118, LogLevel.Warning, "Migration of {Domain} aborted: {Reason}")]
    internal static partial void MigrationAborted(ILogger logger, string domain, string? reason);

    [LoggerMessage(119, LogLevel.Warning, "Migration of {Domain} failed: {Reason}")]
    internal static partial void MigrationFailed(ILogger logger, string domain, string? reason);

    [LoggerMessage(130, LogLevel.Warning, "libvirt at {Uri} failed (attempt {Attempt}); reconnecting")]
    internal static partial void Reconnecting(ILogger logger, Exception? exception, string uri, int attempt);

    [LoggerMessage(140, LogLevel.Information, "Calibrated {Source} -> {Destination}: stop-and-copy {Speed:F0} MiB/s, fixed downtime {Fixed:F1} ms (probes: {Small}, {Large})")]
    internal static partial void Calibrated(ILogger logger, string source, string destination, double speed, double @fixed, ProbeResult small, ProbeResult large);

    [LoggerMessage(141, LogLevel.Information, "Bursts of {Domain}'s rate-limited pre-copy: {Speed:F0} MiB/s, the speed the stop-and-copy reaches")]
    internal static partial void BurstsTimed(ILogger logger, string domain, double speed);

    [LoggerMessage(142, LogLevel.Debug, "Bursts of {Domain}'s rate-limited pre-copy could not be timed; the stop-and-copy's speed stays {Speed:F0} MiB/s")]
    internal static partial void BurstsUntimed(ILogger logger, string domain, double speed);

    [LoggerMessage(143, LogLevel.Information, "Costs of {Source} -> {Destination}: stop-and-copy {Speed:F0} MiB/s, fixed downtime {Fixed:F1} ms, from {Samples} migration(s)")]
    internal static partial void CostsLoaded(ILogger logger, string source, string destination, double speed, double @fixed, int samples);

    [LoggerMessage(144, LogLevel.Information, "Learned {Route}: stop-and-copy {Speed:F0} MiB/s, downtime {Downtime:F1} ms; the store now holds {CombinedSpeed:F0} MiB/s, {CombinedFixed:F1} ms from {Samples} migration(s)")]
    internal static partial void CostsLearned(ILogger logger, string route, double speed, double downtime, double combinedSpeed, double combinedFixed, int samples);

    [LoggerMessage(145, LogLevel.Warning, "The calibration store could not keep what {Source} -> {Destination} showed")]
    internal static partial void CostsNotSaved(ILogger logger, Exception exception, string source, string destination);

    [LoggerMessage(146, LogLevel.Information, "Growing the xbzrle cache of {Domain} to {CacheMiB} MiB: {Reason}")]
    internal static partial void GrowingCache(ILogger logger, string domain, ulong cacheMiB, string reason);

    [LoggerMessage(147, LogLevel.Warning, "The xbzrle cache of {Domain} could not be resized")]
    internal static partial void GrowCacheFailed(ILogger logger, Exception exception, string domain);

    [LoggerMessage(148, LogLevel.Debug, "The versions of libvirt and QEMU at {Uri} are unknown")]
    internal static partial void VersionsUnknown(ILogger logger, Exception exception, string uri);

    [LoggerMessage(149, LogLevel.Debug, "Checks and probes of {Domain} took {Ms:F0} ms before the migrate call")]
    internal static partial void Prepared(ILogger logger, string domain, double ms);

    [LoggerMessage(150, LogLevel.Debug, "The outcome of {Domain} was resolved {Ms:F0} ms after the migrate call returned")]
    internal static partial void Resolved(ILogger logger, string domain, double ms);

    [LoggerMessage(151, LogLevel.Debug, "Dirty rate of {Domain} over {PeriodSeconds:F0} s: {Rate} MiB/s ({Mode}), {DistinctPages} distinct pages")]
    internal static partial void DirtyRatePoint(ILogger logger, string domain, double periodSeconds, double rate, string mode, long distinctPages);
}
