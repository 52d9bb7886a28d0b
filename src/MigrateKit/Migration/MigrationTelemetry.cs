using System;
using System.Collections.Generic;
using System.Diagnostics;
using MigrateKit.Diagnostics;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Tracking;

namespace MigrateKit.Migration;

/// <summary>
/// One migration's telemetry and report rows, the same path for the pre-copy engine and the
/// libvirt migrator: the <c>migratekit.migrate</c> span and its <c>migratekit.round</c> children,
/// the per-round measurements, the byte, page and round counters (which end equal to the
/// report's totals), the gauges of the migration under way (total, processed and remaining bytes,
/// dirtying and transfer rates, predicted and actual downtime), the outcome count, and the
/// <see cref="RoundReport"/> rows in order. The names themselves are in <see cref="MigrateKitTelemetry"/>.
/// </summary>
/// <remarks>Not thread-safe: one migration's flow calls it, one call at a time.</remarks>
internal sealed class MigrationTelemetry
{
    private readonly List<RoundReport> _rows = [];

    // What the counters already hold of this migration.
    private ulong _bytesCounted;
    private ulong _pagesCounted;
    private ulong _roundsCounted;

    /// <param name="source"><c>engine</c> or <c>libvirt</c>, the <see cref="MigrateKitTelemetry.Tags.Source"/> of every measurement.</param>
    /// <param name="tags">Further tags of every measurement and of the migration's span.</param>
    internal MigrationTelemetry(string source, params KeyValuePair<string, object?>[] tags)
    {
        ArgumentNullException.ThrowIfNull(source);
        Tags = [new(MigrateKitTelemetry.Tags.Source, source), .. tags];
    }

    /// <summary>The tags of every measurement.</summary>
    internal KeyValuePair<string, object?>[] Tags { get; }

    /// <summary>The report's rows so far.</summary>
    internal IReadOnlyList<RoundReport> Rows => _rows;

    /// <summary>The <see cref="MigrateKitTelemetry.Tags.Status"/> value of a migration status.</summary>
    internal static string StatusName(MigrationStatus status) => status switch
    {
        MigrationStatus.Completed => "completed",
        MigrationStatus.Aborted => "aborted",
        _ => "failed",
    };

    /// <summary>The <see cref="MigrateKitTelemetry.Tags.Tracker"/> value of a tracker (a mock may have no kind).</summary>
    internal static string TrackerKind(IDirtyPageTracker tracker) => tracker.Kind ?? tracker.GetType().Name;

    /// <summary>Starts the migration's span with the tags, the VM's name and the limits it runs under.</summary>
    internal Activity? StartMigration(string vmName, TimeSpan maxDowntime, long? bandwidthLimit)
    {
        Activity? activity = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Migrate);
        if (activity is not null)
        {
            foreach (KeyValuePair<string, object?> tag in Tags)
            {
                activity.SetTag(tag.Key, tag.Value);
            }

            activity.SetTag(MigrateKitTelemetry.Tags.VmName, vmName);
            activity.SetTag(MigrateKitTelemetry.Tags.MaxDowntimeMs, maxDowntime.TotalMilliseconds);
            if (bandwidthLimit is long limit)
            {
                activity.SetTag(MigrateKitTelemetry.Tags.BandwidthLimit, limit);
            }
        }

        return activity;
    }

    /// <summary>
    /// Starts a round's span: now, as the engine's rounds start, or at <paramref name="startTime"/>
    /// for a round seen after the fact (libvirt's iterations are seen by polling).
    /// </summary>
    internal static Activity? StartRound(int round, DateTimeOffset startTime = default)
    {
        Activity? span = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Round, ActivityKind.Internal, parentContext: default, startTime: startTime);
        span?.SetTag(MigrateKitTelemetry.Tags.Round, round);
        return span;
    }

    /// <summary>
    /// The guest's memory is known: tags the migration's span with it and sets the gauges of a
    /// migration that has sent nothing yet (everything remains).
    /// </summary>
    internal void MemoryKnown(ulong memoryBytes, Activity? activity)
    {
        activity?.SetTag(MigrateKitTelemetry.Tags.MemoryBytes, (long)memoryBytes);
        MigrateKitTelemetry.DataTotal.Record((long)memoryBytes, Tags);
        MigrateKitTelemetry.DataProcessed.Record((long)_bytesCounted, Tags);
        MigrateKitTelemetry.DataRemaining.Record((long)memoryBytes, Tags);
    }

    /// <summary>
    /// Records a forecast's figures: the dirtying rate (the engine's measure, pages per second),
    /// the predicted downtime and the throttle in force, and sets the gauges from the forecast.
    /// </summary>
    internal void RecordForecast(Forecast forecast, double dirtyPagesPerSecond, int throttlePercent)
    {
        ArgumentNullException.ThrowIfNull(forecast);
        double predictedMs = forecast.PredictedDowntime.TotalMilliseconds;
        MigrateKitTelemetry.DirtyRate.Record(dirtyPagesPerSecond, Tags);
        MigrateKitTelemetry.PredictedDowntime.Record(predictedMs, Tags);
        MigrateKitTelemetry.Throttle.Record(throttlePercent, Tags);
        MigrateKitTelemetry.DataRemaining.Record((long)forecast.PendingBytes, Tags);
        MigrateKitTelemetry.DirtyMemoryRate.Record(dirtyPagesPerSecond * GuestMemoryLayout.PageSize, Tags);
        MigrateKitTelemetry.MemoryTransferRate.Record(forecast.BandwidthBytesPerSecond, Tags);
        MigrateKitTelemetry.MigrationPredictedDowntime.Record(predictedMs, Tags);
    }

    /// <summary>Adds a pre-copy round's row: counts the round and tags its span.</summary>
    internal void RoundEnded(RoundReport row, Activity? span)
    {
        ArgumentNullException.ThrowIfNull(row);
        _rows.Add(row);
        MigrateKitTelemetry.Rounds.Add(1, Tags);
        _roundsCounted++;
        if (span is null)
        {
            return;
        }

        span.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)row.PagesSent);
        span.SetTag(MigrateKitTelemetry.Tags.ZeroPages, (long)row.ZeroPages);
        span.SetTag(MigrateKitTelemetry.Tags.BytesSent, (long)row.BytesSent);
        span.SetTag(MigrateKitTelemetry.Tags.DirtyPages, (long)row.DirtyPages);
        span.SetTag(MigrateKitTelemetry.Tags.PredictedDowntimeMs, row.PredictedDowntimeMs);
        span.SetTag(MigrateKitTelemetry.Tags.Action, ReportNames.Of(row.Action));
    }

    /// <summary>Adds the switchover's row, the report's last: not a pre-copy round, so not counted as one.</summary>
    internal void SwitchoverEnded(RoundReport row)
    {
        ArgumentNullException.ThrowIfNull(row);
        _rows.Add(row);
    }

    /// <summary>Brings the byte and page counters up to the migration's running totals.</summary>
    internal void CountSent(ulong bytesSent, ulong pagesSent)
    {
        MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.BytesSent, bytesSent, ref _bytesCounted, Tags);
        MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.PagesSent, pagesSent, ref _pagesCounted, Tags);
        MigrateKitTelemetry.DataProcessed.Record((long)_bytesCounted, Tags);
    }

    /// <summary>
    /// Counts what the report says that was not counted yet (bytes, pages, rounds), its downtime
    /// and its outcome, and tags the migration's span with its figures and outcome.
    /// </summary>
    internal void Finish(MigrationReport report, Activity? activity)
    {
        ArgumentNullException.ThrowIfNull(report);
        CountSent(report.BytesSent, report.PagesSent);
        MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.Rounds, (ulong)Math.Max(report.Rounds, 0), ref _roundsCounted, Tags);
        string status = StatusName(report.Status);
        if (report.Status == MigrationStatus.Completed && report.DowntimeMs is double downtime)
        {
            MigrateKitTelemetry.ActualDowntime.Record(downtime, Tags);
            MigrateKitTelemetry.MigrationActualDowntime.Record(downtime, Tags);

            // Everything arrived: the last forecast's remainder went in the switchover.
            MigrateKitTelemetry.DataRemaining.Record(0, Tags);
        }

        if (report.PredictedDowntimeMs is double predictedDowntime)
        {
            MigrateKitTelemetry.MigrationPredictedDowntime.Record(predictedDowntime, Tags);
        }

        MigrateKitTelemetry.Migrations.Add(1, MigrateKitTelemetry.With(Tags, MigrateKitTelemetry.Tags.Status, status));
        if (activity is null)
        {
            return;
        }

        activity.SetTag(MigrateKitTelemetry.Tags.MemoryBytes, (long)report.MemoryBytes);
        activity.SetTag(MigrateKitTelemetry.Tags.Rounds, report.Rounds);
        activity.SetTag(MigrateKitTelemetry.Tags.BytesSent, (long)report.BytesSent);
        activity.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)report.PagesSent);
        if (report.DowntimeMs is double actual)
        {
            activity.SetTag(MigrateKitTelemetry.Tags.DowntimeMs, actual);
        }

        if (report.PredictedDowntimeMs is double predicted)
        {
            activity.SetTag(MigrateKitTelemetry.Tags.PredictedDowntimeMs, predicted);
        }

        MigrateKitTelemetry.SetOutcome(activity, status, report.Reason, report.Status == MigrationStatus.Completed ? null : report.Error);
    }

    /// <summary>Counts a migration that ended by throwing instead of with a report (cancelled, or a failure before it began) and ends its span's story.</summary>
    internal void Thrown(Exception exception, Activity? activity)
    {
        ArgumentNullException.ThrowIfNull(exception);
        string status = exception is OperationCanceledException ? "cancelled" : "failed";
        MigrateKitTelemetry.Migrations.Add(1, MigrateKitTelemetry.With(Tags, MigrateKitTelemetry.Tags.Status, status));
        activity?.SetTag(MigrateKitTelemetry.Tags.Rounds, (int)_roundsCounted);
        MigrateKitTelemetry.SetOutcome(activity, status, exception.Message, exception is OperationCanceledException ? null : exception);
    }
}
