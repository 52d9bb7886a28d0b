using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using MigrateKit.Migration;
using ScottPlot;
using ScottPlot.Plottables;

namespace MigrateKit.Reports;

/// <summary>
/// The five charts of a report picture, each drawn from the report's series on the shared round
/// axis; <see cref="ReportRenderer"/> lays them out under the header.
/// </summary>
internal static class ReportCharts
{
    private static readonly Color Blue = Color.FromHex("#1f77b4");
    internal static readonly Color Orange = Color.FromHex("#ff7f0e");
    private static readonly Color Green = Color.FromHex("#2ca02c");
    private static readonly Color Red = Color.FromHex("#d62728");
    private static readonly Color Purple = Color.FromHex("#9467bd");
    private static readonly Color Brown = Color.FromHex("#8c564b");
    internal static readonly Color Grey = Color.FromHex("#7f7f7f");
    private static readonly Color Teal = Color.FromHex("#17becf");

    /// <summary>One tick per row, labelled with the round number or "switchover"; every chart shares the X range.</summary>
    internal static void RoundAxis(Plot chart, ReportSeries s)
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

    internal static Plot DowntimeChart(MigrationReport r, ReportSeries s)
    {
        var chart = new Plot();
        double? actual = r.DowntimeMs is double a && double.IsFinite(a) ? a : null;
        double? limit = r.DowntimeLimitMs is double l && double.IsFinite(l) && l > 0 ? l : null;
        IEnumerable<double> all = s.PredictedDowntimeMs.Concat(s.PredictedDowntimeHighMs).Concat(s.PredictedDowntimeLowMs).Concat(actual is null ? [] : [actual.Value]).Concat(limit is null ? [] : [limit.Value]);
        bool log = Scale.WantsLog(all);
        double floor = all.Where(v => v > 0).DefaultIfEmpty(1).Min() / 2;
        Func<double, double> y = log ? v => Scale.Log(v, floor) : v => v;

        if (s.Count > 0)
        {
            // The interval as a band behind the point: the switchover waits for its top to fit the limit.
            FillY band = chart.Add.FillY(s.Positions, s.PredictedDowntimeLowMs.Select(y).ToArray(), s.PredictedDowntimeHighMs.Select(y).ToArray());
            band.FillColor = Blue.WithAlpha(0.2);
            band.LineWidth = 0;
            band.LegendText = "forecast interval";
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
            Label(chart, "limit " + Scale.Milliseconds(ReportRenderer.Round(lim)), y(lim), Red, above: actual is not double other || other <= lim);
        }

        if (actual is double act)
        {
            HorizontalLine line = chart.Add.HorizontalLine(y(act), 2, Green);
            line.LegendText = "actual downtime";
            Label(chart, "actual " + Scale.Milliseconds(ReportRenderer.Round(act)), y(act), Green, above: limit is not double other || act > other);
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

    internal static Plot BytesChart(ReportSeries s)
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

    internal static Plot PagesChart(ReportSeries s)
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

    internal static Plot RatesChart(ReportSeries s)
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

    internal static Plot ThrottleChart(ReportSeries s)
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
