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

    private static readonly Color Blue = Color.FromHex("#1f77b4");
    private static readonly Color Orange = Color.FromHex("#ff7f0e");
    private static readonly Color Green = Color.FromHex("#2ca02c");
    private static readonly Color Red = Color.FromHex("#d62728");
    private static readonly Color Purple = Color.FromHex("#9467bd");
    private static readonly Color Brown = Color.FromHex("#8c564b");
    private static readonly Color Grey = Color.FromHex("#7f7f7f");
    private static readonly Color Teal = Color.FromHex("#17becf");

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
            DowntimeChart(report, series),
            BytesChart(series),
            PagesChart(series),
            RatesChart(series),
            ThrottleChart(series),
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
                empty.LabelFontColor = Grey;
                empty.LabelBackgroundColor = Colors.White;
                empty.LabelBorderColor = Colors.LightGray;
                empty.LabelShadowColor = Colors.Transparent;
                empty.LabelPadding = 8;
            }

            if (series.SwitchoverPosition >= 0)
            {
                // The switchover column: the VM is paused there.
                HorizontalSpan paused = chart.Add.HorizontalSpan(series.SwitchoverPosition - 0.5, series.SwitchoverPosition + 0.5, Orange.WithAlpha(0.08));
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
            RoundAxis(chart, series);

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
            detail.Add($"predicted {Scale.Milliseconds(Round(predicted))}");
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

    private static double Round(double ms) => ms >= 100 ? Math.Round(ms) : Math.Round(ms, 1);

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

    /// <summary>One tick per row, labelled with the round number or "switchover"; every chart shares the X range.</summary>
    private static void RoundAxis(Plot chart, ReportSeries s)
    {
        int step = Math.Max(1, (int)Math.Ceiling(s.AxisCount / 24.0));
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = 0; i < s.AxisCount; i++)
        {
            // Thinned out when there are many rounds; the switchover is always labelled, the round just before it is not.
            bool crowding = i == s.SwitchoverPosition - 1 && step > 1;
            if ((i % step == 0 && !crowding) || i == s.SwitchoverPosition)
            {
                ticks.AddMajor(i, s.Labels[i]);
            }
        }

        chart.Axes.Bottom.TickGenerator = ticks;
        chart.Axes.SetLimitsX(-0.6, Math.Max(s.AxisCount, 1) - 0.4);
    }

    private static Plot DowntimeChart(MigrationReport r, ReportSeries s)
    {
        var chart = new Plot();
        double? actual = r.DowntimeMs is double a && double.IsFinite(a) ? a : null;
        double? limit = r.DowntimeLimitMs is double l && double.IsFinite(l) && l > 0 ? l : null;
        IEnumerable<double> all = s.PredictedDowntimeMs.Concat(actual is null ? [] : [actual.Value]).Concat(limit is null ? [] : [limit.Value]);
        bool log = Scale.WantsLog(all);
        double floor = all.Where(v => v > 0).DefaultIfEmpty(1).Min() / 2;
        Func<double, double> y = log ? v => Scale.Log(v, floor) : v => v;

        if (s.Count > 0)
        {
            Scatter forecast = chart.Add.Scatter(s.Positions, s.PredictedDowntimeMs.Select(y).ToArray(), Blue);
            forecast.LineWidth = 2;
            forecast.MarkerSize = 7;
            forecast.LegendText = "forecast after the round";
        }

        // When both lines are drawn, the higher one is labelled above it and the lower one below, so the labels never collide.
        if (limit is double lim)
        {
            HorizontalLine line = chart.Add.HorizontalLine(y(lim), 2, Red, LinePattern.Dashed);
            line.LegendText = "downtime limit";
            Label(chart, "limit " + Scale.Milliseconds(Round(lim)), y(lim), Red, above: actual is not double other || other <= lim);
        }

        if (actual is double act)
        {
            HorizontalLine line = chart.Add.HorizontalLine(y(act), 2, Green);
            line.LegendText = "actual downtime";
            Label(chart, "actual " + Scale.Milliseconds(Round(act)), y(act), Green, above: limit is not double other || act > other);
            if (s.SwitchoverPosition >= 0)
            {
                Marker star = chart.Add.Marker(s.SwitchoverPosition, y(act), MarkerShape.FilledDiamond, 14, Green);
                star.LegendText = "";
            }
        }

        if (log)
        {
            double[] logged = all.Select(y).ToArray();
            double bottom = logged.Min() - 0.25;
            double top = logged.Max() + 0.3;
            (double[] major, string[] labels, double[] minor) = Scale.DecadeTicks(bottom, top, Scale.Milliseconds);
            var ticks = new ScottPlot.TickGenerators.NumericManual();
            for (int i = 0; i < major.Length; i++)
            {
                ticks.AddMajor(major[i], labels[i]);
            }

            foreach (double m in minor)
            {
                ticks.AddMinor(m);
            }

            chart.Axes.Left.TickGenerator = ticks;
            chart.Axes.SetLimitsY(bottom, top);
            chart.YLabel("downtime (log scale)", 13);
        }
        else
        {
            (double bottom, double top) = Scale.ZeroTo(all, 1.2);
            chart.Axes.SetLimitsY(bottom, top);
            chart.YLabel("downtime (ms)", 13);
        }

        return chart;
    }

    /// <summary>A label just above (or below) a horizontal line, at the left of the data area.</summary>
    private static void Label(Plot chart, string text, double y, Color color, bool above)
    {
        Text label = chart.Add.Text(text, -0.55, y);
        label.LabelFontColor = color;
        label.LabelFontSize = 13;
        label.LabelBold = true;
        label.LabelAlignment = above ? Alignment.LowerLeft : Alignment.UpperLeft;
        label.OffsetY = above ? -3 : 3;
        label.LabelBackgroundColor = Colors.White.WithAlpha(0.8);
    }

    private static Plot BytesChart(ReportSeries s)
    {
        var chart = new Plot();
        ByteUnit unit = ByteUnit.For(s.BytesSent);
        double[] values = unit.Apply(s.BytesSent);
        var rounds = new List<Bar>();
        var switchover = new List<Bar>();
        for (int i = 0; i < s.Count; i++)
        {
            var bar = new Bar
            {
                Position = i,
                Value = values[i],
                Size = 0.7,
                FillColor = i == s.SwitchoverIndex ? Orange : Blue,
                LineWidth = 0,
                Label = values[i].ToString(values[i] >= 100 ? "0" : "0.#", CultureInfo.InvariantCulture),
            };
            (i == s.SwitchoverIndex ? switchover : rounds).Add(bar);
        }

        if (rounds.Count > 0)
        {
            ScottPlot.Plottables.BarPlot bars = chart.Add.Bars(rounds);
            bars.LegendText = "pre-copy round";
            bars.Color = Blue;
            bars.ValueLabelStyle.FontSize = 11;
        }

        if (switchover.Count > 0)
        {
            ScottPlot.Plottables.BarPlot bars = chart.Add.Bars(switchover);
            bars.LegendText = "switchover (VM paused)";
            bars.Color = Orange;
            bars.ValueLabelStyle.FontSize = 11;
        }

        (double bottom, double top) = Scale.ZeroTo(values, 1.25);
        chart.Axes.SetLimitsY(bottom, top);
        chart.YLabel($"sent ({unit.Name})", 13);
        return chart;
    }

    private static Plot PagesChart(ReportSeries s)
    {
        var chart = new Plot();
        if (s.Count > 0)
        {
            Line(chart, s.Positions, s.DirtyPages, Purple, "dirty pages", LinePattern.Solid);
            Line(chart, s.Positions, s.HotPages, Red, "hot set", LinePattern.Solid);
            if (s.DeferredPages.Any(v => v > 0))
            {
                Line(chart, s.Positions, s.DeferredPages, Brown, "deferred (held back)", LinePattern.Dashed);
            }
        }

        (double bottom, double top) = Scale.ZeroTo(s.DirtyPages.Concat(s.HotPages).Concat(s.DeferredPages));
        chart.Axes.SetLimitsY(bottom, top);
        chart.YLabel("pages (4 KiB)", 13);
        return chart;
    }

    private static Plot RatesChart(ReportSeries s)
    {
        var chart = new Plot();
        ByteUnit unit = ByteUnit.For(s.BandwidthBytesPerSecond, s.DirtyRateBytesPerSecond);

        // The switchover's rates describe a paused VM: the bandwidth is drawn there, the dirty rate is not.
        if (s.Count > 0)
        {
            Line(chart, s.Positions, unit.Apply(s.BandwidthBytesPerSecond), Teal, "bandwidth", LinePattern.Solid);
            int rounds = s.PreCopyCount;
            if (rounds > 0)
            {
                Line(chart, ReportSeries.Take(s.Positions, rounds), unit.Apply(ReportSeries.Take(s.DirtyRateBytesPerSecond, rounds)), Orange, "dirty rate", LinePattern.Solid);
            }
        }

        (double bottom, double top) = Scale.ZeroTo(s.BandwidthBytesPerSecond.Concat(s.DirtyRateBytesPerSecond).Select(v => v / unit.Divisor));
        chart.Axes.SetLimitsY(bottom, top);
        chart.YLabel($"rate ({unit.Name}/s)", 13);
        return chart;
    }

    private static Plot ThrottleChart(ReportSeries s)
    {
        var chart = new Plot();
        if (s.Count > 0)
        {
            Scatter throttle = Line(chart, s.Positions, s.ThrottlePercent, Brown, "vCPU throttle", LinePattern.Solid);
            throttle.FillY = true;
            throttle.FillYValue = 0;
            throttle.FillYColor = Brown.WithAlpha(0.2);
        }

        double max = s.ThrottlePercent.DefaultIfEmpty(0).Max();
        chart.Axes.SetLimitsY(0, max > 0 ? Math.Min(100, Math.Max(max * 1.25, 10)) + 2 : 10);
        chart.YLabel("throttle (%)", 13);
        return chart;
    }

    private static Scatter Line(Plot chart, double[] xs, double[] ys, Color color, string legend, LinePattern pattern)
    {
        Scatter line = chart.Add.Scatter(xs, ys, color);
        line.LineWidth = 2;
        line.MarkerSize = 6;
        line.LinePattern = pattern;
        line.LegendText = legend;
        return line;
    }
}
