using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Migration;
using MigrateKit.Transport;
using MigrateKit.Vmm;
using Spectre.Console;

namespace MigrateKit.Cli;

/// <summary>
/// <c>migratekit plan</c>: starts the demo's VM and workload, observes its dirty pages without
/// migrating it, and says whether a migration at the given bandwidth and downtime limit would
/// converge, in how many rounds, how long, how many bytes and how much downtime.
/// </summary>
internal static class PlanCommand
{
    internal static Command Create()
    {
        var options = new Program.SourceOptions();
        var deadline = new Option<string?>("--deadline") { Description = "The time the whole migration may take, e.g. 30s: the smallest bandwidth and the recommendation keep within it." };
        var destination = new Option<string?>("--destination")
        {
            Description = "The address the migration would go to (tcp:HOST:PORT or unix:PATH; a host name is resolved as a connection would): the switchovers to that host correct the downtime forecast (default: every destination's).",
        };
        var observe = new Option<string>("--observe") { Description = "The longest observation window: the curve is measured at 0.1, 0.2, 0.5, 1, 2 and 5 s, up to this.", DefaultValueFactory = _ => "5s" };
        var command = new Command("plan", "Observe a running VM's dirty pages (no migration: the demo's VM and workload) and plan its pre-copy migration: " +
            "whether it converges without throttling, only throttled, or not at all; the rounds, total time, bytes and downtime; the smallest bandwidth that converges " +
            "(within --deadline); a recommended setting; the curve of distinct pages dirtied against time, and how much the observation slowed the guest. " +
            "Exit code 0 when the plan converges, 3 when it does not.\n" +
            "Example: migratekit plan --memory 1GiB --workload sweep --hot 99MiB --bandwidth 100MiB/s --max-downtime 300ms\n" +
            "Example: migratekit plan --vm hostvm --workload random --bandwidth 50MiB/s --max-downtime 30ms --deadline 20s --json");
        foreach (Option option in (Option[])[options.Memory, options.Workload, options.Hot, options.Bandwidth, options.MaxDowntime, options.Tracker, options.Vm, options.Pace, options.Json, options.Verbose, options.Report, deadline, destination, observe])
        {
            command.Options.Add(option);
        }

        // The engine's past switchovers correct the plan's downtime forecasts as they correct the engine's.
        options.CalibrationStore.AddTo(command);

        // The encodings the migration would use: the plan says when they make it send less than planned.
        options.Encodings.AddTo(command);

        command.SetAction(async (parse, ct) =>
        {
            SourceSettings settings;
            TimeSpan? limit;
            MigrationPlannerOptions marks;
            try
            {
                settings = options.Read(parse);
                limit = CliInput.ParseDeadline(parse, deadline);
                marks = PlanRun.Marks(CliInput.Parse(parse, observe, Units.ParseDuration));
                if (settings.Bandwidth is null)
                {
                    throw new FormatException("--bandwidth: name the bandwidth the migration gets, e.g. 100MiB/s: a plan cannot model an unlimited link.");
                }

                if (parse.GetValue(options.Report) is { } report && Path.GetExtension(report).ToLowerInvariant() is ".html" or ".htm")
                {
                    // The shared option's help offers a page; a plan has a chart and its JSON only (it wrote JSON into FILE.html).
                    throw new FormatException($"--report {report}: a plan is saved as FILE.png (its chart, with FILE.json next to it) or as JSON under any other name, not as a page.");
                }
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit plan: {ex.Message}");
                return 2;
            }

            // Checked and resolved before the observation's seconds; keyed as the engine keys the connection it makes.
            string? to = parse.GetValue(destination);
            try
            {
                to = to is null ? null : await MigrationPlanner.ResolveDestinationAsync(to, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ArgumentException or MigrationConnectionException)
            {
                Console.Error.WriteLine($"migratekit plan: --destination {CliInput.WithoutParameterName(ex)}");
                return 2;
            }

            bool json = parse.GetValue(options.Json);
            try
            {
                PlanResult result = await RunAsync(settings, limit, marks, json, to, ct).ConfigureAwait(false);
                PlanJson output = PlanJson.Of(result, settings.Vm, settings.Workload, limit);
                if (json)
                {
                    Console.WriteLine(JsonSerializer.Serialize(output, PlanJsonContext.Default.PlanJson));
                }
                else
                {
                    Write(result, settings);
                }

                return SaveReport(output, parse.GetValue(options.Report), json, result.Plan.Converges ? 0 : 3);
            }
            catch (Exception ex) when (CliInput.EndsACommand(ex))
            {
                return CliInput.Fail(ex);
            }
        });
        return command;
    }

    private static async Task<PlanResult> RunAsync(SourceSettings s, TimeSpan? deadline, MigrationPlannerOptions marks, bool json, string? destination, CancellationToken ct)
    {
        LiveStatus status = LiveStatus.Lines(s.Verbose);
        if (json || s.Verbose || Console.IsOutputRedirected)
        {
            using IWorkloadVm vm = MigrationRunner.StartSource(s, status, ct);
            return await PlanRun.ObserveAndPlanAsync(vm, s, deadline, marks, status, destination, ct).ConfigureAwait(false);
        }

        return await AnsiConsole.Status().StartAsync($"starting a {s.Vm}", async ctx =>
        {
            LiveStatus shown = LiveStatus.Rendered();
            using var refresh = new Timer(_ => ctx.Status(Markup.Escape(shown.Caption() ?? "")), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(200));
            using IWorkloadVm vm = MigrationRunner.StartSource(s, shown, ct);
            return await PlanRun.ObserveAndPlanAsync(vm, s, deadline, marks, shown, destination, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    private static void Write(PlanResult r, SourceSettings s)
    {
        MigrationPlan p = r.Plan;
        string verdict = p.Verdict switch
        {
            PlanVerdict.Converges => "[green]converges[/] without throttling",
            PlanVerdict.ConvergesWithThrottle => $"[yellow]converges throttled[/] (up to {p.MaxThrottlePercent}%)",
            _ => "[red]does not converge[/]",
        };
        AnsiConsole.MarkupLine($"[bold]plan[/]: {s.Vm}, {Markup.Escape(s.Workload)} workload, {Units.FormatBytes(s.Memory)} (hot {Units.FormatBytes(s.Hot)}), {Units.FormatRate(p.BandwidthBytesPerSecond)}, limit {Ms(p.MaxDowntime)}: {verdict}");
        AnsiConsole.WriteLine(p.Reason);
        if (s.MigrationOptions().EffectiveEncodings != PageEncodings.None)
        {
            AnsiConsole.WriteLine("The plan prices every page whole; with page encodings on (the default) a migration sends less than this.");
        }
        AnsiConsole.Write(CurveChart(r.Observation));
        AnsiConsole.Write(RoundsTable(p));
        Table summary = new Table().Border(TableBorder.Rounded).AddColumn("").AddColumn("").HideHeaders();
        // A plan that does not converge never completes: its reason says why, not the deadline.
        summary.AddRow("predicted", Markup.Escape($"{p.Rounds.Count} rounds, {Ms(p.TotalTime)} in all, {Units.FormatBytes(p.BytesSent)} sent, downtime {(p.Downtime is TimeSpan d ? Ms(d) : "-")}{(p.WithinDeadline || p.Verdict == PlanVerdict.DoesNotConverge ? "" : " (over the deadline)")}"));
        summary.AddRow("smallest bandwidth", Markup.Escape(p.MinimumBandwidthBytesPerSecond is double m ? Units.FormatRate(m) + " converges without throttling" : "none converges (the fixed costs exceed the limit)"));
        PlanRecommendation rec = p.Recommended;
        summary.AddRow("recommended", Markup.Escape($"{Units.FormatRate(rec.BandwidthBytesPerSecond)}, limit {Ms(rec.MaxDowntime)}, throttle up to {rec.MaxThrottlePercent}%{(rec.Postcopy ? ", post-copy" : "")}: {rec.Reason}"));
        DirtyObservation o = r.Observation;
        summary.AddRow("observed", Markup.Escape($"{o.Duration.TotalSeconds:F1} s with {o.TrackerKind}: {o.Curve.Points[^1].DistinctPages} distinct pages, {o.Curve.HotPages} hot, {o.PopulatedPages?.ToString(CultureInfo.InvariantCulture) ?? "?"} populated; slowest harvest {o.HarvestCost.TotalMilliseconds:F2} ms"));
        summary.AddRow("observation cost", Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"the guest wrote {r.Cost.ObservedPagesPerSecond:F0} pages/s observed, {r.Cost.UnobservedPagesPerSecond:F0} unobserved{(r.Cost.SlowdownPct is double slow ? Slowdown(slow) : "")}; it ran {r.Cost.RunShare * 100:F0} % of the time unobserved")));
        AnsiConsole.Write(summary);
    }

    private static BarChart CurveChart(DirtyObservation o)
    {
        var chart = new BarChart().Label("[bold]distinct pages dirtied within each window[/]").Width(72);
        foreach (DirtyCurvePoint point in o.Curve.Points)
        {
            chart.AddItem(string.Create(CultureInfo.InvariantCulture, $"{point.Elapsed.TotalSeconds,5:0.0#} s"), point.DistinctPages, Color.SteelBlue);
        }

        return chart;
    }

    private static Table RoundsTable(MigrationPlan p)
    {
        Table table = new Table().Border(TableBorder.Simple).Title("[bold]predicted rounds[/] (dirtied and deferred in pages; downtime of a switchover after the round)");
        foreach (string header in (string[])["round", "ms", "MiB sent", "dirtied", "deferred", "throttle", "downtime", "then"])
        {
            table.AddColumn(header);
        }

        foreach (PlannedRound x in p.Rounds)
        {
            table.AddRow(x.Round.ToString(CultureInfo.InvariantCulture), Num(x.Duration.TotalMilliseconds), Num(x.BytesSent / 1048576.0, "F1"), x.DirtyPages.ToString(CultureInfo.InvariantCulture),
                x.DeferredPages.ToString(CultureInfo.InvariantCulture), $"{x.ThrottlePercent}%", Ms(x.PredictedDowntime), x.Action.ToString().ToLowerInvariant());
        }

        return table;
    }

    /// <summary>Saves the plan: FILE.png gets the chart of the curve with the JSON next to it, any other name the JSON.</summary>
    private static int SaveReport(PlanJson plan, string? path, bool json, int exitCode)
    {
        if (path is null)
        {
            return exitCode;
        }

        try
        {
            string text = JsonSerializer.Serialize(plan, PlanJsonContext.Default.PlanJson);
            bool png = string.Equals(Path.GetExtension(path), ".png", StringComparison.OrdinalIgnoreCase);
            string jsonPath = png ? Path.ChangeExtension(path, ".json") : path;
            File.WriteAllText(jsonPath, text + Environment.NewLine);
            if (png)
            {
                PlanChart.SavePng(plan, path);
            }

            (json ? Console.Error : Console.Out).WriteLine(png ? $"report: {path} (JSON: {jsonPath})" : $"report: {path}");
            return exitCode;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"migratekit plan: the report could not be written: {ex.Message}");
            return exitCode == 0 ? 4 : exitCode;
        }
    }

    private static string Num(double v, string format = "F0") => v.ToString(format, CultureInfo.InvariantCulture);

    private static string Ms(TimeSpan t) => string.Create(CultureInfo.InvariantCulture, $"{t.TotalMilliseconds:F0} ms");

    /// <summary>The observation's cost, as " (1.2 % slower)"; a guest that ran as fast or faster (noise) is not called "-0.0 % slower".</summary>
    private static string Slowdown(double percent)
    {
        double shown = Math.Round(percent, 1);
        return shown > 0 ? FormattableString.Invariant($" ({shown:F1} % slower)")
            : shown < 0 ? FormattableString.Invariant($" ({-shown:F1} % faster)")
            : " (no slower)";
    }
}
