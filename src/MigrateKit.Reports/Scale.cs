using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace MigrateKit.Reports;

/// <summary>A binary unit that keeps a series' numbers short on an axis: B, KiB, MiB or GiB.</summary>
/// <param name="Name">The unit's name, e.g. "MiB".</param>
/// <param name="Divisor">Bytes per unit.</param>
internal readonly record struct ByteUnit(string Name, double Divisor)
{
    private static readonly ByteUnit[] Units = [new("B", 1), new("KiB", 1024), new("MiB", 1024 * 1024), new("GiB", 1024.0 * 1024 * 1024)];

    /// <summary>The largest unit in which <paramref name="max"/> is at least 1.</summary>
    internal static ByteUnit For(double max)
    {
        ByteUnit unit = Units[0];
        foreach (ByteUnit u in Units)
        {
            if (max >= u.Divisor)
            {
                unit = u;
            }
        }

        return unit;
    }

    /// <summary>The unit for the largest value of every series.</summary>
    internal static ByteUnit For(params double[][] series) => For(series.SelectMany(s => s).DefaultIfEmpty(0).Max());

    internal double[] Apply(double[] bytes)
    {
        double divisor = Divisor;
        return bytes.Select(b => b / divisor).ToArray();
    }
}

/// <summary>Axis helpers: limits that never collapse, and decade ticks for a log axis.</summary>
internal static class Scale
{
    /// <summary>0 to a little above the largest value (1 when every value is 0).</summary>
    internal static (double Bottom, double Top) ZeroTo(IEnumerable<double> values, double headroom = 1.15)
    {
        double max = values.Where(double.IsFinite).DefaultIfEmpty(0).Max();
        return (0, max > 0 ? max * headroom : 1);
    }

    /// <summary>
    /// Whether values this far apart read better on a log axis: the largest is more than
    /// <paramref name="ratio"/> times the smallest positive one.
    /// </summary>
    internal static bool WantsLog(IEnumerable<double> values, double ratio = 30)
    {
        double[] positive = values.Where(v => double.IsFinite(v) && v > 0).ToArray();
        return positive.Length > 1 && positive.Max() / positive.Min() > ratio;
    }

    /// <summary>Log10 of a value, clamped at <paramref name="floor"/> for zeros.</summary>
    internal static double Log(double value, double floor) => Math.Log10(Math.Max(value, floor));

    /// <summary>Major ticks at 1, 10, 100… (labelled with <paramref name="format"/>), minor ticks at 2–9 of each decade.</summary>
    internal static (double[] Major, string[] Labels, double[] Minor) DecadeTicks(double logMin, double logMax, Func<double, string> format)
    {
        int first = (int)Math.Floor(logMin);
        int last = (int)Math.Ceiling(logMax);
        var major = new List<double>();
        var labels = new List<string>();
        var minor = new List<double>();
        for (int k = first; k <= last; k++)
        {
            major.Add(k);
            labels.Add(format(Math.Pow(10, k)));
            for (int m = 2; m <= 9; m++)
            {
                minor.Add(k + Math.Log10(m));
            }
        }

        // Few decades in view: label 2 and 5 of each as well, or the axis shows one or two numbers.
        if (logMax - logMin <= 3.5)
        {
            foreach (int m in (int[])[2, 5])
            {
                for (int k = first; k <= last; k++)
                {
                    major.Add(k + Math.Log10(m));
                    labels.Add(format(m * Math.Pow(10, k)));
                }
            }
        }

        return ([.. major], [.. labels], [.. minor]);
    }

    /// <summary>Milliseconds as "0.5 ms", "20 ms" or "3 s".</summary>
    internal static string Milliseconds(double ms) => ms switch
    {
        >= 1000 => (ms / 1000).ToString("0.###", CultureInfo.InvariantCulture) + " s",
        _ => ms.ToString("0.###", CultureInfo.InvariantCulture) + " ms",
    };
}
