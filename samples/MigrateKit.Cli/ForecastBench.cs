using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Migration;
using Spectre.Console;

namespace MigrateKit.Cli;

/// <summary>
/// Runs the <c>bench forecast</c> matrix in this process: every cell once, then every cell again,
/// <see cref="ForecastMatrix.Runs"/> times, each run a <c>demo</c> migration over loopback TCP.
/// The engine's options share <see cref="Estimation.DowntimeHistory.Shared"/>, so later runs
/// forecast with what earlier switchovers on this machine taught it, as a long-lived process would.
/// </summary>
internal static class ForecastBench
{
    /// <summary>Runs the matrix; <paramref name="ended"/> sees each row as its run ends (index from 1, and the total).</summary>
    internal static Task<IReadOnlyList<ForecastRun>> RunAsync(ForecastMatrix matrix, bool verbose, Action<ForecastRun, int, int> ended, CancellationToken ct) =>
        MatrixRuns.RunAsync(matrix, async (cell, run) => ForecastRun.Of(cell, run, await MigrationRunner.DemoAsync(cell.Source(verbose), LiveStatus.Lines(verbose), null, null, ct).ConfigureAwait(false)),
            ForecastRun.Failed, ended, ct);

    /// <summary>Runs the matrix under a live table that gains one line as each run ends.</summary>
    internal static async Task<IReadOnlyList<ForecastRun>> RunLiveAsync(ForecastMatrix matrix, bool verbose, CancellationToken ct)
    {
        if (verbose || Console.IsOutputRedirected)
        {
            // Log lines on the same terminal would tear a live table, and a pipe would get the whole
            // table again at every refresh: one plain line per run instead.
            return await RunAsync(matrix, verbose, (row, index, total) => Console.WriteLine($"{index}/{total} {Line(row)}"), ct).ConfigureAwait(false);
        }

        Table table = RunsTable();
        IReadOnlyList<ForecastRun> runs = [];
        await AnsiConsole.Live(table).AutoClear(false).StartAsync(async ctx =>
        {
            runs = await RunAsync(matrix, verbose, (row, index, total) =>
            {
                AddRow(table, row, index, total);
                ctx.Refresh();
            }, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);
        return runs;
    }

    /// <summary>The summary as a table.</summary>
    internal static void WriteSummary(ForecastSummary s)
    {
        static string Pct(double? v) => v is double d ? string.Create(CultureInfo.InvariantCulture, $"{d:F1} %") : "-";
        static string Ms(double? v) => v is double d ? string.Create(CultureInfo.InvariantCulture, $"{d:F1} ms") : "-";
        Table table = new Table().Border(TableBorder.Rounded).Title("[bold]forecast accuracy[/]").AddColumn("").AddColumn("").HideHeaders();
        table.AddRow("runs", $"{s.Runs}: {s.Completed} completed ({s.NotVerified} not verified), {s.Aborted} aborted by policy, {s.Failed} failed");
        table.AddRow("error (median / p90 / worst)", $"{Pct(s.MedianErrorPct)} / {Pct(s.P90ErrorPct)} / {Pct(s.WorstErrorPct)}  (a downtime under 20 ms within 5 ms scores 0 %)");
        table.AddRow("error in ms (median / p90 / worst)", $"{Ms(s.MedianErrorMs)} / {Ms(s.P90ErrorMs)} / {Ms(s.WorstErrorMs)}");
        table.AddRow("accurate", string.Create(CultureInfo.InvariantCulture, $"{Pct(s.AccuratePct)} of completed runs within {s.AccuracyTargetPct:F0} % (or 5 ms under 20 ms)"));
        table.AddRow("within the limit", $"{Pct(s.WithinLimitPct)} of completed runs ({s.LimitsBroken} broke it)");
        table.AddRow("worst overshoot", s.WorstOvershootRatio is double o ? string.Create(CultureInfo.InvariantCulture, $"{o:F2} × the limit") : "-");
        table.AddRow("the forecast's interval", $"{Pct(s.BelowHighPct)} of completed runs at or below its top, {Pct(s.InsideIntervalPct)} inside it");
        foreach (ForecastGroup g in s.ByWorkload)
        {
            string parts = g.MeanPartErrorMs is { } p
                ? string.Create(CultureInfo.InvariantCulture, $"; predicted − actual: pause {Signed(p.PauseMs)}, harvest {Signed(p.HarvestMs)}, transfer {Signed(p.TransferMs)}, commit {Signed(p.ResumeMs)} ms")
                : "";
            table.AddRow($"{g.Vm} {g.Workload}", Markup.Escape($"{g.Runs} runs, median {Pct(g.MedianErrorPct)}, worst {Pct(g.WorstErrorPct)}{parts}"));
        }

        AnsiConsole.Write(table);
    }

    // A difference that rounds to nothing is "0.0": negative zero printed "-+0.0" with a sign section.
    private static string Signed(double ms) => Math.Round(ms, 1) is var r && r == 0 ? "0.0" : r.ToString("+0.0;-0.0", CultureInfo.InvariantCulture);

    // Few columns, the cell in one: a row stays readable at 80 columns (a pipe or a CI log).
    private static Table RunsTable()
    {
        Table table = new Table().Border(TableBorder.None);
        foreach (string header in (string[])["run", "cell", "forecast ms\n(interval)", "actual\nms", "error", "limit", "total", "status"])
        {
            table.AddColumn(new TableColumn(header).PadLeft(0).PadRight(header == "status" ? 0 : 2));
        }

        return table;
    }

    private static void AddRow(Table table, ForecastRun r, int index, int total)
    {
        string[] cells = Cells(r);
        table.AddRow([$"{index}/{total}", .. Array.ConvertAll(cells, Markup.Escape)]);
    }

    private static string Line(ForecastRun r) => string.Join("  ", Cells(r));

    private static string[] Cells(ForecastRun r)
    {
        static string F(double? v, string format) => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "-";
        static string Size(ulong bytes) => bytes % (1UL << 30) == 0 ? $"{bytes >> 30}GiB" : $"{bytes >> 20}MiB";
        string bandwidth = r.BandwidthBytesPerSecond is ulong b ? Size(b) + "/s" : "unlimited";
        string tracker = r.Tracker == ForecastCell.WriteProtect ? "wp" : r.Tracker;
        return
        [
            $"{r.Vm.Replace("vm", "", StringComparison.Ordinal)} {tracker} {r.Workload} {Size(r.MemoryBytes)} {bandwidth} {F(r.LimitMs, "F0")}ms",
            $"{F(r.PredictedDowntimeMs, "F1")} ({F(r.PredictedDowntimeLowMs, "F1")}–{F(r.PredictedDowntimeHighMs, "F1")})",
            F(r.ActualDowntimeMs, "F1"),
            r.ErrorPct is null ? "-" : $"{F(r.ErrorPct, "F0")} %",
            r.LimitKept switch { true => "kept", false => "BROKEN", null => "-" },
            $"{F(r.TotalMs, "F0")} ms",
            r.Status == "completed" && r.Verified ? "ok" : $"{r.Status}{(r.Status == "completed" ? " (not verified)" : "")}: {r.Reason}",
        ];
    }
}
