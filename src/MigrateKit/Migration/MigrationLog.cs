using System;
using Microsoft.Extensions.Logging;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// The log messages of <see cref="PreCopyEngine"/> (event ids 1–19) and <see cref="MigrationReceiver"/>
/// (20–39): Information at the start, the switchover and the end, Debug per round, Warning when a
/// migration is aborted or fails.
/// </summary>
internal static partial class MigrationLog
{
    [LoggerMessage(1, LogLevel.Information, "Migrating {Source}: {MemoryBytes} bytes, {Tracker} tracking, downtime limit {MaxDowntimeMs} ms, bandwidth limit {BandwidthLimit}")]
    internal static partial void MigrationStarting(ILogger logger, string source, ulong memoryBytes, string tracker, double maxDowntimeMs, string bandwidthLimit);

    [LoggerMessage(2, LogLevel.Information, "Destination accepted protocol v{Version} after {Rtt:F2} ms")]
    internal static partial void HandshakeDone(ILogger logger, int version, double rtt);

    private const string RoundFinishedMessage =
        "Round {Round} of {Source}: {PagesSent} pages ({BytesSent} bytes) in {DurationMs:F1} ms; {DirtyPages} dirty, {DeferredPages} deferred, {DirtyRate:F0} pages/s; predicted downtime {PredictedDowntimeMs:F1} ms ({Verdict}); {Action}";

    /// <summary>A round's row at Debug (event 3), each figure a named value of the structured message.</summary>
    internal static void RoundFinished(ILogger logger, string source, RoundReport row)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            logger.Log(LogLevel.Debug, new EventId(3, nameof(RoundFinished)), RoundFinishedMessage, row.Round, source, row.PagesSent, row.BytesSent, row.DurationMs,
                row.DirtyPages, row.DeferredPages, row.DirtyRate, row.PredictedDowntimeMs, ReportNames.Of(row.Verdict), ReportNames.Of(row.Action));
        }
    }

    [LoggerMessage(4, LogLevel.Information, "Throttling {Source} to {Percent}%")]
    internal static partial void Throttling(ILogger logger, string source, int percent);

    [LoggerMessage(5, LogLevel.Information, "Switching over {Source} after {Rounds} rounds: predicted downtime {PredictedDowntimeMs:F1} ms")]
    internal static partial void SwitchingOver(ILogger logger, string source, int rounds, double predictedDowntimeMs);

    [LoggerMessage(6, LogLevel.Information, "Migrated {Source} in {TotalMs:F0} ms: downtime {DowntimeMs:F1} ms (predicted {PredictedDowntimeMs:F1} ms), {BytesSent} bytes in {Rounds} rounds")]
    internal static partial void MigrationCompleted(ILogger logger, string source, double totalMs, double downtimeMs, double predictedDowntimeMs, ulong bytesSent, int rounds);

    [LoggerMessage(7, LogLevel.Warning, "Migration of {Source} aborted: {Reason}")]
    internal static partial void MigrationAborted(ILogger logger, string source, string reason);

    [LoggerMessage(8, LogLevel.Warning, "Migration of {Source} failed during {Phase}; the source keeps running")]
    internal static partial void MigrationFailed(ILogger logger, Exception exception, string source, MigrationPhase phase);

    [LoggerMessage(9, LogLevel.Error, "Migration of {Source} failed after Complete without an answer; the source stays paused")]
    internal static partial void MigrationOutcomeUnknown(ILogger logger, Exception exception, string source);

    [LoggerMessage(10, LogLevel.Warning, "Migration of {Source} cancelled during {Phase}; the source keeps running")]
    internal static partial void MigrationCancelled(ILogger logger, string source, MigrationPhase phase);

    [LoggerMessage(11, LogLevel.Error, "Migration of {Source} cancelled after Complete without an answer; the source stays paused")]
    internal static partial void MigrationCancelledOutcomeUnknown(ILogger logger, string source);

    [LoggerMessage(12, LogLevel.Error, "Source memory of {Source} differs from what was sent: a write was not tracked")]
    internal static partial void SourceMemoryDiffers(ILogger logger, string source);

    [LoggerMessage(13, LogLevel.Warning, "Cleaning up {Source} after a completed migration failed")]
    internal static partial void CleanupFailed(ILogger logger, Exception exception, string source);

    [LoggerMessage(19, LogLevel.Warning, "Stopping the tracker of {Source} after the migration ended without completing failed")]
    internal static partial void TrackerStopFailed(ILogger logger, Exception exception, string source);

    [LoggerMessage(20, LogLevel.Information, "Receiving {Source} (session {Session:N}): {MemoryBytes} bytes in {Regions} regions, {Vcpus} vCPUs, protocol v{Version}")]
    internal static partial void ReceiveStarting(ILogger logger, string source, Guid session, ulong memoryBytes, int regions, int vcpus, int version);

    [LoggerMessage(32, LogLevel.Information, "Memory for {Source}: {FreshBytes} bytes fresh, {HugePageBytes} of them advised to use huge pages")]
    internal static partial void ReceiveMemory(ILogger logger, string source, ulong freshBytes, ulong hugePageBytes);

    [LoggerMessage(21, LogLevel.Debug, "Round {Round} of {Source} applied: {Pages} pages and {ZeroPages} zero pages so far, {BytesRead} bytes read")]
    internal static partial void RoundReceived(ILogger logger, int round, string source, ulong pages, ulong zeroPages, long bytesRead);

    [LoggerMessage(22, LogLevel.Information, "Switchover of {Source}: Complete received after {Rounds} rounds")]
    internal static partial void SwitchoverReceived(ILogger logger, string source, int rounds);

    [LoggerMessage(23, LogLevel.Information, "Migration of {Source} received: {Pages} pages, resumed in {ResumeMs:F2} ms (starting the VM {StartMs:F2} ms)")]
    internal static partial void Received(ILogger logger, string source, ulong pages, double resumeMs, double startMs);

    [LoggerMessage(24, LogLevel.Warning, "The source of {Source} gave up: {Reason}; the destination VM is discarded")]
    internal static partial void SourceGaveUp(ILogger logger, string source, string reason);

    [LoggerMessage(25, LogLevel.Warning, "Receiving a migration failed; the destination VM is discarded")]
    internal static partial void ReceiveFailed(ILogger logger, Exception exception);

    [LoggerMessage(26, LogLevel.Error, "Digests of {Source} do not match ({Detail}); the destination VM is not started")]
    internal static partial void DigestMismatch(ILogger logger, string source, string detail);

    [LoggerMessage(27, LogLevel.Warning, "Receiving {Source} was cancelled; the destination VM is discarded")]
    internal static partial void ReceiveCancelled(ILogger logger, string source);

    [LoggerMessage(28, LogLevel.Warning, "The connection of {Source} was lost ({Reason}); session {Session} ({State}) is kept {Seconds:F0} s for the source to reconnect")]
    internal static partial void SessionInterrupted(ILogger logger, string source, string reason, Guid session, string state, double seconds);

    [LoggerMessage(29, LogLevel.Information, "Session {Session} of {Source} resumed from round {Round}")]
    internal static partial void SessionResumed(ILogger logger, Guid session, string source, int round);

    [LoggerMessage(30, LogLevel.Warning, "Session {Session} of {Source} discarded: {Reason}; its VM never ran here")]
    internal static partial void SessionDiscarded(ILogger logger, Guid session, string source, string reason);

    [LoggerMessage(31, LogLevel.Information, "Query about session {Session} ({Action}): {State}")]
    internal static partial void QueryAnswered(ILogger logger, Guid session, string action, string state);

    [LoggerMessage(33, LogLevel.Warning, "Refused a connection from {Address} ({Code}): {Reason}")]
    internal static partial void ConnectionRefused(ILogger logger, string address, MigrationErrorCode code, string reason);

    [LoggerMessage(14, LogLevel.Warning, "The connection to the destination was lost during {Phase} ({Reason}); reconnecting, attempt {Attempt}")]
    internal static partial void Reconnecting(ILogger logger, MigrationPhase phase, string reason, int attempt);

    [LoggerMessage(34, LogLevel.Warning, "Reconnection attempt {Attempt} of {Attempts} failed ({Reason}); trying again in {DelayMs:F0} ms")]
    internal static partial void ReconnectAttemptFailed(ILogger logger, int attempt, int attempts, string reason, double delayMs);

    [LoggerMessage(15, LogLevel.Information, "Session {Session} resumed at round {Round} after {Ms:F0} ms")]
    internal static partial void Resumed(ILogger logger, Guid session, int round, double ms);
}
