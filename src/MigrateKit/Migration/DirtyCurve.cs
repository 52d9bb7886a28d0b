using System;
using System.Collections.Generic;
using System.Linq;
using MigrateKit.Memory;

namespace MigrateKit.Migration;

/// <summary>
/// Distinct pages a guest dirties against time: how many different pages it writes within a
/// window of a given length. It is far from linear: a guest rewriting a working set saturates at
/// that set, so a rate measured over one interval says little about another. A pre-copy round of
/// length t leaves <see cref="PagesAt"/>(t) pages to send again; <see cref="MigrationPlanner"/>
/// builds the curve by watching a VM's tracker, and any other source (a hypervisor's dirty-rate
/// sampling over several periods, see <see cref="FromRates"/>) feeds the same model.
/// </summary>
public sealed class DirtyCurve
{
    private readonly DirtyCurvePoint[] _points;

    /// <summary>Creates a curve from measured points.</summary>
    /// <param name="points">At least one point, with positive, strictly increasing <see cref="DirtyCurvePoint.Elapsed"/> and non-negative page counts.</param>
    /// <param name="hotPages">Pages written in every short window of the observation (0 when unknown).</param>
    /// <exception cref="ArgumentException">No points, a window that is not longer than the one before it, or a negative count.</exception>
    /// <remarks>
    /// A point below an earlier one (a sampler's noise: a longer window cannot hold fewer distinct
    /// pages) is raised to it, so the curve never falls.
    /// </remarks>
    public DirtyCurve(IEnumerable<DirtyCurvePoint> points, long hotPages = 0)
    {
        ArgumentNullException.ThrowIfNull(points);
        _points = [.. points];
        if (_points.Length == 0)
        {
            throw new ArgumentException("A dirty curve needs at least one point.", nameof(points));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(hotPages);
        long highest = 0;
        for (int i = 0; i < _points.Length; i++)
        {
            DirtyCurvePoint p = _points[i];
            if (p.Elapsed <= (i == 0 ? TimeSpan.Zero : _points[i - 1].Elapsed))
            {
                throw new ArgumentException($"Point {i} ends at {p.Elapsed.TotalMilliseconds} ms: each window must be positive and longer than the one before it.", nameof(points));
            }

            if (p.DistinctPages < 0)
            {
                throw new ArgumentException($"Point {i} has {p.DistinctPages} pages: a count cannot be negative.", nameof(points));
            }

            highest = Math.Max(highest, p.DistinctPages);
            _points[i] = p with { DistinctPages = highest };
        }

        HotPages = hotPages;
    }

    /// <summary>The points, shortest window first, never falling.</summary>
    public IReadOnlyList<DirtyCurvePoint> Points => _points;

    /// <summary>Pages written in every short window of the observation: the set pre-copy holds back for the switchover.</summary>
    public long HotPages { get; }

    /// <summary>The longest window measured.</summary>
    public TimeSpan Span => _points[^1].Elapsed;

    /// <summary>
    /// Distinct pages dirtied within a window of <paramref name="window"/>: straight lines between
    /// the points (from none at zero), and past the last point the last segment's slope, as the
    /// observation cannot tell where a still-growing curve stops. The caller caps it at the memory.
    /// </summary>
    public double PagesAt(TimeSpan window)
    {
        double t = window.TotalSeconds;
        if (t <= 0)
        {
            return 0;
        }

        double t0 = 0;
        double p0 = 0;
        for (int i = 0; i < _points.Length; i++)
        {
            double t1 = _points[i].Elapsed.TotalSeconds;
            double p1 = _points[i].DistinctPages;
            if (t <= t1 || i == _points.Length - 1)
            {
                return p0 + ((p1 - p0) * (t - t0) / (t1 - t0));
            }

            t0 = t1;
            p0 = p1;
        }

        return p0;
    }

    /// <summary>
    /// A curve from dirty rates measured over several periods (QEMU's and libvirt's dirty-rate
    /// calculation: distinct pages dirtied in the period, divided by it): each period gives the
    /// point (period, rate × period / 4 KiB). Samples of the same period are averaged.
    /// </summary>
    /// <param name="samples">Each period and the rate measured over it, in bytes per second.</param>
    /// <exception cref="ArgumentException">No samples, a period that is not positive, or a rate that is negative or not a number.</exception>
    public static DirtyCurve FromRates(IEnumerable<(TimeSpan Period, double BytesPerSecond)> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var list = samples.ToList();
        foreach ((TimeSpan period, double rate) in list)
        {
            if (period <= TimeSpan.Zero || !(rate >= 0) || double.IsInfinity(rate))
            {
                throw new ArgumentException($"A dirty rate of {rate} B/s over {period.TotalMilliseconds} ms: the period must be positive and the rate a non-negative number.", nameof(samples));
            }
        }

        return new DirtyCurve(list
            .GroupBy(s => s.Period)
            .OrderBy(g => g.Key)
            .Select(g => new DirtyCurvePoint(g.Key, (long)Math.Round(g.Average(s => s.BytesPerSecond) * g.Key.TotalSeconds / GuestMemoryLayout.PageSize))));
    }
}
