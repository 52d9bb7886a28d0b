using System;

namespace MigrateKit.Estimation;

/// <summary>Quantiles of measurements, interpolated linearly between neighbouring values.</summary>
/// <remarks>
/// The forecast runs after every harvest, in the moments before a switchover while the guest
/// keeps dirtying pages: these helpers sort small spans in place (insertion sort, no allocation,
/// no generic code left for the JIT to compile on a migration's first decisive round).
/// </remarks>
internal static class Quantile
{
    /// <summary>The <paramref name="q"/> quantile (0 to 1) of <paramref name="sorted"/>, which is sorted ascending and not empty.</summary>
    internal static double Of(ReadOnlySpan<double> sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int lower = (int)Math.Floor(position);
        int upper = Math.Min(lower + 1, sorted.Length - 1);
        return sorted[lower] + ((sorted[upper] - sorted[lower]) * (position - lower));
    }

    /// <summary>The median of <paramref name="values"/> (not empty), which this sorts in place.</summary>
    internal static double Median(Span<double> values)
    {
        Sort(values);
        return Of(values, 0.5);
    }

    /// <summary>Sorts <paramref name="values"/> ascending in place; meant for the few dozen values a meter keeps.</summary>
    internal static void Sort(Span<double> values)
    {
        for (int i = 1; i < values.Length; i++)
        {
            double v = values[i];
            int j = i - 1;
            while (j >= 0 && values[j] > v)
            {
                values[j + 1] = values[j];
                j--;
            }

            values[j + 1] = v;
        }
    }
}
