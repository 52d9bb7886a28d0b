using System;

namespace MigrateKit.Estimation;

/// <summary>Quantiles of measurements, interpolated linearly between neighbouring values.</summary>
internal static class Quantile
{
    /// <summary>The <paramref name="q"/> quantile (0 to 1) of <paramref name="sorted"/>, which is sorted ascending and not empty.</summary>
    internal static double Of(double[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int lower = (int)Math.Floor(position);
        int upper = Math.Min(lower + 1, sorted.Length - 1);
        return sorted[lower] + ((sorted[upper] - sorted[lower]) * (position - lower));
    }
}
