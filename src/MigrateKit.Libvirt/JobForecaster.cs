using System;
using LibvirtSharp;
using MigrateKit.Estimation;
using MigrateKit.Memory;

namespace MigrateKit.Libvirt;

/// <summary>
/// Turns QEMU's job statistics, polled through libvirt, into <see cref="DowntimeEstimator"/> inputs.
/// QEMU's <c>memory_remaining</c> counts only the pages of the current dirty bitmap not sent yet; a
/// switchover also sends what the guest dirtied since the last sync. That part grows at the dirty rate
/// but never beyond the guest's working set, which shows as the remaining bytes right after a sync.
/// </summary>
internal sealed class JobForecaster
{
    /// <summary>How far above the rate limit a burst speed must be to count as seen.</summary>
    internal const double MinBurstOverLimit = 1.5;

    /// <summary>The smallest share of page data the wire is taken to carry (a zero page still costs its marker and the scan).</summary>
    internal const double MinWireRatio = 0.01;

    /// <summary>The fewest pages between two polls whose share of data prices the rest of the first pass (4 MiB).</summary>
    internal const ulong MinPagesForLocalRatio = 1024;

    /// <summary>How many times the bursts are sampled at most (each a <see cref="BurstSampler.Window"/> of back-to-back polls).</summary>
    internal const int MaxBurstSamplings = 3;

    private readonly DowntimeEstimator _estimator;
    private readonly TimeSpan _maxDowntime;
    private readonly double? _rateLimit;
    private int _iteration = -1;
    private TimeSpan _iterationStart;
    private ulong _setNow;
    private ulong _setBefore;
    private double _peakBandwidth;
    private int _burstSamplings;
    private ulong _lastSampledIteration;
    private double? _burstSpeed;
    private ulong _pagesAtLastPoll;
    private double _wireAtLastPoll;

    /// <param name="estimator">The estimator with the measured fixed costs.</param>
    /// <param name="maxDowntime">The caller's downtime limit.</param>
    /// <param name="rateLimit">The bandwidth limit in bytes per second, or null.</param>
    /// <param name="switchoverBandwidth">The stop-and-copy's bandwidth, if known.</param>
    /// <param name="deltas">Whether QEMU's xbzrle is on: re-dirtied pages are then priced at what their deltas cost.</param>
    internal JobForecaster(DowntimeEstimator estimator, TimeSpan maxDowntime, double? rateLimit, double? switchoverBandwidth, bool deltas = false)
    {
        Deltas = deltas ? new XbzrleMeter() : null;
        _estimator = estimator;
        _maxDowntime = maxDowntime;
        _rateLimit = rateLimit;
        SwitchoverBandwidth = switchoverBandwidth;
    }

    /// <summary>What xbzrle achieved per iteration; null when xbzrle is off.</summary>
    internal XbzrleMeter? Deltas { get; }

    /// <summary>The stop-and-copy bandwidth assumed (bytes/s); null until known.</summary>
    internal double? SwitchoverBandwidth { get; private set; }

    /// <summary>
    /// The stop-and-copy speed this migration showed (bytes/s): the bursts under a rate limit
    /// (<see cref="LearnBursts"/>), or the peak pre-copy bandwidth without one; null until seen.
    /// </summary>
    internal double? MeasuredSpeed => _rateLimit is null ? (_peakBandwidth > 0 ? _peakBandwidth : null) : _burstSpeed;

    /// <summary>Whether <see cref="SwitchoverBandwidth"/> came from <see cref="LearnBursts"/>.</summary>
    internal bool SpeedLearnedInRun { get; private set; }

    /// <summary>
    /// Whether the bursts of the rate-limited pre-copy should be timed at the poll <paramref name="stats"/>:
    /// from the second iteration on, once per iteration until a burst was timed, at most <see cref="MaxBurstSamplings"/> times (the destination's memory is in place by then, as it is for the stop-and-copy).
    /// </summary>
    /// <remarks>
    /// Under xbzrle only in the second iteration: QEMU fills its cache then, so every page still goes whole and in
    /// bursts; from the third on the deltas stay far under the rate limit and there are no bursts to time.
    /// </remarks>
    internal bool WantsBursts(JobStats stats) => _rateLimit is not null && (Deltas is null || stats.MemoryIteration == 2) && _burstSpeed is null
        && _burstSamplings < MaxBurstSamplings && stats.MemoryIteration > _lastSampledIteration && stats.MemoryIteration >= 2 && stats.MemoryRemaining > 0;

    /// <summary>The pages dirtied between the last two syncs, bytes (the larger of the last two working sets).</summary>
    internal ulong WorkingSetBytes => Math.Max(_setNow, _setBefore);

    /// <summary>The pre-copy bandwidth QEMU reported last (bytes/s).</summary>
    internal double Bandwidth { get; private set; }

    /// <summary>The dirty rate QEMU reported last (bytes/s).</summary>
    internal double DirtyRate { get; private set; }

    /// <summary>What a switchover would send, as of the last poll.</summary>
    internal ulong PendingBytes { get; private set; }

    /// <summary>Pending bytes over the rate-limited bandwidth: what QEMU itself expects the downtime to be.</summary>
    internal TimeSpan QemuExpectedDowntime { get; private set; }

    /// <summary>The iteration of the last poll (QEMU's dirty-sync count; 0 before the first).</summary>
    internal int Iteration => Math.Max(_iteration, 0);

    /// <summary>
    /// Takes the speed of the rate-limited pre-copy's bursts (<see cref="BurstSampler"/>): the speed of the
    /// stop-and-copy unless it was known before. A speed not above the rate limit says the bursts were
    /// not seen (polls too slow) and is dropped.
    /// </summary>
    /// <param name="bytesPerSecond">The speed timed, or null when no burst could be.</param>
    /// <param name="iteration">The iteration sampled: the next sampling, if any, waits for a later one.</param>
    internal void LearnBursts(double? bytesPerSecond, ulong iteration)
    {
        _burstSamplings++;
        _lastSampledIteration = iteration;
        if (bytesPerSecond is not { } speed || _rateLimit is not { } limit || speed <= limit * MinBurstOverLimit)
        {
            return;
        }

        _burstSpeed = speed;
        if (SwitchoverBandwidth is null)
        {
            SwitchoverBandwidth = speed;
            SpeedLearnedInRun = true;
        }
    }

    /// <summary>Makes a forecast from one poll, or null when the statistics are not there yet.</summary>
    /// <param name="stats">The poll.</param>
    /// <param name="elapsed">When it was made.</param>
    /// <param name="qemuLimit">
    /// The downtime limit QEMU holds, or null. In the first pass QEMU switches over by itself only once what remains fits
    /// its limit at the bandwidth it measures, so a switchover there sends at most that much.
    /// </param>
    internal Forecast? Observe(JobStats stats, TimeSpan elapsed, TimeSpan? qemuLimit = null)
    {
        if (stats.MemoryRemaining is not { } remaining || stats.MemoryTotal is not { } total)
        {
            return null;
        }

        int iteration = (int)Math.Min(stats.MemoryIteration ?? 0, int.MaxValue);
        if (iteration != _iteration)
        {
            // A new dirty sync: the bitmap QEMU now sends from is the working set of the last period.
            _setBefore = _setNow;
            _setNow = remaining;
            _iteration = iteration;
            _iterationStart = elapsed;
            Deltas?.IterationStarted(stats, elapsed);
        }

        double pageSize = stats.MemoryPageSize is > 0 ? stats.MemoryPageSize.Value : GuestMemoryLayout.PageSize;
        DirtyRate = (stats.MemoryDirtyRate ?? 0) * pageSize;
        double bps = stats.MemoryBps ?? 0;
        if (bps > 0)
        {
            Bandwidth = bps;
            _peakBandwidth = Math.Max(_peakBandwidth, bps);
        }
        else if (Bandwidth == 0)
        {
            Bandwidth = _rateLimit ?? 0;
        }

        if (Bandwidth <= 0)
        {
            return null;
        }

        // Without a rate limit the stop-and-copy runs as fast as pre-copy did at best; with one, QEMU lifts
        // it for the stop-and-copy, so it is at least the limit (a guest with little to send shows a
        // pre-copy rate far below it).
        double switchover = SwitchoverBandwidth ?? (_rateLimit is { } rateLimit ? Math.Max(Bandwidth, rateLimit) : _peakBandwidth);
        double precopy = Bandwidth;
        if (Deltas?.Last is { } deltas)
        {
            (precopy, switchover) = PricedByDeltas(deltas, pageSize);
        }
        else if (iteration < 2 && FirstPassWireRatio(stats, pageSize) is { } ratio)
        {
            // The first pass counts untouched (zero) pages as remaining, yet sends each as a marker of a
            // few bytes: what is left of it moves at the wire's speed over the share of data pages.
            precopy = Bandwidth / ratio;
            switchover /= ratio;
        }

        RememberCounters(stats);

        ulong pending = remaining;
        if (iteration >= 2)
        {
            double sinceSync = Math.Max(0, (elapsed - _iterationStart).TotalSeconds);
            ulong workingSet = Math.Max(_setNow, _setBefore);
            ulong grown = remaining + (ulong)Math.Min(DirtyRate * sinceSync, ulong.MaxValue / 2);
            pending = Math.Max(remaining, Math.Min(grown, workingSet));
        }
        else if (qemuLimit is { } limitNow)
        {
            pending = Math.Min(remaining, (ulong)(Bandwidth * limitNow.TotalSeconds));
        }

        PendingBytes = pending;
        QemuExpectedDowntime = TimeSpan.FromSeconds(pending / Bandwidth);
        return _estimator.Estimate(new ForecastInput
        {
            Round = Math.Max(iteration - 1, 0),
            Elapsed = elapsed,
            PendingBytes = pending,
            NextRoundBytes = pending,
            DeferredBytes = 0,
            WarmDirtyBytesPerSecond = DirtyRate,
            TotalDirtyBytesPerSecond = DirtyRate,
            DeviceStateBytes = 0,
            MemoryBytes = total,
            MaxDowntime = _maxDowntime,
            BandwidthBytesPerSecond = precopy,
            SwitchoverBandwidthBytesPerSecond = switchover,
        });
    }

    /// <summary>
    /// Wire bytes per byte of page data: over the pages processed since the last poll when there were at least
    /// <see cref="MinPagesForLocalRatio"/> (QEMU scans memory in order, and the pages next to those are the best
    /// guess of what is left; a guest's data tends to sit low in memory), else over the whole job so far; null before any.
    /// </summary>
    private double? FirstPassWireRatio(JobStats stats, double pageSize)
    {
        (ulong pages, double wire) = Processed(stats);
        if (pages == 0 || stats.MemoryNormalBytes is null)
        {
            return null;
        }

        if (pages >= _pagesAtLastPoll + MinPagesForLocalRatio && wire >= _wireAtLastPoll)
        {
            return Math.Clamp((wire - _wireAtLastPoll) / ((pages - _pagesAtLastPoll) * pageSize), MinWireRatio, 1);
        }

        return Math.Clamp(wire / (pages * pageSize), MinWireRatio, 1);
    }

    private void RememberCounters(JobStats stats) => (_pagesAtLastPoll, _wireAtLastPoll) = Processed(stats);

    /// <summary>Pages processed with or without data, and the wire bytes of those with data, as QEMU counts them.</summary>
    private static (ulong Pages, double Wire) Processed(JobStats stats) =>
        ((stats.MemoryNormal ?? 0) + (stats.MemoryConstant ?? 0) + (stats.CompressionPages ?? 0), (stats.MemoryNormalBytes ?? 0) + (double)(stats.CompressionBytes ?? 0));

    /// <summary>
    /// Pre-copy and stop-and-copy speeds in bytes of page data per second under xbzrle: the wire carries
    /// <see cref="XbzrleIteration.WireRatio"/> of each page. An iteration whose wire rate stayed under the
    /// rate limit was bound by QEMU's encoding, not the link, and the stop-and-copy encodes no faster.
    /// </summary>
    private (double Precopy, double Switchover) PricedByDeltas(XbzrleIteration deltas, double pageSize)
    {
        double ratio = deltas.WireRatio;
        double precopy = Bandwidth / ratio;
        double link = SwitchoverBandwidth ?? (_rateLimit is null ? _peakBandwidth : double.PositiveInfinity);
        double wireRate = deltas.Duration > TimeSpan.Zero ? deltas.WireBytes / deltas.Duration.TotalSeconds : 0;
        bool encodeBound = _rateLimit is not { } limit || wireRate < limit * 0.8;
        double byEncoding = encodeBound && deltas.PageRate > 0 ? deltas.PageRate * pageSize : double.PositiveInfinity;
        double switchover = Math.Min(link / ratio, byEncoding);
        return (precopy, double.IsFinite(switchover) && switchover > 0 ? switchover : precopy);
    }
}
