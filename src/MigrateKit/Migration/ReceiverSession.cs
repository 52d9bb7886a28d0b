using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// One migration on the destination, across the connections that carry it: the VM built from the
/// Hello, the pages written into it, the digests kept page by page, and where the switchover
/// stands. It outlives a lost connection, so a source that reconnects continues where the
/// destination's memory is; the VM starts only on <see cref="Start"/> (the source's Commit), and
/// is released, never started, on <see cref="Discard"/>.
/// </summary>
internal sealed partial class ReceiverSession
{
    private readonly GuestMemoryRegion[] _regions;
    private readonly RegionDigestAccumulator[] _digests;
    private readonly DirtyBitmap[] _written;
    private readonly GuestMemoryRegion?[] _fresh;
    private readonly PopulateAhead _ahead;
    private PopulateHoles? _holes;
    private bool _populate = true;
    private byte[]? _scratch;
    private byte[]? _deviceState;
    private RegionDigest[]? _sourceDigests;
    private long _completeAt;
    private readonly Lock _owner = new();
    private TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _attachedBefore;
    private bool _releaseOnDetach;

    private ReceiverSession(MigrationHello hello, IMigrationTarget target, bool hugePages)
    {
        Hello = hello;
        Target = target;
        IReadOnlyList<GuestMemoryRegion> regions = target.Memory.Regions;
        if (regions.Count != hello.Regions.Count || regions.Where((r, i) => r.GuestPhysicalAddress != hello.Regions[i].GuestPhysicalAddress || r.Size != hello.Regions[i].Size).Any())
        {
            target.Dispose();
            throw new InvalidOperationException("The destination VM's memory layout does not match the source's Hello.");
        }

        _regions = regions.ToArray();
        _digests = _regions.Select(r => new RegionDigestAccumulator(r.PageCount)).ToArray();
        _written = _regions.Select(r => new DirtyBitmap(r.PageCount)).ToArray();
        _fresh = new GuestMemoryRegion?[_regions.Length];
        for (int i = 0; i < _regions.Length; i++)
        {
            // Memory the target already holds (a reused VM, loaded firmware) is cleared by
            // zero runs like pages this session wrote; fresh memory has nothing populated.
            // Fresh memory is backed by huge pages where asked and the kernel allows: a 2 MiB page
            // costs one fault where 512 small ones each cost one, which a paravirtual host makes
            // expensive (docs/BENCHMARKS.md, "Huge pages for the destination's fresh memory").
            _fresh[i] = _regions[i].MarkPopulatedPages(_written[i]) == 0 ? _regions[i] : null;
            FreshBytes += _fresh[i]?.Size ?? 0;
            if (hugePages && _fresh[i]?.TryAdviseHugePages() == true)
            {
                HugePageBytes += _fresh[i]!.Size;
            }
        }

        _ahead = new PopulateAhead(_fresh);
    }

    /// <summary>
    /// Starts backing fresh memory ahead of the data. The receiver calls it once its HelloAck is
    /// queued: the populate thread's faults hold the process's memory map lock, which the work
    /// before the answer (the target's resume estimate, its JIT) needs too.
    /// </summary>
    internal void StartPopulating() => _ahead.Begin();

    internal MigrationHello Hello { get; }

    /// <summary>The bytes of memory that held nothing before the session.</summary>
    internal ulong FreshBytes { get; }

    /// <summary>The bytes of fresh memory the kernel took the huge-page advice for.</summary>
    internal ulong HugePageBytes { get; }

    internal Guid Id => Hello.SessionId;

    internal IMigrationTarget Target { get; }

    internal DestinationSessionState State { get; private set; } = DestinationSessionState.Receiving;

    /// <summary>Why the VM was discarded, once it was.</summary>
    internal string? DiscardReason { get; private set; }

    /// <summary>Complete arrived on the current connection and the switchover is under way.</summary>
    internal bool Completing => _completeAt != 0;

    internal int Rounds { get; private set; }

    internal ulong Pages { get; private set; }

    internal ulong ZeroPages { get; private set; }

    /// <summary>The session's counters and gauges.</summary>
    internal ReceiverTelemetry Telemetry { get; } = new();

    /// <summary>How long the target's Start took, once it ran.</summary>
    internal TimeSpan? StartDuration { get; private set; }

    /// <summary>From Complete to the VM running, once it runs.</summary>
    internal TimeSpan? ResumeDuration { get; private set; }

    /// <summary>Checks <paramref name="hello"/> against the limits, then builds its VM.</summary>
    /// <exception cref="MigrationLimitException">The Hello is beyond the limits.</exception>
    internal static ReceiverSession Open(MigrationHello hello, MigrationReceiverOptions options, Func<MigrationHello, IMigrationTarget> createTarget)
    {
        // Before the target is built or any per-page state allocated: the peer's Hello is a claim.
        options.Check(hello);
        return new ReceiverSession(hello, createTarget(hello), options.HugePages);
    }

    /// <summary>The target's resume-cost estimate, for the HelloAck.</summary>
    /// <exception cref="InvalidOperationException">The target's estimate is negative or over a day.</exception>
    internal TimeSpan EstimateResumeCost()
    {
        TimeSpan cost = Target.EstimateResumeCost();
        return MigrationProtocol.IsWireDuration(cost)
            ? cost
            : throw new InvalidOperationException($"The destination VM's EstimateResumeCost returned {cost}: a resume cost is between zero and {MigrationProtocol.MaxDuration.TotalHours:0} hours.");
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void WritePages(string frame, int region, ulong firstPage, int count, ReadOnlySequence<byte> data)
    {
        GuestMemoryRegion memory = CheckRange(frame, region, firstPage, (ulong)count);
        PopulateFirst(region, memory, firstPage, (ulong)count);

        Span<byte> target = memory.GetSpan(firstPage * GuestMemoryLayout.PageSize, count * (int)GuestMemoryLayout.PageSize);
        data.CopyTo(target);
        RegionDigestAccumulator digest = _digests[region];
        for (int i = 0; i < count; i++)
        {
            digest.Update(firstPage + (ulong)i, target.Slice(i * (int)GuestMemoryLayout.PageSize, (int)GuestMemoryLayout.PageSize));
        }

        Received(region, firstPage, (ulong)count);
    }

    /// <summary>Decodes one page of an EncodedPages frame into guest memory; a delta applies to the copy received last.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void WriteEncodedPage(int region, ulong page, PageEncoding encoding, ReadOnlySequence<byte> data)
    {
        GuestMemoryRegion memory = CheckRange("EncodedPages", region, page, 1);
        PopulateFirst(region, memory, page, 1);

        ReadOnlySpan<byte> payload = data.IsSingleSegment ? data.FirstSpan : Contiguous(data);
        Span<byte> target = memory.GetPage(page);
        PageEncoder.Decode(encoding, payload, target);
        _digests[region].Update(page, target);
        Received(region, page, 1);
    }

    // First data for these pages: back them in one call rather than one fault per page.
    private void PopulateFirst(int region, GuestMemoryRegion memory, ulong firstPage, ulong count)
    {
        if (_populate && !_written[region].Test(firstPage) && !_ahead.Covers(region, firstPage + count))
        {
            _populate = memory.TryPopulate(firstPage, count);
        }
    }

    // The pages hold data now: a later zero run clears them, and the populate thread skips past them.
    private void Received(int region, ulong firstPage, ulong count)
    {
        _written[region].SetRange(firstPage, count);
        _ahead.Advance(region, firstPage + count);
        Pages += count;
    }

    private static DirtyBitmap Copy(DirtyBitmap bitmap)
    {
        var copy = new DirtyBitmap(bitmap.PageCount);
        copy.CopyFrom(bitmap);
        return copy;
    }

    // An encoded page is at most a page long (the reader checks), so one buffer holds any.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ReadOnlySpan<byte> Contiguous(ReadOnlySequence<byte> data)
    {
        _scratch ??= new byte[GuestMemoryLayout.PageSize];
        data.CopyTo(_scratch);
        return _scratch.AsSpan(0, (int)data.Length);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void WriteZeroPages(string frame, int region, ulong firstPage, ulong count)
    {
        GuestMemoryRegion memory = CheckRange(frame, region, firstPage, count);
        DirtyBitmap written = _written[region];
        RegionDigestAccumulator digest = _digests[region];

        // Fresh memory is already zero: only pages written earlier are cleared (and touched).
        // Found word by word, so a small frame announcing a huge run costs its words, not its pages.
        foreach (PageRun run in written.EnumerateRunsIn(firstPage, count))
        {
            for (ulong p = run.FirstPage; p < run.End; p++)
            {
                memory.GetPage(p).Clear();
                digest.UpdateZero(p);
            }
        }

        written.ClearRange(firstPage, count);
        ZeroPages += count;
    }

    /// <summary>Brings the telemetry up to the session's totals, with <paramref name="openConnectionBytes"/> read on the open connection.</summary>
    internal void CountReceived(long openConnectionBytes) => Telemetry.CountReceived(EarlierBytes + openConnectionBytes, Pages, ZeroPages);

    internal void EndRound(int round)
    {
        // Round 0 brought every page once: later rounds write pages that are backed already, or
        // pages that were zero, whose short runs among data are backed from here on.
        _ahead.Dispose();
        lock (_owner)
        {
            // Not for a session discarded meanwhile: Discard stops only a thread that exists.
            CheckLive();
            _holes ??= new PopulateHoles(_fresh, [.. _written.Select(Copy)]);
        }

        Rounds = Math.Max(Rounds, round + 1);
    }

    internal void SetDeviceState(ReadOnlySequence<byte> state) => _deviceState = state.ToArray();

    internal void SetDigests(IReadOnlyList<RegionDigest> digests)
    {
        var copy = new RegionDigest[digests.Count];
        for (int i = 0; i < copy.Length; i++)
        {
            copy[i] = digests[i];
        }

        _sourceDigests = copy;
    }

    /// <summary>Zero pages among data backed ahead since round 0 ended.</summary>
    internal ulong HolesPopulated => _holes?.PagesPopulated ?? 0;

    internal void MarkComplete()
    {
        _ahead.Dispose();
        _holes?.Stop();
        _completeAt = Stopwatch.GetTimestamp();
    }

    /// <summary>
    /// After Complete: checks every region's digest and restores the device state, leaving the VM
    /// paused (<see cref="DestinationSessionState.Ready"/>). Returns null when ready, or the
    /// mismatch message when the memory differs from the source's (the VM must never run then).
    /// </summary>
    /// <exception cref="MigrationProtocolException">Complete came without the device state and digests, or with digests of other regions.</exception>
    internal string? Prepare()
    {
        CheckLive();
        if (_sourceDigests is null || _deviceState is null)
        {
            throw new MigrationProtocolException("Complete", "type", "Complete arrived before the device state and digests.");
        }

        // Plain loops, not LINQ: this runs inside the downtime, where first-use JIT of generic
        // iterators over RegionDigest cost milliseconds.
        if (_sourceDigests.Length != _digests.Length || !OneDigestPerRegion(_sourceDigests, _digests.Length))
        {
            throw new MigrationProtocolException("Digests", "count", $"Expected one digest for each of the {_digests.Length} regions, got {_sourceDigests.Length}.");
        }

        foreach (RegionDigest d in _sourceDigests)
        {
            if (_digests[d.Region].Value != d.Digest)
            {
                return $"region {d.Region}: received memory digests to 0x{_digests[d.Region].Value:x16}, the source sent 0x{d.Digest:x16}";
            }
        }

        Target.RestoreDeviceState(_deviceState);
        lock (_owner)
        {
            // Discarded meanwhile (a query's abort, a new migration): it must never become ready.
            CheckLive();
            State = DestinationSessionState.Ready;
        }

        return null;
    }

    /// <summary>Whether every region in [0, <paramref name="regions"/>) has exactly one digest; a region outside it is refused by name.</summary>
    private static bool OneDigestPerRegion(RegionDigest[] digests, int regions)
    {
        Span<bool> seen = regions <= 256 ? stackalloc bool[regions] : new bool[regions];
        foreach (RegionDigest d in digests)
        {
            if (d.Region < 0 || d.Region >= regions)
            {
                throw new MigrationProtocolException("Digests", "region", $"Region {d.Region} does not exist (the VM has {regions}).");
            }

            if (seen[d.Region])
            {
                return false;
            }

            seen[d.Region] = true;
        }

        return true;
    }

    /// <summary>Time since Complete arrived.</summary>
    internal TimeSpan SinceComplete => Stopwatch.GetElapsedTime(_completeAt);

    /// <summary>The source committed: the VM runs here from now on.</summary>
    /// <exception cref="InvalidOperationException">The session is not ready.</exception>
    internal void Start()
    {
        if (!TryStart())
        {
            throw new InvalidOperationException($"Session {Id:N} is {State}, not ready: the VM cannot start.");
        }
    }

    /// <summary>
    /// Starts the VM unless it already runs (the source's Commit and a Commit query may race);
    /// returns false when it already did. Checked and started under one lock, so it starts once.
    /// </summary>
    /// <exception cref="InvalidOperationException">The session is neither ready nor started.</exception>
    internal bool TryStart()
    {
        lock (_owner)
        {
            if (State == DestinationSessionState.Started)
            {
                return false;
            }

            if (State != DestinationSessionState.Ready)
            {
                throw new InvalidOperationException($"Session {Id:N} is {State}, not ready: the VM cannot start.");
            }

            long t0 = Stopwatch.GetTimestamp();
            Target.Start();
            StartDuration = Stopwatch.GetElapsedTime(t0);
            State = DestinationSessionState.Started;
            ResumeDuration = SinceComplete;
            return true;
        }
    }

    /// <summary>
    /// A reconnection continues pre-copy: whatever part of a switchover arrived is dropped (the VM,
    /// if it was ready, stays paused and is restored again at the next Complete).
    /// </summary>
    internal void Reopen()
    {
        lock (_owner)
        {
            // Checked and set under the lock Discard and TryStart take: a discarded session stays so.
            if (State is not (DestinationSessionState.Receiving or DestinationSessionState.Ready))
            {
                throw new InvalidOperationException($"Session {Id:N} is {State} and cannot continue.");
            }

            State = DestinationSessionState.Receiving;
        }

        _deviceState = null;
        _sourceDigests = null;
        _completeAt = 0;
    }

    /// <summary>Releases the VM, which never ran; idempotent. A started session is not discarded: false then.</summary>
    internal bool Discard(string reason)
    {
        lock (_owner)
        {
            // Under the lock TryStart holds: a Commit on the session's connection and a discard
            // from elsewhere (a query's abort, a new migration) leave it started or discarded, never both.
            if (State is DestinationSessionState.Started or DestinationSessionState.Discarded)
            {
                return State == DestinationSessionState.Discarded;
            }

            State = DestinationSessionState.Discarded;
            DiscardReason = reason;
        }

        _ahead.Dispose();
        _holes?.Dispose();
        lock (_owner)
        {
            // A query may abort a session whose connection is writing pages into its memory right
            // now: the memory is released when that connection lets go, which it does at its next frame.
            if (Owner is not null)
            {
                _releaseOnDetach = true;
                return true;
            }
        }

        Target.Dispose();
        return true;
    }

    /// <summary>The state and a line for a Query's answer.</summary>
    internal SessionStatus Status() => new(State, State switch
    {
        DestinationSessionState.Started => $"The VM of session {Id:N} ({Hello.SourceName}) runs on this destination: discard the source's copy.",
        DestinationSessionState.Ready => $"The VM of session {Id:N} ({Hello.SourceName}) is ready and paused on this destination; it starts only on Commit.",
        DestinationSessionState.Receiving => $"Session {Id:N} ({Hello.SourceName}) was interrupted during pre-copy; this destination keeps it for a Resume.",
        _ => $"The VM of session {Id:N} ({Hello.SourceName}) was released without ever running here ({DiscardReason}): the source may resume.",
    });

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckLive()
    {
        if (State == DestinationSessionState.Discarded)
        {
            throw new InvalidOperationException($"Session {Id:N} was released ({DiscardReason}); nothing more is applied to it.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private GuestMemoryRegion CheckRange(string frame, int region, ulong firstPage, ulong count)
    {
        CheckLive();
        if (region < 0 || region >= _regions.Length)
        {
            throw new MigrationProtocolException(frame, "region", $"Region {region} does not exist (the VM has {_regions.Length}).");
        }

        GuestMemoryRegion memory = _regions[region];
        if (firstPage > memory.PageCount || count > memory.PageCount - firstPage)
        {
            throw new MigrationProtocolException(frame, "firstPage", $"Pages [{firstPage}, +{count}) lie outside region {region} of {memory.PageCount} pages.");
        }

        return memory;
    }
}
