using System;
using System.Collections.Generic;
using MigrateKit.Diagnostics;

namespace MigrateKit.Migration;

/// <summary>
/// The destination's measurements of one received migration, across the connections that carry
/// it: the byte and page counters (brought up to the session's running totals at each round's end
/// and when a connection ends, never per frame, so the receive path adds nothing per page), the
/// gauges of the migration being received, and, once the receive ends, its outcome and resume
/// time. The counterpart of <see cref="MigrationTelemetry"/>; the names are in <see cref="MigrateKitTelemetry"/>.
/// </summary>
/// <remarks>Not thread-safe: the connection that carries the session calls it, one call at a time.</remarks>
internal sealed class ReceiverTelemetry
{
    /// <summary>The tags of every measurement: <c>migratekit.source</c> = <c>receiver</c>.</summary>
    internal static readonly KeyValuePair<string, object?>[] Tags = [new(MigrateKitTelemetry.Tags.Source, "receiver")];

    // What the counters already hold of this migration.
    private ulong _bytesCounted;
    private ulong _pagesCounted;
    private ulong _zeroPagesCounted;

    /// <summary>The Hello arrived: sets the gauges of a migration that has read nothing yet.</summary>
    internal static void Started(ulong memoryBytes)
    {
        MigrateKitTelemetry.ReceiveDataTotal.Record((long)memoryBytes, Tags);
        MigrateKitTelemetry.ReceiveDataProcessed.Record(0, Tags);
    }

    /// <summary>Brings the counters and the processed gauge up to the session's running totals.</summary>
    internal void CountReceived(long bytes, ulong pages, ulong zeroPages)
    {
        MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.BytesReceived, (ulong)Math.Max(bytes, 0), ref _bytesCounted, Tags);
        MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.PagesReceived, pages, ref _pagesCounted, Tags);
        MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.ZeroPagesReceived, zeroPages, ref _zeroPagesCounted, Tags);
        MigrateKitTelemetry.ReceiveDataProcessed.Record((long)_bytesCounted, Tags);
    }

    /// <summary>Counts a receive that ended as <paramref name="status"/> (the span's outcome), and a completed one's resume time.</summary>
    internal static void Ended(string status, TimeSpan? resume)
    {
        if (resume is TimeSpan took)
        {
            MigrateKitTelemetry.ResumeDuration.Record(took.TotalMilliseconds, Tags);
        }

        MigrateKitTelemetry.MigrationsReceived.Add(1, MigrateKitTelemetry.With(Tags, MigrateKitTelemetry.Tags.Status, status));
    }
}
