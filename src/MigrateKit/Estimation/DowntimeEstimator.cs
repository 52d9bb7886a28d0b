using System;
using System.Collections.Generic;

namespace MigrateKit.Estimation;

/// <summary>
/// Predicts downtime, total time and convergence from measured costs:
/// downtime = pause + final harvest + (pending bytes + what the guest dirties while pausing) / bandwidth
/// + device state / bandwidth + resume. The fixed costs are measured (pause latency, harvest time
/// per GiB, the destination's resume cost), not assumed; every input is refreshed each round.
/// Each forecast also carries an interval: the point, corrected by what the machine's earlier
/// switchovers taught (<see cref="History"/>), widened by the spread of the bandwidth, the errors
/// of this migration's own send-time predictions and what the history still misses.
/// </summary>
public sealed class DowntimeEstimator
{
    /// <summary>Timing noise every part carries, as a share of the fixed costs, on top of <see cref="JitterFloor"/>.</summary>
    private const double JitterShare = 0.05;

    private static readonly TimeSpan JitterFloor = TimeSpan.FromMilliseconds(0.5);

    /// <summary>Switchovers of a kind the history needs before its spread replaces this migration's own allowance.</summary>
    private const int MinimumHistory = 5;

    private readonly List<ulong> _pendingHistory = new();
    private readonly List<double> _sendRatios = new();
    private readonly List<TimeSpan> _roundTrips = new();
    private double _harvestSecondsPerByte;
    private double _finalHarvestSecondsPerByte;
    private DowntimeBreakdown _lastRaw;

    /// <summary>The machine's earlier switchovers this estimator corrects its forecasts by; null: none.</summary>
    public DowntimeHistory? History { get; set; }

    /// <summary>The kind of migration in <see cref="History"/> (e.g. whether a bandwidth limit applies).</summary>
    /// <value>The default is the empty string.</value>
    public string HistoryKey { get; set; } = string.Empty;

    /// <summary>
    /// A broader kind of migration in <see cref="History"/>: each switchover is recorded under it
    /// as well as under <see cref="HistoryKey"/>, and its correction applies while
    /// <see cref="HistoryKey"/> has no switchover yet, then in part until it has three (see
    /// <see cref="DowntimeHistory.Correction(string, string)"/>). The engine learns per destination (whose
    /// checks, start and round trips are its own) and prices a destination it never migrated to
    /// by every destination's switchovers.
    /// </summary>
    /// <value>The default is null: no fallback.</value>
    public string? HistoryFallbackKey { get; set; }

    /// <summary>
    /// The kind of final harvest in <see cref="History"/>; null: <see cref="HistoryKey"/>. A paused
    /// harvest's cost depends on the tracker and on the memory it walks, not on the bandwidth, so
    /// kinds of migration that differ only in that can share what their harvests taught.
    /// </summary>
    /// <value>The default is null.</value>
    public string? HarvestHistoryKey { get; set; }

    /// <summary>The key the final harvests (and the source's pauses, which depend on the source alone) are learned under.</summary>
    internal string HarvestKey => HarvestHistoryKey ?? HistoryKey;

    /// <summary>The measured pause latency; zero until observed.</summary>
    public TimeSpan PauseCost { get; private set; }

    /// <summary>The measured or reported resume cost of the destination; zero until observed.</summary>
    public TimeSpan ResumeCost { get; private set; }

    /// <summary>Harvest time per GiB of guest memory, from the harvests seen so far.</summary>
    public TimeSpan HarvestCostPerGiB => TimeSpan.FromSeconds(_harvestSecondsPerByte * (1UL << 30));

    /// <summary>Records a pause latency (keeps the larger of the new value and a decayed old one).</summary>
    public void ObservePause(TimeSpan latency) =>
        PauseCost = TimeSpan.FromTicks(Math.Max(latency.Ticks, (long)(PauseCost.Ticks * 0.5)));

    /// <summary>Records a resume cost (the destination's estimate, or a measured resume).</summary>
    public void ObserveResume(TimeSpan cost) => ResumeCost = cost;

    /// <summary>The slowest recent exchange with the destination (a round's end to its acknowledgement); zero until observed.</summary>
    public TimeSpan SlowestRoundTrip
    {
        get
        {
            TimeSpan slowest = TimeSpan.Zero;
            foreach (TimeSpan t in _roundTrips)
            {
                slowest = t > slowest ? t : slowest;
            }

            return slowest;
        }
    }

    /// <summary>
    /// Records how long an exchange with the destination took. A switchover ends with two
    /// exchanges (Complete to Ready, Commit to the Ack); until the history knows what they cost
    /// on this machine, the slowest recent exchange twice over is what the upper bound allows.
    /// </summary>
    public void ObserveRoundTrip(TimeSpan latency)
    {
        if (latency <= TimeSpan.Zero)
        {
            return;
        }

        if (_roundTrips.Count == 8)
        {
            _roundTrips.RemoveAt(0);
        }

        _roundTrips.Add(latency);
    }

    /// <summary>Records how long a harvest covering <paramref name="bytesCovered"/> of memory took.</summary>
    public void ObserveHarvest(TimeSpan duration, ulong bytesCovered)
    {
        if (bytesCovered == 0 || duration <= TimeSpan.Zero)
        {
            return;
        }

        double perByte = duration.TotalSeconds / bytesCovered;

        // Harvests run with the guest going and vary; weigh the recent ones but keep the worse.
        _harvestSecondsPerByte = _harvestSecondsPerByte == 0 ? perByte : Math.Max(perByte, (_harvestSecondsPerByte + perByte) / 2);
    }

    /// <summary>
    /// Records how long a final harvest took, timed before the switchover (a tracker whose final
    /// harvest only reads can be timed with the guest running). Until the <see cref="History"/>
    /// prices final harvests, the forecasts price theirs at this, not at the pre-copy harvests'
    /// cost: those also re-arm the pages they report, racing the guest's writes.
    /// </summary>
    /// <param name="duration">How long the harvest took.</param>
    /// <param name="bytesCovered">The guest memory it covered.</param>
    public void ObserveFinalHarvestProbe(TimeSpan duration, ulong bytesCovered)
    {
        if (bytesCovered > 0 && duration > TimeSpan.Zero)
        {
            _finalHarvestSecondsPerByte = duration.TotalSeconds / bytesCovered;
        }
    }

    /// <summary>
    /// The final harvest's price over <paramref name="memoryBytes"/>, with
    /// <paramref name="dirtyChunks"/> chunks written since the last harvest. It runs paused: this
    /// machine's earlier ones price it, once there are a few; until then one timed in this
    /// migration does, or else the pre-copy harvests (against the guest's writes, often slower).
    /// </summary>
    internal TimeSpan FinalHarvestCost(ulong memoryBytes, double? dirtyChunks)
    {
        double perByte = _finalHarvestSecondsPerByte > 0 ? _finalHarvestSecondsPerByte : _harvestSecondsPerByte;
        return History?.FinalHarvestCost(HarvestKey, memoryBytes, dirtyChunks) ?? TimeSpan.FromSeconds(perByte * memoryBytes);
    }

    /// <summary>Forgets the harvests seen so far: the next one sets the harvest cost afresh.</summary>
    internal void ForgetHarvests() => _harvestSecondsPerByte = 0;

    /// <summary>
    /// Records how long sending a round took next to how long its bytes at the bandwidth assumed
    /// before it should have taken: the spread of these widens the forecast's interval.
    /// </summary>
    public void ObserveSend(TimeSpan predicted, TimeSpan actual)
    {
        if (predicted <= TimeSpan.Zero || actual <= TimeSpan.Zero)
        {
            return;
        }

        if (_sendRatios.Count == 16)
        {
            _sendRatios.RemoveAt(0);
        }

        _sendRatios.Add(actual / predicted);
    }

    /// <summary>
    /// Records the downtime of the switchover made on the last forecast in <see cref="History"/>,
    /// next to that forecast's parts before correction.
    /// </summary>
    /// <param name="actual">The downtime measured.</param>
    /// <param name="actualTransfer">Its transfer part (pages and device state), where measured: only switchovers that give it correct the transfer forecast.</param>
    public void ObserveSwitchover(TimeSpan actual, TimeSpan? actualTransfer = null)
    {
        TimeSpan transfer = _lastRaw.Transfer + _lastRaw.DeviceState;
        TimeSpan fixedCosts = _lastRaw.Pause + _lastRaw.FinalHarvest + _lastRaw.Resume;
        History?.Record(HistoryKey, transfer, fixedCosts, actual, actualTransfer);
        if (HistoryFallbackKey is { } all && all != HistoryKey)
        {
            History?.Record(all, transfer, fixedCosts, actual, actualTransfer);
        }
    }

    /// <summary>Records how long the switchover's final harvest took (paused) in <see cref="History"/>, for the next forecasts' harvest part.</summary>
    /// <param name="duration">From the pause to the end of the final harvest.</param>
    /// <param name="bytesCovered">The guest memory it covered.</param>
    /// <param name="dirtyChunks">The 2 MiB chunks it found a dirty page in; null when not counted.</param>
    public void ObserveFinalHarvest(TimeSpan duration, ulong bytesCovered, ulong? dirtyChunks = null) =>
        History?.RecordFinalHarvest(HarvestKey, duration, bytesCovered, dirtyChunks);

    /// <summary>Makes a forecast.</summary>
    public Forecast Estimate(in ForecastInput input)
    {
        double bandwidth = Math.Max(input.BandwidthBytesPerSecond, 1);
        double low = Math.Clamp(input.BandwidthLowBytesPerSecond ?? bandwidth, 1, bandwidth);
        double switchover = Math.Max(input.SwitchoverBandwidthBytesPerSecond ?? bandwidth, 1);
        TimeSpan harvest = FinalHarvestCost(input.MemoryBytes, input.HarvestChunks);

        TimeSpan rawTransfer;
        TimeSpan burstCredit;
        if (input.SwitchoverTransfer is TimeSpan priced)
        {
            rawTransfer = priced;
            burstCredit = input.SwitchoverBurstCredit;
        }
        else
        {
            // Since the harvest looked at each page, and until the vCPUs stop, the guest keeps writing:
            // pages not deferred become pending anew (deferred ones are pending already).
            double duringPause = (input.TotalDirtyBytesPerSecond * PauseCost.TotalSeconds)
                + (input.WarmDirtyBytesPerSecond * input.DirtyingSinceHarvest.TotalSeconds);
            double bytes = input.PendingBytes + duringPause;

            // The upper bound takes no burst credit: the credit is taken at the measured rate, which
            // counts each round's exchange and the destination's catching up, so it can be worth far
            // more time than the burst saves at the limit.
            double credited = Math.Min(input.BurstBytes, bytes);
            rawTransfer = TimeSpan.FromSeconds((bytes - credited) / switchover);
            burstCredit = TimeSpan.FromSeconds(credited / switchover);
        }

        TimeSpan device = TimeSpan.FromSeconds(input.DeviceStateBytes / switchover);
        _lastRaw = new DowntimeBreakdown(PauseCost, harvest, rawTransfer, device, ResumeCost);

        DowntimeCorrection c = History?.Correction(HistoryKey, HistoryFallbackKey) ?? DowntimeCorrection.None;
        TimeSpan transfer = rawTransfer * c.TransferRatio;
        TimeSpan resume = TimeSpan.FromTicks(Math.Max(0, (ResumeCost + c.FixedBias).Ticks));
        var breakdown = new DowntimeBreakdown(PauseCost, harvest, transfer, device, resume);
        (TimeSpan downtimeLow, TimeSpan downtimeHigh) = Interval(breakdown, c, bandwidth / low);
        downtimeHigh += burstCredit * c.TransferRatio;

        double q = input.WarmDirtyBytesPerSecond / bandwidth;
        _pendingHistory.Add(input.PendingBytes);
        ConvergenceVerdict verdict = Verdict(q, breakdown, input);
        TimeSpan? total = PredictTotal(q, breakdown, input, bandwidth);
        return new Forecast
        {
            Round = input.Round,
            PredictedDowntime = breakdown.Total,
            DowntimeLow = downtimeLow,
            DowntimeHigh = downtimeHigh,
            Breakdown = breakdown,
            FixedCorrection = resume - ResumeCost,
            PredictedTotalTime = total,
            Verdict = verdict,
            BandwidthBytesPerSecond = bandwidth,
            DirtyBytesPerSecond = input.WarmDirtyBytesPerSecond,
            PendingBytes = input.PendingBytes,
            NextRoundBytes = input.NextRoundBytes,
            DeferredBytes = input.DeferredBytes,
            ConvergenceRatio = q,
        };
    }

    /// <summary>
    /// The interval around the point: the transfer at the low bandwidth quantile or at the worst
    /// send-time error of this migration (whichever is slower), what the history's line missed,
    /// and timing noise on the fixed parts.
    /// </summary>
    private (TimeSpan Low, TimeSpan High) Interval(DowntimeBreakdown point, DowntimeCorrection c, double bandwidthSpread)
    {
        (double sendLow, double sendHigh) = SendRatioRange();
        TimeSpan jitter = JitterFloor + (point.Fixed * JitterShare);
        TimeSpan slower = point.Transfer * (Math.Max(bandwidthSpread, sendHigh) - 1);
        TimeSpan faster = point.Transfer * (1 - Math.Min(sendLow, 1));
        // Until the history has a few switchovers of this kind, what it would miss is unknown:
        // allow the two exchanges of the commit step at the slowest this migration has seen.
        TimeSpan unknown = c.Samples >= MinimumHistory ? c.ErrorAbove : Max(c.ErrorAbove, 2 * SlowestRoundTrip);
        TimeSpan high = point.Total + unknown + slower + jitter;
        TimeSpan low = point.Total - c.ErrorBelow - faster - jitter;
        TimeSpan floor = point.Pause + point.FinalHarvest;
        return (low > floor ? low : floor, high);
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>The 10th and 90th percentiles of the send-time errors (the extremes below five; 1 without any).</summary>
    private (double Low, double High) SendRatioRange()
    {
        if (_sendRatios.Count == 0)
        {
            return (1, 1);
        }

        Span<double> sorted = stackalloc double[_sendRatios.Count];
        for (int i = 0; i < sorted.Length; i++)
        {
            sorted[i] = _sendRatios[i];
        }

        Quantile.Sort(sorted);
        if (sorted.Length < 5)
        {
            return (sorted[0], sorted[^1]);
        }

        return (sorted[(int)Math.Floor(0.1 * (sorted.Length - 1))], sorted[(int)Math.Ceiling(0.9 * (sorted.Length - 1))]);
    }

    private ConvergenceVerdict Verdict(double q, DowntimeBreakdown breakdown, in ForecastInput input)
    {
        if (breakdown.Total <= input.MaxDowntime)
        {
            return ConvergenceVerdict.Converging;
        }

        if (_pendingHistory.Count < 3)
        {
            return q < 0.95 ? ConvergenceVerdict.Converging : ConvergenceVerdict.Unknown;
        }

        // The trend of what is left, over the last two rounds (round 0's full copy excluded by the count).
        int n = _pendingHistory.Count;
        double r1 = Ratio(_pendingHistory[n - 1], _pendingHistory[n - 2]);
        double r2 = Ratio(_pendingHistory[n - 2], _pendingHistory[n - 3]);
        double trend = Math.Sqrt(r1 * r2);
        if (trend < 0.95 && q < 1)
        {
            return ConvergenceVerdict.Converging;
        }

        return trend > 1.05 || q > 1.05 ? ConvergenceVerdict.Diverging : ConvergenceVerdict.Stalled;
    }

    private static double Ratio(ulong now, ulong before) => before == 0 ? (now == 0 ? 1 : 2) : (double)now / before;

    private static TimeSpan? PredictTotal(double q, DowntimeBreakdown breakdown, in ForecastInput input, double bandwidth)
    {
        if (breakdown.Total <= input.MaxDowntime)
        {
            return input.Elapsed + breakdown.Total;
        }

        // Rounds send N, qN, q²N, …; after round m the switchover would send deferred + q^(m+1)·N.
        double budget = ((input.MaxDowntime - breakdown.Fixed).TotalSeconds * bandwidth) - input.DeferredBytes;
        double n0 = input.NextRoundBytes;
        if (q >= 1 || budget <= 0 || n0 <= 0)
        {
            return null;
        }

        double seconds = 0;
        double roundBytes = n0;
        for (int m = 0; m < 100; m++)
        {
            seconds += roundBytes / bandwidth;
            double pendingAfter = q * roundBytes;
            if (pendingAfter <= budget)
            {
                double downtime = breakdown.Fixed.TotalSeconds + ((input.DeferredBytes + pendingAfter) / bandwidth);
                return input.Elapsed + TimeSpan.FromSeconds(seconds + downtime);
            }

            roundBytes = pendingAfter;
        }

        return null;
    }
}
