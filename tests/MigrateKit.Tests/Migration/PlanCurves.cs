using System;
using System.Linq;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Migration;

/// <summary>Synthetic dirty curves for the planner's model, sampled at the planner's default marks.</summary>
internal static class PlanCurves
{
    internal const double MiB = 1 << 20;

    internal static readonly double[] Marks = [0.1, 0.2, 0.5, 1, 2, 5];

    /// <summary>A guest that writes nothing.</summary>
    internal static DirtyCurve Idle() => Of(_ => 0);

    /// <summary>A working set of <paramref name="pages"/> that fills with time constant <paramref name="tau"/> seconds.</summary>
    internal static DirtyCurve Saturating(long pages, double tau, long hot = 0) => Of(t => pages * (1 - Math.Exp(-t / tau)), hot);

    /// <summary>A guest writing new pages at a steady rate, never the same page twice within the observation.</summary>
    internal static DirtyCurve Linear(double pagesPerSecond) => Of(t => pagesPerSecond * t);

    internal static DirtyCurve Of(Func<double, double> pages, long hot = 0) =>
        new(Marks.Select(t => new DirtyCurvePoint(TimeSpan.FromSeconds(t), (long)Math.Round(pages(t)))), hot);

    /// <summary>Pages per second that fill <paramref name="bytesPerSecond"/> of wire bandwidth.</summary>
    internal static double PagesPerSecondOf(double bytesPerSecond) => bytesPerSecond / (4096 + 16);

    internal static PlanInput Input(DirtyCurve curve, double bandwidthMiB, double limitMs, bool throttling = true, ulong memory = 1UL << 30) => new()
    {
        Curve = curve,
        MemoryBytes = memory,
        BandwidthBytesPerSecond = bandwidthMiB * MiB,
        Options = new MigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(limitMs), AllowThrottling = throttling },
    };
}
