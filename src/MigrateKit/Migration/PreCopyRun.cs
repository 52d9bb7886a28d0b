using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Tracking;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// One execution of <see cref="PreCopyEngine.MigrateAsync(IMigrationConnection, IProgress{MigrationProgress}?, System.Threading.CancellationToken)"/>: the handshake, the calibration,
/// the rounds and the policy's decisions, and what happens to the source when it ends. The
/// parts it drives do the rest: <see cref="RegionSet"/>, <see cref="RoundSender"/>,
/// <see cref="TransferMeasurements"/>, <see cref="DestinationChannel"/>, <see cref="Switchover"/>,
/// <see cref="SourceRecovery"/> and <see cref="EngineRecorder"/>.
/// </summary>
internal sealed partial class PreCopyRun
{
    private readonly IMigrationSource _source;
    private readonly IDirtyPageTracker _tracker;
    private readonly MigrationOptions _options;
    private readonly ILogger _logger;
    private readonly IProgress<MigrationProgress>? _progress;
    private readonly TimeProvider _time;
    private readonly RegionSet _regions;
    private readonly Reconnector _connector;
    private readonly LinkRecovery _links;
    private readonly RoundSender _sender;
    private readonly TransferMeasurements _measurements;
    private readonly SourceRecovery _recovery;
    private readonly EngineRecorder _recorder;
    private readonly MigrationPolicy _policy;
    private long _start;
    private MigrationPhase _phase = MigrationPhase.Handshake;
    private DestinationLink? _link;

    /// <param name="engine">The source, its tracker, the options, the logger and the engine's region set.</param>
    /// <param name="connector">Where the destination is, and whether a lost link can be replaced.</param>
    /// <param name="progress">Gets a report after every round.</param>
    internal PreCopyRun(PreCopyEngine engine, Reconnector connector, IProgress<MigrationProgress>? progress)
    {
        _source = engine.Source;
        _tracker = engine.Tracker;
        _options = engine.Options;
        _logger = engine.Logger;
        _regions = engine.Regions;
        _progress = progress;
        _time = _options.TimeProvider;
        _connector = connector;
        _links = new LinkRecovery(connector, _options, SessionId, () => _phase);
        _measurements = new TransferMeasurements(_options, _source.Memory.TotalSize, _tracker.Kind);
        _sender = new RoundSender(_time, _measurements.RecordSend, () => _phase, RoundSender.EncoderFor(_options, _source.Memory.TotalSize)).OnBuilt((pages, cheap, elapsed, firstWrites) => _measurements.RecordBuild(pages, elapsed, cheap, firstWrites));
        _recovery = new SourceRecovery(_source, _regions);
        _recorder = new EngineRecorder(_source, _tracker, _options, _logger, Totals);
        _policy = new MigrationPolicy(_options);
    }

    private TimeSpan Elapsed => _time.GetElapsedTime(_start);

    /// <summary>Names the migration across reconnections and for a Query after an unknown outcome.</summary>
    internal Guid SessionId { get; } = Guid.NewGuid();

    private DestinationLink Link => _link ?? throw new InvalidOperationException("The migration has no connection to its destination.");

    internal async Task<MigrationReport> ExecuteAsync(CancellationToken ct)
    {
        using Activity? activity = _recorder.StartMigration();
        MigrationReport report;
        try
        {
            report = await MigrateCoreAsync(ct).ConfigureAwait(false) with
            {
                SessionId = SessionId.ToString("N"),
                Reconnections = _connector.Reconnections,
            };
        }
        catch (Exception ex)
        {
            // Only cancellation escapes the core; anything else is counted as a failure all the same.
            StopTrackingUnlessKept();
            _recorder.Thrown(ex, activity);
            throw;
        }
        finally
        {
            _sender.Release();
            _measurements.SaveHeldFigures();
        }

        if (report.Status != MigrationStatus.Completed)
        {
            StopTrackingUnlessKept();
        }

        _recorder.Finish(report, activity);
        return report;
    }

    private EngineTotals Totals() => new()
    {
        BytesSent = _sender.BytesWritten,
        PagesSent = _sender.PagesSent,
        Elapsed = Elapsed,
        HotPages = _regions.HotPages,
        DeferredPages = _regions.DeferredPages,
        ThrottlePercent = _recovery.ThrottlePercent,
        MaxThrottlePercent = _recovery.MaxThrottlePercent,
        BandwidthBytesPerSecond = _measurements.Bandwidth(),
        DirtyPagesPerSecond = _measurements.DirtyPagesPerSecond,
    };

    private async Task<MigrationReport> MigrateCoreAsync(CancellationToken caller)
    {
        _start = _time.GetTimestamp();
        StartDeadline();
        try
        {
            using (CancellationTokenSource? bounded = Bounded(caller))
            {
                (IMigrationConnection connection, bool owned) = await _connector.FirstAsync(bounded?.Token ?? caller).ConfigureAwait(false);
                Use(new DestinationLink(connection, owned, _options, () => _phase, caller));
            }

            using (CancellationTokenSource? bounded = Bounded(Link.Work))
            {
                await HandshakeAsync(bounded?.Token ?? Link.Work).ConfigureAwait(false);
            }

            Calibrate();

            _phase = MigrationPhase.StartTracking;
            _tracker.Start();
            _measurements.TrackingStarted();
            _regions.Restart();
            ProbeFinalHarvest();
            for (int round = 0; ; round++)
            {
                caller.ThrowIfCancellationRequested();
                Forecast forecast;
                PolicyDecision decision;
                ulong dirty;
                try
                {
                    using CancellationTokenSource? bounded = Bounded(Link.Work);
                    (forecast, decision, dirty) = await TracedRoundAsync(round, bounded?.Token ?? Link.Work).ConfigureAwait(false);
                }
                catch (Exception ex) when (CanContinueAfter(ex, caller))
                {
                    await ContinueAsync(round + 1, ex, caller).ConfigureAwait(false);
                    continue;
                }

                _progress?.Report(new MigrationProgress
                {
                    Round = round,
                    Elapsed = Elapsed,
                    BytesSent = _sender.BytesWritten,
                    RemainingBytes = forecast.PendingBytes,
                    DirtyPages = dirty,
                    HotPages = _regions.HotPages,
                    DeferredPages = _regions.DeferredPages,
                    DirtyRatePagesPerSecond = _measurements.DirtyPagesPerSecond,
                    BandwidthBytesPerSecond = forecast.BandwidthBytesPerSecond,
                    ThrottlePercent = decision.ThrottlePercent,
                    Forecast = forecast,
                    Action = decision.Action,
                    PagesSent = _sender.RoundPages,
                    Encoding = _sender.RoundEncoding,
                });

                switch (decision.Action)
                {
                    case MigrationAction.SwitchOver:
                        try
                        {
                            _switchingOver = true;
                            return await TracedSwitchOverAsync(round + 1, forecast, caller).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (!Link.Channel.CommitSent && CanContinueAfter(ex, caller))
                        {
                            // Before Commit the destination never starts the VM: the source runs on, and pre-copy continues.
                            _switchingOver = false;
                            _recovery.LeaveRunning();
                            await ContinueAsync(round + 1, ex, caller).ConfigureAwait(false);
                            continue;
                        }

                    case MigrationAction.Abort:
                        return await AbortAsync(round + 1, decision.Reason ?? "aborted by policy").ConfigureAwait(false);
                    case MigrationAction.Throttle:
                        _recovery.Throttle(decision.ThrottlePercent);
                        MigrationLog.Throttling(_logger, _source.Name, decision.ThrottlePercent);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (caller.IsCancellationRequested)
        {
            await CancelledAsync(caller).ConfigureAwait(false);
            throw;
        }
        catch (OperationCanceledException) when (DeadlinePassed)
        {
            return await AbortAsync(_recorder.RoundCount, DeadlineReason()).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !caller.IsCancellationRequested)
        {
            return await FailedAsync(ex).ConfigureAwait(false);
        }
        finally
        {
            if (_link is not null)
            {
                await _link.DisposeAsync().ConfigureAwait(false);
            }

            _deadline?.Dispose();
        }
    }

    /// <summary>Whether the destination may be running the VM: only once Commit was sent, and until it is known not to.</summary>
    private bool MayRunTheVm => _link?.Channel.MayRunTheVm ?? false;

    private string UnknownOutcome(string what) => SourceRecovery.UnknownOutcome(what, SessionId, _link?.RemoteAddress);

    private void Use(DestinationLink link)
    {
        _link = link;
        _sender.Use(link.Writer);
    }

    /// <summary>The link failed (not the destination, not the protocol) and the engine may reconnect.</summary>
    private bool CanContinueAfter(Exception ex, CancellationToken caller) =>
        !caller.IsCancellationRequested && _link is not null && _links.CanContinueAfter(_link.Channel, ex);

    /// <summary>
    /// After a lost link during pre-copy (or a switchover before Commit): every page not
    /// acknowledged is pending again, the engine reconnects and resumes the session, and the
    /// rounds go on from <paramref name="nextRound"/>. The tracker keeps running throughout.
    /// </summary>
    private async Task ContinueAsync(int nextRound, Exception cause, CancellationToken caller)
    {
        MigrationPhase phase = _phase;
        _regions.ReturnUndelivered();
        string reason = (_link?.Channel.Failure ?? cause).Message;
        MigrationLog.Reconnecting(_logger, phase, reason, _connector.Reconnections + 1);
        await Link.DisposeAsync().ConfigureAwait(false);
        _link = null;
        long t0 = _time.GetTimestamp();
        Use(await _links.ResumeAsync(nextRound, phase, reason, caller, _deadline?.Token ?? default).ConfigureAwait(false));
        MigrationLog.Resumed(_logger, SessionId, nextRound, _time.GetElapsedTime(t0).TotalMilliseconds);
    }

    private async Task HandshakeAsync(CancellationToken ct)
    {
        GuestMemoryLayout memory = _source.Memory;
        var specs = memory.Regions.Select(r => new GuestMemoryRegionSpec(r.GuestPhysicalAddress, r.Size)).ToArray();
        long sent = _time.GetTimestamp();
        await _sender.SendHelloAsync(new MigrationHello(MigrationProtocol.Version, specs, _source.VcpuCount, _source.Name) { SessionId = SessionId }, ct).ConfigureAwait(false);
        HelloAck ack = await Link.Channel.WaitForHelloAckAsync(ct).ConfigureAwait(false);
        _measurements.UseDestination(Link.RemoteAddress);
        _measurements.Estimator.ObserveResume(ack.ResumeCostEstimate);
        MigrationLog.HandshakeDone(_logger, ack.Version, _time.GetElapsedTime(sent).TotalMilliseconds);
    }

    /// <summary>Measures the pause cost and device-state size with one short pause before any round.</summary>
    private void Calibrate()
    {
        TimeSpan latency = _recovery.Pause();
        byte[] state;
        try
        {
            state = _source.SaveDeviceState();
            _measurements.DeviceStateBytes = state.Length;
        }
        finally
        {
            _recovery.Resume();
        }

        // Saved with the switchover's figures, or as the run ends: no store rewrite before round 0.
        _measurements.ObservePause(latency, save: false);
        StreamRehearsal.Run(_regions.Regions[0].Memory, state);
        JitWarmup.PrepareEngine();
        DestinationChannel.Rehearse(_options);
    }

    /// <summary>One pre-copy round in a <c>migratekit.round</c> span: send, wait for the destination, harvest, forecast, decide.</summary>
    private async Task<(Forecast Forecast, PolicyDecision Decision, ulong Dirty)> TracedRoundAsync(int round, CancellationToken ct)
    {
        using Activity? span = EngineRecorder.StartRound(round);
        try
        {
            long roundStart = _time.GetTimestamp();
            ulong bytesBefore = _sender.BytesWritten;
            _measurements.Resending = round > 0;
            _measurements.RoundStarting();
            await SendRoundAsync(round, ct).ConfigureAwait(false);
            TimeSpan send = _time.GetElapsedTime(roundStart);
            Link.Channel.MarkRoundEndSent(round);
            await _sender.EndRoundAsync(round, _sender.BytesWritten - bytesBefore, ct).ConfigureAwait(false);
            await WaitForRoundAckAsync(round, ct).ConfigureAwait(false);
            _regions.ConfirmDelivered();
            _measurements.RoundDelivered(_sender.BytesWritten - bytesBefore, _time.GetElapsedTime(roundStart), _sender.RoundPages);

            (ulong dirty, bool deferredGrew, TimeSpan harvest) = Harvest();
            Forecast forecast = _measurements.Forecast(round, Elapsed, _regions.PendingPages, _regions.PendingDeferredPages, (ulong)Link.Writer.BurstAvailable, _regions.PendingCheapPages);
            var state = new PolicyState(round, Elapsed, _sender.BytesWritten, _source.Memory.TotalSize, _recovery.ThrottlePercent, deferredGrew, dirty);
            PolicyDecision decision = _policy.Decide(forecast, state);
            var traffic = new RoundTraffic
            {
                Round = round,
                BytesSent = _sender.BytesWritten - bytesBefore,
                PagesSent = _sender.RoundPages,
                ZeroPages = _sender.RoundZeroPages,
                Duration = _time.GetElapsedTime(roundStart),
                SendTime = send,
                HarvestTime = harvest,
                DirtyPages = dirty,
                Encoding = _sender.RoundEncoding,
            };
            _recorder.RecordRound(span, traffic, forecast, decision);
            return (forecast, decision, dirty);
        }
        catch (Exception ex)
        {
            EngineRecorder.SpanFailed(span, ex);
            throw;
        }
    }

    /// <summary>Sends what is pending and not deferred.</summary>
    private async Task SendRoundAsync(int round, CancellationToken ct)
    {
        _phase = MigrationPhase.Send;
        _sender.BeginRound();

        // Round 0 covers all memory: pages never touched are zero and are not even read.
        // Tracking is on, so a page written after this look is sent again next round.
        _regions.UsePopulatedPages(round == 0);
        _regions.PlanRound();
        await _sender.SendPlanAsync(_regions.Regions, ct).ConfigureAwait(false);
        _regions.UsePopulatedPages(false);
        _measurements.RecordZeroShare(round, _sender.RoundPages, _sender.RoundZeroPages);
        _measurements.RecordPageCosts(_sender.RoundPages, _sender.RoundCheapPages, _sender.RoundCheapBytes, _sender.RoundOtherBytes);
    }

    /// <summary>
    /// Waits until the destination has applied the round, so what it still had buffered is not
    /// mistaken for bandwidth and not left over into the switchover; the wait counts as sending time.
    /// </summary>
    private async Task WaitForRoundAckAsync(int round, CancellationToken ct)
    {
        long t0 = _time.GetTimestamp();
        if (await Link.Channel.WaitForRoundAckAsync(round, ct).ConfigureAwait(false))
        {
            TimeSpan wait = _time.GetElapsedTime(t0);
            _measurements.RecordRoundAckWait(_sender.LastFlushPages, _sender.RoundPages, wait, _sender.LastFlushBuild);
            _measurements.Estimator.ObserveRoundTrip(wait);
        }
    }

    /// <summary>Harvests into the pending sets and defers the hot pages the downtime budget allows, after pricing
    /// them (not in the switchover, <paramref name="final"/>: every page goes, so that work has no place in the downtime).</summary>
    private (ulong Dirty, bool DeferredGrew, TimeSpan Duration) Harvest(bool final = false)
    {
        _phase = MigrationPhase.Harvest;
        (HarvestResult result, ulong warm) = _regions.Harvest(_tracker, final);
        if (!final)
        {
            (ulong priced, TimeSpan pricing) = _sender.PriceHotPages(_regions.Regions);
            _measurements.RecordDeltaPricing(priced, pricing);
        }

        _recorder.RecordHarvest(result.Duration);
        _measurements.RecordHarvest(result, warm, _regions.CheapHarvestedPages, _regions.HarvestedChunks);
        return (result.DirtyPages, !final && _regions.DeferHotPages(_measurements.DeferBudgetPages(_policy)), result.Duration);
    }

    /// <summary>
    /// Times a final harvest now, where the tracker's only reads: with every page pending, what it
    /// reports changes nothing, and later harvests report it again. A tracker's first final
    /// harvest is then priced by its own kind of walk, not by the pre-copy harvests, which also
    /// re-arm what they report (they priced a 1 GiB random writer's at 2.8-6.5 ms; it took 1.1-1.8 ms).
    /// </summary>
    private void ProbeFinalHarvest()
    {
        if (!_tracker.FinalHarvestRearms)
        {
            TimeSpan took = _regions.Harvest(_tracker, final: true).Result.Duration;
            _measurements.Estimator.ObserveFinalHarvestProbe(took, _source.Memory.TotalSize);
        }
    }

    /// <summary>The switchover in a <c>migratekit.switchover</c> span of its own.</summary>
    private async Task<MigrationReport> TracedSwitchOverAsync(int rounds, Forecast forecast, CancellationToken caller)
    {
        CancellationToken ct = Link.Work;
        using Activity? span = _recorder.StartSwitchover(rounds, forecast);
        try
        {
            _phase = MigrationPhase.Switchover;
            var switchover = new Switchover(_source, _recovery, _regions, _sender, Link.Channel, _options, () =>
            {
                ulong dirty = Harvest(final: true).Dirty;
                _phase = MigrationPhase.Switchover;
                return dirty;
            })
            {
                ConfirmCommit = (cause, commitSent) => _links.ConfirmCommitAsync(Link.Channel, cause, commitSent, caller),
            };
            SwitchoverResult result = await switchover.RunAsync(ct).ConfigureAwait(false);
            await Link.HangUpAfterAckAsync().ConfigureAwait(false);
            _measurements.ObserveSwitchover(result, _source.Memory.TotalSize, _regions.HarvestedChunks);
            bool? verified = LetGoOfTheSource();
            MigrationReport report = _recorder.Completed(rounds, forecast, result, _time.GetElapsedTime(result.Started), verified);
            EngineRecorder.SwitchoverCompleted(span, report);
            return report;
        }
        catch (Exception ex)
        {
            EngineRecorder.SpanFailed(span, ex);
            throw;
        }
    }
}
