using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>The <c>bench forecast</c> command: its options, how they narrow the matrix, and its output.</summary>
internal sealed class ForecastBenchCommand
{
    private readonly Option<bool> _quick = new("--quick") { Description = "Run the small matrix: every workload, limit and tracker at 128MiB, unlimited and 100MiB/s, once (within five minutes)." };
    private readonly Option<int?> _runs = new("--runs") { Description = "Runs of each cell, 1 to 100, interleaved (every cell once, then again). The default is 3, or 1 with --quick." };
    private readonly Option<string> _vm = new("--vm") { Description = "micro (a MicroVm, needs /dev/kvm), host (a HostVm) or both (micro only where /dev/kvm opens).", DefaultValueFactory = _ => "both" };
    private readonly Option<string?> _workloads = new("--workloads") { Description = "Comma-separated workloads. The default is " + string.Join(",", ForecastMatrix.AllWorkloads) + "." };
    private readonly Option<string?> _memories = new("--memories") { Description = "Comma-separated guest memory sizes, 4MiB to 3GiB. The default is 256MiB,1GiB,3GiB (128MiB with --quick)." };
    private readonly Option<string?> _bandwidths = new("--bandwidths") { Description = "Comma-separated bandwidth limits, e.g. unlimited,100MiB/s,400MiB/s (the default; unlimited,100MiB/s with --quick)." };
    private readonly Option<string?> _limits = new("--limits") { Description = "Comma-separated downtime limits. The default is 30ms,100ms,300ms." };
    private readonly Option<string?> _trackers = new("--trackers") { Description = "Comma-separated trackers: bitmap and ring (MicroVm), write-protect (HostVm). The default is all three." };
    private readonly Option<bool> _json = new("--json") { Description = "Print exactly one JSON object {\"summary\": …, \"runs\": […]} and nothing else on stdout." };
    private readonly Option<string?> _out = new("--out") { Description = "Also save the JSON object to this file." };
    private readonly Option<string?> _from = new("--from") { Description = "Run nothing: summarize the runs of a JSON file --out saved." };
    private readonly Option<bool> _verbose = new("--verbose") { Description = "Log what the engine and the receiver measure and decide to stderr." };

    internal static Command Create()
    {
        var options = new ForecastBenchCommand();
        var command = new Command("forecast", "Measure the downtime forecast against the actual downtime over a matrix of workloads × memory sizes × bandwidths × " +
            "downtime limits × trackers, on a MicroVm where /dev/kvm opens and on a HostVm, each cell --runs times, interleaved, in this process over loopback TCP. " +
            "Per run: the forecast (point and interval), the actual downtime, the error, whether the limit was kept, total time and bytes; then the median, p90 and " +
            "worst error (a downtime under 20 ms within 5 ms of its forecast scores 0 %), the share of completed runs within the limit and the worst overshoot. " +
            "Exit code 0 when every run completed and verified or was aborted by policy; 4 when one failed.\n" +
            "Example: migratekit bench forecast --quick\n" +
            "Example: migratekit bench forecast --vm host --workloads sweep,random --memories 64MiB --limits 100ms --runs 2 --json");
        foreach (Option option in (Option[])[options._quick, options._runs, options._vm, options._workloads, options._memories, options._bandwidths,
            options._limits, options._trackers, options._json, options._out, options._from, options._verbose])
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, ct) =>
        {
            bool json = parse.GetValue(options._json);
            IReadOnlyList<ForecastRun> runs;
            ForecastMatrix? matrix = null;
            try
            {
                matrix = parse.GetValue(options._from) is null ? options.Read(parse) : null;
                ReportCommands.Check(parse.GetValue(options._out), "--out");
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit bench forecast: {ex.Message}");
                return 2;
            }

            try
            {
                long started = Stopwatch.GetTimestamp();
                runs = matrix is null ? Load(parse.GetValue(options._from)!)
                    : json ? await ForecastBench.RunAsync(matrix, parse.GetValue(options._verbose), (_, _, _) => { }, ct).ConfigureAwait(false)
                    : await ForecastBench.RunLiveAsync(matrix, parse.GetValue(options._verbose), ct).ConfigureAwait(false);
                ForecastSummary summary = ForecastSummary.Of(runs) with { Seconds = matrix is null ? null : Math.Round(Stopwatch.GetElapsedTime(started).TotalSeconds, 1) };
                CliInput.Emit(JsonSerializer.Serialize(new ForecastJson(summary, runs), ForecastJsonContext.Default.ForecastJson), parse.GetValue(options._out), json, () => ForecastBench.WriteSummary(summary));

                return summary.Failed > 0 || summary.NotVerified > 0 ? 4 : 0;
            }
            catch (Exception ex) when (CliInput.EndsACommand(ex) || ex is JsonException)
            {
                return CliInput.Fail(ex);
            }
        });
        return command;
    }

    private static IReadOnlyList<ForecastRun> Load(string file)
    {
        ForecastJson saved = CliInput.LoadSaved("--from", file, ForecastJsonContext.Default.ForecastJson, "bench forecast result");
        return saved.Runs ?? throw new ArgumentException($"--from {file}: the object has no \"runs\".");
    }

    private ForecastMatrix Read(ParseResult p)
    {
        ForecastMatrix defaults = p.GetValue(_quick) ? ForecastMatrix.Quick(Vms(p)) : ForecastMatrix.Full(Vms(p));
        int runs = p.GetValue(_runs) ?? defaults.Runs;
        if (runs is < 1 or > 100)
        {
            throw new FormatException($"--runs {runs}: use 1 to 100.");
        }

        var matrix = defaults with
        {
            Runs = runs,
            Workloads = List(p, _workloads, w => Array.IndexOf(Workloads.Names, w) >= 0 && w != "fill"
                ? w : throw new FormatException($"'{w}' is not a workload the bench runs: use {string.Join(", ", Workloads.Names.Where(n => n != "fill"))}."), defaults.Workloads),
            Memories = List(p, _memories, Memory, defaults.Memories),
            Bandwidths = List(p, _bandwidths, Units.ParseRate, defaults.Bandwidths),
            Limits = List(p, _limits, Units.ParseDuration, defaults.Limits),
            Trackers = List(p, _trackers, t => t is "bitmap" or "ring" or ForecastCell.WriteProtect
                ? t : throw new FormatException($"'{t}' is not a tracker: use bitmap, ring or write-protect."), defaults.Trackers),
        };
        IReadOnlyList<ForecastCell> cells = matrix.Cells();
        if (cells.Count == 0)
        {
            throw new FormatException($"--vm {p.GetValue(_vm)} with --trackers {string.Join(",", matrix.Trackers)} leaves nothing to run: a MicroVm tracks with bitmap or ring, a HostVm with write-protect.");
        }

        foreach (ForecastCell cell in cells)
        {
            CliInput.Validate(cell.Source(false).MigrationOptions().Validate, new Dictionary<string, Option>
            {
                [nameof(MigrationOptions.MaxDowntime)] = _limits,
                [nameof(MigrationOptions.BandwidthLimit)] = _bandwidths,
            });
        }

        return matrix;
    }

    private string[] Vms(ParseResult p) => p.GetValue(_vm) switch
    {
        "micro" => VmKind.Resolve("auto") == VmKind.Micro ? [VmKind.Micro] : throw new FormatException("--vm micro: /dev/kvm cannot be opened here; use --vm host or both."),
        "host" => [VmKind.Host],
        "both" => VmKind.Resolve("auto") == VmKind.Micro ? [VmKind.Micro, VmKind.Host] : [VmKind.Host],
        var other => throw new FormatException($"--vm '{other}': use micro, host or both."),
    };

    private static ulong Memory(string text)
    {
        ulong bytes = Units.ParseBytes(text);
        return bytes < (4UL << 20) || bytes % GuestMemoryLayout.PageSize != 0 || bytes > (3UL << 30)
            ? throw new FormatException($"'{text}': the VM has 4 MiB to 3 GiB of memory, in whole pages.")
            : bytes;
    }

    private static IReadOnlyList<T> List<T>(ParseResult p, Option<string?> option, Func<string, T> parse, IReadOnlyList<T> defaults)
    {
        if (p.GetValue(option) is not { } text)
        {
            return defaults;
        }

        string[] items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0)
        {
            throw new FormatException($"{option.Name}: name at least one value.");
        }

        return [.. items.Distinct().Select(item =>
        {
            try
            {
                return parse(item);
            }
            catch (FormatException ex)
            {
                throw new FormatException($"{option.Name}: {ex.Message}", ex);
            }
        })];
    }
}
