using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Migration;
using Spectre.Console;

namespace MigrateKit.Cli;

/// <summary>One round in the CLI's JSON output (properties in output order).</summary>
internal sealed record JsonRound
{
    public required int Round { get; init; }

    public required ulong BytesSent { get; init; }

    public required double DurationMs { get; init; }

    public required double SendMs { get; init; }

    public required double HarvestMs { get; init; }

    public required ulong DirtyPages { get; init; }

    public required ulong HotPages { get; init; }

    public required ulong DeferredPages { get; init; }

    public required ulong PagesSent { get; init; }

    public required ulong ZeroPages { get; init; }

    public required ulong DeltaPages { get; init; }

    public required ulong DeltaBytes { get; init; }

    public required ulong CompressedPages { get; init; }

    public required ulong CompressedBytes { get; init; }

    public required int ThrottlePercent { get; init; }

    public required double PredictedDowntimeMs { get; init; }

    public required double PredictedDowntimeLowMs { get; init; }

    public required double PredictedDowntimeHighMs { get; init; }

    public required string Action { get; init; }

    internal static JsonRound Of(RoundReport x) => new()
    {
        Round = x.Round,
        BytesSent = x.BytesSent,
        DurationMs = x.DurationMs,
        SendMs = x.SendMs,
        HarvestMs = x.HarvestMs,
        DirtyPages = x.DirtyPages,
        HotPages = x.HotPages,
        DeferredPages = x.DeferredPages,
        PagesSent = x.PagesSent,
        ZeroPages = x.ZeroPages,
        DeltaPages = x.DeltaPages,
        DeltaBytes = x.DeltaBytes,
        CompressedPages = x.CompressedPages,
        CompressedBytes = x.CompressedBytes,
        ThrottlePercent = x.ThrottlePercent,
        PredictedDowntimeMs = x.PredictedDowntimeMs,
        PredictedDowntimeLowMs = x.PredictedDowntimeLowMs,
        PredictedDowntimeHighMs = x.PredictedDowntimeHighMs,
        Action = System.Text.Json.JsonNamingPolicy.CamelCase.ConvertName(x.Action.ToString()),
    };
}

/// <summary>The CLI's JSON output: exactly one object on stdout.</summary>
internal sealed record JsonOutcome
{
    public required string Vm { get; init; }

    public required string Status { get; init; }

    public required bool Verified { get; init; }

    public required string? VerifyDetail { get; init; }

    public required int Rounds { get; init; }

    public required ulong BytesSent { get; init; }

    public required double TotalMs { get; init; }

    public required double? DowntimeMs { get; init; }

    public required double? PredictedDowntimeMs { get; init; }

    public required double? PredictedDowntimeLowMs { get; init; }

    public required double? PredictedDowntimeHighMs { get; init; }

    public required double? PredictionErrorPercent { get; init; }

    public required DowntimeParts? PredictedDowntimeParts { get; init; }

    public required DowntimeParts? ActualDowntimeParts { get; init; }

    public required int MaxThrottlePercent { get; init; }

    public required ulong HotPagesDeferred { get; init; }

    public required ulong MemoryBytes { get; init; }

    public required string? Reason { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? CommitMs { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SessionId { get; init; }

    public int Reconnections { get; init; }

    public bool OutcomeUnknown { get; init; }

    public required IReadOnlyList<JsonRound> RoundsDetail { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? LibvirtDowntimeMs { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonCosts? Costs { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Strategy { get; init; }

    public IReadOnlyList<MigrationDecision> Decisions { get; init; } = [];
}

/// <summary>Where a libvirt forecast's fixed costs and switchover speed came from, as the JSON output shows it.</summary>
internal sealed record JsonCosts(string FixedDowntime, string SwitchoverSpeed, int StoreSamples)
{
    internal static JsonCosts? Of(CostOrigins? costs) => costs is null ? null : new(Name(costs.FixedDowntime), Name(costs.SwitchoverSpeed), costs.StoreSamples);

    /// <summary>For the summary table: "store (3 migrations) / learnedInRun".</summary>
    internal static string Describe(CostOrigins costs)
    {
        string samples = costs.StoreSamples > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({costs.StoreSamples} migrations)") : "";
        string fixedCosts = Name(costs.FixedDowntime) + (costs.FixedDowntime == CostSource.Store ? samples : "");
        string speed = Name(costs.SwitchoverSpeed) + (costs.SwitchoverSpeed == CostSource.Store && costs.FixedDowntime != CostSource.Store ? samples : "");
        return $"{fixedCosts} / {speed}";
    }

    /// <summary>camelCase, as the report's own JSON writes the enum.</summary>
    internal static string Name(CostSource source) => JsonNamingPolicy.CamelCase.ConvertName(source.ToString());
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(JsonOutcome))]
[JsonSerializable(typeof(RecoverAnswer))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
}

/// <summary>Renders progress and results.</summary>
internal static class Output
{
    /// <summary>
    /// Honours <c>NO_COLOR</c> (https://no-color.org): any non-empty value turns colour off, whatever
    /// the terminal would support; styles such as bold stay.
    /// </summary>
    internal static void HonourNoColor(string? noColor)
    {
        if (!string.IsNullOrEmpty(noColor))
        {
            AnsiConsole.Profile.Capabilities.ColorSystem = ColorSystem.NoColors;
        }
    }

    /// <summary>
    /// Output to a file or a pipe is as wide as <c>COLUMNS</c> says (40 or more), else 160 columns:
    /// at the 80 that Spectre assumes there, a plan's table broke words over two lines.
    /// </summary>
    internal static void WidenRedirected(bool redirected, string? columns)
    {
        if (redirected)
        {
            AnsiConsole.Profile.Width = int.TryParse(columns, NumberStyles.None, CultureInfo.InvariantCulture, out int width) && width >= 40 ? width : 160;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> while showing a live table of rounds with the current phase under
    /// it. With <paramref name="json"/> nothing is drawn (stdout carries one JSON object); with
    /// <paramref name="verbose"/> neither, because log lines on the same terminal would tear the
    /// table: the engine logs every round and each phase is a line on stderr. When stdout is a
    /// file or a pipe, each round is one plain line (<see cref="RoundsView.Line"/>).
    /// </summary>
    internal static async Task<T> WithLiveRoundsAsync<T>(bool json, bool verbose, Func<LiveStatus, IProgress<MigrationProgress>?, Task<T>> work)
    {
        if (json || verbose)
        {
            return await work(LiveStatus.Lines(verbose), null).ConfigureAwait(false);
        }

        if (RoundsView.Plain)
        {
            // A file or a pipe would get the whole table again at every refresh: one line per round.
            return await work(LiveStatus.Lines(false), new RoundsView.LineProgress()).ConfigureAwait(false);
        }

        var status = LiveStatus.Rendered();
        var progress = new MigrationRunner.QueueProgress();
        RoundsView.LiveTable table = RoundsView.Table();
        T result = default!;
        await AnsiConsole.Live(table.Table).AutoClear(false).StartAsync(async ctx =>
        {
            Task<T> running = work(status, progress);
            while (!running.IsCompleted)
            {
                Drain(progress, table, status);
                ctx.Refresh();
                await Task.WhenAny(running, Task.Delay(100)).ConfigureAwait(false);
            }

            status.Clear();
            Drain(progress, table, status);
            ctx.Refresh();
            result = await running.ConfigureAwait(false);
        }).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// Runs a migrating command (<c>demo</c>, <c>send</c>, <c>libvirt migrate|demo</c>): live progress,
    /// the outcome, the <c>--report</c> file, the meter's figures (also after a failure: what was
    /// measured up to it is what explains it) and the exit code.
    /// </summary>
    internal static async Task<int> RunMigrationAsync(bool json, bool verbose, bool metricsWanted, string? reportFile,
        Func<LiveStatus, IProgress<MigrationProgress>?, Task<RunOutcome>> work)
    {
        using MetricsCollector? metrics = MetricsCollector.StartIf(metricsWanted);
        try
        {
            RunOutcome outcome = await WithLiveRoundsAsync(json, verbose, work).ConfigureAwait(false);
            Write(outcome, json);
            int exit = outcome.Report.OutcomeUnknown ? OutcomeUnknown
                : outcome.Report.Status == MigrationStatus.Completed && !outcome.Verified ? 4
                : ExitCode(outcome.Report.Status);
            return ReportCommands.Save(outcome.Report, reportFile, json, exit);
        }
        catch (Exception ex) when (CliInput.EndsACommand(ex))
        {
            return CliInput.Fail(ex);
        }
        finally
        {
            metrics?.Print(json);
        }
    }

    /// <summary>Writes the outcome: a summary table, or one JSON object.</summary>
    internal static void Write(RunOutcome outcome, bool json)
    {
        MigrationReport r = outcome.Report;
        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(ToJson(outcome), CliJsonContext.Default.JsonOutcome));
            return;
        }

        var summary = new Summary($"migration {(r.OutcomeUnknown ? "[red]outcome unknown[/]" : Status(r.Status))}");
        summary.AddRow("vm", outcome.Vm switch
        {
            "hostvm" => "hostvm (no KVM: writes tracked with userfaultfd write-protection)",
            "libvirt" => "libvirt domain (QEMU's pre-copy under MigrateKit's policy)",
            _ => "microvm (KVM)",
        });
        summary.AddRow("total time", $"{r.TotalMs:F0} ms");
        summary.AddRow(outcome.Vm == "libvirt" ? "downtime (libvirt)" : "downtime (actual)", r.DowntimeMs is double d ? $"[bold]{d:F1} ms[/]" : "-");
        summary.AddRow("downtime (predicted)", r.PredictedDowntimeMs is double p ? $"{p:F1} ms{Interval(r.PredictedDowntimeLowMs, r.PredictedDowntimeHighMs)}" : "-");
        summary.AddRow("prediction error", r.PredictionErrorPercent is double e ? $"{e:F1} %" : "-");
        if (r.Costs is { } costs)
        {
            summary.AddRow("fixed costs / speed from", Markup.Escape(JsonCosts.Describe(costs)));
        }

        if (r.PredictedDowntimeParts is { } pp && r.ActualDowntimeParts is { } ap)
        {
            summary.AddRow("  pause", $"{ap.PauseMs:F1} ms (predicted {pp.PauseMs:F1})");
            summary.AddRow("  final harvest", $"{ap.HarvestMs:F1} ms (predicted {pp.HarvestMs:F1})");
            summary.AddRow("  transfer", $"{ap.TransferMs:F1} ms (predicted {pp.TransferMs:F1})");
            summary.AddRow("  commit (checks, resume, RTT)", $"{ap.ResumeMs:F1} ms (predicted {pp.ResumeMs:F1}{Learned(r.PredictedCorrectionMs)})");
        }

        summary.AddRow("rounds", r.Rounds.ToString(CultureInfo.InvariantCulture));
        summary.AddRow("bytes sent", $"{Units.FormatBytes(r.BytesSent)} ({r.PagesSent} pages with data)");
        summary.AddRow("hot pages deferred", r.HotPagesDeferred.ToString(CultureInfo.InvariantCulture));
        summary.AddRow("max throttle", $"{r.MaxThrottlePercent} %");
        // A migration that did not complete has nothing on the destination to verify; its reason is below.
        summary.AddRow("verified", r.Status != MigrationStatus.Completed ? "-" : outcome.Verified ? "[green]yes[/]" : "[red]no[/]");
        if (outcome.VerifyDetail is { } detail && !(r.Reason is { } why && detail.EndsWith(why, StringComparison.Ordinal)))
        {
            summary.AddRow("", Markup.Escape(detail), "verify detail");
        }

        if (r.Strategy is { } strategy)
        {
            summary.AddRow("strategy", Markup.Escape(strategy));
        }

        foreach (MigrationDecision decision in r.Decisions)
        {
            summary.AddRow(string.Create(CultureInfo.InvariantCulture, $"  {decision.AtMs / 1000:F1} s {decision.Action}"), Markup.Escape(decision.Reason), "decision");
        }

        if (r.Reason is { } reason)
        {
            summary.AddRow("reason", Markup.Escape(reason));
        }

        summary.Write();
    }

    internal static JsonOutcome ToJson(RunOutcome o)
    {
        MigrationReport r = o.Report;
        return new JsonOutcome
        {
            Vm = o.Vm,
            Status = r.Status.ToString().ToLowerInvariant(),
            Verified = o.Verified,
            VerifyDetail = o.VerifyDetail,
            Rounds = r.Rounds,
            BytesSent = r.BytesSent,
            TotalMs = r.TotalMs,
            DowntimeMs = r.DowntimeMs,
            PredictedDowntimeMs = r.PredictedDowntimeMs,
            PredictedDowntimeLowMs = r.PredictedDowntimeLowMs,
            PredictedDowntimeHighMs = r.PredictedDowntimeHighMs,
            PredictionErrorPercent = r.PredictionErrorPercent,
            PredictedDowntimeParts = r.PredictedDowntimeParts,
            ActualDowntimeParts = r.ActualDowntimeParts,
            MaxThrottlePercent = r.MaxThrottlePercent,
            HotPagesDeferred = r.HotPagesDeferred,
            MemoryBytes = r.MemoryBytes,
            Reason = r.Reason,
            CommitMs = r.CommitMs,
            SessionId = r.SessionId,
            Reconnections = r.Reconnections,
            OutcomeUnknown = r.OutcomeUnknown,
            RoundsDetail = r.RoundsDetail.Select(JsonRound.Of).ToArray(),
            LibvirtDowntimeMs = o.LibvirtDowntimeMs,
            Costs = JsonCosts.Of(r.Costs),
            Strategy = r.Strategy,
            Decisions = r.Decisions,
        };
    }

    /// <summary>
    /// Exit code of a migration whose Commit was sent and not answered: the destination may run the VM,
    /// the source stays paused; <c>recover</c> exits with the same code while the outcome is still open.
    /// </summary>
    internal const int OutcomeUnknown = 5;

    /// <summary>Exit code for a status: 0 completed, 3 aborted by policy, 4 failed.</summary>
    internal static int ExitCode(MigrationStatus status) => status switch
    {
        MigrationStatus.Completed => 0,
        MigrationStatus.Aborted => 3,
        _ => 4,
    };

    private static string Status(MigrationStatus s) => s switch
    {
        MigrationStatus.Completed => "[green]completed[/]",
        MigrationStatus.Aborted => "[yellow]aborted[/]",
        _ => "[red]failed[/]",
    };

    /// <summary>" (low–high ms)" for a forecast's interval, or nothing without one.</summary>
    internal static string Interval(double? low, double? high) =>
        low is double l && high is double h ? string.Create(CultureInfo.InvariantCulture, $" ({l:F1}–{h:F1})") : "";

    /// <summary>
    /// ", including +x learned from past switchovers" for the history's correction in the commit
    /// part's forecast, so it is not read as the commit's own cost; nothing where it is under 0.05 ms.
    /// </summary>
    internal static string Learned(double? correction) =>
        correction is double c && Math.Abs(c) >= 0.05 ? string.Create(CultureInfo.InvariantCulture, $", including {c:+0.0;-0.0} learned from past switchovers") : "";

    private static void Drain(MigrationRunner.QueueProgress progress, RoundsView.LiveTable table, LiveStatus status)
    {
        while (progress.Items.TryDequeue(out MigrationProgress? p))
        {
            status.RoundEnded(p);
            foreach (MigrationDecision d in p.Decisions)
            {
                status.Decided(d);
            }

            table.AddRow(p);
        }

        table.Table.Caption = status.Caption() is { } caption ? new TableTitle(Markup.Escape(caption)) : null;
    }
}
