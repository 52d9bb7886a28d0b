using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace MigrateKit.Diagnostics;

/// <summary>
/// MigrateKit's one <see cref="System.Diagnostics.Metrics.Meter"/> and one
/// <see cref="System.Diagnostics.ActivitySource"/>, both named <see cref="MigrateKitDiagnostics.MeterName"/>
/// and versioned with the assembly's informational version, and every instrument, span and tag
/// name the engine, the receiver and the libvirt migrator use.
/// </summary>
internal static class MigrateKitTelemetry
{
    internal static readonly string Version =
        typeof(MigrateKitTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    internal static readonly Meter Meter = new(MigrateKitDiagnostics.MeterName, Version);

    internal static readonly ActivitySource ActivitySource = new(MigrateKitDiagnostics.ActivitySourceName, Version);

    internal static readonly Counter<long> PagesSent =
        Meter.CreateCounter<long>("migratekit.pages.sent", "{page}", "Pages sent with their data.");

    internal static readonly Counter<long> BytesSent =
        Meter.CreateCounter<long>("migratekit.bytes.sent", "By", "Bytes sent on the migration stream.");

    internal static readonly Counter<long> Rounds =
        Meter.CreateCounter<long>("migratekit.rounds", "{round}", "Pre-copy rounds (libvirt: iterations of QEMU's pre-copy).");

    internal static readonly Histogram<double> HarvestDuration =
        Meter.CreateHistogram<double>("migratekit.harvest.duration", "ms", "How long one harvest of the dirty log took.");

    internal static readonly Histogram<double> DirtyRate =
        Meter.CreateHistogram<double>("migratekit.dirty_rate", "{page}/s", "The guest's dirtying rate, measured after each round (libvirt: each poll).");

    internal static readonly Histogram<double> PredictedDowntime =
        Meter.CreateHistogram<double>("migratekit.downtime.predicted", "ms", "The downtime forecast after each round (libvirt: each poll).");

    internal static readonly Histogram<double> ActualDowntime =
        Meter.CreateHistogram<double>("migratekit.downtime.actual", "ms", "The measured downtime of a completed migration.");

    internal static readonly Histogram<int> Throttle =
        Meter.CreateHistogram<int>("migratekit.throttle", "%", "The guest throttle in force during each round (libvirt: each poll).");

    internal static readonly Counter<long> Migrations =
        Meter.CreateCounter<long>("migratekit.migrations", "{migration}", "Finished migrations, by outcome (tag migratekit.status).");

    // The destination's side: what a receiver read and wrote into the VM, counted at each round's
    // end and when a connection ends (not per frame), and how its migrations ended.
    internal static readonly Counter<long> BytesReceived =
        Meter.CreateCounter<long>("migratekit.bytes.received", "By", "Bytes received on migration streams.");

    internal static readonly Counter<long> PagesReceived =
        Meter.CreateCounter<long>("migratekit.pages.received", "{page}", "Pages received with their data.");

    internal static readonly Counter<long> ZeroPagesReceived =
        Meter.CreateCounter<long>("migratekit.zero_pages.received", "{page}", "Pages received as zero runs.");

    internal static readonly Counter<long> MigrationsReceived =
        Meter.CreateCounter<long>("migratekit.migrations.received", "{migration}", "Received migrations, by outcome (tag migratekit.status).");

    internal static readonly Histogram<double> ResumeDuration =
        Meter.CreateHistogram<double>("migratekit.resume.duration", "ms", "From the source's Complete to the VM running on the destination.");

    internal static readonly Gauge<long> ReceiveDataTotal =
        Meter.CreateGauge<long>("migratekit.receive.data.total", "By", "The guest memory of the migration being received (or the last one), from its Hello.");

    internal static readonly Gauge<long> ReceiveDataProcessed =
        Meter.CreateGauge<long>("migratekit.receive.data.processed", "By", "Bytes the migration being received (or the last one) has read so far.");

    // The figures of the migration under way (or the last one to end, until the next starts), as
    // last-value gauges: set when they change (start, each round or poll, the end), so a scraper
    // reads them between rounds and after the end alike. KubeVirt's kubevirt_vmi_migration_* figures.
    internal static readonly Gauge<long> DataTotal =
        Meter.CreateGauge<long>("migratekit.migration.data.total", "By", "The guest memory the migration moves.");

    internal static readonly Gauge<long> DataProcessed =
        Meter.CreateGauge<long>("migratekit.migration.data.processed", "By", "Bytes this migration has sent so far.");

    internal static readonly Gauge<long> DataRemaining =
        Meter.CreateGauge<long>("migratekit.migration.data.remaining", "By", "Bytes a switchover would send now (0 once completed).");

    internal static readonly Gauge<double> DirtyMemoryRate =
        Meter.CreateGauge<double>("migratekit.migration.dirty_memory_rate", "By/s", "The guest's dirtying rate after the last round (libvirt: poll).");

    internal static readonly Gauge<double> MemoryTransferRate =
        Meter.CreateGauge<double>("migratekit.migration.memory_transfer_rate", "By/s", "The transfer rate the last forecast measured.");

    internal static readonly Gauge<double> MigrationPredictedDowntime =
        Meter.CreateGauge<double>("migratekit.migration.downtime.predicted", "ms", "The last downtime forecast.");

    internal static readonly Gauge<double> MigrationActualDowntime =
        Meter.CreateGauge<double>("migratekit.migration.downtime.actual", "ms", "The downtime of the last completed migration.");

    /// <summary>Span names.</summary>
    internal static class Spans
    {
        internal const string Migrate = "migratekit.migrate";
        internal const string Round = "migratekit.round";
        internal const string Switchover = "migratekit.switchover";
        internal const string Receive = "migratekit.receive";
    }

    /// <summary>Tag (attribute) names, on measurements and spans.</summary>
    internal static class Tags
    {
        /// <summary>"engine" or "libvirt" on the source's measurements, "receiver" on the destination's.</summary>
        internal const string Source = "migratekit.source";

        /// <summary>The kind of VM the engine migrates ("microvm", "hostvm", …).</summary>
        internal const string VmKind = "migratekit.vm.kind";

        /// <summary>The VM's (domain's) name; spans only.</summary>
        internal const string VmName = "migratekit.vm.name";

        /// <summary>The dirty-page tracker: "dirty-log", "dirty-ring", "write-protect", or its type name.</summary>
        internal const string Tracker = "migratekit.tracker";

        /// <summary>completed, aborted, failed or cancelled.</summary>
        internal const string Status = "migratekit.status";

        internal const string Reason = "migratekit.reason";
        internal const string MemoryBytes = "migratekit.memory.bytes";
        internal const string BandwidthLimit = "migratekit.bandwidth.limit";
        internal const string MaxDowntimeMs = "migratekit.downtime.max_ms";
        internal const string DowntimeMs = "migratekit.downtime.actual_ms";
        internal const string PredictedDowntimeMs = "migratekit.downtime.predicted_ms";
        internal const string Rounds = "migratekit.rounds";
        internal const string Round = "migratekit.round";
        internal const string PagesSent = "migratekit.pages.sent";
        internal const string BytesSent = "migratekit.bytes.sent";
        internal const string BytesReceived = "migratekit.bytes.received";
        internal const string DirtyPages = "migratekit.pages.dirty";
        internal const string ZeroPages = "migratekit.pages.zero";
        internal const string Action = "migratekit.action";
        internal const string ResumeMs = "migratekit.resume_ms";

        /// <summary>The OpenTelemetry attribute for the kind of error a failed span ended with.</summary>
        internal const string ErrorType = "error.type";
    }

    /// <summary><paramref name="tags"/> followed by one more.</summary>
    internal static KeyValuePair<string, object?>[] With(KeyValuePair<string, object?>[] tags, string key, object? value)
    {
        var all = new KeyValuePair<string, object?>[tags.Length + 1];
        tags.CopyTo(all, 0);
        all[^1] = new(key, value);
        return all;
    }

    /// <summary>Adds a non-negative delta of a running total to a counter.</summary>
    internal static void AddDelta(Counter<long> counter, ulong total, ref ulong counted, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (total > counted)
        {
            counter.Add(checked((long)(total - counted)), tags);
            counted = total;
        }
    }

    /// <summary>Ends a span as its migration ended: status Ok, or Error with the reason.</summary>
    internal static void SetOutcome(Activity? activity, string status, string? reason, Exception? error)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag(Tags.Status, status);
        if (reason is not null)
        {
            activity.SetTag(Tags.Reason, reason);
        }

        if (status == "completed")
        {
            activity.SetStatus(ActivityStatusCode.Ok);
            return;
        }

        activity.SetTag(Tags.ErrorType, error?.GetType().FullName ?? status);
        if (error is not null)
        {
            activity.AddException(error);
        }

        activity.SetStatus(ActivityStatusCode.Error, reason ?? error?.Message ?? status);
    }
}
