using System;

namespace MigrateKit.Estimation;

/// <summary>
/// Measures the throughput of a send path. Callers report how many bytes they moved and how
/// long the sending took; reports are gathered into windows of at least
/// <see cref="MinimumWindow"/> of sending time, and each closed window becomes one sample of an
/// exponentially weighted moving average. Unlike a single 100 ms window, one slow or fast burst
/// moves the estimate only by the smoothing factor, and <see cref="Conservative"/> gives a low
/// quantile of recent windows for budgets that must not be overrun.
/// </summary>
public sealed class BandwidthMeter
{
    private readonly double _smoothing;
    private readonly double[] _samples;
    private int _sampleCount;
    private int _next;
    private long _windowBytes;
    private TimeSpan _windowTime;

    /// <summary>Creates a meter.</summary>
    /// <param name="smoothing">Weight of a new window in the average, in (0, 1]. The default is 0.3.</param>
    /// <param name="minimumWindow">Sending time gathered into one sample. The default is 50 ms.</param>
    /// <param name="history">How many recent samples <see cref="Conservative"/> looks at. The default is 32.</param>
    public BandwidthMeter(double smoothing = 0.3, TimeSpan? minimumWindow = null, int history = 32)
    {
        if (!(smoothing > 0 && smoothing <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, "The smoothing factor must be in (0, 1].");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(history, 1);
        _smoothing = smoothing;
        MinimumWindow = minimumWindow ?? TimeSpan.FromMilliseconds(50);
        if (MinimumWindow <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(minimumWindow), MinimumWindow, "The minimum window must be positive.");
        }

        _samples = new double[history];
    }

    /// <summary>Sending time gathered into one sample.</summary>
    public TimeSpan MinimumWindow { get; }

    /// <summary>The moving average in bytes per second; 0 before the first sample.</summary>
    public double BytesPerSecond { get; private set; }

    /// <summary>Bytes reported in total.</summary>
    public long TotalBytes { get; private set; }

    /// <summary>Sending time reported in total.</summary>
    public TimeSpan TotalTime { get; private set; }

    /// <summary>How many windows have closed.</summary>
    public int SampleCount { get; private set; }

    /// <summary>Reports that <paramref name="bytes"/> were sent in <paramref name="elapsed"/> of sending time.</summary>
    public void Record(long bytes, TimeSpan elapsed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (elapsed < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(elapsed), elapsed, "Elapsed time cannot be negative.");
        }

        TotalBytes += bytes;
        TotalTime += elapsed;
        _windowBytes += bytes;
        _windowTime += elapsed;
        if (_windowTime >= MinimumWindow && _windowBytes > 0)
        {
            CloseWindow();
        }
    }

    /// <summary>
    /// A cautious rate: the lower of the average and the <paramref name="quantile"/> of recent
    /// windows. Falls back to the average (or the open window) while there are few samples.
    /// </summary>
    public double Conservative(double quantile = 0.2)
    {
        if (!(quantile >= 0 && quantile <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(quantile), quantile, "The quantile must be in [0, 1].");
        }

        if (_sampleCount < 3)
        {
            return BytesPerSecond > 0 ? BytesPerSecond : OpenWindowRate();
        }

        Span<double> recent = _sampleCount <= 64 ? stackalloc double[_sampleCount] : new double[_sampleCount];
        _samples.AsSpan(0, _sampleCount).CopyTo(recent);
        Quantile.Sort(recent);
        return Math.Min(Quantile.Of(recent, quantile), BytesPerSecond);
    }

    /// <summary>The best current estimate: the average, or the open window's rate before any window closed.</summary>
    public double Current => BytesPerSecond > 0 ? BytesPerSecond : OpenWindowRate();

    private double OpenWindowRate() => _windowTime > TimeSpan.Zero ? _windowBytes / _windowTime.TotalSeconds : 0;

    private void CloseWindow()
    {
        double sample = _windowBytes / _windowTime.TotalSeconds;
        BytesPerSecond = SampleCount == 0 ? sample : (_smoothing * sample) + ((1 - _smoothing) * BytesPerSecond);
        _samples[_next] = sample;
        _next = (_next + 1) % _samples.Length;
        _sampleCount = Math.Min(_sampleCount + 1, _samples.Length);
        SampleCount++;
        _windowBytes = 0;
        _windowTime = TimeSpan.Zero;
    }
}
