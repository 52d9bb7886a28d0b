using System;
using LibvirtSharp;
using MigrateKit.Memory;

namespace MigrateKit.Libvirt;

/// <summary>What QEMU's xbzrle did over one iteration (differences of libvirt's cumulative job statistics).</summary>
/// <param name="Pages">Pages sent with data: whole (cache misses, overflows, first sends) and delta-encoded.</param>
/// <param name="DeltaPages">Pages sent as deltas.</param>
/// <param name="WireBytes">Bytes those pages took on the wire.</param>
/// <param name="DeltaBytes">Bytes the deltas took.</param>
/// <param name="CacheMisses">Re-dirtied pages not found in the cache (sent whole).</param>
/// <param name="Duration">How long the iteration ran.</param>
internal readonly record struct XbzrleIteration(ulong Pages, ulong DeltaPages, ulong WireBytes, ulong DeltaBytes, ulong CacheMisses, TimeSpan Duration)
{
    /// <summary>Wire bytes per byte of page data: 1 without gain, near 0 when deltas are tiny.</summary>
    internal double WireRatio => Pages == 0 ? 1 : Math.Clamp(WireBytes / ((double)Pages * GuestMemoryLayout.PageSize), 0.001, 1.1);

    /// <summary>Pages per second the iteration moved (encoding included).</summary>
    internal double PageRate => Duration > TimeSpan.Zero ? Pages / Duration.TotalSeconds : 0;

    /// <summary>The share of the iteration's pages that missed the cache.</summary>
    internal double MissRatio => Pages == 0 ? 0 : CacheMisses / (double)Pages;
}

/// <summary>
/// Follows QEMU's xbzrle counters across iterations: what re-dirtied pages cost on the wire, how fast
/// they were encoded, and how often the cache missed. The forecast prices the stop-and-copy with it.
/// </summary>
internal sealed class XbzrleMeter
{
    private Counters _atStart;
    private TimeSpan _startedAt;
    private bool _started;

    /// <summary>How many whole iterations delta-encoded pages (the first one with xbzrle on mostly fills the cache).</summary>
    internal int Measured { get; private set; }

    /// <summary>The last whole iteration in which pages were delta-encoded; null before one.</summary>
    internal XbzrleIteration? Last { get; private set; }

    /// <summary>A poll saw a new iteration begin at <paramref name="elapsed"/>: the one before it is measured.</summary>
    internal void IterationStarted(JobStats stats, TimeSpan elapsed)
    {
        Counters now = Counters.Of(stats);
        if (_started)
        {
            var done = new XbzrleIteration(
                Delta(now.Normal, _atStart.Normal) + Delta(now.DeltaPages, _atStart.DeltaPages),
                Delta(now.DeltaPages, _atStart.DeltaPages),
                Delta(now.NormalBytes, _atStart.NormalBytes) + Delta(now.DeltaBytes, _atStart.DeltaBytes),
                Delta(now.DeltaBytes, _atStart.DeltaBytes),
                Delta(now.Misses, _atStart.Misses),
                elapsed - _startedAt);
            if (done.DeltaPages > 0)
            {
                Last = done;
                Measured++;
            }
        }

        _atStart = now;
        _startedAt = elapsed;
        _started = true;
    }

    private static ulong Delta(ulong now, ulong before) => now > before ? now - before : 0;

    private readonly record struct Counters(ulong Normal, ulong NormalBytes, ulong DeltaPages, ulong DeltaBytes, ulong Misses)
    {
        internal static Counters Of(JobStats s) => new(s.MemoryNormal ?? 0, s.MemoryNormalBytes ?? 0, s.CompressionPages ?? 0, s.CompressionBytes ?? 0, s.CompressionCacheMisses ?? 0);
    }
}
