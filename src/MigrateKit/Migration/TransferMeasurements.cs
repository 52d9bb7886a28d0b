using System;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Tracking;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// What the engine measures about the link and the guest (bandwidth, dirtying rates, fixed
/// costs, the share of zero pages) and the forecast it makes from them after each round.
/// </summary>
internal sealed partial class TransferMeasurements
{
    /// <summary>Wire bytes per page: the page and its share of the framing.</summary>
    internal const int PageWireBytes = (int)GuestMemoryLayout.PageSize + 16;

    /// <summary>The bandwidth assumed before anything was measured, without a limit.</summary>
    private const double UnmeasuredBandwidth = 100e6;

    /// <summary>Fewer data pages than this in one build say more about its overhead than about a page's work.</summary>
    private const ulong MinBuildPages = 64;

    private readonly MigrationOptions _options;
    private readonly ulong _memoryBytes;
    private readonly string _trackerKind;
    private readonly TimeProvider _time;
    private readonly BandwidthMeter _bandwidth = new();

    // Rounds after the first re-send pages the destination already holds, as the switchover
    // does; round 0 also pays for the destination's first touch of every page, so its rate
    // understates what the switchover will see.
    private readonly BandwidthMeter _resendBandwidth = new();

    // The link alone: the flushes' bytes and time, without the waits for RoundAcks. The switchover
    // prices its wire bytes at this rate and the destination's work per page apart.
    private readonly BandwidthMeter _link = new();
    private readonly BandwidthMeter _resendLink = new();
    private readonly DirtyRateMeter _dirtyRate = new();
    private readonly DirtyRateMeter _warmRate = new();
    private long _lastHarvest;
    private TimeSpan _lastHarvestDuration;
    private ulong _lastHarvestPages;
    private ulong _lastHarvestChunks;
    private double _zeroFraction;

    // What a page costs on the wire: one last sent as a small delta, and any other data page
    // (raw, compressed, a larger delta). Without encodings every data page costs PageWireBytes.
    private double _cheapPageBytes = 64;
    private double _otherPageBytes = PageWireBytes;

    // The sender's work, summed per kind of round: round 0 reads and sends pages for the first
    // time (first copies into the sent-page cache, raw pages), the re-sends are what the
    // switchover will do again. Older re-send rounds weigh half as much at each new round.
    private BuildTotals _firstCopy;
    private BuildTotals _resends;

    // The sender's work on a page sent as a small delta (a cheap page): it reads the page and its
    // cached copy and writes a few bytes, a third of what a page that misses the cache costs here.
    // A round's average prices the switchover only where both send the same kinds of page: a
    // hot/cold guest's last round re-sends its hot pages whole (their copies were evicted), its
    // switchover sends them as deltas. Builds of nearly only cheap pages measure it; until one
    // did, pricing the hot pages (reading each and its copy) does. Both weigh half at each round.
    private BuildTotals _cheapBuilds;
    private BuildTotals _deltaPricing;

    // The destination's work per page once a round's bytes arrive: the RoundAck wait of re-send
    // rounds over their last flush's pages, where it tells. Older rounds weigh half as much at each new round.
    private BuildTotals _apply;

    // Whether a harvest after a re-send round was recorded: round 0's harvest is forgotten then.
    private bool _harvestedAfterResends;
    private double _cheapShareOfDirty;
    private double _cheapShareOfWarm;

    private double _roundBandwidth;

    // The costs a round started with: the sender's and the destination's work per page, the link's rate.
    private PageCosts _roundCosts;

    /// <param name="options">The migration's options (bandwidth limit, downtime history).</param>
    /// <param name="memoryBytes">Guest memory size.</param>
    /// <param name="trackerKind">The tracker's kind: switchovers of different trackers are learned apart.</param>
    internal TransferMeasurements(MigrationOptions options, ulong memoryBytes, string trackerKind = "")
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _trackerKind = trackerKind;
        _memoryBytes = memoryBytes;
        _time = options.TimeProvider;
        Estimator.History = options.DowntimeHistory;
        KeyHistory(Estimator, options, trackerKind, destination: null);
    }

    /// <summary>
    /// The kind of migration its switchovers are learned under: with a bandwidth limit the
    /// transfer runs at the limit, without one at what the CPU and the link give once the guest
    /// stops; each tracker's final harvest differs.
    /// </summary>
    internal static string HistoryKey(MigrationOptions options, string trackerKind) =>
        $"engine/{trackerKind}/{(options.BandwidthLimit is null ? "unlimited" : "limited")}";

    /// <summary>
    /// Sets the keys <paramref name="estimator"/> learns and prices switchovers under. With a
    /// destination, its switchovers are kept for its host and for every destination, and priced
    /// by every destination's until this one has its own: a destination's checks, start and
    /// round trips are its own. Final harvests and pauses are the source's alone.
    /// </summary>
    /// <param name="estimator">The engine's or the planner's estimator.</param>
    /// <param name="options">The migration's options.</param>
    /// <param name="trackerKind">The tracker's kind.</param>
    /// <param name="destination">The destination's address: tcp:HOST:PORT (learned per host, as a receiver's port may change from one run to the next), unix:PATH, or a connection's own name; null: not known.</param>
    internal static void KeyHistory(DowntimeEstimator estimator, MigrationOptions options, string trackerKind, string? destination)
    {
        string every = HistoryKey(options, trackerKind);
        if (destination is null)
        {
            estimator.HistoryKey = every;
            estimator.HistoryFallbackKey = null;
        }
        else
        {
            int port = destination.LastIndexOf(':');
            string host = destination.StartsWith("tcp:", StringComparison.Ordinal) && port > 4 ? destination[..port] : destination;
            estimator.HistoryKey = $"{every}@{host}";
            estimator.HistoryFallbackKey = every;
        }

        estimator.HarvestHistoryKey = HarvestHistoryKey(trackerKind);
    }

    /// <summary>Learns this migration's switchovers under its destination from now on (see <see cref="KeyHistory"/>).</summary>
    /// <param name="destination">The connected destination's address.</param>
    internal void UseDestination(string destination) => KeyHistory(Estimator, _options, _trackerKind, destination);

    /// <summary>The kind of final harvest its costs are learned under: the tracker's, with or without a bandwidth limit.</summary>
    internal static string HarvestHistoryKey(string trackerKind) => $"engine/{trackerKind}";

    /// <summary>The fixed costs: pause, harvest per GiB, the destination's resume.</summary>
    internal DowntimeEstimator Estimator { get; } = new();

    /// <summary>Size of the source's device state (measured at calibration).</summary>
    internal int DeviceStateBytes { get; set; } = 512;

    /// <summary>Whether what is sent now re-sends pages the destination already holds (every round after the first).</summary>
    internal bool Resending { get; set; }

    /// <summary>The guest's dirtying rate over the last harvest interval, pages per second.</summary>
    internal double DirtyPagesPerSecond => _dirtyRate.LastPagesPerSecond;

    /// <summary>Records <paramref name="bytes"/> put on the wire in <paramref name="elapsed"/> of sending time.</summary>
    internal void RecordSend(long bytes, TimeSpan elapsed)
    {
        _bandwidth.Record(bytes, elapsed);
        _link.Record(bytes, elapsed);
        if (Resending)
        {
            _resendBandwidth.Record(bytes, elapsed);
            _resendLink.Record(bytes, elapsed);
        }
    }

    /// <summary>
    /// Records the wait for a round's RoundAck after its last flush. The wait counts as sending
    /// time for the rounds' bandwidth (what the destination still had to apply is not left for
    /// the switchover). A re-send round's wait also measures the destination's work per page on
    /// its last flush's <paramref name="lastFlushPages"/>: it began once their bytes arrived, as
    /// a switchover's does. That holds for a round sent in one flush (all
    /// <paramref name="roundPages"/>), and after several flushes where the wait was no longer
    /// than building the last one (<paramref name="lastFlushBuild"/>): the destination had kept
    /// pace, or the wait would hold what was still queued. Round 0's pages are first touches.
    /// </summary>
    internal void RecordRoundAckWait(ulong lastFlushPages, ulong roundPages, TimeSpan wait, TimeSpan lastFlushBuild = default)
    {
        _bandwidth.Record(0, wait);
        if (!Resending)
        {
            return;
        }

        _resendBandwidth.Record(0, wait);

        // A few pages' wait is mostly the round trip.
        if (lastFlushPages >= MinBuildPages && (lastFlushPages == roundPages || wait <= lastFlushBuild))
        {
            _apply = _apply.Add(lastFlushPages, wait.TotalSeconds);
        }
    }

    /// <summary>The destination's work per data page once it has the bytes, from the re-send rounds whose wait tells it; zero until one did.</summary>
    internal TimeSpan ApplyTimePerPage => TimeSpan.FromSeconds(ApplySecondsPerPage);

    private double ApplySecondsPerPage => DestinationMeasured ? _apply.PerPage : 0;

    // Whether a round measured the destination's work: the switchover is priced per page from
    // then on, and at the rounds' rate before (with a delta's work there counted in its bytes).
    private bool DestinationMeasured => _apply.Pages > 0;

    /// <summary>The link's rate alone (flushes, re-sends preferred), never above the limit.</summary>
    internal double LinkBandwidth() => Limited(ResendsOnceTheyMovedAMiB(_resendLink, _link).Current);

    /// <summary>Tracking has started: the first harvest interval begins now.</summary>
    internal void TrackingStarted() => _lastHarvest = _time.GetTimestamp();

    /// <summary>The wire bytes a data page costs on average, cheap pages aside: the price of a deferred page.</summary>
    internal double OtherPageBytes => _otherPageBytes;

    /// <summary>The wire bytes a cheap page (last sent as a small delta) costs on average.</summary>
    internal double CheapPageBytes => _cheapPageBytes;

    /// <summary>What reading, encoding and framing a data page takes on the sender, measured with encodings on.</summary>
    internal TimeSpan BuildTimePerPage => TimeSpan.FromSeconds(CpuSecondsPerPage);

    // Halving keeps a re-send total above zero once it has one, so a round that re-sent pages prices them from then on.
    private BuildTotals PricedBuilds => _resends.Pages > 0 ? _resends : _firstCopy;

    private double CpuSecondsPerPage => PricedBuilds.Pages > 0 ? PricedBuilds.PerPage : 0;

    /// <summary>The sender's work on a data page of the switchover: a round's, less its first writes into the sent-page cache.</summary>
    internal TimeSpan SwitchoverBuildTimePerPage => TimeSpan.FromSeconds(SwitchoverSecondsPerPage);

    // The switchover takes no new copies into the cache, so a round's first writes into never-written
    // slots (a page fault each where the slab's memory is fresh) are no part of its price.
    private double SwitchoverSecondsPerPage => PricedBuilds.Pages > 0 ? PricedBuilds.PerPageWithoutFirstWrites : 0;

    /// <summary>What the sender's work on a cheap page (sent as a small delta) is priced at: never above any page's without first writes.</summary>
    internal TimeSpan CheapBuildTimePerPage => TimeSpan.FromSeconds(CheapSecondsPerPage);

    // A preempted build or pricing can measure far more than a page's work; no dearer than the
    // average page. A delta is built against the page's copy in the cache, so it never writes a
    // new slot: the average it is held to leaves the first writes out, in a round as at the switchover.
    private double CheapSecondsPerPage
    {
        get
        {
            BuildTotals measured = _cheapBuilds.Pages > 0 ? _cheapBuilds : _deltaPricing;
            return measured.Pages > 0 ? Math.Min(measured.PerPage, SwitchoverSecondsPerPage) : SwitchoverSecondsPerPage;
        }
    }

    /// <summary>
    /// Records the time <paramref name="elapsed"/> the sender took to read, encode and frame
    /// <paramref name="pages"/> data pages. With encodings a page's cost is as much this time as
    /// its bytes (a small delta is a few dozen bytes and a microsecond or two of work), so the
    /// forecast prices each page at its bytes plus what this time is worth at the bandwidth.
    /// The price is the re-send rounds' work per page once they built 64 pages: a first copy
    /// costs several times a re-sent delta (the cache's memory is touched for the first time),
    /// so round 0's figure would overprice a switchover of re-sent pages. A re-sent build of nine
    /// tenths or more <paramref name="cheapPages"/> also prices the cheap pages apart. Of the time,
    /// <paramref name="firstWrites"/> went into copies into never-written slots of the cache,
    /// which the switchover does not take (<see cref="SwitchoverBuildTimePerPage"/>).
    /// </summary>
    internal void RecordBuild(ulong pages, TimeSpan elapsed, ulong cheapPages = 0, TimeSpan firstWrites = default)
    {
        // A few pages' time is mostly the chunk's own overhead (and zero pages skipped on the way).
        if (_options.EffectiveEncodings == PageEncodings.None || pages < MinBuildPages)
        {
            return;
        }

        if (Resending)
        {
            _resends = _resends.Add(pages, elapsed.TotalSeconds, firstWrites.TotalSeconds);
            if (cheapPages * 10 >= pages * 9)
            {
                _cheapBuilds = _cheapBuilds.Add(pages, elapsed.TotalSeconds);
            }
        }
        else
        {
            _firstCopy = _firstCopy.Add(pages, elapsed.TotalSeconds, firstWrites.TotalSeconds);
        }
    }

    /// <summary>
    /// Records pricing <paramref name="pages"/> hot pages for deltas in <paramref name="elapsed"/>:
    /// the price of a cheap page until a build of cheap pages measures it.
    /// </summary>
    internal void RecordDeltaPricing(ulong pages, TimeSpan elapsed)
    {
        if (_options.EffectiveEncodings.HasFlag(PageEncodings.Delta) && pages >= MinBuildPages)
        {
            _deltaPricing = _deltaPricing.Add(pages, elapsed.TotalSeconds);
        }
    }

    /// <summary>
    /// Records what a round's data pages cost on the wire, with page encodings on: the cheap ones
    /// (small deltas) and the rest. Without encodings nothing changes: a page costs a page.
    /// </summary>
    internal void RecordPageCosts(ulong dataPages, ulong cheapPages, ulong cheapBytes, ulong otherBytes)
    {
        if (_options.EffectiveEncodings == PageEncodings.None)
        {
            return;
        }

        if (cheapPages > 0)
        {
            _cheapPageBytes = (double)cheapBytes / cheapPages;
        }

        if (dataPages > cheapPages)
        {
            _otherPageBytes = Math.Max(PageStreamWriter.EncodedEntrySize, (double)otherBytes / (dataPages - cheapPages));
        }
    }

    /// <summary>
    /// Records a pause of the source (the calibration's or the switchover's) in the downtime
    /// history, and prices the switchover's pause at the median of the recent ones of this kind
    /// of source (at this one until there are three).
    /// </summary>
    /// <param name="latency">The pause measured.</param>
    /// <param name="save">False: the store gets it with the switchover's figures, or at <see cref="SaveHeldFigures"/>.</param>
    internal void ObservePause(TimeSpan latency, bool save = true)
    {
        DowntimeHistory? history = Estimator.History;
        string key = Estimator.HarvestKey;
        history?.RecordPause(key, latency, save);
        Estimator.ObservePause(history?.PauseCost(key) ?? latency);
    }

    /// <summary>Saves what was recorded without a save and not saved since (a migration's end, whatever its outcome).</summary>
    internal void SaveHeldFigures() => Estimator.History?.SaveHeld();

    /// <summary>
    /// Records what a switchover measured (its downtime and transfer part, final harvest and pause)
    /// in the downtime history, which saves them to its store in one call.
    /// </summary>
    internal void ObserveSwitchover(SwitchoverResult result, ulong memoryBytes, ulong harvestedChunks)
    {
        using DowntimeHistory.SaveScope saves = Estimator.History?.DeferSaves() ?? default;
        Estimator.ObserveSwitchover(result.Downtime, TimeSpan.FromMilliseconds(result.ActualParts.TransferMs));
        Estimator.ObserveFinalHarvest(TimeSpan.FromMilliseconds(result.ActualParts.HarvestMs), memoryBytes, harvestedChunks);
        ObservePause(result.PauseLatency);
    }

    /// <summary>Records a harvest: its cost and the dirtying rates since the previous one.</summary>
    /// <param name="result">The harvest.</param>
    /// <param name="warmPages">Harvested pages not deferred.</param>
    /// <param name="cheapPages">Harvested pages last sent as small deltas (never deferred, so all warm).</param>
    /// <param name="chunks">The 2 MiB chunks the harvested pages lie in.</param>
    internal void RecordHarvest(HarvestResult result, ulong warmPages, ulong cheapPages = 0, ulong chunks = 0)
    {
        _lastHarvestPages = result.DirtyPages;
        _lastHarvestChunks = chunks;
        _cheapShareOfDirty = result.DirtyPages > 0 ? Math.Min(1, (double)cheapPages / result.DirtyPages) : 0;
        _cheapShareOfWarm = warmPages > 0 ? Math.Min(1, (double)cheapPages / warmPages) : 0;
        long now = _time.GetTimestamp();
        TimeSpan interval = _time.GetElapsedTime(_lastHarvest, now);
        _lastHarvest = now;
        if (Resending && !_harvestedAfterResends)
        {
            // Round 0's harvest collects what the guest dirtied over the whole first copy, racing
            // it: on 1 GiB write-protected, 8-10 ms more than the final harvest, paused, takes.
            // Like the sender's work per page, the harvest is priced from the re-send rounds.
            _harvestedAfterResends = true;
            Estimator.ForgetHarvests();
        }

        Estimator.ObserveHarvest(result.Duration, _memoryBytes);
        _lastHarvestDuration = result.Duration;
        _dirtyRate.Record(result.DirtyPages, interval);
        _warmRate.Record(warmPages, interval);
    }

    /// <summary>Records a round's share of zero pages (round 0 is mostly never-touched memory and does not count).</summary>
    internal void RecordZeroShare(int round, ulong dataPages, ulong zeroPages)
    {
        ulong total = dataPages + zeroPages;
        if (round > 0 && total > 0)
        {
            _zeroFraction = (double)zeroPages / total;
        }
    }

    /// <summary>The bandwidth to expect: the measured average (re-sends preferred), never above the limit.</summary>
    internal double Bandwidth() => Limited(Meter().Current);

    /// <summary>A cautious bandwidth: a low quantile of the measurements, for the forecast's upper bound and for budgets.</summary>
    internal double BandwidthLow() => Limited(Meter().Conservative());

    /// <summary>
    /// The re-sends' meter once they moved 1 MiB (a round shorter than the meter's window still
    /// tells more than round 0, whose rate includes the destination's first touch of every page).
    /// </summary>
    private BandwidthMeter Meter() => ResendsOnceTheyMovedAMiB(_resendBandwidth, _bandwidth);

    private static BandwidthMeter ResendsOnceTheyMovedAMiB(BandwidthMeter resends, BandwidthMeter all) => resends.TotalBytes >= 1L << 20 ? resends : all;

    private double Limited(double measured)
    {
        if (_options.BandwidthLimit is long limit)
        {
            return measured > 0 ? Math.Min(measured, limit) : limit;
        }

        return measured > 0 ? measured : UnmeasuredBandwidth;
    }

    /// <summary>A round starts: the bandwidth assumed now is what its send time is judged against.</summary>
    internal void RoundStarting()
    {
        _roundBandwidth = Meter().TotalBytes > 0 ? Bandwidth() : 0;
        _roundCosts = Costs(CpuSecondsPerPage);
        _resends = _resends.Halved();
        _cheapBuilds = _cheapBuilds.Halved();
        _deltaPricing = _deltaPricing.Halved();
        _apply = _apply.Halved();
    }

    /// <summary>
    /// A round's <paramref name="pages"/> data pages and <paramref name="bytes"/> are delivered
    /// (<paramref name="elapsed"/> from its start to its RoundAck): how far that was from what the
    /// costs at its start said feeds the interval. Once the destination's work is measured, a
    /// re-send round is priced as the switchover is (work per page on each end, the link's rate);
    /// before, its bytes at the bandwidth, and rounds of less than 1 MiB, which say more about
    /// latency than bandwidth, are left out.
    /// </summary>
    internal void RoundDelivered(ulong bytes, TimeSpan elapsed, ulong pages = 0)
    {
        if (Resending && _roundCosts.Apply > 0 && pages >= MinBuildPages)
        {
            Estimator.ObserveSend(TimeSpan.FromSeconds(TransferSeconds(pages, bytes, pages * _roundCosts.Build, _roundCosts)), elapsed);
        }
        else if (_roundBandwidth > 0 && bytes >= 1UL << 20)
        {
            Estimator.ObserveSend(TimeSpan.FromSeconds(bytes / _roundBandwidth), elapsed);
        }
    }

    /// <summary>
    /// How many hot pages the policy lets the switchover take on top of its fixed costs, the final
    /// harvest priced as the forecast prices it (a write-protect tracker's only reads, where the
    /// pre-copy harvests also re-arm what they report and cost several times as much).
    /// </summary>
    internal ulong DeferBudgetPages(MigrationPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        double bandwidth = BandwidthLow();
        var fixedCosts = new DowntimeBreakdown(Estimator.PauseCost, Estimator.FinalHarvestCost(_memoryBytes, HarvestChunks(SinceHarvest())),
            TimeSpan.Zero, TimeSpan.FromSeconds(DeviceStateBytes / bandwidth), Estimator.ResumeCost);
        return (ulong)(policy.DeferBudgetBytes(fixedCosts, bandwidth) / (_otherPageBytes + (SwitchoverSecondsPerPage * bandwidth)));
    }

    /// <summary>How long the guest has written since the last harvest saw it: from the harvest's middle on.</summary>
    private TimeSpan SinceHarvest() => (_lastHarvestDuration / 2) + _time.GetElapsedTime(_lastHarvest);

    /// <summary>Forecasts a switchover from the pages still pending (of which <paramref name="deferredPages"/> are deferred).</summary>
    /// <param name="round">The round just harvested.</param>
    /// <param name="elapsed">Time since the migration started.</param>
    /// <param name="pendingPages">Pages the destination lacks.</param>
    /// <param name="deferredPages">Of those, the hot pages held back for the switchover.</param>
    /// <param name="burstBytes">What the bandwidth limiter lets through at once now.</param>
    /// <param name="cheapPages">Of the pending pages, those last sent as small deltas (never deferred).</param>
    internal Forecast Forecast(int round, TimeSpan elapsed, ulong pendingPages, ulong deferredPages, ulong burstBytes, ulong cheapPages = 0)
    {
        // A round's pages at a round's work, the switchover's (the pending and the deferred) at its own.
        double nonZero = 1 - _zeroFraction;
        double other = nonZero * (_otherPageBytes + (SwitchoverSecondsPerPage * Bandwidth()));
        double otherInRound = nonZero * (_otherPageBytes + (CpuSecondsPerPage * Bandwidth()));

        // The rounds' byte rate counts the destination's work on a whole page by its bytes, not on
        // a delta of a few dozen: until a round measured that work, a delta's is priced like its build.
        double cheapWork = DestinationMeasured ? CheapSecondsPerPage : 2 * CheapSecondsPerPage;
        double cheap = cheapPages * (_cheapPageBytes + (cheapWork * Bandwidth()));

        // A limiter's burst lets wire bytes through at once, never the sender's work on each page
        // (counted here as bytes at the bandwidth): under a limit with a full bucket, a switchover
        // of small deltas costs its build time, not nothing.
        double wire = (cheapPages * _cheapPageBytes) + ((pendingPages - cheapPages) * nonZero * _otherPageBytes);
        TimeSpan since = SinceHarvest();
        (TimeSpan? transfer, TimeSpan burstCredit) = SwitchoverTransfer(cheapPages, (pendingPages - cheapPages) * nonZero, wire, since, burstBytes);
        var input = new ForecastInput
        {
            Round = round,
            Elapsed = elapsed,
            PendingBytes = (ulong)(cheap + ((pendingPages - cheapPages) * other)),
            NextRoundBytes = (ulong)(cheap + ((pendingPages - deferredPages - cheapPages) * otherInRound)),
            DeferredBytes = (ulong)(deferredPages * other),
            WarmDirtyBytesPerSecond = _warmRate.LastPagesPerSecond * Blend(_cheapShareOfWarm),
            TotalDirtyBytesPerSecond = _dirtyRate.LastPagesPerSecond * Blend(_cheapShareOfDirty),
            DirtyingSinceHarvest = since,
            HarvestChunks = HarvestChunks(since),
            DeviceStateBytes = (ulong)DeviceStateBytes,
            MemoryBytes = _memoryBytes,
            MaxDowntime = _options.MaxDowntime,
            BandwidthBytesPerSecond = Bandwidth(),
            BandwidthLowBytesPerSecond = BandwidthLow(),
            BurstBytes = Math.Min(burstBytes, (ulong)wire),
            SwitchoverTransfer = transfer,
            SwitchoverBurstCredit = burstCredit,
        };
        return Estimator.Estimate(input);
    }
}
