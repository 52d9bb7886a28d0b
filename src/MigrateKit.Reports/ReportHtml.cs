using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Reports;

/// <summary>The HTML page of a report: a summary, the picture inline as a data URI, and every round in a table.</summary>
internal static class ReportHtml
{
    private const string Style = """
        body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px; color: #222; background: #fff; }
        h1 { font-size: 22px; margin: 0 0 4px 0; }
        h2 { font-size: 17px; margin: 28px 0 8px 0; }
        p.figures { margin: 0 0 16px 0; color: #444; }
        .completed { border-left: 8px solid #2ca02c; padding-left: 12px; }
        .aborted { border-left: 8px solid #e08a00; padding-left: 12px; }
        .failed { border-left: 8px solid #d62728; padding-left: 12px; }
        img { max-width: 100%; height: auto; border: 1px solid #ddd; }
        table { border-collapse: collapse; font-size: 13px; }
        th, td { border: 1px solid #ddd; padding: 4px 8px; }
        th { background: #f4f4f4; text-align: left; }
        td.n { text-align: right; font-variant-numeric: tabular-nums; }
        tr.switchover td { background: #fff4e5; font-weight: bold; }
        table.summary th { width: 16em; }
        table.summary th.part { padding-left: 2em; font-weight: normal; }
        """;

    internal static string Build(MigrationReport r, byte[] png, int width, int height)
    {
        var html = new StringBuilder();
        string status = r.Status.ToString().ToLowerInvariant();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<title>").Append(E(ReportRenderer.Headline(r))).Append("</title>\n")
            .Append("<style>\n").Append(Style).Append("</style>\n</head>\n<body>\n")
            .Append("<header class=\"").Append(status).Append("\">\n<h1>").Append(E(ReportRenderer.Headline(r))).Append("</h1>\n")
            .Append("<p class=\"figures\">").Append(E(ReportRenderer.Figures(r))).Append("</p>\n</header>\n");

        html.Append("<img id=\"chart\" width=\"").Append(width.ToString(CultureInfo.InvariantCulture))
            .Append("\" height=\"").Append(height.ToString(CultureInfo.InvariantCulture))
            .Append("\" alt=\"").Append(E(string.Join("; ", ReportRenderer.ChartTitles))).Append("\" src=\"data:image/png;base64,")
            .Append(Convert.ToBase64String(png)).Append("\">\n");

        html.Append("<h2>Summary</h2>\n<table class=\"summary\" id=\"summary\">\n");
        foreach ((string name, string value) in Summary(r))
        {
            // A name indented by two spaces is a part of the line above it.
            html.Append(name.StartsWith("  ", StringComparison.Ordinal) ? "<tr><th class=\"part\">" : "<tr><th>")
                .Append(E(name.Trim())).Append("</th><td>").Append(E(value)).Append("</td></tr>\n");
        }

        html.Append("</table>\n<h2>Rounds</h2>\n");
        Rounds(html, r);
        html.Append("</body>\n</html>\n");
        return html.ToString();
    }

    private static IEnumerable<(string, string)> Summary(MigrationReport r)
    {
        yield return ("status", r.Status.ToString().ToLowerInvariant());
        if (r.FailedPhase is { } phase)
        {
            yield return ("failed phase", phase.ToString());
        }

        if (!string.IsNullOrEmpty(r.Reason))
        {
            yield return ("reason", r.Reason);
        }

        if (r.OutcomeUnknown)
        {
            yield return ("outcome", "unknown: the destination neither acknowledged nor refused; the source was left paused");
        }

        yield return ("downtime (actual)", Ms(r.DowntimeMs));
        yield return ("downtime (predicted)", Ms(r.PredictedDowntimeMs) + (r.PredictedDowntimeLowMs is double lo && r.PredictedDowntimeHighMs is double hi ? F($" (interval {lo:0.0}–{hi:0.0} ms)") : ""));
        yield return ("prediction error", r.PredictionErrorPercent is double e ? F($"{e:0.0} %") : "-");
        yield return ("downtime limit", Ms(r.DowntimeLimitMs));
        if (r.PredictedDowntimeParts is { } p)
        {
            DowntimeParts? a = r.ActualDowntimeParts;
            yield return ("  pause", Part(a?.PauseMs, p.PauseMs));
            yield return ("  final harvest", Part(a?.HarvestMs, p.HarvestMs));
            yield return ("  transfer", Part(a?.TransferMs, p.TransferMs));
            yield return ("  commit (checks, resume, RTT)", Part(a?.ResumeMs, p.ResumeMs) + Learned(r.PredictedCorrectionMs));
        }

        yield return ("total time", Ms(r.TotalMs));
        yield return ("pre-copy rounds", r.Rounds.ToString(CultureInfo.InvariantCulture));
        yield return ("bytes sent", F($"{Units.FormatBytes(r.BytesSent)} ({r.BytesSent:N0} bytes, {r.PagesSent:N0} pages with data)"));
        yield return ("memory", F($"{Units.FormatBytes(r.MemoryBytes)} ({r.MemoryBytes / GuestMemoryLayout.PageSize:N0} pages)"));
        yield return ("max throttle", F($"{r.MaxThrottlePercent} %"));
        yield return ("hot pages deferred", r.HotPagesDeferred.ToString("N0", CultureInfo.InvariantCulture));
        yield return ("pages sent in the switchover", r.SwitchoverPages.ToString("N0", CultureInfo.InvariantCulture));
        if (r.ResumeMs is double resume)
        {
            yield return ("destination resume", Ms(resume));
        }

        if (r.DigestsMatched is bool digests)
        {
            yield return ("digests matched", digests ? "yes" : "no");
        }

        if (r.SourceMemoryVerified is bool verified)
        {
            yield return ("source memory verified", verified ? "yes" : "no");
        }
    }

    private static void Rounds(StringBuilder html, MigrationReport r)
    {
        IReadOnlyList<RoundReport> rows = r.RoundsDetail ?? [];
        if (rows.Count == 0)
        {
            html.Append("<p id=\"rounds\">No rounds were recorded.</p>\n");
            return;
        }

        html.Append("<table id=\"rounds\">\n<thead><tr>");
        foreach (string h in (string[])["round", "sent", "pages sent", "zero pages", "duration", "send time", "harvest", "dirty pages", "hot pages", "deferred",
            "dirty rate", "bandwidth", "throttle", "predicted downtime", "predicted total", "verdict", "action"])
        {
            html.Append("<th>").Append(E(h)).Append("</th>");
        }

        html.Append("</tr></thead>\n<tbody>\n");
        for (int i = 0; i < rows.Count; i++)
        {
            RoundReport x = rows[i];
            bool switchover = ReportSeries.IsSwitchoverRow(r, i);
            html.Append(switchover ? "<tr class=\"switchover\">" : "<tr>");
            Cell(html, switchover ? "switchover" : x.Round.ToString(CultureInfo.InvariantCulture));
            Cell(html, Units.FormatBytes(x.BytesSent), true);
            Cell(html, x.PagesSent.ToString("N0", CultureInfo.InvariantCulture), true);
            Cell(html, x.ZeroPages.ToString("N0", CultureInfo.InvariantCulture), true);
            Cell(html, Ms(x.DurationMs), true);
            Cell(html, Ms(x.SendMs), true);
            Cell(html, Ms(x.HarvestMs), true);
            Cell(html, x.DirtyPages.ToString("N0", CultureInfo.InvariantCulture), true);
            Cell(html, x.HotPages.ToString("N0", CultureInfo.InvariantCulture), true);
            Cell(html, x.DeferredPages.ToString("N0", CultureInfo.InvariantCulture), true);
            Cell(html, F($"{x.DirtyRate:N0} pages/s"), true);
            Cell(html, Units.FormatRate(x.Bandwidth), true);
            Cell(html, F($"{x.ThrottlePercent} %"), true);
            Cell(html, Ms(x.PredictedDowntimeMs) + (x.PredictedDowntimeHighMs > 0 ? F($" ({x.PredictedDowntimeLowMs:0.0}–{x.PredictedDowntimeHighMs:0.0})") : ""), true);
            Cell(html, x.PredictedTotalMs is double t ? Ms(t) : "not converging", true);
            Cell(html, JsonNamingPolicy.CamelCase.ConvertName(x.Verdict.ToString()));
            Cell(html, JsonNamingPolicy.CamelCase.ConvertName(x.Action.ToString()));
            html.Append("</tr>\n");
        }

        html.Append("</tbody>\n</table>\n");
    }

    private static void Cell(StringBuilder html, string text, bool number = false) =>
        html.Append(number ? "<td class=\"n\">" : "<td>").Append(E(text)).Append("</td>");

    private static string Ms(double? ms) => ms is double v && double.IsFinite(v) ? F($"{v:0.0} ms") : "-";

    private static string Part(double? actual, double predicted) =>
        actual is double a ? F($"{a:0.0} ms (predicted {predicted:0.0} ms)") : F($"predicted {predicted:0.0} ms");

    // The history's correction sits in the commit part's forecast; named, so it is not read as the commit's own cost.
    private static string Learned(double? correction) =>
        correction is double c && Math.Abs(c) >= 0.05 ? F($"; the forecast includes {c:+0.0;-0.0} ms learned from past switchovers") : "";

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
