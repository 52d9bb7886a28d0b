using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Migration;
using MigrateKit.Transport;
using MigrateKit.Vmm;
using Spectre.Console;

namespace MigrateKit.Cli;

/// <summary>
/// Runs <c>bench plan</c>: for each cell of the forecast bench's matrix, starts the VM, plans
/// its migration (observing it, no migration), then migrates that same VM with the same options
/// over loopback TCP and records the plan next to what happened.
/// </summary>
internal static class PlanBench
{
    /// <summary>Runs the matrix; <paramref name="ended"/> sees each row as its run ends (index from 1, and the total).</summary>
    internal static Task<IReadOnlyList<PlanBenchRun>> RunAsync(ForecastMatrix matrix, MigrationPlannerOptions marks, bool verbose, Action<PlanBenchRun, int, int> ended, CancellationToken ct) =>
        MatrixRuns.RunAsync(matrix, (cell, run) => RunCellAsync(cell, run, marks, verbose, ct), PlanBenchRun.Failed, ended, ct);

    private static async Task<PlanBenchRun> RunCellAsync(ForecastCell cell, int run, MigrationPlannerOptions marks, bool verbose, CancellationToken ct)
    {
        // The plan models pages sent whole, so the migration it is checked against sends them whole too.
        SourceSettings s = cell.Source(verbose) with { Encodings = PageEncodings.None };
        LiveStatus status = LiveStatus.Lines(verbose);
        using IWorkloadVm vm = MigrationRunner.StartSource(s, status, ct);
        PlanResult planned = await PlanRun.ObserveAndPlanAsync(vm, s, null, marks, status, null, ct).ConfigureAwait(false);
        (MigrationReport report, ReceiveResult? received) = await MigrationRunner.LoopbackAsync(
            connect => MigrationRunner.SendAsync(vm, connect, s, status, null, ct), MigrationRunner.Receiver(s.Vm, new MigrationReceiverOptions(), verbose), null, ct).ConfigureAwait(false);
        (received?.Target as IDisposable)?.Dispose();
        return PlanBenchRun.Of(cell, run, planned, report);
    }

    /// <summary>One plain line per run.</summary>
    internal static string Line(PlanBenchRun r)
    {
        static string F(double? v, string format) => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "-";
        string tracker = r.Tracker == ForecastCell.WriteProtect ? "wp" : r.Tracker;
        string verdict = r.VerdictRight switch { true => "right", false => "WRONG", null => "-" };
        return $"{r.Vm.Replace("vm", "", StringComparison.Ordinal)} {tracker} {r.Workload} {r.MemoryBytes >> 20}MiB {r.BandwidthBytesPerSecond >> 20}MiB/s {F(r.LimitMs, "F0")}ms  " +
            $"plan {r.PlannedVerdict ?? "-"} {F(r.PredictedTotalMs, "F0")} ms {F(r.PredictedBytes / 1048576.0, "F1")} MiB {r.PredictedRounds?.ToString(CultureInfo.InvariantCulture) ?? "-"} rounds  " +
            $"actual {r.Status} {F(r.TotalMs, "F0")} ms {F(r.BytesSent / 1048576.0, "F1")} MiB {r.Rounds?.ToString(CultureInfo.InvariantCulture) ?? "-"} rounds  " +
            $"verdict {verdict}, error time {F(r.TotalErrorPct, "F0")} %, bytes {F(r.BytesErrorPct, "F0")} %{(r.Status == "failed" ? ": " + r.Reason : "")}";
    }

    /// <summary>The summary as a table.</summary>
    internal static void WriteSummary(PlanBenchSummary s)
    {
        static string Pct(double? v) => v is double d ? string.Create(CultureInfo.InvariantCulture, $"{d:F1} %") : "-";
        Table table = new Table().Border(TableBorder.Rounded).Title("[bold]plan against migration[/]").AddColumn("").AddColumn("").HideHeaders();
        table.AddRow("runs", $"{s.Runs}: {s.Judged} judged, {s.Failed} failed");
        table.AddRow("verdict right", $"{s.VerdictsRight} of {s.Judged}: {Pct(s.RightVerdictPct)} (target ≥ {s.VerdictTarget:F0} %)");
        table.AddRow("total time error (median / p90)", $"{Pct(s.MedianTotalErrorPct)} / {Pct(s.P90TotalErrorPct)} over {s.Compared} runs (target median ≤ {s.ErrorTarget:F0} %)");
        table.AddRow("bytes error (median / p90)", $"{Pct(s.MedianBytesErrorPct)} / {Pct(s.P90BytesErrorPct)}");
        table.AddRow("guest slowdown while observed (median)", Pct(s.MedianSlowdownPct));
        table.AddRow("targets", s.TargetsMet ? "[green]met[/]" : "[red]missed[/]");
        AnsiConsole.Write(table);
    }
}
