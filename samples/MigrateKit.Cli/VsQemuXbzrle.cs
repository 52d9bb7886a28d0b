using System.Collections.Generic;
using System.Linq;
using MigrateKit.Qemu;

namespace MigrateKit.Cli;

/// <summary>
/// What QEMU's <c>xbzrle</c> capability did in a run (its <c>query-migrate</c> <c>xbzrle-cache</c>
/// figures at the end), or the medians of a side's runs.
/// </summary>
internal sealed record VsQemuXbzrle
{
    /// <summary>Dirty pages that were not in the cache and went whole (<c>cache-miss</c>).</summary>
    public double? CacheMisses { get; init; }

    /// <summary>Pages sent as deltas (<c>pages</c>).</summary>
    public double? Pages { get; init; }

    /// <summary>Bytes of those deltas (<c>bytes</c>).</summary>
    public double? Bytes { get; init; }

    /// <summary>Pages whose delta outgrew the page and went whole (<c>overflow</c>).</summary>
    public double? Overflows { get; init; }

    /// <summary>A run's figures; null when QEMU reported none (xbzrle off).</summary>
    internal static VsQemuXbzrle? Of(QemuXbzrleStatus? status) => status is null ? null : new()
    {
        CacheMisses = status.CacheMisses,
        Pages = status.EncodedPages,
        Bytes = status.EncodedBytes,
        Overflows = status.Overflows,
    };

    /// <summary>The medians of the runs that have figures; null when none has.</summary>
    internal static VsQemuXbzrle? Median(IEnumerable<VsQemuXbzrle?> runs)
    {
        VsQemuXbzrle[] some = [.. runs.OfType<VsQemuXbzrle>()];
        return some.Length == 0 ? null : new()
        {
            CacheMisses = ForecastSummary.Median(some.Select(x => x.CacheMisses).OfType<double>()),
            Pages = ForecastSummary.Median(some.Select(x => x.Pages).OfType<double>()),
            Bytes = ForecastSummary.Median(some.Select(x => x.Bytes).OfType<double>()),
            Overflows = ForecastSummary.Median(some.Select(x => x.Overflows).OfType<double>()),
        };
    }
}
