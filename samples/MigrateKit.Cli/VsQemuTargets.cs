using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace MigrateKit.Cli;

/// <summary>The targets <c>bench vs-qemu</c> checks, all on the medians of the same run.</summary>
internal static class VsQemuTargets
{
    /// <summary>MigrateKit's forecast error may be at most this.</summary>
    internal const double ForecastErrorPct = 10;

    /// <summary>A downtime this short meets the xbzrle scenario's downtime target whatever QEMU's (issue 17).</summary>
    internal const double SmallDowntimeMs = 10;

    /// <summary>Encodings on may cost this much more than off and count as no worse: the run-to-run noise of this host.</summary>
    internal const double NoWorseFactor = 1.1;

    internal static IReadOnlyList<VsQemuTarget> For(VsQemuScenario scenario, VsQemuScenarioResult r)
    {
        var targets = new List<VsQemuTarget>();
        VsQemuSide q = r.Qemu, m = r.MigrateKit;
        if (scenario.Name == "unlimited")
        {
            targets.Add(AtMost("total time ≤ 1.0× QEMU's", r.TotalRatio, 1.0, m.MediansOfConverged));
            targets.Add(new VsQemuTarget("downtime ≤ QEMU's", m.MediansOfConverged && m.DowntimeMs <= q.DowntimeMs,
                $"MigrateKit {Ms(m.DowntimeMs)}, QEMU {Ms(q.DowntimeMs)}"));
        }
        else if (scenario.Name == "anchor-100mib-autoconverge")
        {
            targets.Add(AtMost("total time ≤ 0.25× QEMU's", r.TotalRatio, 0.25, m.MediansOfConverged));
            targets.Add(AtMost("bytes ≤ 0.2× QEMU's", r.BytesRatio, 0.2, m.MediansOfConverged));
            targets.Add(new VsQemuTarget("downtime ≤ 300 ms", m.MediansOfConverged && m.DowntimeMs <= VsQemuScenario.MaxDowntime.TotalMilliseconds, $"MigrateKit {Ms(m.DowntimeMs)}"));
        }
        else if (scenario.Name == "anchor-100mib-xbzrle")
        {
            targets.Add(AtMost("total time ≤ 0.8× QEMU-xbzrle's", r.TotalRatio, 0.8, m.MediansOfConverged));
            targets.Add(AtMost("bytes ≤ 0.8× QEMU-xbzrle's", r.BytesRatio, 0.8, m.MediansOfConverged));
            targets.Add(new VsQemuTarget($"downtime ≤ QEMU-xbzrle's or ≤ {SmallDowntimeMs:F0} ms", m.MediansOfConverged && (m.DowntimeMs <= SmallDowntimeMs || m.DowntimeMs <= q.DowntimeMs),
                $"MigrateKit {Ms(m.DowntimeMs)}, QEMU {Ms(q.DowntimeMs)}"));
        }

        if (r.MigrateKitNoEncodings is VsQemuSide off)
        {
            targets.Add(NoWorse("total time", m, off, s => s.TotalMs, S, 0));
            targets.Add(NoWorse("bytes", m, off, s => s.BytesSent, MiB, 0));
            targets.Add(NoWorse("downtime", m, off, s => s.DowntimeMs, Ms, ForecastRun.AllowanceMs));
        }

        if (q.Converged == 0 && m.Converged == 0 && m.Runs.Count > 0 && m.Runs.All(x => x.Status == VsQemuRun.NotConverged))
        {
            // No downtime to score a forecast against: what counts is that it said so, and when.
            bool early = m.TotalMs < q.TotalMs;
            targets.Add(new VsQemuTarget("neither converges: MigrateKit's forecast says so before QEMU's cut-off", early,
                $"MigrateKit gave up after {S(m.TotalMs)} ({m.Runs[0].Reason}); QEMU ran {S(q.TotalMs)}, expecting {Ms(q.PredictedDowntimeMs)} of downtime"));
            return targets;
        }

        targets.Add(new VsQemuTarget($"forecast error ≤ {ForecastErrorPct:F0} % (under 20 ms: within 5 ms)", m.MediansOfConverged && m.ScoredErrorPct <= ForecastErrorPct,
            $"MigrateKit {Pct(m.ScoredErrorPct)} (raw {Pct(m.PredictionErrorPct)}, {Ms(m.PredictionErrorMs)})"));
        bool below = m.MediansOfConverged && m.ScoredErrorPct is double mine && (q.ScoredErrorPct is not double theirs || mine < theirs);
        targets.Add(new VsQemuTarget("forecast error below QEMU's expected-downtime error", below,
            $"MigrateKit {Pct(m.ScoredErrorPct)}, QEMU {(q.PredictionErrorPct is null ? "gave no expected downtime before it switched over" : $"{Pct(q.ScoredErrorPct)} ({Ms(q.PredictionErrorMs)})")}"));
        return targets;
    }

    /// <summary>
    /// Encodings on no worse than off: a median at most <see cref="NoWorseFactor"/>× (or
    /// <paramref name="allowance"/> above, the host's noise on a few ms); converging where the
    /// runs without did not is better, the reverse worse.
    /// </summary>
    private static VsQemuTarget NoWorse(string what, VsQemuSide on, VsQemuSide off, Func<VsQemuSide, double?> figure, Func<double?, string> format, double allowance)
    {
        double? a = figure(on), b = figure(off);
        bool met = (on.MediansOfConverged, off.MediansOfConverged) switch
        {
            (true, false) => true,
            (false, true) => false,
            _ => a is double x && b is double y && (x <= y * NoWorseFactor || x - y <= allowance),
        };
        string ratio = a is double r && b is double o && o > 0 ? $"{(r / o).ToString("F2", CultureInfo.InvariantCulture)}×: " : "";
        string within = allowance > 0 ? $" (or within {allowance:F0} ms)" : "";
        return new VsQemuTarget($"{what} with encodings ≤ {NoWorseFactor.ToString("F1", CultureInfo.InvariantCulture)}× without{within}", met,
            $"{ratio}{format(a)} with{(on.MediansOfConverged ? "" : " (not converged)")}, {format(b)} without{(off.MediansOfConverged ? "" : " (not converged)")}");
    }

    private static VsQemuTarget AtMost(string what, double? ratio, double limit, bool converged) =>
        new(what, converged && ratio <= limit, ratio is double x ? $"{x.ToString("F2", CultureInfo.InvariantCulture)}×{(converged ? "" : " (MigrateKit did not converge)")}" : "no ratio (a side has no figure)");

    internal static string Ms(double? v) => v is double d ? d.ToString("F1", CultureInfo.InvariantCulture) + " ms" : "-";

    internal static string S(double? ms) => ms is double d ? (d / 1000).ToString("F1", CultureInfo.InvariantCulture) + " s" : "-";

    internal static string MiB(double? bytes) => bytes is double b ? (b / 1048576).ToString("F0", CultureInfo.InvariantCulture) + " MiB" : "-";

    internal static string Pct(double? v) => v is double d ? d.ToString("F1", CultureInfo.InvariantCulture) + " %" : "-";
}
