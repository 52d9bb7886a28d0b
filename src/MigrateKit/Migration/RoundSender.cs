using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// Puts planned pages on the wire: coalesces them into data and zero runs, flushes about every
/// MiB, and reports each flush's bytes and sending time so the bandwidth is measured on real sends.
/// </summary>
internal sealed class RoundSender
{
    /// <summary>Buffered bytes after which a send flushes.</summary>
    internal const long FlushThreshold = 1 << 20;

    /// <summary>A delta at most this long (an eighth of a page) makes its page cheap to re-send.</summary>
    internal const int CheapDeltaBytes = 512;

    private readonly TimeProvider _time;
    private readonly Action<long, TimeSpan> _recordSend;
    private readonly Func<MigrationPhase> _phase;
    private readonly PageEncoder? _encoder;
    private EncodedPageBatch? _batch;
    private Action<ulong, ulong, TimeSpan, TimeSpan>? _recordBuild;
    private EncodingTally _roundStart;
    private bool _forgetCheap;
    private PageStreamWriter _writer = null!;
    private PageRun[] _dataRuns = [];
    private PageRun[] _zeroRuns = [];
    private ulong _earlierBytes;
    private int _rounds;

    /// <param name="time">The clock that times the flushes.</param>
    /// <param name="recordSend">Gets the bytes and the sending time of every flush.</param>
    /// <param name="phase">The engine's phase, named when a flush stalls.</param>
    /// <param name="encoder">Encodes every non-zero page (delta, compressed or raw), or <see langword="null"/> to send them raw in Pages frames.</param>
    internal RoundSender(TimeProvider time, Action<long, TimeSpan> recordSend, Func<MigrationPhase> phase, PageEncoder? encoder = null)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(recordSend);
        ArgumentNullException.ThrowIfNull(phase);
        _time = time;
        _recordSend = recordSend;
        _phase = phase;
        _encoder = encoder;
    }

    /// <param name="writer">Where the frames go; its stall timeout bounds every flush.</param>
    /// <param name="time">The clock that times the flushes.</param>
    /// <param name="recordSend">Gets the bytes and the sending time of every flush.</param>
    /// <param name="phase">The engine's phase, named when a flush stalls.</param>
    internal RoundSender(PageStreamWriter writer, TimeProvider time, Action<long, TimeSpan> recordSend, Func<MigrationPhase> phase)
        : this(time, recordSend, phase) => Use(writer);

    /// <summary>The encoder <paramref name="options"/> ask for, with its sent-page cache sized for <paramref name="memoryBytes"/> of guest memory; null for none.</summary>
    internal static PageEncoder? EncoderFor(MigrationOptions options, ulong memoryBytes)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.EffectiveEncodings == PageEncodings.None)
        {
            return null;
        }

        SentPageCache? cache = options.EffectiveEncodings.HasFlag(PageEncodings.Delta) ? new SentPageCache(options.SentPageCacheSize(memoryBytes)) : null;
        int? level = options.EffectiveEncodings.HasFlag(PageEncodings.Compression) ? options.CompressionLevel : null;
        return new PageEncoder(cache, level, options.TimeProvider);
    }

    /// <summary>
    /// Gets the data pages of every chunk, how many of them were marked cheap when sent, the
    /// time it took to read, encode and frame them (before the flush), and of that time, what
    /// copies into never-written slots of the sent-page cache took (<see cref="PageEncoder.FirstWrites"/>).
    /// </summary>
    internal RoundSender OnBuilt(Action<ulong, ulong, TimeSpan, TimeSpan> recordBuild)
    {
        _recordBuild = recordBuild;
        return this;
    }

    /// <summary>Bytes put on the wire so far, frame headers included, on every connection of the migration.</summary>
    internal ulong BytesWritten => _earlierBytes + (ulong)(_writer?.BytesWritten ?? 0);

    /// <summary>Sends on <paramref name="writer"/> from now on (a new connection after a lost one); the counts go on.</summary>
    internal void Use(PageStreamWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (_writer is not null && _encoder is not null)
        {
            // Frames lost with the old connection may have carried copies the cache holds.
            _encoder.ForgetAll();
            _forgetCheap = true;
        }

        _batch = _encoder is null ? null : new EncodedPageBatch(_encoder, writer.Options);
        _earlierBytes = BytesWritten;
        _writer = writer;

        // Frames sized to the connection's limits: at most MaxPagesPerFrame pages (each possibly
        // its own run) a Pages frame, and as many zero runs (up to 1024) as MaxFramePayload holds.
        _dataRuns = new PageRun[writer.Options.MaxPagesPerFrame];
        _zeroRuns = new PageRun[Math.Min(1024, (writer.Options.MaxFramePayload - 8) / 16)];
    }

    /// <summary>The encoder's copies into never-written slots of the sent-page cache so far; none without one.</summary>
    private TimeSpan FirstWrites => _encoder?.FirstWrites ?? TimeSpan.Zero;

    /// <summary>Pages sent with their data, all rounds.</summary>
    internal ulong PagesSent { get; private set; }

    /// <summary>Pages sent with their data since <see cref="BeginRound"/>.</summary>
    internal ulong RoundPages { get; private set; }

    /// <summary>
    /// Data pages of the round's last flush: the destination applies them after the last bytes
    /// arrive, where the pages of earlier flushes were applied while the next ones were built.
    /// </summary>
    internal ulong LastFlushPages { get; private set; }

    /// <summary>How long building the round's last flush took.</summary>
    internal TimeSpan LastFlushBuild { get; private set; }

    /// <summary>Pages sent as zero runs since <see cref="BeginRound"/>.</summary>
    internal ulong RoundZeroPages { get; private set; }

    /// <summary>
    /// Of the round's data pages, those marked cheap when they went (last sent as a small delta,
    /// or priced so): the forecast prices the pending pages by that mark, so the round's bytes are
    /// split by it too, whatever form each page then took. A page last sent whole may go as a small
    /// delta now (a sequential writer's), and its price must say so.
    /// </summary>
    internal ulong RoundCheapPages { get; private set; }

    /// <summary>The wire bytes of <see cref="RoundCheapPages"/>: entries and encoded pages.</summary>
    internal ulong RoundCheapBytes { get; private set; }

    /// <summary>The wire bytes of the round's other data pages (raw, compressed, larger deltas), frame headers and tables included.</summary>
    internal ulong RoundOtherBytes { get; private set; }

    /// <summary>The forms the round's pages went in (all zero without an encoder).</summary>
    internal EncodingTally RoundEncoding => (_encoder?.Tally ?? default) - _roundStart;

    /// <summary>Starts counting a new round's pages.</summary>
    /// <param name="final">
    /// The switchover's round: a page without a cached copy goes without taking one, since no
    /// round follows to delta against it. A page with one still has it updated, as always.
    /// </param>
    internal void BeginRound(bool final = false)
    {
        if (_encoder is not null)
        {
            _encoder.KeepNewCopies = !final;
        }

        _rounds++;
        RoundPages = 0;
        LastFlushPages = 0;
        LastFlushBuild = TimeSpan.Zero;
        RoundZeroPages = 0;
        RoundCheapPages = 0;
        RoundCheapBytes = 0;
        RoundOtherBytes = 0;
        _roundStart = _encoder?.Tally ?? default;
    }

    /// <summary>
    /// Marks as cheap the hot pages of the latest harvest whose delta against the copy sent last
    /// would be small, so they go every round (a few bytes each) instead of being held back for
    /// the switchover.
    /// </summary>
    /// <returns>
    /// The pages priced and the time it took: pricing reads a page and its cached copy, as sending
    /// it as a delta does, so it tells what a delta costs before any round sent one.
    /// </returns>
    internal (ulong Pages, TimeSpan Elapsed) PriceHotPages(IReadOnlyList<EngineRegion> regions)
    {
        if (_encoder is null)
        {
            return (0, TimeSpan.Zero);
        }

        // Only the hot pages of the latest harvest: the others are not pending, and pricing a page
        // reads it whole, so the cost stays with the pages the next round could send.
        long t0 = _time.GetTimestamp();
        ulong priced = 0;
        foreach (EngineRegion r in regions)
        {
            foreach (PageRun run in r.Harvested.EnumerateRuns())
            {
                for (ulong p = run.FirstPage; p < run.End; p++)
                {
                    if (!r.Heat.HotSet.Test(p) || r.Cheap.Test(p))
                    {
                        continue;
                    }

                    priced++;
                    if (_encoder.DeltaCost(r.Index, p, r.Memory.GetPage(p)) <= CheapDeltaBytes)
                    {
                        r.Cheap.Set(p);
                    }
                }
            }
        }

        return (priced, _time.GetElapsedTime(t0));
    }

    /// <summary>The run is over: returns the sent-page cache's memory; nothing is sent after.</summary>
    internal void Release() => _encoder?.ReleaseCache();

    /// <summary>Sends every region's planned pages.</summary>
    internal async Task SendPlanAsync(IReadOnlyList<EngineRegion> regions, CancellationToken ct)
    {
        if (_forgetCheap)
        {
            foreach (EngineRegion r in regions)
            {
                r.Cheap.ClearAll();
            }

            _forgetCheap = false;
        }

        foreach (EngineRegion r in regions)
        {
            await SendAsync(r, r.Plan, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Sends the pages of <paramref name="pages"/> from <paramref name="region"/>, flushing about every <see cref="FlushThreshold"/> bytes.</summary>
    internal async Task SendAsync(EngineRegion region, DirtyBitmap pages, CancellationToken ct)
    {
        ulong position = 0;
        while (position < pages.PageCount)
        {
            long t0 = _time.GetTimestamp();
            long before = _writer.BytesWritten;
            ulong cheapBefore = RoundCheapBytes;
            ulong pagesBefore = RoundPages;
            ulong cheapPagesBefore = RoundCheapPages;
            TimeSpan firstWritesBefore = FirstWrites;
            position = AppendFrames(region, pages, position);
            TimeSpan build = _time.GetElapsedTime(t0);
            LastFlushPages = RoundPages - pagesBefore;
            LastFlushBuild = build;
            _recordBuild?.Invoke(LastFlushPages, RoundCheapPages - cheapPagesBefore, build, FirstWrites - firstWritesBefore);
            RoundOtherBytes += (ulong)(_writer.BytesWritten - before) - (RoundCheapBytes - cheapBefore);
            await BoundedFlushAsync(ct).ConfigureAwait(false);

            // With encodings the work per page is priced apart (it varies far more than bytes do),
            // so the bandwidth covers only the time the link took.
            TimeSpan sending = _time.GetElapsedTime(t0);
            _recordSend(_writer.BytesWritten - before, _encoder is null ? sending : sending - build);
        }
    }

    /// <summary>Ends round <paramref name="round"/>, which put <paramref name="roundBytes"/> on the wire, and flushes.</summary>
    internal async ValueTask EndRoundAsync(int round, ulong roundBytes, CancellationToken ct)
    {
        _writer.AppendRoundEnd(new RoundEnd(round, RoundPages, roundBytes));
        await FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Appends what ends a switchover: the device state, the digests of every region, and Complete.</summary>
    internal void AppendCompletion(ReadOnlySpan<byte> deviceState, IReadOnlyList<EngineRegion> regions)
    {
        _writer.AppendDeviceState(deviceState);
        var digests = new RegionDigest[regions.Count];
        for (int i = 0; i < digests.Length; i++)
        {
            digests[i] = new RegionDigest(regions[i].Index, regions[i].Digest.Value);
        }

        _writer.AppendDigests(digests);
        _writer.AppendComplete();
    }

    /// <summary>Appends Commit: the destination may start the VM.</summary>
    internal void AppendCommit() => _writer.AppendCommit();

    /// <summary>Flushes what is buffered and records it as sent.</summary>
    internal async ValueTask FlushAsync(CancellationToken ct)
    {
        long t0 = _time.GetTimestamp();
        long before = _writer.UnflushedBytes;
        await BoundedFlushAsync(ct).ConfigureAwait(false);
        _recordSend(before, _time.GetElapsedTime(t0));
    }

    /// <summary>Sends the Hello (not counted as page traffic).</summary>
    internal async ValueTask SendHelloAsync(MigrationHello hello, CancellationToken ct)
    {
        _writer.AppendHello(hello);
        await BoundedFlushAsync(ct).ConfigureAwait(false);
    }

    // Every flush of the engine goes through here: a destination that takes no data for the
    // writer's stall timeout (it stopped reading, or the link black-holed) fails the migration,
    // while the bandwidth limit's pacing may take as long as it needs.
    private async ValueTask BoundedFlushAsync(CancellationToken ct)
    {
        try
        {
            await _writer.FlushAsync(ct).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            MigrationPhase phase = _phase();
            string during = phase switch
            {
                MigrationPhase.Handshake => "the handshake",
                MigrationPhase.Send => $"round {_rounds - 1}",
                MigrationPhase.Switchover => "the switchover",
                _ => phase.ToString(),
            };
            throw new MigrationException(phase, $"the destination took no data for {_writer.StallTimeout.TotalSeconds:0.###} s during {during}", ex);
        }
    }

    private static bool IsZero(ReadOnlySpan<byte> page) => MemoryMarshal.Cast<byte, ulong>(page).IndexOfAnyExcept(0UL) < 0;

    // Appends frames for the set pages from `start` on until about FlushThreshold bytes are buffered; returns where to go on.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ulong AppendFrames(EngineRegion region, DirtyBitmap pages, ulong start)
    {
        PageRun[] data = _dataRuns;
        PageRun[] zero = _zeroRuns;
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
                            AppendZeroRuns(region, zero, ref zeroCount);
                        }

                        zero[zeroCount++] = new PageRun(p, 1);
                    }

                    region.Digest.UpdateZero(p);
                    _encoder?.Forget(region.Index, p);
                    region.Cheap.Clear(p);
                    RoundZeroPages++;
                }
                else if (_batch is not null)
                {
                    AppendEncoded(_batch, region, p);
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
                        AppendDataRuns(region, data, ref dataCount, ref dataPages);
                    }
                }
            }

            if (_writer.UnflushedBytes >= FlushThreshold)
            {
                position = run.End;
                break;
            }
        }

        AppendDataRuns(region, data, ref dataCount, ref dataPages);
        AppendZeroRuns(region, zero, ref zeroCount);
        _batch?.AppendTo(_writer);
        return position;
    }

    // One page in its cheapest form; a small delta marks it cheap to re-send, anything else unmarks it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AppendEncoded(EncodedPageBatch batch, EngineRegion region, ulong page)
    {
        if (batch.IsFullFor(region.Index))
        {
            batch.AppendTo(_writer);
        }

        bool markedCheap = region.Cheap.Test(page);
        PageEncoding encoding = batch.Add(region.Index, page, region.Memory.GetPage(page), region.Digest, out int length);
        if (markedCheap)
        {
            RoundCheapPages++;
            RoundCheapBytes += (ulong)(PageStreamWriter.EncodedEntrySize + length);
        }

        if (encoding == PageEncoding.Delta && length <= CheapDeltaBytes)
        {
            region.Cheap.Set(page);
        }
        else
        {
            region.Cheap.Clear(page);
        }

        RoundPages++;
        PagesSent++;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AppendDataRuns(EngineRegion region, PageRun[] runs, ref int count, ref ulong pages)
    {
        if (count == 0)
        {
            return;
        }

        _writer.AppendPages(region.Index, region.Memory, runs.AsSpan(0, count), region.Digest);
        RoundPages += pages;
        PagesSent += pages;
        count = 0;
        pages = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AppendZeroRuns(EngineRegion region, PageRun[] runs, ref int count)
    {
        if (count == 0)
        {
            return;
        }

        _writer.AppendZeroPages(region.Index, runs.AsSpan(0, count));
        count = 0;
    }
}
