using System.Collections.Generic;
using System.Linq;
using MigrateKit.Migration;
using MigrateKit.Qemu;

namespace MigrateKit.Cli;

/// <summary>
/// Pages re-sent as deltas in a run: what QEMU's <c>xbzrle</c> capability did (its
/// <c>query-migrate</c> <c>xbzrle-cache</c> figures at the end), or MigrateKit's delta encoding
/// (its rounds' figures, summed); or the medians of a side's runs.
/// </summary>
internal sealed record VsQemuDeltas
{
    /// <summary>Dirty pages that were not in the cache of sent pages and went whole (QEMU's <c>cache-miss</c>).</summary>
    public double? CacheMisses { get; init; }

    /// <summary>Pages sent as deltas (QEMU's <c>pages</c>).</summary>
    public double? Pages { get; init; }

    /// <summary>Bytes of those deltas (QEMU's <c>bytes</c>).</summary>
    public double? Bytes { get; init; }

    /// <summary>Pages whose delta outgrew the page and went whole (QEMU's <c>overflow</c>).</summary>
    public double? Overflows { get; init; }

    /// <summary>A run's figures; null when QEMU reported none (xbzrle off).</summary>
    internal static VsQemuDeltas? Of(QemuXbzrleStatus? status) => status is null ? null : new()
    {
        CacheMisses = status.CacheMisses,
        Pages = status.EncodedPages,
        Bytes = status.EncodedBytes,
        Overflows = status.Overflows,
    };

    /// <summary>A MigrateKit run's figures, summed over its rounds; null when it sent no page as a delta and no cache missed.</summary>
    internal static VsQemuDeltas? Of(IReadOnlyList<RoundReport> rounds)
    {
        ulong pages = 0, bytes = 0, misses = 0, overflows = 0;
        foreach (RoundReport r in rounds)
        {
            pages += r.DeltaPages;
            bytes += r.DeltaBytes;
            misses += r.DeltaCacheMisses;
            overflows += r.DeltaOverflows;
        }

        return pages + misses + overflows == 0 ? null : new() { CacheMisses = misses, Pages = pages, Bytes = bytes, Overflows = overflows };
    }

    /// <summary>The medians of the runs that have figures; null when none has.</summary>
    internal static VsQemuDeltas? Median(IEnumerable<VsQemuDeltas?> runs)
    {
        VsQemuDeltas[] some = [.. runs.OfType<VsQemuDeltas>()];
        return some.Length == 0 ? null : new()
        {
            CacheMisses = ForecastSummary.Median(some.Select(x => x.CacheMisses).OfType<double>()),
            Pages = ForecastSummary.Median(some.Select(x => x.Pages).OfType<double>()),
            Bytes = ForecastSummary.Median(some.Select(x => x.Bytes).OfType<double>()),
            Overflows = ForecastSummary.Median(some.Select(x => x.Overflows).OfType<double>()),
        };
    }
}
