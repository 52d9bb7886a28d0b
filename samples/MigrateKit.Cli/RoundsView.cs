using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using MigrateKit.Migration;
using Spectre.Console;

namespace MigrateKit.Cli;

/// <summary>
/// How a migration's rounds are shown: a live table in a terminal (with the columns that fit its
/// width, so no cell wraps into fragments), or one plain line per round when stdout is a file or a
/// pipe, where a live table would be redrawn in full at every refresh.
/// </summary>
internal static class RoundsView
{
    // Widths are the widest cell usually seen plus the two spaces between columns; the order in
    // which columns go when the terminal is too narrow is by Drop (lowest first; 0 never goes).
    private static readonly Column[] Columns =
    [
        new("round", 7, 0, p => Invariant($"{p.Round}")),
        new("sent", 12, 0, p => Units.FormatBytes(p.BytesSent)),
        new("remaining", 12, 3, p => Units.FormatBytes(p.RemainingBytes)),
        new("dirty\npages", 9, 7, p => Invariant($"{p.DirtyPages}")),
        new("hot\npages", 9, 1, p => Invariant($"{p.HotPages}")),
        new("deferred\npages", 10, 2, p => Invariant($"{p.DeferredPages}")),
        new("delta/lz4\n/data pages", 19, 1, p => Invariant($"{p.DeltaPages}/{p.CompressedPages}/{p.PagesSent}")),
        new("dirty\nrate", 13, 4, p => Invariant($"{p.DirtyRatePagesPerSecond:F0} p/s")),
        new("bandwidth", 14, 5, p => Units.FormatRate(p.BandwidthBytesPerSecond)),
        new("throttle", 10, 6, p => Invariant($"{p.ThrottlePercent} %")),
        new("predicted\ndowntime", 11, 0, p => Invariant($"{p.Forecast.PredictedDowntime.TotalMilliseconds:F1} ms\n[grey]{p.Forecast.DowntimeLow.TotalMilliseconds:F0}–{p.Forecast.DowntimeHigh.TotalMilliseconds:F0}[/]")),
        new("verdict", 12, 5, p => p.Forecast.Verdict.ToString().ToLowerInvariant()),
        new("action", 10, 0, p => p.Action.ToString().ToLowerInvariant()),
    ];

    /// <summary>True when rounds go to a file or pipe: plain lines, no live table, no spinner.</summary>
    internal static bool Plain => Console.IsOutputRedirected;

    /// <summary>The headers of the columns a terminal of <paramref name="width"/> characters shows without wrapping a cell.</summary>
    internal static IReadOnlyList<string> Fitting(int width) => Fit(width).Select(c => c.Header).ToArray();

    /// <summary>An empty live table with the columns that fit the console.</summary>
    internal static LiveTable Table() => new(Fit(AnsiConsole.Profile.Width));

    private static List<Column> Fit(int width)
    {
        List<Column> kept = [.. Columns];
        foreach (Column drop in Columns.Where(c => c.Drop > 0).OrderBy(c => c.Drop))
        {
            if (kept.Sum(c => c.Width) <= width)
            {
                break;
            }

            kept.Remove(drop);
        }

        return kept;
    }

    /// <summary>
    /// One round as a line a script can split on ", " into "name value" fields, e.g.
    /// <c>round 3: sent 88.8 MiB, remaining 1.2 MiB, dirty 21685 pages, …, action throttle</c>.
    /// </summary>
    internal static string Line(MigrationProgress p) => string.Join(", ",
        Invariant($"round {p.Round}: sent {Units.FormatBytes(p.BytesSent)}"),
        $"remaining {Units.FormatBytes(p.RemainingBytes)}",
        Invariant($"dirty {p.DirtyPages} pages"),
        Invariant($"hot {p.HotPages} pages"),
        Invariant($"deferred {p.DeferredPages} pages"),
        Invariant($"delta {p.DeltaPages} pages"),
        Invariant($"compressed {p.CompressedPages} pages"),
        Invariant($"data {p.PagesSent} pages"),
        Invariant($"dirty rate {p.DirtyRatePagesPerSecond:F0} p/s"),
        $"bandwidth {Units.FormatRate(p.BandwidthBytesPerSecond)}",
        Invariant($"throttle {p.ThrottlePercent} %"),
        Invariant($"predicted downtime {p.Forecast.PredictedDowntime.TotalMilliseconds:F1} ms ({p.Forecast.DowntimeLow.TotalMilliseconds:F0}–{p.Forecast.DowntimeHigh.TotalMilliseconds:F0} ms {p.Forecast.Verdict.ToString().ToLowerInvariant()})"),
        $"action {p.Action.ToString().ToLowerInvariant()}");

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    internal sealed record Column(string Header, int Width, int Drop, Func<MigrationProgress, string> Cell);

    /// <summary>The live table and the columns it kept.</summary>
    internal sealed class LiveTable
    {
        private readonly IReadOnlyList<Column> _columns;

        internal LiveTable(IReadOnlyList<Column> columns)
        {
            _columns = columns;
            foreach (Column c in columns)
            {
                Table.AddColumn(new TableColumn(c.Header).PadLeft(0).PadRight(c.Header == "action" ? 0 : 2));
            }
        }

        /// <summary>What Spectre renders.</summary>
        internal Table Table { get; } = new Table().Border(TableBorder.None);

        /// <summary>Adds a round's cells for the kept columns.</summary>
        internal void AddRow(MigrationProgress p) => Table.AddRow(_columns.Select(c => c.Cell(p)).ToArray());
    }

    /// <summary>Writes each round as a <see cref="Line"/> on stdout as it is reported.</summary>
    internal sealed class LineProgress : IProgress<MigrationProgress>
    {
        private readonly System.Threading.Lock _gate = new();

        public void Report(MigrationProgress value)
        {
            lock (_gate)
            {
                Console.Out.WriteLine(Line(value));
            }
        }
    }
}
