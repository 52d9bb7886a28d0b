using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using MigrateKit.Migration;
using ScottPlot;
using ScottPlot.Plottables;
using SkiaSharp;

namespace MigrateKit.Reports;

/// <summary>
/// Draws a <see cref="MigrationReport"/>: a PNG of stacked charts, one X position per pre-copy
/// round and one for the switchover, and a self-contained HTML page around it.
/// </summary>
/// <remarks>
/// From top to bottom the picture shows the downtime forecast made after each round (with the
/// actual downtime and the limit), the bytes each round sent, the dirty, hot and deferred pages,
/// the bandwidth next to the dirtying rate, and the throttle. A header states the outcome.
/// Reports without rounds, and aborted or failed ones without an actual downtime, draw too.
/// </remarks>
public static class ReportRenderer
{
    /// <summary>The smallest picture width, in pixels.</summary>
    public const int MinimumWidth = 640;

    /// <summary>The smallest picture height, in pixels.</summary>
    public const int MinimumHeight = 560;

    /// <summary>The largest picture width or height, in pixels.</summary>
    public const int MaximumSize = 8000;

    /// <summary>The height of the header above the charts, in pixels.</summary>
    internal const int HeaderHeight = 86;

    // The data area of every chart starts and ends at the same X, so rounds line up across charts.
    private const float PadLeft = 92;
    private const float PadRight = 220;
    private const float PadTop = 36;
    private const float PadBottom = 30;
    private const float PadBottomLast = 50;

    private static readonly double[] Weights = [1.5, 1, 1, 1, 0.85];

    /// <summary>The titles of the charts, top to bottom.</summary>
    internal static IReadOnlyList<string> ChartTitles { get; } =
    [
        "Downtime: forecast after each round, actual at the switchover",
        "Data sent per round",
        "Pages after each round's harvest",
        "Bandwidth and dirtying rate",
        "Throttle in force",
    ];

    /// <summary>Draws the report as a PNG file.</summary>
    /// <param name="report">The report.</param>
    /// <param name="path">The file to write (replaced if it exists).</param>
    /// <param name="width">The picture's width in pixels, <see cref="MinimumWidth"/> to <see cref="MaximumSize"/>.</param>
    /// <param name="height">The picture's height in pixels, <see cref="MinimumHeight"/> to <see cref="MaximumSize"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">The size is out of range.</exception>
    /// <exception cref="IOException">The file could not be written.</exception>
    public static void RenderPng(MigrationReport report, string path, int width = 1400, int height = 1000)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] png = RenderPngBytes(report, width, height);
        File.WriteAllBytes(path, png);
    }

    /// <summary>Draws the report and returns the PNG file's bytes.</summary>
    /// <param name="report">The report.</param>
    /// <param name="width">The picture's width in pixels, <see cref="MinimumWidth"/> to <see cref="MaximumSize"/>.</param>
    /// <param name="height">The picture's height in pixels, <see cref="MinimumHeight"/> to <see cref="MaximumSize"/>.</param>
    /// <returns>A PNG image.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The size is out of range.</exception>
    public static byte[] RenderPngBytes(MigrationReport report, int width = 1400, int height = 1000)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, MinimumWidth);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, MinimumHeight);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(width, MaximumSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(height, MaximumSize);

        var series = ReportSeries.Of(report);
        Plot[] charts =
        [
            ReportCharts.DowntimeChart(report, series),
            ReportCharts.BytesChart(series),
            ReportCharts.PagesChart(series),
            ReportCharts.RatesChart(series),
            ReportCharts.ThrottleChart(series),
        ];

        // A Multiplot starts with the plot it is given; the rest are added below it.
        var multiplot = new Multiplot(charts[0]) { Layout = new WeightedRows(Weights) };
        foreach (Plot chart in charts.Skip(1))
        {
            multiplot.AddPlot(chart);
        }

        string family = FontFamily();
        for (int i = 0; i < charts.Length; i++)
        {
            Plot chart = charts[i];
            chart.Font.Set(family);
            chart.Title(ChartTitles[i], 15);
            if (series.Count == 0)
            {
                Annotation empty = chart.Add.Annotation("no rounds recorded", Alignment.MiddleCenter);
                empty.LabelFontSize = 16;
                empty.LabelFontColor = ReportCharts.Grey;
                empty.LabelBackgroundColor = Colors.White;
                empty.LabelBorderColor = Colors.LightGray;
                empty.LabelShadowColor = Colors.Transparent;
                empty.LabelPadding = 8;
            }

            if (series.SwitchoverPosition >= 0)
            {
                // The switchover column: the VM is paused there.
                HorizontalSpan paused = chart.Add.HorizontalSpan(series.SwitchoverPosition - 0.5, series.SwitchoverPosition + 0.5, ReportCharts.Orange.WithAlpha(0.08));
                paused.LineWidth = 0;
                chart.MoveToBack(paused);
            }

            foreach (IPlottable plottable in chart.PlottableList)
            {
                switch (plottable)
                {
                    case Text text:
                        text.LabelFontName = family;
                        break;
                    case Annotation note:
                        note.LabelFontName = family;
                        break;
                    case BarPlot bars:
                        bars.ValueLabelStyle.FontName = family;
                        break;
                }
            }

            chart.Layout.Fixed(new PixelPadding(PadLeft, PadRight, i == charts.Length - 1 ? PadBottomLast : PadBottom, PadTop));
            ReportCharts.RoundAxis(chart, series);

            if (chart.PlottableList.Any(p => p.LegendItems.Any()))
            {
                chart.ShowLegend(Edge.Right).Alignment = Alignment.UpperLeft;
                chart.Legend.FontSize = 12;
                chart.Legend.FontName = family;
                chart.Legend.SetBestFontOnEachRender = false;

                // ScottPlot measures the first line a little short: room above it keeps it inside the frame.
                chart.Legend.Padding = new PixelPadding(6, 10, 4, 12);
            }
        }

        charts[^1].XLabel("round (pre-copy rounds, then the switchover with the VM paused)", 13);

        using SKSurface surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException($"Could not create a {width}x{height} drawing surface.");
        SKCanvas canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        multiplot.Render(canvas, ChartsArea(width, height));

        // After the charts: rendering them clears the whole canvas.
        DrawHeader(canvas, report, width, family);
        canvas.Flush();
        using SKImage image = surface.Snapshot();
        using SKData data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Writes a self-contained HTML page: the picture (embedded as base64), a summary and a table of the rounds.</summary>
    /// <param name="report">The report.</param>
    /// <param name="path">The file to write (replaced if it exists).</param>
    /// <param name="width">The picture's width in pixels.</param>
    /// <param name="height">The picture's height in pixels.</param>
    /// <exception cref="ArgumentOutOfRangeException">The size is out of range.</exception>
    /// <exception cref="IOException">The file could not be written.</exception>
    public static void RenderHtml(MigrationReport report, string path, int width = 1400, int height = 1000)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        File.WriteAllText(path, RenderHtmlString(report, width, height));
    }

    /// <summary>The page <see cref="RenderHtml"/> writes, as a string.</summary>
    /// <param name="report">The report.</param>
    /// <param name="width">The picture's width in pixels.</param>
    /// <param name="height">The picture's height in pixels.</param>
    /// <returns>An HTML document with no external references.</returns>
    public static string RenderHtmlString(MigrationReport report, int width = 1400, int height = 1000) =>
        ReportHtml.Build(report, RenderPngBytes(report, width, height), width, height);

    /// <summary>The rectangle the charts share, below the header.</summary>
    internal static PixelRect ChartsArea(int width, int height) => new(0, width, height, HeaderHeight);

    /// <summary>Each chart's rectangle in a picture of this size, top to bottom.</summary>
    internal static PixelRect[] ChartRectangles(int width, int height) =>
        new WeightedRows(Weights).Split(ChartsArea(width, height), Weights.Length);

    /// <summary>The part of a chart's rectangle where its data is drawn.</summary>
    internal static PixelRect DataArea(PixelRect chart, bool last) =>
        new(chart.Left + PadLeft, chart.Right - PadRight, chart.Bottom - (last ? PadBottomLast : PadBottom), chart.Top + PadTop);

    /// <summary>The header's headline, e.g. "Migration completed: 8 pre-copy rounds, then the switchover".</summary>
    internal static string Headline(MigrationReport r)
    {
        string rounds = r.Rounds == 1 ? "1 pre-copy round" : Invariant($"{r.Rounds} pre-copy rounds");
        return r.Status switch
        {
            MigrationStatus.Completed => $"Migration completed: {rounds}, then the switchover",
            MigrationStatus.Aborted => $"Migration aborted by its policy after {rounds}; the source kept running",
            _ => (r.FailedPhase is { } phase ? $"Migration failed during {phase}" : "Migration failed") + $" after {rounds}" +
                (r.OutcomeUnknown ? "; outcome unknown, source left paused" : "; the source kept running"),
        };
    }

    /// <summary>The header's line of figures: downtime, time, bytes, throttle.</summary>
    internal static string Figures(MigrationReport r)
    {
        var parts = new List<string>();
        string downtime = r.DowntimeMs is double actual ? $"downtime {Scale.Milliseconds(Round(actual))}"
            : r.Status == MigrationStatus.Completed ? "downtime not recorded"
            : r.FailedPhase == MigrationPhase.Switchover ? "no downtime measured (failed in the switchover)"
            : "no downtime (never switched over)";
        var detail = new List<string>();
        if (r.PredictedDowntimeMs is double predicted)
        {
            detail.Add(r.PredictedDowntimeLowMs is double lo && r.PredictedDowntimeHighMs is double hi
                ? $"predicted {Scale.Milliseconds(Round(predicted))}, interval {Scale.Milliseconds(Round(lo))}–{Scale.Milliseconds(Round(hi))}"
                : $"predicted {Scale.Milliseconds(Round(predicted))}");
        }

        if (r.PredictionErrorPercent is double error)
        {
            detail.Add(Invariant($"error {error:0.#} %"));
        }

        if (r.DowntimeLimitMs is double limit)
        {
            detail.Add($"limit {Scale.Milliseconds(Round(limit))}");
        }

        parts.Add(detail.Count > 0 ? $"{downtime} ({string.Join(", ", detail)})" : downtime);
        parts.Add($"total {Scale.Milliseconds(Round(r.TotalMs))}");
        parts.Add(r.MemoryBytes > 0
            ? $"sent {Units.FormatBytes(r.BytesSent)} for {Units.FormatBytes(r.MemoryBytes)} of memory"
            : $"sent {Units.FormatBytes(r.BytesSent)}");
        parts.Add(Invariant($"max throttle {r.MaxThrottlePercent} %"));
        if (r.HotPagesDeferred > 0)
        {
            parts.Add(Invariant($"{r.HotPagesDeferred:N0} hot pages deferred"));
        }

        return string.Join("  ·  ", parts);
    }

    internal static double Round(double ms) => ms >= 100 ? Math.Round(ms) : Math.Round(ms, 1);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>A sans-serif family that is installed: DejaVu Sans where present, else ScottPlot's choice.</summary>
    private static string FontFamily()
    {
        foreach (string family in (string[])["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial"])
        {
            SKTypeface? typeface = Fonts.GetTypeface(family, bold: false, italic: false);
            if (typeface is not null && string.Equals(typeface.FamilyName, family, StringComparison.OrdinalIgnoreCase))
            {
                return family;
            }
        }

        return Fonts.Sans;
    }

    // ScottPlot caches the typefaces it hands out: they are not disposed here.
    private static void DrawHeader(SKCanvas canvas, MigrationReport r, int width, string family)
    {
        using var background = new SKPaint { Color = SKColors.White };
        canvas.DrawRect(0, 0, width, HeaderHeight, background);
        SKColor accent = r.Status switch
        {
            MigrationStatus.Completed => new SKColor(0x2c, 0xa0, 0x2c),
            MigrationStatus.Aborted => new SKColor(0xe0, 0x8a, 0x00),
            _ => new SKColor(0xd6, 0x27, 0x28),
        };
        using var band = new SKPaint { Color = accent, IsAntialias = true };
        canvas.DrawRect(0, 0, 8, HeaderHeight - 8, band);

        SKTypeface bold = Fonts.GetTypeface(family, bold: true, italic: false);
        SKTypeface regular = Fonts.GetTypeface(family, bold: false, italic: false);
        using var title = new SKFont(bold, 22);
        using var body = new SKFont(regular, 15);
        using var ink = new SKPaint { Color = new SKColor(0x22, 0x22, 0x22), IsAntialias = true };
        using var accentInk = new SKPaint { Color = accent.WithAlpha(255), IsAntialias = true };
        using var soft = new SKPaint { Color = new SKColor(0x55, 0x55, 0x55), IsAntialias = true };
        float room = width - 40;
        canvas.DrawText(Fit(Headline(r), title, room), 22, 30, SKTextAlign.Left, title, ink);
        canvas.DrawText(Fit(Figures(r), body, room), 22, 54, SKTextAlign.Left, body, ink);
        if (!string.IsNullOrWhiteSpace(r.Reason))
        {
            canvas.DrawText(Fit("reason: " + OneLine(r.Reason), body, room), 22, 76, SKTextAlign.Left, body,
                r.Status == MigrationStatus.Completed ? soft : accentInk);
        }

        using var rule = new SKPaint { Color = new SKColor(0xdd, 0xdd, 0xdd), StrokeWidth = 1 };
        canvas.DrawLine(0, HeaderHeight - 2, width, HeaderHeight - 2, rule);
    }

    private static string OneLine(string text) => string.Join(' ', text.Split((char[])['\r', '\n'], StringSplitOptions.RemoveEmptyEntries));

    private static string Fit(string text, SKFont font, float room)
    {
        if (font.MeasureText(text) <= room)
        {
            return text;
        }

        int keep = text.Length;
        while (keep > 1 && font.MeasureText(string.Concat(text.AsSpan(0, keep), "…")) > room)
        {
            keep--;
        }

        return string.Concat(text.AsSpan(0, keep), "…");
    }
}
