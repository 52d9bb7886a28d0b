using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Diagnostics;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Tracking;
using MigrateKit.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MigrateKit.Migration;

/// <summary>
/// Iterative pre-copy with hot-page deferral. Round 0 sends all non-zero memory; each later
/// round sends the pages dirtied since (minus the hot ones, which would only be dirtied again);
/// after every round a <see cref="DowntimeEstimator"/> forecasts the switchover and a
/// <see cref="MigrationPolicy"/> decides whether to go on, throttle the guest, switch over or give
/// up. The switchover pauses the source, sends every remaining dirty page (the deferred hot ones
/// included), the device state and the digests, and waits for the destination to resume.
/// </summary>
/// <remarks>
/// Failure leaves the source running with its memory intact: a paused source is resumed, the
/// throttle is lifted, and every page the destination may lack stays in <see cref="PendingPages"/>
/// (a page whose dirty bit was taken from KVM is either delivered or merged back there). The
/// tracker then keeps running; the caller stops or reuses it.
/// <para>
/// Diagnostics: the logger gets Information at the start, the switchover and the end, Debug per
/// round and Warning on an abort or a failure; the <c>MigrateKit</c> meter and activity source
/// (see <see cref="Diagnostics.MigrateKitDiagnostics"/>) get the round and outcome measurements and
/// a <c>migratekit.migrate</c> span with a <c>migratekit.round</c> child per round.
/// </para>
/// </remarks>
public sealed class PreCopyEngine
{
    /// <summary>Per-run framing overhead on the wire, used to turn pages into bytes.</summary>
    private const int PageWireBytes = 4096 + 16;

    private readonly IMigrationSource _source;
    private readonly IDirtyPageTracker _tracker;
    private readonly MigrationOptions _options;
    private readonly ILogger _logger;
    private readonly Region[] _regions;
    private readonly PageRun[] _dataRuns = new PageRun[256];
    private readonly PageRun[] _zeroRuns = new PageRun[1024];

    /// <summary>Creates an engine for one source VM and its tracker.</summary>
    /// <exception cref="ArgumentException">The tracker's regions are not the source's memory regions, or the options are invalid.</exception>
    public PreCopyEngine(IMigrationSource source, IDirtyPageTracker tracker, MigrationOptions? options = null, ILogger<PreCopyEngine>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tracker);
        _options = options ?? new MigrationOptions();
        _options.Validate();
        _source = source;
        _tracker = tracker;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        IReadOnlyList<GuestMemoryRegion> memory = source.Memory.Regions;
        if (tracker.Regions.Count != memory.Count || tracker.Regions.Where((r, i) => !ReferenceEquals(r, memory[i])).Any())
        {
            throw new ArgumentException("The tracker must track exactly the source's memory regions, in order.", nameof(tracker));
        }

        _regions = memory.Select((r, i) => new Region(i, r, _options)).ToArray();
    }

    /// <summary>Pages the destination may not have (after a failure: everything not known delivered).</summary>
    public IReadOnlyList<DirtyBitmap> PendingPages => _regions.Select(r => r.Pending).ToArray();

    /// <summary>
    /// Migrates the source over <paramref name="connection"/> to a <see cref="MigrationReceiver"/>.
    /// Never throws for a failed migration: the report says Failed or Aborted and carries the
    /// typed error (<see cref="MigrationException"/>); only cancellation throws, after the source was
    /// left running.
    /// </summary>
    public async Task<MigrationReport> MigrateAsync(IMigrationConnection connection, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var run = new Run(this, connection, progress);
        return await run.ExecuteAsync(cancellationToken).ConfigureAwait(false);
    }

    private static bool IsZero(ReadOnlySpan<byte> page) => MemoryMarshal.Cast<byte, ulong>(page).IndexOfAnyExcept(0UL) < 0;

    /// <summary>Per-region state of the engine.</summary>
    private sealed class Region
    {
        internal Region(int index, GuestMemoryRegion memory, MigrationOptions options)
        {
            Index = index;
            Memory = memory;
            Pending = new DirtyBitmap(memory.PageCount);
            Deferred = new DirtyBitmap(memory.PageCount);
            Harvested = new DirtyBitmap(memory.PageCount);
            Plan = new DirtyBitmap(memory.PageCount);
            Scratch = new DirtyBitmap(memory.PageCount);
            Populated = new DirtyBitmap(memory.PageCount);
            Heat = new PageHeat(memory.PageCount, options.HotPageWindow, options.HotPageThreshold);
            Digest = new RegionDigestAccumulator(memory.PageCount);
        }

        internal int Index { get; }

        internal GuestMemoryRegion Memory { get; }

        /// <summary>Dirty or never sent: what the destination lacks.</summary>
        internal DirtyBitmap Pending { get; }

        /// <summary>Hot pages held back for the switchover.</summary>
        internal DirtyBitmap Deferred { get; }

        /// <summary>The latest harvest.</summary>
        internal DirtyBitmap Harvested { get; }

        /// <summary>What the current round sends.</summary>
        internal DirtyBitmap Plan { get; }

        internal DirtyBitmap Scratch { get; }

        /// <summary>Pages the host had populated when round 0 began; the rest are zero without a look.</summary>
        internal DirtyBitmap Populated { get; }

        /// <summary>Whether <see cref="Populated"/> applies to the round being sent.</summary>
        internal bool UsePopulated { get; set; }

        internal PageHeat Heat { get; }

        /// <summary>Digest of what was sent, page by page.</summary>
        internal RegionDigestAccumulator Digest { get; }
    }

    /// <summary>One execution of <see cref="MigrateAsync"/>.</summary>
    private sealed class Run : IPageStreamHandler
    {
        private readonly PreCopyEngine _e;
        private readonly IMigrationConnection _connection;
        private readonly IProgress<MigrationProgress>? _progress;
        private readonly TimeProvider _time;
        private readonly PageStreamWriter _writer;
        private readonly PageStreamReader _reader;
        private readonly BandwidthMeter _bandwidth = new();

        // Rounds after the first re-send pages the destination already holds, as the switchover
        // does; round 0 also pays for the destination's first touch of every page, so its rate
        // understates what the switchover will see.
        private readonly BandwidthMeter _resendBandwidth = new();
        private bool _resending;
        private readonly DirtyRateMeter _dirtyRate = new();
        private readonly DirtyRateMeter _warmRate = new();
        private readonly DowntimeEstimator _estimator = new();
        private readonly MigrationPolicy _policy;
        private readonly List<RoundReport> _rounds = new();
        private readonly TaskCompletionSource<HelloAck> _helloAck = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<CompletionAck> _ack = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private bool _completeSent;
        private volatile bool _destinationRefused;
        private readonly object _roundAcks = new();
        private TaskCompletionSource<bool>? _roundAcked;
        private int _awaitedRound;
        private int _lastRoundAcked = -1;
        private readonly ulong _memoryBytes;
        private long _start;
        private long _lastHarvest;
        private int _throttle;
        private int _maxThrottle;
        private bool _paused;
        private ulong _pagesSent;
        private ulong _roundPages;
        private ulong _roundZeroPages;
        private double _zeroFraction;
        private int _deviceStateBytes = 512;
        private MigrationPhase _phase = MigrationPhase.Handshake;
        private CancellationTokenSource? _work;
        private Exception? _destinationFailure;

        // Telemetry: the tags of every measurement, and what the byte and page counters already hold.
        private readonly string _trackerKind;
        private readonly KeyValuePair<string, object?>[] _tags;
        private ulong _bytesCounted;
        private ulong _pagesCounted;

        internal Run(PreCopyEngine engine, IMigrationConnection connection, IProgress<MigrationProgress>? progress)
        {
            _e = engine;
            _connection = connection;
            _progress = progress;
            _time = engine._options.TimeProvider;
            var streamOptions = new PageStreamOptions { BandwidthLimit = engine._options.BandwidthLimit, TimeProvider = _time };
            _writer = new PageStreamWriter(connection.Output, streamOptions);
            _reader = new PageStreamReader(connection.Input, new PageStreamOptions());
            _policy = new MigrationPolicy(engine._options);
            _memoryBytes = engine._source.Memory.TotalSize;
            _trackerKind = MigrationTelemetry.TrackerKind(engine._tracker);
            _tags =
            [
                new(MigrateKitTelemetry.Tags.Source, "engine"),
                new(MigrateKitTelemetry.Tags.VmKind, engine._source.GetType().Name.ToLowerInvariant()),
                new(MigrateKitTelemetry.Tags.Tracker, _trackerKind),
            ];
        }

        private string SourceName => _e._source.Name;

        private MigrationOptions Options => _e._options;

        private TimeSpan Elapsed => _time.GetElapsedTime(_start);

        internal async Task<MigrationReport> ExecuteAsync(CancellationToken ct)
        {
            using Activity? activity = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Migrate);
            if (activity is not null)
            {
                foreach (KeyValuePair<string, object?> tag in _tags)
                {
                    activity.SetTag(tag.Key, tag.Value);
                }

                activity.SetTag(MigrateKitTelemetry.Tags.VmName, SourceName);
                activity.SetTag(MigrateKitTelemetry.Tags.MemoryBytes, (long)_memoryBytes);
                activity.SetTag(MigrateKitTelemetry.Tags.MaxDowntimeMs, Options.MaxDowntime.TotalMilliseconds);
                if (Options.BandwidthLimit is long limit)
                {
                    activity.SetTag(MigrateKitTelemetry.Tags.BandwidthLimit, limit);
                }
            }

            MigrationLog.MigrationStarting(_e._logger, SourceName, _memoryBytes, _trackerKind, Options.MaxDowntime.TotalMilliseconds,
                Options.BandwidthLimit is long bandwidth ? Units.FormatRate(bandwidth) : "none");
            MigrationReport report;
            try
            {
                report = await MigrateCoreAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Only cancellation escapes the core; anything else is counted as a failure all the same.
                string status = ex is OperationCanceledException ? "cancelled" : "failed";
                CountSent();
                MigrateKitTelemetry.Migrations.Add(1, MigrateKitTelemetry.With(_tags, MigrateKitTelemetry.Tags.Status, status));
                activity?.SetTag(MigrateKitTelemetry.Tags.Rounds, _rounds.Count);
                MigrateKitTelemetry.SetOutcome(activity, status, ex.Message, ex is OperationCanceledException ? null : ex);
                throw;
            }

            Finish(report, activity);
            return report;
        }

        /// <summary>Counts what the report says: the last bytes and pages, the downtime, the outcome; tags the migration's span.</summary>
        private void Finish(MigrationReport report, Activity? activity)
        {
            CountSent();
            string status = MigrationTelemetry.StatusName(report.Status);
            if (report.Status == MigrationStatus.Completed && report.DowntimeMs is double downtime)
            {
                MigrateKitTelemetry.ActualDowntime.Record(downtime, _tags);
                MigrationLog.MigrationCompleted(_e._logger, SourceName, report.TotalMs, downtime, report.PredictedDowntimeMs ?? 0, report.BytesSent, report.Rounds);
            }

            MigrateKitTelemetry.Migrations.Add(1, MigrateKitTelemetry.With(_tags, MigrateKitTelemetry.Tags.Status, status));
            if (activity is not null)
            {
                activity.SetTag(MigrateKitTelemetry.Tags.Rounds, report.Rounds);
                activity.SetTag(MigrateKitTelemetry.Tags.BytesSent, (long)report.BytesSent);
                activity.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)report.PagesSent);
                if (report.DowntimeMs is double actual)
                {
                    activity.SetTag(MigrateKitTelemetry.Tags.DowntimeMs, actual);
                }

                if (report.PredictedDowntimeMs is double predicted)
                {
                    activity.SetTag(MigrateKitTelemetry.Tags.PredictedDowntimeMs, predicted);
                }

                MigrateKitTelemetry.SetOutcome(activity, status, report.Reason, report.Status == MigrationStatus.Completed ? null : report.Error);
            }
        }

        /// <summary>Adds what was sent since the last count to the byte and page counters.</summary>
        private void CountSent()
        {
            MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.BytesSent, (ulong)_writer.BytesWritten, ref _bytesCounted, _tags);
            MigrateKitTelemetry.AddDelta(MigrateKitTelemetry.PagesSent, _pagesSent, ref _pagesCounted, _tags);
        }

        private async Task<MigrationReport> MigrateCoreAsync(CancellationToken ct)
        {
            _start = _time.GetTimestamp();
            using var readerCts = CancellationTokenSource.CreateLinkedTokenSource(ct);

            // Cancelled when the destination reports an error or goes away, so a send blocked on a
            // full pipe ends at once instead of waiting for a reader that will never come.
            using var work = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _work = work;
            CancellationToken caller = ct;
            ct = work.Token;
            Task readLoop = Task.Run(() => ReadLoopAsync(readerCts.Token), CancellationToken.None);
            try
            {
                await HandshakeAsync(ct).ConfigureAwait(false);
                Calibrate();

                _phase = MigrationPhase.StartTracking;
                _e._tracker.Start();
                _lastHarvest = _time.GetTimestamp();
                foreach (Region r in _e._regions)
                {
                    r.Pending.SetAll();
                    r.Deferred.ClearAll();
                    r.Heat.Reset();
                }

                Forecast? forecast = null;
                for (int round = 0; ; round++)
                {
                    ct.ThrowIfCancellationRequested();
                    PolicyDecision decision;
                    ulong dirty;
                    Activity? roundSpan = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Round);
                    try
                    {
                        roundSpan?.SetTag(MigrateKitTelemetry.Tags.Round, round);
                        long roundStart = _time.GetTimestamp();
                        ulong bytesBefore = (ulong)_writer.BytesWritten;
                        _resending = round > 0;
                        await SendRoundAsync(round, ct).ConfigureAwait(false);
                        _roundSend = _time.GetElapsedTime(roundStart);
                        try
                        {
                            _writer.AppendRoundEnd(new RoundEnd(round, _roundPages, (ulong)_writer.BytesWritten - bytesBefore));
                            await FlushAsync(ct).ConfigureAwait(false);
                            await WaitForRoundAckAsync(round, ct).ConfigureAwait(false);
                        }
                        catch
                        {
                            // The round is delivered only when the destination says it applied it.
                            foreach (Region r in _e._regions)
                            {
                                r.Pending.Or(r.Plan);
                            }

                            throw;
                        }

                        bool deferredGrew;
                        (dirty, deferredGrew) = Harvest();
                        forecast = Forecast(round);
                        var state = new PolicyState(round, Elapsed, (ulong)_writer.BytesWritten, _memoryBytes, _throttle, deferredGrew);
                        decision = _policy.Decide(forecast, state);
                        RoundReport row = RecordRound(round, roundStart, bytesBefore, dirty, forecast, decision);
                        TagRound(roundSpan, row);
                    }
                    catch (Exception ex)
                    {
                        roundSpan?.SetStatus(ActivityStatusCode.Error, ex.Message);
                        throw;
                    }
                    finally
                    {
                        roundSpan?.Dispose();
                    }

                    _progress?.Report(new MigrationProgress(round, Elapsed, (ulong)_writer.BytesWritten, forecast.PendingBytes, dirty,
                        _e._regions.Aggregate(0UL, (s, r) => s + r.Heat.HotCount), DeferredPages(), _dirtyRate.LastPagesPerSecond,
                        forecast.BandwidthBytesPerSecond, decision.ThrottlePercent, forecast, decision.Action));

                    switch (decision.Action)
                    {
                        case MigrationAction.SwitchOver:
                            return await TracedSwitchOverAsync(round + 1, forecast, ct).ConfigureAwait(false);
                        case MigrationAction.Abort:
                            return await AbortAsync(round + 1, decision.Reason ?? "aborted by policy").ConfigureAwait(false);
                        case MigrationAction.Throttle:
                            SetThrottle(decision.ThrottlePercent);
                            break;
                    }
                }
            }
            catch (OperationCanceledException) when (caller.IsCancellationRequested)
            {
                if (!LeaveSourceAfterFailure())
                {
                    MigrationLog.MigrationCancelledOutcomeUnknown(_e._logger, SourceName);
                    throw new OperationCanceledException(UnknownOutcome("the migration was cancelled"), caller);
                }

                MigrationLog.MigrationCancelled(_e._logger, SourceName, _phase);
                await SendErrorQuietlyAsync(MigrationErrorCode.SourceAborted, "migration cancelled").ConfigureAwait(false);
                throw;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !caller.IsCancellationRequested)
            {
                bool resumed = LeaveSourceAfterFailure();
                Exception cause = ex is OperationCanceledException && _destinationFailure is { } gone ? gone : ex;
                var error = cause as MigrationException ?? new MigrationException(_phase, cause.Message, cause);
                if (!resumed)
                {
                    error = new MigrationException(_phase, UnknownOutcome(error.Message), error);
                    MigrationLog.MigrationOutcomeUnknown(_e._logger, ex, SourceName);
                    return Report(MigrationStatus.Failed, _rounds.Count, error.Message, error, phase: _phase) with { OutcomeUnknown = true };
                }

                MigrationLog.MigrationFailed(_e._logger, ex, SourceName, _phase);
                await SendErrorQuietlyAsync(MigrationErrorCode.SourceAborted, error.Message).ConfigureAwait(false);
                return Report(MigrationStatus.Failed, _rounds.Count, error.Message, error, phase: _phase);
            }
            finally
            {
                await readerCts.CancelAsync().ConfigureAwait(false);
                try
                {
                    await readLoop.ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is OperationCanceledException or IOException or MigrationProtocolException or InvalidOperationException)
                {
                    // The read loop's own failure was already delivered through the awaited acks.
                }
            }
        }

        private async Task HandshakeAsync(CancellationToken ct)
        {
            GuestMemoryLayout memory = _e._source.Memory;
            var specs = memory.Regions.Select(r => new GuestMemoryRegionSpec(r.GuestPhysicalAddress, r.Size)).ToArray();
            long sent = _time.GetTimestamp();
            _writer.AppendHello(new MigrationHello(MigrationProtocol.Version, specs, _e._source.VcpuCount, _e._source.Name));
            await _writer.FlushAsync(ct).ConfigureAwait(false);
            HelloAck ack = await WaitAsync(_helloAck.Task, "HelloAck", ct).ConfigureAwait(false);
            _estimator.ObserveResume(ack.ResumeCostEstimate);
            MigrationLog.HandshakeDone(_e._logger, ack.Version, _time.GetElapsedTime(sent).TotalMilliseconds);
        }

        /// <summary>Measures the pause cost and device-state size with one short pause before any round.</summary>
        private void Calibrate()
        {
            _paused = true;
            TimeSpan latency = _e._source.Pause();
            byte[] state;
            try
            {
                state = _e._source.SaveDeviceState();
                _deviceStateBytes = state.Length;
            }
            finally
            {
                _e._source.Resume();
                _paused = false;
            }

            _estimator.ObservePause(latency);
            StreamRehearsal.Run(_e._regions[0].Memory, state);
            JitWarmup.Prepare(typeof(PreCopyEngine));
        }

        private async Task SendRoundAsync(int round, CancellationToken ct)
        {
            _phase = MigrationPhase.Send;
            _roundPages = 0;
            _roundZeroPages = 0;
            foreach (Region r in _e._regions)
            {
                // Round 0 covers all memory: pages never touched are zero and are not even read.
                // Tracking is on, so a page written after this look is sent again next round.
                r.UsePopulated = round == 0;
                if (r.UsePopulated)
                {
                    r.Populated.ClearAll();
                    r.Memory.MarkPopulatedPages(r.Populated);
                }
            }

            foreach (Region r in _e._regions)
            {
                // Send what is pending and not deferred; deferred pages stay pending.
                r.Plan.CopyFrom(r.Pending);
                r.Plan.AndNot(r.Deferred);
                r.Pending.And(r.Deferred);
            }

            try
            {
                foreach (Region r in _e._regions)
                {
                    await SendBitmapAsync(r, r.Plan, ct).ConfigureAwait(false);
                }
            }
            catch
            {
                // Nothing of this round is known delivered: every planned page stays pending.
                foreach (Region r in _e._regions)
                {
                    r.Pending.Or(r.Plan);
                }

                throw;
            }

            foreach (Region r in _e._regions)
            {
                r.UsePopulated = false;
            }

            ulong total = _roundPages + _roundZeroPages;
            if (round > 0 && total > 0)
            {
                _zeroFraction = (double)_roundZeroPages / total;
            }
        }

        private async Task SendBitmapAsync(Region region, DirtyBitmap pages, CancellationToken ct)
        {
            ulong position = 0;
            while (position < pages.PageCount)
            {
                long t0 = _time.GetTimestamp();
                long before = _writer.BytesWritten;
                position = AppendFrames(region, pages, position, flushAt: 1 << 20);
                await _writer.FlushAsync(ct).ConfigureAwait(false);
                RecordBandwidth(_writer.BytesWritten - before, _time.GetElapsedTime(t0));
            }
        }

        /// <summary>Appends frames for the set pages from <paramref name="start"/> on until about <paramref name="flushAt"/> bytes are buffered; returns where to go on.</summary>
        private ulong AppendFrames(Region region, DirtyBitmap pages, ulong start, long flushAt)
        {
            PageRun[] data = _e._dataRuns;
            PageRun[] zero = _e._zeroRuns;
            int dataCount = 0, zeroCount = 0;
            ulong dataPages = 0;
            int maxPages = data.Length;
            ulong position = pages.PageCount;
            foreach (PageRun run in pages.EnumerateRuns((ulong)maxPages, start))
            {
                for (ulong p = run.FirstPage; p < run.End; p++)
                {
                    if ((region.UsePopulated && !region.Populated.Test(p)) || IsZero(region.Memory.GetPage(p)))
                    {
                        if (zeroCount > 0 && zero[zeroCount - 1].End == p)
                        {
                            zero[zeroCount - 1] = zero[zeroCount - 1] with { Count = zero[zeroCount - 1].Count + 1 };
                        }
                        else
                        {
                            if (zeroCount == zero.Length)
                            {
                                FlushZero(region, zero, ref zeroCount);
                            }

                            zero[zeroCount++] = new PageRun(p, 1);
                        }

                        region.Digest.UpdateZero(p);
                        _roundZeroPages++;
                    }
                    else
                    {
                        if (dataCount > 0 && data[dataCount - 1].End == p)
                        {
                            data[dataCount - 1] = data[dataCount - 1] with { Count = data[dataCount - 1].Count + 1 };
                        }
                        else
                        {
                            data[dataCount++] = new PageRun(p, 1);
                        }

                        dataPages++;
                        if (dataPages == (ulong)maxPages || dataCount == data.Length)
                        {
                            FlushData(region, data, ref dataCount, ref dataPages);
                        }
                    }
                }

                if (_writer.UnflushedBytes >= flushAt)
                {
                    position = run.End;
                    break;
                }
            }

            FlushData(region, data, ref dataCount, ref dataPages);
            FlushZero(region, zero, ref zeroCount);
            return position;
        }

        private void FlushData(Region region, PageRun[] runs, ref int count, ref ulong pages)
        {
            if (count == 0)
            {
                return;
            }

            _writer.AppendPages(region.Index, region.Memory, runs.AsSpan(0, count), region.Digest);
            _roundPages += pages;
            _pagesSent += pages;
            count = 0;
            pages = 0;
        }

        private void FlushZero(Region region, PageRun[] runs, ref int count)
        {
            if (count == 0)
            {
                return;
            }

            _writer.AppendZeroPages(region.Index, runs.AsSpan(0, count));
            count = 0;
        }

        private async ValueTask FlushAsync(CancellationToken ct)
        {
            long t0 = _time.GetTimestamp();
            long before = _writer.UnflushedBytes;
            await _writer.FlushAsync(ct).ConfigureAwait(false);
            RecordBandwidth(before, _time.GetElapsedTime(t0));
        }

        /// <summary>Harvests into each region's pending set and updates heat and the deferred set.</summary>
        private (ulong Dirty, bool DeferredGrew) Harvest()
        {
            _phase = MigrationPhase.Harvest;
            foreach (Region r in _e._regions)
            {
                r.Harvested.ClearAll();
            }

            HarvestResult result;
            try
            {
                result = _e._tracker.Harvest(_e._regions.Select(r => r.Harvested).ToArray());
            }
            catch
            {
                // Some regions may already be re-protected with their bits taken: without knowing
                // which, everything must count as dirty again.
                foreach (Region r in _e._regions)
                {
                    r.Pending.SetAll();
                }

                throw;
            }

            MigrateKitTelemetry.HarvestDuration.Record(result.Duration.TotalMilliseconds, _tags);
            long now = _time.GetTimestamp();
            TimeSpan interval = _time.GetElapsedTime(_lastHarvest, now);
            _lastHarvest = now;
            _estimator.ObserveHarvest(result.Duration, _memoryBytes);

            ulong warm = 0;
            foreach (Region r in _e._regions)
            {
                r.Pending.Or(r.Harvested);
                r.Heat.Update(r.Harvested);
                r.Scratch.CopyFrom(r.Harvested);
                r.Scratch.AndNot(r.Deferred);
                warm += r.Scratch.Count();
            }

            _dirtyRate.Record(result.DirtyPages, interval);
            _warmRate.Record(warm, interval);
            return (result.DirtyPages, UpdateDeferred());
        }

        /// <summary>Defers the hot pages, as many as the downtime budget allows (lowest pages first, so the set is stable).</summary>
        private bool UpdateDeferred()
        {
            double bandwidth = Bandwidth();
            var fixedCosts = new DowntimeBreakdown(_estimator.PauseCost, TimeSpan.FromSeconds(_estimator.HarvestCostPerGiB.TotalSeconds * _memoryBytes / (1UL << 30)),
                TimeSpan.Zero, TimeSpan.FromSeconds(_deviceStateBytes / bandwidth), _estimator.ResumeCost);
            ulong budgetPages = _policy.DeferBudgetBytes(fixedCosts, bandwidth) / PageWireBytes;
            ulong before = DeferredPages();
            foreach (Region r in _e._regions)
            {
                r.Deferred.CopyFrom(r.Heat.HotSet);
                ulong hot = r.Heat.HotCount;
                if (hot > budgetPages)
                {
                    // Keep only the first budgetPages hot pages.
                    ulong kept = 0;
                    foreach (PageRun run in r.Heat.HotSet.EnumerateRuns())
                    {
                        if (kept + run.Count <= budgetPages)
                        {
                            kept += run.Count;
                            continue;
                        }

                        ulong keep = budgetPages - kept;
                        r.Deferred.ClearRange(run.FirstPage + keep, r.Deferred.PageCount);
                        kept = budgetPages;
                        break;
                    }

                    hot = kept;
                }

                budgetPages -= hot;
            }

            return DeferredPages() > before;
        }

        private ulong DeferredPages() => _e._regions.Aggregate(0UL, (s, r) => s + r.Deferred.Count());

        private double Bandwidth()
        {
            double measured = _resendBandwidth.SampleCount > 0 ? _resendBandwidth.Conservative() : _bandwidth.Conservative();
            if (Options.BandwidthLimit is long limit)
            {
                return measured > 0 ? Math.Min(measured, limit) : limit;
            }

            return measured > 0 ? measured : 100e6;
        }

        private TimeSpan _roundSend;

        private void RecordBandwidth(long bytes, TimeSpan elapsed)
        {
            _bandwidth.Record(bytes, elapsed);
            if (_resending)
            {
                _resendBandwidth.Record(bytes, elapsed);
            }
        }

        private Forecast Forecast(int round)
        {
            ulong pending = 0, deferred = 0;
            foreach (Region r in _e._regions)
            {
                pending += r.Pending.Count();
                r.Scratch.CopyFrom(r.Pending);
                r.Scratch.And(r.Deferred);
                deferred += r.Scratch.Count();
            }

            double nonZero = 1 - _zeroFraction;
            double bandwidth = Bandwidth();
            var input = new ForecastInput(
                round,
                Elapsed,
                (ulong)(pending * nonZero * PageWireBytes),
                (ulong)((pending - deferred) * nonZero * PageWireBytes),
                (ulong)(deferred * nonZero * PageWireBytes),
                _warmRate.LastPagesPerSecond * PageWireBytes,
                _dirtyRate.LastPagesPerSecond * PageWireBytes,
                (ulong)_deviceStateBytes,
                _memoryBytes,
                Options.MaxDowntime,
                bandwidth,
                (ulong)_writer.BurstAvailable);
            return _estimator.Estimate(input);
        }

        private void SetThrottle(int percent)
        {
            _throttle = percent;
            _maxThrottle = Math.Max(_maxThrottle, percent);
            _e._source.SetThrottlePercent(percent);
            MigrationLog.Throttling(_e._logger, SourceName, percent);
        }

        /// <summary>Adds the round's row to the report, counts and logs it.</summary>
        private RoundReport RecordRound(int round, long roundStart, ulong bytesBefore, ulong dirty, Forecast forecast, PolicyDecision decision)
        {
            var row = new RoundReport
            {
                Round = round,
                BytesSent = (ulong)_writer.BytesWritten - bytesBefore,
                PagesSent = _roundPages,
                ZeroPages = _roundZeroPages,
                DurationMs = _time.GetElapsedTime(roundStart).TotalMilliseconds,
                SendMs = _roundSend.TotalMilliseconds,
                DirtyPages = dirty,
                HotPages = _e._regions.Aggregate(0UL, (s, r) => s + r.Heat.HotCount),
                DeferredPages = DeferredPages(),
                DirtyRate = _dirtyRate.LastPagesPerSecond,
                Bandwidth = forecast.BandwidthBytesPerSecond,
                ThrottlePercent = _throttle,
                PredictedDowntimeMs = forecast.PredictedDowntime.TotalMilliseconds,
                PredictedTotalMs = forecast.PredictedTotalTime?.TotalMilliseconds,
                Verdict = forecast.Verdict.ToString().ToLowerInvariant(),
                Action = decision.Action.ToString().ToLowerInvariant(),
            };
            _rounds.Add(row);

            MigrateKitTelemetry.Rounds.Add(1, _tags);
            CountSent();
            MigrateKitTelemetry.DirtyRate.Record(row.DirtyRate, _tags);
            MigrateKitTelemetry.PredictedDowntime.Record(row.PredictedDowntimeMs, _tags);
            MigrateKitTelemetry.Throttle.Record(row.ThrottlePercent, _tags);
            MigrationLog.RoundFinished(_e._logger, round, SourceName, row.PagesSent, row.BytesSent, row.DurationMs, row.DirtyPages,
                row.DeferredPages, row.DirtyRate, row.PredictedDowntimeMs, row.Verdict, row.Action);
            return row;
        }

        private static void TagRound(Activity? span, RoundReport row)
        {
            if (span is null)
            {
                return;
            }

            span.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)row.PagesSent);
            span.SetTag(MigrateKitTelemetry.Tags.ZeroPages, (long)row.ZeroPages);
            span.SetTag(MigrateKitTelemetry.Tags.BytesSent, (long)row.BytesSent);
            span.SetTag(MigrateKitTelemetry.Tags.DirtyPages, (long)row.DirtyPages);
            span.SetTag(MigrateKitTelemetry.Tags.PredictedDowntimeMs, row.PredictedDowntimeMs);
            span.SetTag(MigrateKitTelemetry.Tags.Action, row.Action);
        }

        /// <summary>The switchover in a <c>migratekit.switchover</c> span of its own.</summary>
        private async Task<MigrationReport> TracedSwitchOverAsync(int rounds, Forecast forecast, CancellationToken ct)
        {
            using Activity? span = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Switchover);
            MigrationLog.SwitchingOver(_e._logger, SourceName, rounds, forecast.PredictedDowntime.TotalMilliseconds);
            try
            {
                MigrationReport report = await SwitchOverAsync(rounds, forecast, ct).ConfigureAwait(false);
                if (span is not null)
                {
                    span.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)report.SwitchoverPages);
                    span.SetTag(MigrateKitTelemetry.Tags.PredictedDowntimeMs, report.PredictedDowntimeMs);
                    span.SetTag(MigrateKitTelemetry.Tags.DowntimeMs, report.DowntimeMs);
                    span.SetStatus(ActivityStatusCode.Ok);
                }

                return report;
            }
            catch (Exception ex)
            {
                span?.SetStatus(ActivityStatusCode.Error, ex.Message);
                throw;
            }
        }

        private async Task<MigrationReport> SwitchOverAsync(int rounds, Forecast forecast, CancellationToken ct)
        {
            _phase = MigrationPhase.Switchover;
            long switchStart = _time.GetTimestamp();
            ulong bytesBefore = (ulong)_writer.BytesWritten;
            ulong deferred = DeferredPages();
            _paused = true;
            TimeSpan pauseLatency = _e._source.Pause();
            long pausedAt = _time.GetTimestamp();

            // Everything still pending goes now, the deferred hot pages included, each page read.
            foreach (Region r in _e._regions)
            {
                r.UsePopulated = false;
                r.Deferred.ClearAll();
            }

            (ulong dirty, _) = Harvest();
            _phase = MigrationPhase.Switchover;
            TimeSpan finalHarvest = _time.GetElapsedTime(pausedAt);
            ulong pagesBefore = _pagesSent;
            _roundPages = 0;
            _roundZeroPages = 0;

            // Every region's plan is made before anything is sent, and every step up to the
            // destination's Ack shares one merge-back: whatever it has not confirmed stays pending.
            foreach (Region r in _e._regions)
            {
                r.Plan.CopyFrom(r.Pending);
                r.Pending.ClearAll();
            }

            CompletionAck ack;
            long completeSent;

            // The source is paused: a destination that stops reading must not keep it so forever.
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(Options.ResponseTimeout);
            try
            {
                foreach (Region r in _e._regions)
                {
                    await SendBitmapAsync(r, r.Plan, deadline.Token).ConfigureAwait(false);
                }

                byte[] state = _e._source.SaveDeviceState();
                _writer.AppendDeviceState(state);
                RegionDigest[] digests = _e._regions.Select(r => new RegionDigest(r.Index, r.Digest.Value)).ToArray();
                _writer.AppendDigests(digests);
                _writer.AppendComplete();

                // From here the destination may resume the VM: only its explicit refusal lets the source resume.
                _completeSent = true;
                await FlushAsync(deadline.Token).ConfigureAwait(false);
                completeSent = _time.GetTimestamp();
                ack = await WaitAsync(_ack.Task, "the final Ack", ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                foreach (Region r in _e._regions)
                {
                    r.Pending.Or(r.Plan);
                }

                throw new MigrationException(MigrationPhase.Switchover, $"the destination took no more data for {Options.ResponseTimeout.TotalSeconds:F0} s during the switchover", ex);
            }
            catch
            {
                foreach (Region r in _e._regions)
                {
                    r.Pending.Or(r.Plan);
                }

                throw;
            }

            TimeSpan downtime = _time.GetElapsedTime(pausedAt) + pauseLatency;
            TimeSpan ackWait = _time.GetElapsedTime(completeSent);
            var actualParts = new DowntimeParts(pauseLatency.TotalMilliseconds, finalHarvest.TotalMilliseconds,
                (downtime - pauseLatency - finalHarvest - ackWait).TotalMilliseconds, ackWait.TotalMilliseconds);
            DowntimeBreakdown b = forecast.Breakdown;
            var predictedParts = new DowntimeParts(b.Pause.TotalMilliseconds, b.FinalHarvest.TotalMilliseconds,
                (b.Transfer + b.DeviceState).TotalMilliseconds, b.Resume.TotalMilliseconds);
            _estimator.ObservePause(pauseLatency);

            // The VM runs on the destination now: nothing below may fail the migration.
            bool? verified = null;
            try
            {
                _e._tracker.Stop();
                SetThrottleQuietly(0);
                if (Options.VerifySourceMemory)
                {
                    verified = _e._regions.All(r => RegionDigestAccumulator.Compute(r.Memory) == r.Digest.Value);
                    if (verified == false)
                    {
                        MigrationLog.SourceMemoryDiffers(_e._logger, SourceName);
                    }
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                MigrationLog.CleanupFailed(_e._logger, ex, SourceName);
            }

            double predicted = forecast.PredictedDowntime.TotalMilliseconds;
            double actual = downtime.TotalMilliseconds;
            _rounds.Add(new RoundReport
            {
                Round = rounds,
                BytesSent = (ulong)_writer.BytesWritten - bytesBefore,
                PagesSent = _pagesSent - pagesBefore,
                ZeroPages = _roundZeroPages,
                DurationMs = _time.GetElapsedTime(switchStart).TotalMilliseconds,
                DirtyPages = dirty,
                HotPages = _e._regions.Aggregate(0UL, (s, r) => s + r.Heat.HotCount),
                DeferredPages = deferred,
                Bandwidth = Bandwidth(),
                ThrottlePercent = _throttle,
                PredictedDowntimeMs = predicted,
                Verdict = "converging",
                Action = "switchover",
            });
            return new MigrationReport
            {
                Status = MigrationStatus.Completed,
                MemoryBytes = _memoryBytes,
                Rounds = rounds,
                BytesSent = (ulong)_writer.BytesWritten,
                PagesSent = _pagesSent,
                TotalMs = Elapsed.TotalMilliseconds,
                DowntimeMs = actual,
                PredictedDowntimeMs = predicted,
                DowntimeLimitMs = Options.MaxDowntime.TotalMilliseconds,
                PredictionErrorPercent = actual > 0 ? Math.Abs(predicted - actual) / actual * 100 : null,
                PredictedDowntimeParts = predictedParts,
                ActualDowntimeParts = actualParts,
                ResumeMs = ack.ResumeDuration.TotalMilliseconds,
                MaxThrottlePercent = _maxThrottle,
                HotPagesDeferred = deferred,
                SwitchoverPages = _pagesSent - pagesBefore,
                DigestsMatched = true,
                SourceMemoryVerified = verified,
                RoundsDetail = _rounds.ToArray(),
            };
        }

        private async Task<MigrationReport> AbortAsync(int rounds, string reason)
        {
            LeaveSourceRunning();
            MigrationLog.MigrationAborted(_e._logger, SourceName, reason);
            await SendErrorQuietlyAsync(MigrationErrorCode.SourceAborted, reason).ConfigureAwait(false);
            return Report(MigrationStatus.Aborted, rounds, reason, null, phase: null);
        }

        private MigrationReport Report(MigrationStatus status, int rounds, string reason, Exception? error, MigrationPhase? phase) => new()
        {
            Status = status,
            Reason = reason,
            FailedPhase = phase,
            Error = error,
            MemoryBytes = _memoryBytes,
            Rounds = rounds,
            BytesSent = (ulong)_writer.BytesWritten,
            PagesSent = _pagesSent,
            TotalMs = Elapsed.TotalMilliseconds,
            DowntimeLimitMs = Options.MaxDowntime.TotalMilliseconds,
            MaxThrottlePercent = _maxThrottle,
            HotPagesDeferred = DeferredPages(),
            RoundsDetail = _rounds.ToArray(),
        };

        /// <summary>
        /// After a failure: resumes the source at full speed, unless Complete may have reached a
        /// destination that is still connected and has neither acknowledged nor refused (the
        /// wait timed out or was cancelled). That destination may be resuming the VM, and
        /// resuming the source could run it twice: the source stays paused (unthrottled) and
        /// false is returned. A destination that hangs up or reports an error has given up.
        /// </summary>
        private bool LeaveSourceAfterFailure()
        {
            if (_ack.Task.IsCompletedSuccessfully)
            {
                // The destination runs the VM: whatever failed afterwards, the source must not.
                SetThrottleQuietly(0);
                return false;
            }

            if (_completeSent && !_destinationRefused && Volatile.Read(ref _destinationFailure) is null)
            {
                SetThrottleQuietly(0);
                return false;
            }

            LeaveSourceRunning();
            return true;
        }

        private static string UnknownOutcome(string what) =>
            $"{what} after Complete was sent, and the destination, still connected, neither acknowledged nor refused: it may be running the VM, " +
            "so the source stays paused to never run it twice. Check the destination, then resume or discard the source.";

        /// <summary>Whatever happened, the source runs on at full speed.</summary>
        private void LeaveSourceRunning()
        {
            if (_paused)
            {
                _e._source.Resume();
                _paused = false;
            }

            SetThrottleQuietly(0);
        }

        private void SetThrottleQuietly(int percent)
        {
            if (_throttle != percent)
            {
                _throttle = percent;
                _e._source.SetThrottlePercent(percent);
            }
        }

        private async Task SendErrorQuietlyAsync(MigrationErrorCode code, string message) =>
            await _writer.TrySendErrorAsync(new MigrationError(code, message)).ConfigureAwait(false);

        private async Task<T> WaitAsync<T>(Task<T> task, string what, CancellationToken ct)
        {
            try
            {
                return await task.WaitAsync(Options.ResponseTimeout, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (task.IsCompletedSuccessfully)
            {
                // The answer arrived just as the read loop saw the stream end and cancelled the work.
                return task.Result;
            }
            catch (TimeoutException)
            {
                throw new MigrationException(_phase, $"the destination sent no {what} within {Options.ResponseTimeout.TotalSeconds:F0} s");
            }
        }

        private async Task ReadLoopAsync(CancellationToken ct)
        {
            try
            {
                while (await _reader.ReadAsync(this, ct).ConfigureAwait(false))
                {
                }

                if (_ack.Task.IsCompletedSuccessfully)
                {
                    // The destination hung up after its final Ack: the normal end.
                    return;
                }

                Fail(new MigrationException(_phase, "the destination closed the connection"));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // The run is over; nothing to report.
            }
            catch (Exception ex)
            {
                if (_ack.Task.IsCompletedSuccessfully)
                {
                    // The migration is complete; what the connection does afterwards does not matter.
                    return;
                }

                Fail(ex is MigrationException ? ex : new MigrationException(_phase, $"reading from the destination failed: {ex.Message}", ex));
            }
        }

        private void Fail(Exception ex)
        {
            if (Interlocked.CompareExchange(ref _destinationFailure, ex, null) is null)
            {
                _helloAck.TrySetException(ex);
                _ack.TrySetException(ex);
                try
                {
                    _work?.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // The run is over.
                }
            }
        }

        void IPageStreamHandler.OnHelloAck(HelloAck ack) => _helloAck.TrySetResult(ack);

        void IPageStreamHandler.OnRoundAck(int round)
        {
            lock (_roundAcks)
            {
                _lastRoundAcked = Math.Max(_lastRoundAcked, round);
                if (_lastRoundAcked >= _awaitedRound)
                {
                    _roundAcked?.TrySetResult(true);
                }
            }
        }

        /// <summary>
        /// Waits until the destination has applied the round, so what it still had buffered is not
        /// mistaken for bandwidth and not left over into the switchover; the wait counts as sending time.
        /// </summary>
        private async Task WaitForRoundAckAsync(int round, CancellationToken ct)
        {
            long t0 = _time.GetTimestamp();
            Task<bool> waiting;
            lock (_roundAcks)
            {
                if (_lastRoundAcked >= round)
                {
                    return;
                }

                _awaitedRound = round;
                _roundAcked = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                waiting = _roundAcked.Task;
            }

            await WaitAsync(waiting, $"RoundAck of round {round}", ct).ConfigureAwait(false);
            RecordBandwidth(0, _time.GetElapsedTime(t0));
        }

        void IPageStreamHandler.OnAck(CompletionAck ack) => _ack.TrySetResult(ack);

        void IPageStreamHandler.OnError(MigrationError error)
        {
            _destinationRefused = true;
            var ex = new MigrationException(_phase, $"the destination reported {error.Code}: {error.Message}");
            Fail(ex);
        }

        void IPageStreamHandler.OnHello(MigrationHello hello) => throw Unexpected("Hello");

        void IPageStreamHandler.OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data) => throw Unexpected("Pages");

        void IPageStreamHandler.OnZeroPages(int region, ulong firstPage, ulong count) => throw Unexpected("ZeroPages");

        void IPageStreamHandler.OnRoundEnd(RoundEnd roundEnd) => throw Unexpected("RoundEnd");

        void IPageStreamHandler.OnDeviceState(ReadOnlySequence<byte> state) => throw Unexpected("DeviceState");

        void IPageStreamHandler.OnDigests(IReadOnlyList<RegionDigest> digests) => throw Unexpected("Digests");

        void IPageStreamHandler.OnComplete() => throw Unexpected("Complete");

        private static MigrationProtocolException Unexpected(string frame) =>
            new(frame, "type", $"A destination does not send {frame} frames.");
    }
}
