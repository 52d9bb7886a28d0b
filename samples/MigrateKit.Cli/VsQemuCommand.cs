using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using Spectre.Console;

namespace MigrateKit.Cli;

/// <summary>The <c>bench vs-qemu</c> command: its options and its output.</summary>
internal sealed class VsQemuCommand
{
    private readonly Option<string> _scenario = new("--scenario") { Description = $"A scenario, a comma-separated list or all: {string.Join(", ", VsQemuScenario.All.Select(s => s.Name))}.", DefaultValueFactory = _ => "all" };
    private readonly Option<int> _repeat = new("--repeat") { Description = "Runs of each side of each scenario, 1 to 20, interleaved.", DefaultValueFactory = _ => 3 };
    private readonly Option<string> _cutoff = new("--cutoff") { Description = "A migration still running after this long is ended and reported as not converged, with its figures at the cut-off.", DefaultValueFactory = _ => "60s" };
    private readonly Option<bool> _json = new("--json") { Description = "Print exactly one JSON object {\"scenarios\": [{\"name\", \"qemu\", \"migratekit\", ...}]} and nothing else on stdout." };
    private readonly Option<string?> _out = new("--out") { Description = "Also save the JSON object to this file." };
    private readonly Option<bool> _verbose = new("--verbose") { Description = "Log what MigrateKit's engine measures and decides to stderr." };
    private readonly Option<string> _side = new("--side") { Description = "both, qemu or migratekit: run one side only (its figures, no ratios).", DefaultValueFactory = _ => "both" };
    private readonly Option<string?> _summarize = new("--summarize") { Description = "Run nothing: summarize again the runs of a JSON file --out saved (medians, ratios, targets)." };

    internal static Command Create()
    {
        var o = new VsQemuCommand();
        var command = new Command("vs-qemu", "Migrate the same boot-sector guest QEMU→QEMU (-accel kvm, QMP, loopback TCP) and MicroVm→MicroVm (MigrateKit's engine, loopback TCP), " +
            "interleaved, --repeat times per scenario: unlimited (1 GiB, one byte per page of 99 MiB rewritten, no bandwidth limit), anchor-100mib (the same at 100 MiB/s, 300 ms), " +
            "anchor-100mib-autoconverge (the same; QEMU with auto-converge, MigrateKit with its own throttle), anchor-100mib-xbzrle (QEMU with xbzrle, 256 MiB cache; MigrateKit with its page encodings), " +
            "anchor-100mib-multifd-zstd (QEMU with multifd, 2 channels, zstd; MigrateKit with its page encodings), random-100mib (99 MiB of random bytes loaded, the first MiB rewritten at random pass after pass; MigrateKit with and without encodings, QEMU with xbzrle), " +
            "fill-1gib (every page non-zero), idle-4gib. " +
            "Prints per scenario the medians of each side (total time, downtime, bytes, rounds or dirty syncs, QEMU's expected downtime and MigrateKit's forecast against the actual), " +
            "the MigrateKit/QEMU ratios and the targets. Needs /dev/kvm and qemu-system-x86_64; QEMU's BIOS takes ~15 s to boot each guest here. " +
            "Exit code 0 when the bench ran (targets missed included), 4 when a run failed, 2 when it cannot run here.\n" +
            "Example: migratekit bench vs-qemu --scenario unlimited --repeat 1");
        foreach (Option option in (Option[])[o._scenario, o._repeat, o._cutoff, o._json, o._out, o._side, o._verbose, o._summarize])
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(o._summarize) is { } saved)
            {
                try
                {
                    VsQemuJson runs = CliInput.LoadSaved("--summarize", saved, VsQemuJsonContext.Default.VsQemuJson, "bench vs-qemu result");
                    return o.Finish(parse, runs.Resummarized());
                }
                catch (Exception ex) when (CliInput.EndsACommand(ex) || ex is JsonException)
                {
                    return CliInput.Fail(ex);
                }
            }

            VsQemuSettings settings;
            try
            {
                settings = o.Read(parse);
                ReportCommands.Check(parse.GetValue(o._out), "--out");
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit bench vs-qemu: {ex.Message}");
                return 2;
            }

            if (VsQemuBench.Missing() is string missing)
            {
                Console.Error.WriteLine($"migratekit bench vs-qemu: {missing}");
                return 2;
            }

            // QEMU processes are killed when their runs end: Ctrl-C and SIGTERM cancel the run so none outlives the process.
            bool json = parse.GetValue(o._json);
            TextWriter progress = json ? Console.Error : Console.Out;
            try
            {
                VsQemuJson result = await VsQemuBench.RunAsync(settings, (s, side, row) => progress.WriteLine(VsQemuText.Line(s, side, row, settings.Repeat)), ct).ConfigureAwait(false);
                return o.Finish(parse, result);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Console.Error.WriteLine("migratekit: interrupted; the bench's QEMU processes and VMs are gone.");
                return 130;
            }
        });
        return command;
    }

    /// <summary>Prints (and saves) the result; 4 when a run failed, 0 otherwise.</summary>
    private int Finish(ParseResult parse, VsQemuJson result)
    {
        CliInput.Emit(JsonSerializer.Serialize(result, VsQemuJsonContext.Default.VsQemuJson), parse.GetValue(_out), parse.GetValue(_json), () => VsQemuText.Write(result));

        return result.Scenarios.Any(s => s.Qemu.Runs.Concat(s.MigrateKit.Runs).Any(r => r.Status == VsQemuRun.Failed)) ? 4 : 0;
    }

    private VsQemuSettings Read(ParseResult p)
    {
        int repeat = p.GetValue(_repeat);
        if (repeat is < 1 or > 20)
        {
            throw new FormatException($"--repeat {repeat}: use 1 to 20.");
        }

        TimeSpan cutoff = CliInput.Parse(p, _cutoff, Units.ParseDuration);
        if (cutoff < TimeSpan.FromSeconds(1) || cutoff > TimeSpan.FromMinutes(30))
        {
            throw new FormatException($"--cutoff {p.GetValue(_cutoff)}: use 1s to 30min.");
        }

        string side = p.GetValue(_side)!;
        if (side is not ("both" or "qemu" or "migratekit"))
        {
            throw new FormatException($"--side {side}: use both, qemu or migratekit.");
        }

        return new VsQemuSettings(VsQemuScenario.Select(p.GetValue(_scenario)!), repeat, cutoff, p.GetValue(_verbose), side);
    }
}

/// <summary>How <c>bench vs-qemu</c> reads on a terminal.</summary>
internal static class VsQemuText
{
    private static string F(double? v, string format) => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "-";

    /// <summary>One line per migration, as it ends.</summary>
    internal static string Line(VsQemuScenario s, string side, VsQemuRun r, int repeat)
    {
        string reason = r.Reason is null ? "" : $" ({r.Reason})";
        string predicted = side == "qemu" ? "expected" : "forecast";
        return $"{s.Name} {r.Run}/{repeat} {side}: {r.Status}{reason}; total {F(r.TotalMs / 1000, "F2")} s, downtime {F(r.DowntimeMs, "F1")} ms " +
            $"({predicted} {F(r.PredictedDowntimeMs, "F1")} ms), {F(r.BytesSent / 1048576.0, "F0")} MiB, {F(r.Rounds, "F0")} {(side == "qemu" ? "syncs" : "rounds")}, throttle ≤ {F(r.MaxThrottlePercent, "F0")} %" +
            (r.Xbzrle is { } x ? $"; xbzrle {Deltas(x)}" : "") + (r.Deltas is { } d ? $"; deltas {Deltas(d)}" : "") + (r.CompressedPages > 0 ? $"; {r.CompressedPages} pages compressed" : "");
    }

    /// <summary>QEMU's xbzrle figures, or MigrateKit's deltas, in a few words.</summary>
    internal static string Deltas(VsQemuDeltas x) =>
        $"{F(x.Pages, "F0")} pages in {F(x.Bytes / 1048576.0, "F1")} MiB, {F(x.CacheMisses, "F0")} cache misses, {F(x.Overflows, "F0")} overflows";

    /// <summary>Per scenario a table of both sides' medians and their ratio, then the targets.</summary>
    internal static void Write(VsQemuJson result)
    {
        foreach (VsQemuScenarioResult s in result.Scenarios)
        {
            Table table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(s.Name)}[/]: {Markup.Escape(s.Description)}");
            table.AddColumn(new TableColumn("median").NoWrap());
            table.AddColumn(new TableColumn("QEMU").RightAligned());
            table.AddColumn(new TableColumn("MigrateKit").RightAligned());
            table.AddColumn(new TableColumn("MK/QEMU").RightAligned());
            VsQemuSide? off = s.MigrateKitNoEncodings;
            if (off is not null)
            {
                table.AddColumn(new TableColumn("MK off").RightAligned());
            }

            void Row(string what, string qemu, string migrateKit, string ratio, Func<VsQemuSide, string> withoutEncodings) =>
                table.AddRow([what, qemu, migrateKit, ratio, .. off is null ? Array.Empty<string>() : [withoutEncodings(off)]]);
            Row("converged", Converged(s.Qemu), Converged(s.MigrateKit), "", Converged);
            Row("total s", F(s.Qemu.TotalMs / 1000, "F2"), F(s.MigrateKit.TotalMs / 1000, "F2"), F(s.TotalRatio, "F2"), o => F(o.TotalMs / 1000, "F2"));
            Row("downtime ms", F(s.Qemu.DowntimeMs, "F1"), F(s.MigrateKit.DowntimeMs, "F1"), F(s.DowntimeRatio, "F2"), o => F(o.DowntimeMs, "F1"));
            Row("MiB sent", F(s.Qemu.BytesSent / 1048576.0, "F0"), F(s.MigrateKit.BytesSent / 1048576.0, "F0"), F(s.BytesRatio, "F2"), o => F(o.BytesSent / 1048576.0, "F0"));
            Row("dirty syncs / rounds", F(s.Qemu.Rounds, "F0"), F(s.MigrateKit.Rounds, "F0"), "", o => F(o.Rounds, "F0"));
            Row("predicted downtime ms (error)", Predicted(s.Qemu), Predicted(s.MigrateKit), "", Predicted);
            AnsiConsole.Write(table);
            if (s.Qemu.Xbzrle is { } x)
            {
                Console.WriteLine($"  QEMU xbzrle (medians): {Deltas(x)}");
            }

            if (s.MigrateKit.Deltas is { } d)
            {
                Console.WriteLine($"  MigrateKit deltas (medians): {Deltas(d)}; {F(s.MigrateKit.CompressedPages, "F0")} pages compressed");
            }

            foreach (VsQemuTarget t in s.Targets)
            {
                Console.WriteLine($"  {(t.Met ? "met   " : "MISSED")} {t.What}: {t.Detail}");
            }
        }

        Console.WriteLine($"{result.QemuVersion ?? "QEMU"}; bench ran {F(result.Seconds, "F0")} s; targets {(result.TargetsMet ? "met in every scenario" : "missed in at least one scenario")}");
    }

    private static string Converged(VsQemuSide side) =>
        $"{side.Converged}/{side.Runs.Count}{(side.MediansOfConverged || side.Runs.All(r => r.Status != VsQemuRun.NotConverged) ? "" : " (cut off)")}";

    private static string Predicted(VsQemuSide side) => $"{F(side.PredictedDowntimeMs, "F1")} ({F(side.PredictionErrorPct, "F0")} %)";
}
