using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Reports;

/// <summary>
/// A report's rows as the arrays the charts draw: one position per row on the X axis (pre-copy
/// rounds, then the switchover when there was one). A report with an actual downtime but no
/// switchover row (libvirt's: QEMU switches over by itself) gets one more position for it.
/// </summary>
internal sealed class ReportSeries
{
    private ReportSeries(MigrationReport report)
    {
        IReadOnlyList<RoundReport> rows = report.RoundsDetail ?? [];
        Count = rows.Count;
        Positions = Enumerable.Range(0, Count).Select(i => (double)i).ToArray();
        SwitchoverIndex = IsSwitchoverRow(report, Count - 1) ? Count - 1 : -1;
        SwitchoverPosition = SwitchoverIndex >= 0 ? SwitchoverIndex : report.DowntimeMs is not null ? Count : -1;
        Labels = rows.Select((r, i) => i == SwitchoverIndex ? "switchover" : r.Round.ToString(CultureInfo.InvariantCulture))
            .Concat(SwitchoverPosition == Count ? ["switchover"] : [])
            .ToArray();
        BytesSent = rows.Select(r => (double)r.BytesSent).ToArray();
        DirtyPages = rows.Select(r => (double)r.DirtyPages).ToArray();
        HotPages = rows.Select(r => (double)r.HotPages).ToArray();
        DeferredPages = rows.Select(r => (double)r.DeferredPages).ToArray();
        BandwidthBytesPerSecond = rows.Select(r => Finite(r.Bandwidth)).ToArray();
        DirtyRateBytesPerSecond = rows.Select(r => Finite(r.DirtyRate) * GuestMemoryLayout.PageSize).ToArray();
        ThrottlePercent = rows.Select(r => (double)r.ThrottlePercent).ToArray();
        PredictedDowntimeMs = rows.Select(r => Finite(r.PredictedDowntimeMs)).ToArray();

        // Reports from before the interval carry zeros: the point stands in for both ends.
        PredictedDowntimeLowMs = rows.Select(r => r.PredictedDowntimeLowMs > 0 ? Finite(r.PredictedDowntimeLowMs) : Finite(r.PredictedDowntimeMs)).ToArray();
        PredictedDowntimeHighMs = rows.Select(r => r.PredictedDowntimeHighMs > 0 ? Finite(r.PredictedDowntimeHighMs) : Finite(r.PredictedDowntimeMs)).ToArray();
    }

    /// <summary>Rows in the report (rounds and the switchover).</summary>
    internal int Count { get; }

    /// <summary>0, 1, 2…: one X position per row.</summary>
    internal double[] Positions { get; }

    /// <summary>The row of the switchover, or -1 when the migration never got there.</summary>
    internal int SwitchoverIndex { get; }

    /// <summary>
    /// Where the switchover is drawn: its row, the position after the last row when the report has
    /// a downtime but no switchover row, or -1 when the migration never switched over.
    /// </summary>
    internal int SwitchoverPosition { get; }

    /// <summary>Positions on the X axis: the rows, and the switchover when it has no row.</summary>
    internal int AxisCount => Labels.Length;

    /// <summary>The X tick label of each position: its round number, or "switchover".</summary>
    internal string[] Labels { get; }

    internal double[] BytesSent { get; }

    internal double[] DirtyPages { get; }

    internal double[] HotPages { get; }

    internal double[] DeferredPages { get; }

    internal double[] BandwidthBytesPerSecond { get; }

    /// <summary>The dirtying rate in bytes per second (pages per second times the page size).</summary>
    internal double[] DirtyRateBytesPerSecond { get; }

    internal double[] ThrottlePercent { get; }

    internal double[] PredictedDowntimeMs { get; }

    /// <summary>The low end of each row's forecast interval, milliseconds.</summary>
    internal double[] PredictedDowntimeLowMs { get; }

    /// <summary>The high end of each row's forecast interval, milliseconds.</summary>
    internal double[] PredictedDowntimeHighMs { get; }

    /// <summary>Pre-copy rows only: every row but the switchover.</summary>
    internal int PreCopyCount => SwitchoverIndex >= 0 ? Count - 1 : Count;

    internal static ReportSeries Of(MigrationReport report) => new(report);

    /// <summary>Whether row <paramref name="index"/> of <paramref name="report"/> is the switchover, not a pre-copy round.</summary>
    /// <remarks>The last pre-copy round's action is <see cref="RoundAction.Switchover"/> too: the switchover row is the one past <see cref="MigrationReport.Rounds"/>.</remarks>
    internal static bool IsSwitchoverRow(MigrationReport report, int index) =>
        report.RoundsDetail is { Count: > 0 } rows && index == rows.Count - 1 && rows.Count > report.Rounds && IsSwitchover(rows[index]);

    private static bool IsSwitchover(RoundReport row) => row.Action == RoundAction.Switchover;

    /// <summary>The first <paramref name="count"/> values of <paramref name="values"/>.</summary>
    internal static double[] Take(double[] values, int count) => values.AsSpan(0, Math.Min(count, values.Length)).ToArray();

    private static double Finite(double value) => double.IsFinite(value) ? value : 0;
}
