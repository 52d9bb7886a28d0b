using System;

namespace MigrateKit.Estimation;

/// <summary>
/// The rate at which the guest dirties pages, from harvest to harvest: each harvest reports how
/// many new pages it found and how long it had been since the previous one. Smoothed with an
/// exponentially weighted moving average; the last sample is kept too, because after a
/// throttle change the latest round says more than the history.
/// </summary>
public sealed class DirtyRateMeter
{
    private readonly double _smoothing;

    /// <summary>Creates a meter.</summary>
    /// <param name="smoothing">Weight of a new sample, in (0, 1]. The default is 0.5.</param>
    public DirtyRateMeter(double smoothing = 0.5)
    {
        if (!(smoothing > 0 && smoothing <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, "The smoothing factor must be in (0, 1].");
        }

        _smoothing = smoothing;
    }

    /// <summary>The moving average in pages per second; 0 before the first sample.</summary>
    public double PagesPerSecond { get; private set; }

    /// <summary>The most recent sample in pages per second.</summary>
    public double LastPagesPerSecond { get; private set; }

    /// <summary>How many samples have been recorded.</summary>
    public int SampleCount { get; private set; }

    /// <summary>Records that <paramref name="pages"/> were dirtied over <paramref name="interval"/>.</summary>
    public void Record(ulong pages, TimeSpan interval)
    {
        if (interval <= TimeSpan.Zero)
        {
            return;
        }

        double sample = pages / interval.TotalSeconds;
        LastPagesPerSecond = sample;
        PagesPerSecond = SampleCount == 0 ? sample : (_smoothing * sample) + ((1 - _smoothing) * PagesPerSecond);
        SampleCount++;
    }

    /// <summary>Forgets the history (after the guest's speed was changed on purpose, e.g. by a throttle).</summary>
    public void Reset()
    {
        PagesPerSecond = 0;
        LastPagesPerSecond = 0;
        SampleCount = 0;
    }
}
