using System.Linq;
using ScottPlot;

namespace MigrateKit.Cli;

/// <summary>The picture of a plan: the curve of distinct pages dirtied against time, and what each predicted round sends.</summary>
internal static class PlanChart
{
    private const double MiB = 1 << 20;

    internal static void SavePng(PlanJson plan, string path)
    {
        var chart = new Plot();
        double[] windows = [.. plan.Curve.Select(p => p.ElapsedMs / 1000)];
        double[] dirtied = [.. plan.Curve.Select(p => p.DistinctPages * 4096.0 / MiB)];
        ScottPlot.Plottables.Scatter curve = chart.Add.Scatter(windows, dirtied);
        curve.LegendText = "distinct MiB dirtied within the window";

        // Each round starts when the one before ends; its bar is what it sends.
        double start = 0;
        var bars = plan.Rounds.Select(r =>
        {
            var bar = new Bar { Position = start + (r.DurationMs / 2000), Size = r.DurationMs / 1000, Value = r.BytesSent / MiB, FillColor = Colors.Orange.WithAlpha(0.5) };
            start += r.DurationMs / 1000;
            return bar;
        }).ToArray();
        ScottPlot.Plottables.BarPlot rounds = chart.Add.Bars(bars);
        rounds.LegendText = "predicted rounds: MiB sent";
        chart.Axes.Bottom.Label.Text = "seconds";
        chart.Axes.Left.Label.Text = "MiB";
        chart.Title($"{plan.Vm} {plan.Workload}: {plan.Verdict}, {plan.PredictedRounds} rounds, {plan.PredictedTotalMs:F0} ms, downtime {plan.PredictedDowntimeMs?.ToString("F0", System.Globalization.CultureInfo.InvariantCulture) ?? "-"} ms");
        chart.ShowLegend();
        chart.SavePng(path, 1200, 700);
    }
}
