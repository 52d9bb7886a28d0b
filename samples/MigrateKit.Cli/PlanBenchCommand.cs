using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>The <c>bench plan</c> command: plan, then migrate, over the forecast bench's matrix (bandwidth-limited cells: a plan needs a bandwidth).</summary>
internal static class PlanBenchCommand
{
    private static readonly ulong Bandwidth = 100UL << 20;

    internal static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "Run the small matrix: every workload at 128MiB, 100MiB/s, 30ms and 300ms, with the bitmap tracker (MicroVm) and write-protect (HostVm), once, observing up to 2 s (within five minutes)." };
        var vm = new Option<string>("--vm") { Description = "micro (a MicroVm, needs /dev/kvm), host (a HostVm) or both (micro only where /dev/kvm opens).", DefaultValueFactory = _ => "both" };
        var workloads = new Option<string?>("--workloads") { Description = "Comma-separated workloads. The default is " + string.Join(",", ForecastMatrix.AllWorkloads) + "." };
        var limits = new Option<string?>("--limits") { Description = "Comma-separated downtime limits. The default is 30ms,100ms,300ms (30ms,300ms with --quick)." };
        var runs = new Option<int?>("--runs") { Description = "Runs of each cell, 1 to 100. The default is 3, or 1 with --quick." };
        var observe = new Option<string?>("--observe") { Description = "The longest observation window. The default is 5s (2s with --quick)." };
        var json = new Option<bool>("--json") { Description = "Print exactly one JSON object {\"summary\": …, \"runs\": […]} and nothing else on stdout." };
        var output = new Option<string?>("--out") { Description = "Also save the JSON object to this file." };
        var from = new Option<string?>("--from") { Description = "Run nothing: summarize the runs of a JSON file --out saved." };
        var verbose = new Option<bool>("--verbose") { Description = "Log what the engine and the receiver measure and decide to stderr." };
        var command = new Command("plan", "Check migratekit plan against migrations: for every cell of the forecast bench's matrix at 100MiB/s (every workload, 128MiB to 3GiB, each limit " +
            "and tracker), plan the VM's migration, then migrate it with the same options over loopback TCP. Per run: the plan (verdict, total time, bytes, rounds) and what happened; " +
            $"then the share of right converge/no-converge verdicts (target ≥ {PlanBenchSummary.VerdictTargetPct:F0} %) and the median total-time and bytes error (target ≤ {PlanBenchSummary.ErrorTargetPct:F0} %). " +
            "Exit code 0 when the targets are met, 4 otherwise.\n" +
            "Example: migratekit bench plan --quick\n" +
            "Example: migratekit bench plan --vm host --workloads sweep,random --limits 100ms --runs 2 --json");
        foreach (Option option in (Option[])[quick, vm, workloads, limits, runs, observe, json, output, from, verbose])
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, ct) =>
        {
            ForecastMatrix? matrix = null;
            MigrationPlannerOptions? marks = null;
            try
            {
                if (parse.GetValue(from) is null)
                {
                    bool small = parse.GetValue(quick);
                    matrix = Matrix(parse, small, vm, workloads, limits, runs);
                    marks = PlanRun.Marks(Items(parse.GetValue(observe) ?? (small ? "2s" : "5s"), "--observe", Units.ParseDuration, [])[0]);
                }

                ReportCommands.Check(parse.GetValue(output), "--out");
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit bench plan: {ex.Message}");
                return 2;
            }

            try
            {
                long started = Stopwatch.GetTimestamp();
                bool asJson = parse.GetValue(json);
                IReadOnlyList<PlanBenchRun> rows = matrix is null ? Load(parse.GetValue(from)!)
                    : await PlanBench.RunAsync(matrix, marks!, parse.GetValue(verbose), (row, index, total) =>
                    {
                        if (!asJson)
                        {
                            Console.WriteLine($"{index}/{total} {PlanBench.Line(row)}");
                        }
                    }, ct).ConfigureAwait(false);
                PlanBenchSummary summary = PlanBenchSummary.Of(rows) with { Seconds = matrix is null ? null : Math.Round(Stopwatch.GetElapsedTime(started).TotalSeconds, 1) };
                CliInput.Emit(JsonSerializer.Serialize(new PlanBenchJson(summary, rows), PlanBenchJsonContext.Default.PlanBenchJson), parse.GetValue(output), asJson, () => PlanBench.WriteSummary(summary));
                return summary.TargetsMet ? 0 : 4;
            }
            catch (Exception ex) when (CliInput.EndsACommand(ex) || ex is JsonException)
            {
                return CliInput.Fail(ex);
            }
        });
        return command;
    }

    private static ForecastMatrix Matrix(ParseResult p, bool quick, Option<string> vm, Option<string?> workloads, Option<string?> limits, Option<int?> runs)
    {
        string[] vms = p.GetValue(vm) switch
        {
            "micro" => VmKind.Resolve("auto") == VmKind.Micro ? [VmKind.Micro] : throw new FormatException("--vm micro: /dev/kvm cannot be opened here; use --vm host or both."),
            "host" => [VmKind.Host],
            "both" => VmKind.Resolve("auto") == VmKind.Micro ? [VmKind.Micro, VmKind.Host] : [VmKind.Host],
            var other => throw new FormatException($"--vm '{other}': use micro, host or both."),
        };
        ForecastMatrix full = ForecastMatrix.Full(vms) with { Bandwidths = [Bandwidth] };
        ForecastMatrix defaults = quick
            ? full with { Memories = [128UL << 20], Limits = [TimeSpan.FromMilliseconds(30), TimeSpan.FromMilliseconds(300)], Trackers = ["bitmap", ForecastCell.WriteProtect], Runs = 1 }
            : full;
        int n = p.GetValue(runs) ?? defaults.Runs;
        return n is < 1 or > 100 ? throw new FormatException($"--runs {n}: use 1 to 100.") : defaults with
        {
            Runs = n,
            Workloads = Items(p.GetValue(workloads), "--workloads", w => ForecastMatrix.AllWorkloads.Contains(w) ? w : throw new FormatException($"'{w}': use {string.Join(", ", ForecastMatrix.AllWorkloads)}."), defaults.Workloads),
            Limits = Items(p.GetValue(limits), "--limits", Units.ParseDuration, defaults.Limits),
        };
    }

    private static IReadOnlyList<T> Items<T>(string? text, string option, Func<string, T> parse, IReadOnlyList<T> defaults)
    {
        try
        {
            return text is null ? defaults : [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().Select(parse)];
        }
        catch (FormatException ex)
        {
            throw new FormatException($"{option}: {ex.Message}", ex);
        }
    }

    private static IReadOnlyList<PlanBenchRun> Load(string file)
    {
        PlanBenchJson saved = CliInput.LoadSaved("--from", file, PlanBenchJsonContext.Default.PlanBenchJson, "bench plan result");
        return saved.Runs ?? throw new ArgumentException($"--from {file}: the object has no \"runs\".");
    }
}
