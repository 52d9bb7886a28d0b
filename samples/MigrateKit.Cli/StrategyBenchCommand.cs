using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;
using Spectre.Console;

namespace MigrateKit.Cli;

/// <summary>The <c>bench libvirt-strategies</c> command: its options, and its output.</summary>
internal sealed class StrategyBenchCommand
{
    private readonly Option<string> _from = new("--from") { Description = "Source libvirt URI, where each guest boots.", DefaultValueFactory = _ => "qemu:///system" };
    private readonly Option<string?> _to = new("--to") { Description = "Destination libvirt URI (required unless --summarize or --plan), e.g. 'qemu:///system?socket=/var/lib/migratekit-harness/host2/run/libvirt-sock'." };
    private readonly Option<int> _runs = new("--runs") { Description = "Runs of each configuration on each guest, 1 to 100, interleaved.", DefaultValueFactory = _ => 3 };
    private readonly Option<string> _memory = new("--memory") { Description = "Guest memory, 128MiB to 3GiB in whole MiB.", DefaultValueFactory = _ => "1GiB" };
    private readonly Option<string> _bandwidth = new("--bandwidth") { Description = "Bandwidth limit of every migration, e.g. 100MiB/s.", DefaultValueFactory = _ => "100MiB/s" };
    private readonly Option<string> _maxDowntime = new("--max-downtime") { Description = "Downtime limit of every migration (set on the plain libvirt jobs as soon as they exist).", DefaultValueFactory = _ => "300ms" };
    private readonly Option<string> _deadline = new("--deadline") { Description = "A migration still running after this long is aborted and counted as not converged.", DefaultValueFactory = _ => "30s" };
    private readonly Option<string> _guests = new("--guests") { Description = "Comma-separated guests: onebyte, random, idle.", DefaultValueFactory = _ => "onebyte,random,idle" };
    private readonly Option<bool> _json = new("--json") { Description = "Print exactly one JSON object {\"guests\": [{\"guest\", \"configs\": [...], \"autoVsBest\", \"targets\", ...}]} and nothing else on stdout." };
    private readonly Option<string?> _out = new("--out") { Description = "Also save the JSON object to this file." };
    private readonly Option<string?> _summarize = new("--summarize") { Description = "Run nothing: summarize the runs of a JSON file --out saved." };
    private readonly Option<bool> _noStore = new("--no-calibration-store")
    {
        Description = "MigrateKit's runs learn nothing across the bench (by default they share an in-memory calibration store, as an orchestrator's would: the first run learns the host pair, the later ones forecast from it).",
    };

    private readonly Option<bool> _plan = new("--plan") { Description = "Run nothing: print the order of the migrations (per guest and run) and exit." };

    internal static Command Create()
    {
        var o = new StrategyBenchCommand();
        var command = new Command("libvirt-strategies", "Migrate the same domain on two libvirt hosts with plain libvirt (default, auto-converge, xbzrle with a 256 MiB cache) " +
            "and with MigrateKit's auto strategy (uncalibrated, no calibration store), interleaved in an order rotated per run, --runs times on each guest: " +
            "onebyte (one byte per page of 99 MiB), random (16 MiB of xorshift values) and idle (mostly zero). Each guest is one transient domain migrated back and forth, " +
            "each migration checked on the host it arrives on. Prints per guest the medians over the converged runs (wall time from the call to its return, " +
            "libvirt's job time, downtime and MiB), MigrateKit's forecast, and the targets: auto's median wall time at most the best plain configuration's, " +
            "its downtime within the limit in every run, its forecast within max(10 ms, 25 %). Exit code 0 when the bench ran (targets missed included), " +
            "4 when a migration failed or a guest could not boot.\n" +
            "Example: migratekit bench libvirt-strategies --to 'qemu:///system?socket=/var/lib/migratekit-harness/host2/run/libvirt-sock' --runs 1 --guests idle --memory 256MiB");
        foreach (Option option in (Option[])[o._from, o._to, o._runs, o._memory, o._bandwidth, o._maxDowntime, o._deadline, o._guests, o._noStore, o._json, o._out, o._summarize, o._plan])
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, ct) =>
        {
            bool json = parse.GetValue(o._json);
            if (parse.GetValue(o._summarize) is { } file)
            {
                try
                {
                    StrategyBenchJson saved = CliInput.LoadSaved("--summarize", file, StrategyBenchJsonContext.Default.StrategyBenchJson, "bench libvirt-strategies result");
                    return o.Finish(parse, saved.Resummarized());
                }
                catch (Exception ex) when (CliInput.EndsACommand(ex) || ex is JsonException)
                {
                    return CliInput.Fail(ex);
                }
            }

            StrategyBenchSettings settings;
            try
            {
                settings = o.Read(parse);
                ReportCommands.Check(parse.GetValue(o._out), "--out");
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit bench libvirt-strategies: {ex.Message}");
                return 2;
            }

            if (parse.GetValue(o._plan))
            {
                WritePlan(settings, json);
                return 0;
            }

            // The bench leaves domains on two hosts if the process ends mid-run: Ctrl-C and SIGTERM
            // cancel the run instead, so every guest is destroyed on both hosts before the process exits.
            try
            {
                long started = Stopwatch.GetTimestamp();
                TextWriter progress = json ? Console.Error : Console.Out;
                var runs = await StrategyBench.RunAsync(settings, (guest, row) => progress.WriteLine(StrategyBenchText.Line(guest, row, settings.Runs)), ct).ConfigureAwait(false);
                return o.Finish(parse, StrategyBenchJson.Of(settings, runs, Math.Round(Stopwatch.GetElapsedTime(started).TotalSeconds, 1)));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Console.Error.WriteLine("migratekit: interrupted; the bench's domains were destroyed on both hosts.");
                return 130;
            }
            catch (Exception ex) when (CliInput.EndsACommand(ex))
            {
                return CliInput.Fail(ex);
            }
        });
        return command;
    }

    /// <summary>Prints (and saves) the result; 4 when a migration failed, 0 otherwise.</summary>
    private int Finish(ParseResult parse, StrategyBenchJson result)
    {
        CliInput.Emit(JsonSerializer.Serialize(result, StrategyBenchJsonContext.Default.StrategyBenchJson), parse.GetValue(_out), parse.GetValue(_json), () => StrategyBenchText.Write(result));

        return result.Guests.Any(g => g.Configs.Any(c => c.Failed > 0)) ? 4 : 0;
    }

    private static void WritePlan(StrategyBenchSettings s, bool json)
    {
        StrategyBenchPlanSlot[] slots = [.. s.Schedule().Select(x => new StrategyBenchPlanSlot(x.Guest, x.Run, x.Position, x.Config.Name()))];
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new StrategyBenchPlanJson(slots), StrategyBenchJsonContext.Default.StrategyBenchPlanJson));
            return;
        }

        foreach (var run in slots.GroupBy(x => (x.Guest, x.Run)))
        {
            Console.WriteLine($"{run.Key.Guest} run {run.Key.Run}: {string.Join(", ", run.Select(x => x.Config))}");
        }
    }

    private StrategyBenchSettings Read(ParseResult p)
    {
        string? to = p.GetValue(_to);
        if (to is null && !p.GetValue(_plan))
        {
            throw new FormatException("--to is required: the destination host's libvirt URI.");
        }

        int runs = p.GetValue(_runs);
        if (runs is < 1 or > 100)
        {
            throw new FormatException($"--runs {runs}: use 1 to 100.");
        }

        string[] names = p.GetValue(_guests)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0)
        {
            throw new FormatException("--guests: name at least one guest: onebyte, random or idle.");
        }

        StrategyBenchGuest[] guests = [.. names.Distinct().Select(StrategyBenchGuest.Find)];
        ulong memory = CliInput.Parse(p, _memory, Units.ParseBytes);
        if (memory < (128UL << 20) || memory % (1UL << 20) != 0 || memory > (3UL << 30))
        {
            throw new FormatException($"--memory {p.GetValue(_memory)}: the guests have 128 MiB to 3 GiB of memory, in whole MiB.");
        }

        ulong bandwidth = CliInput.Parse(p, _bandwidth, Units.ParseRate)
            ?? throw new FormatException($"--bandwidth {p.GetValue(_bandwidth)}: the bench compares under a bandwidth limit; give a rate, e.g. 100MiB/s.");
        var settings = new StrategyBenchSettings
        {
            From = p.GetValue(_from)!,
            To = to ?? "(none)",
            Runs = runs,
            Memory = memory,
            Bandwidth = bandwidth <= long.MaxValue ? (long)bandwidth : throw new FormatException($"--bandwidth {p.GetValue(_bandwidth)} is too large."),
            MaxDowntime = CliInput.Parse(p, _maxDowntime, Units.ParseDuration),
            Deadline = CliInput.Parse(p, _deadline, Units.ParseDuration),
            Guests = guests,
            Store = p.GetValue(_noStore) ? null : new InMemoryCalibrationStore(),
        };
        if (string.Equals(settings.From, settings.To, StringComparison.Ordinal))
        {
            throw new FormatException($"--from and --to are the same URI ('{settings.From}'): a domain migrates between two hosts.");
        }

        CliInput.Validate(StrategyBench.MigrateKitOptions(settings).Validate, new Dictionary<string, Option>
        {
            [nameof(LibvirtMigrationOptions.MaxDowntime)] = _maxDowntime,
            [nameof(LibvirtMigrationOptions.BandwidthLimit)] = _bandwidth,
            [nameof(LibvirtMigrationOptions.Deadline)] = _deadline,
        });
        return settings;
    }
}

/// <summary>How <c>bench libvirt-strategies</c> reads on a terminal.</summary>
internal static class StrategyBenchText
{
    private static string F(double? v, string format) => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "-";

    /// <summary>One line per migration, as it ends.</summary>
    internal static string Line(string guest, StrategyBenchRun r, int runs)
    {
        string forecast = r.PredictedDowntimeMs is null ? "" : $", forecast {F(r.PredictedDowntimeMs, "F1")} ms ({r.Strategy})";
        string reason = r.Reason is null || r.Outcome == StrategyBenchOutcome.Converged ? "" : $": {r.Reason}";
        return $"{guest} run {r.Run}/{runs} #{r.Position} {r.Config} {(r.Forward ? "->" : "<-")} {r.Outcome}{reason}; wall {F(r.WallMs / 1000, "F2")} s, job {F(r.JobMs / 1000, "F2")} s, " +
            $"downtime {F(r.DowntimeMs, "F1")} ms, {F(r.Bytes / 1048576.0, "F0")} MiB{forecast}";
    }

    /// <summary>Per guest a table of the configurations' medians, then the targets.</summary>
    internal static void Write(StrategyBenchJson result)
    {
        foreach (StrategyBenchGuestResult g in result.Guests)
        {
            string pass = g.PassMs is double ms ? $"; a pass takes {ms / 1000:F1} s here" : "";
            Table table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(g.Guest)}[/]{Markup.Escape($"{(g.Description is null ? "" : $": {g.Description}")}{pass}")}");
            table.AddColumn(new TableColumn("configuration").NoWrap());
            foreach (string header in (string[])["wall s", "job s", "down ms", "MiB", "conv.", "forecast (error) ms"])
            {
                table.AddColumn(new TableColumn(header).RightAligned());
            }

            foreach (StrategyBenchConfigSummary c in g.Configs)
            {
                string forecast = c.MedianPredictedDowntimeMs is null ? "-"
                    : $"{F(c.MedianPredictedDowntimeMs, "F1")} ({F(c.MedianForecastErrorMs, "F1")})";
                table.AddRow(Markup.Escape(c.Config), F(c.MedianWallMs / 1000, "F2"), F(c.MedianJobMs / 1000, "F2"), F(c.MedianDowntimeMs, "F1"), F(c.MedianMiB, "F0"),
                    $"{c.Converged}/{c.Runs.Count}", Markup.Escape(forecast));
            }

            AnsiConsole.Write(table);
            if (g.Targets is { } t)
            {
                Target("wall time ≤ 1.0× the best plain libvirt", t.WallTime);
                Target($"downtime within {F(result.MaxDowntimeMs, "F0")} ms in every run", t.Downtime);
                Target("forecast within max(10 ms, 25 %)", t.Forecast);
            }
        }

        if (result.Seconds is double seconds)
        {
            Console.WriteLine($"bench ran {seconds:F0} s; targets {(result.TargetsMet ? "met on every guest" : "missed on at least one guest")}");
        }
    }

    // Plain lines: a table cell or markup would wrap the figures at a pipe's 80 columns.
    private static void Target(string what, StrategyBenchTarget target) =>
        Console.WriteLine($"  {(target.Met ? "met   " : "MISSED")} {what}: {target.Detail}");
}
