using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;

namespace MigrateKit.Tests.Estimation;

/// <summary>
/// The estimator and its history replayed over recorded migrations: each trace holds real runs
/// of one kind, one process per run (so every recorded forecast is uncorrected), with the
/// forecast's parts, its interval and the downtime measured. Replayed in order through a
/// <see cref="DowntimeEstimator"/> sharing one <see cref="DowntimeHistory"/>, as the migrations
/// of one machine would be, the learned forecasts must be closer than the uncorrected ones and
/// their upper bounds must hold the downtimes that followed. The traces were recorded with
/// <c>migratekit demo --json --no-calibration-store</c> on a 2-vCPU paravirtual-KVM machine (2026-12-03).
/// </summary>
[TestClass]
public sealed class DowntimeHistoryTraceTests
{
    private const double Bandwidth = 100.0 * (1 << 20);
    private const ulong Memory = 1UL << 30;

    public static IEnumerable<object[]> Traces() =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Estimation", "Traces"), "*.json").Order().Select(f => new object[] { Path.GetFileName(f) });

    [TestMethod]
    [DynamicData(nameof(Traces))]
    public void Replay_LearnedForecastsAreCloser_AndTheirBoundsHold(string trace)
    {
        Replay r = Run(trace);

        Assert.IsLessThanOrEqualTo(r.RawMedianError, r.MedianError, $"{trace}: learned median error {r.MedianError:P0} against {r.RawMedianError:P0} uncorrected");
        Assert.IsGreaterThanOrEqualTo(0.8, r.Covered, $"{trace}: the upper bound held {r.Covered:P0} of the downtimes");
    }

    [TestMethod]
    public void Replay_OverEveryTrace_MedianErrorWithinTenPercent_AndTheBoundHolds()
    {
        List<Replay> all = Traces().Select(t => Run((string)t[0])).ToList();
        double[] errors = all.SelectMany(r => r.Errors).Order().ToArray();
        double covered = all.Sum(r => r.Covered * r.Errors.Length) / errors.Length;

        Console.WriteLine($"{errors.Length} forecasts: median {Quantile.Of(errors, 0.5):P1}, p90 {Quantile.Of(errors, 0.9):P1}; bound held {covered:P0}");
        Assert.IsLessThanOrEqualTo(0.10, Quantile.Of(errors, 0.5));
        Assert.IsGreaterThanOrEqualTo(0.9, covered);
    }

    /// <summary>Replays a trace; the first run of it has no history and is not scored.</summary>
    private static Replay Run(string trace)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Estimation", "Traces", trace)));
        var history = new DowntimeHistory();
        var errors = new List<double>();
        var raw = new List<double>();
        int covered = 0;
        int i = 0;
        foreach (JsonElement run in doc.RootElement.GetProperty("runs").EnumerateArray())
        {
            JsonElement p = run.GetProperty("predicted");
            double transfer = p.GetProperty("transferMs").GetDouble();
            double pause = p.GetProperty("pauseMs").GetDouble();
            double harvest = p.GetProperty("harvestMs").GetDouble();
            double resume = p.GetProperty("resumeMs").GetDouble();
            double point = run.GetProperty("pointMs").GetDouble();
            double actual = run.GetProperty("actualMs").GetDouble();

            // What widened the recorded interval beyond the timing noise: the bandwidth's spread.
            double jitter = 0.5 + (0.05 * (pause + harvest + resume));
            double slower = Math.Max(0, run.GetProperty("highMs").GetDouble() - point - jitter);
            var estimator = new DowntimeEstimator { History = history, HistoryKey = trace };
            estimator.ObservePause(TimeSpan.FromMilliseconds(pause));
            estimator.ObserveResume(TimeSpan.FromMilliseconds(resume));
            estimator.ObserveHarvest(TimeSpan.FromMilliseconds(harvest), Memory);
            Forecast f = estimator.Estimate(new ForecastInput
            {
                Round = 3,
                Elapsed = TimeSpan.FromSeconds(3),
                PendingBytes = (ulong)(transfer / 1000 * Bandwidth),
                NextRoundBytes = (ulong)(transfer / 1000 * Bandwidth),
                DeferredBytes = 0,
                WarmDirtyBytesPerSecond = 0,
                TotalDirtyBytesPerSecond = 0,
                DeviceStateBytes = 0,
                MemoryBytes = Memory,
                MaxDowntime = TimeSpan.FromMilliseconds(300),
                BandwidthBytesPerSecond = Bandwidth,
                BandwidthLowBytesPerSecond = transfer > 0 ? Bandwidth / (1 + (slower / transfer)) : Bandwidth,
            });

            if (i++ > 0)
            {
                errors.Add(Math.Abs(f.PredictedDowntime.TotalMilliseconds - actual) / actual);
                raw.Add(Math.Abs(point - actual) / actual);
                covered += actual <= f.DowntimeHigh.TotalMilliseconds ? 1 : 0;
            }

            estimator.ObserveSwitchover(TimeSpan.FromMilliseconds(actual), TimeSpan.FromMilliseconds(run.GetProperty("actual").GetProperty("transferMs").GetDouble()));
        }

        double[] sortedErrors = errors.Order().ToArray();
        return new Replay(sortedErrors, Quantile.Of(sortedErrors, 0.5), Quantile.Of(raw.Order().ToArray(), 0.5), (double)covered / errors.Count);
    }

    private sealed record Replay(double[] Errors, double MedianError, double RawMedianError, double Covered);
}
