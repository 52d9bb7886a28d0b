using System;
using System.Collections.Generic;
using System.Numerics;

namespace MigrateKit.Estimation;

/// <summary>DowntimeHistory's final harvests: what they took, kept by memory size, and the price of the next.</summary>
public sealed partial class DowntimeHistory
{
    /// <summary>
    /// Records how long a switchover's final harvest took with the guest paused. Pre-copy
    /// harvests run against the guest's writes and say little about it: on a 2-core machine,
    /// a random writer's ran at 2.4-8.7 ms per GiB against 2.2-2.9 ms paused, a sequential
    /// one's at 1.0-1.9 ms against 1.5-2.5 ms (its bookkeeping included).
    /// With a store, kept under "harvest.3/" + the kind (figures m.N in bytes, c.N in chunks and h.N in seconds).
    /// </summary>
    /// <param name="key">The kind of migration.</param>
    /// <param name="duration">From the pause to the end of the final harvest's bookkeeping.</param>
    /// <param name="memoryBytes">The guest memory it covered.</param>
    /// <param name="dirtyChunks">
    /// The 2 MiB chunks of guest memory it found a dirty page in; null when not counted. A
    /// write-protect harvest pays a TLB flush per page-table page it re-protects: on 1 GiB here,
    /// a random writer's final harvest (150-430 pages in 33 chunks) took 2.1-2.6 ms, a sequential
    /// one's (72-81 pages in one chunk) 1.2 ms.
    /// </param>
    public void RecordFinalHarvest(string key, TimeSpan duration, ulong memoryBytes, ulong? dirtyChunks = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (duration <= TimeSpan.Zero || memoryBytes == 0)
        {
            return;
        }

        Keep(HarvestPrefix, key, new HarvestSample(memoryBytes, dirtyChunks is ulong c ? c : double.NaN, duration.TotalSeconds), KeepHarvest, Harvests, ToEntry);
    }

    /// <summary>
    /// What a final harvest of <paramref name="memoryBytes"/> should take, from the recorded ones
    /// of <paramref name="key"/>: of those of the same size, a line in the dirty chunks where
    /// <paramref name="dirtyChunks"/> is given and they differ enough to tell its slope (a
    /// Theil-Sen fit: the median of the pairwise slopes, then the median intercept), else their
    /// median; without three of the same size, the median of all scaled by size; null with fewer
    /// than three.
    /// </summary>
    /// <param name="key">The kind of migration.</param>
    /// <param name="memoryBytes">The guest memory the harvest covers.</param>
    /// <param name="dirtyChunks">The 2 MiB chunks it is expected to find dirty; null: unknown.</param>
    public TimeSpan? FinalHarvestCost(string key, ulong memoryBytes, double? dirtyChunks = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        Span<HarvestSample> same = stackalloc HarvestSample[HarvestCapacity];
        Span<double> scaled = stackalloc double[HarvestTotal];
        int sameCount = 0;
        int count;
        lock (_samples)
        {
            List<HarvestSample> list = Harvests(key);
            count = list.Count;
            for (int i = 0; i < count; i++)
            {
                HarvestSample h = list[i];
                scaled[i] = h.Seconds * memoryBytes / h.MemoryBytes;
                if (h.MemoryBytes == memoryBytes)
                {
                    same[sameCount++] = h;
                }
            }
        }

        if (sameCount >= MinimumSamples)
        {
            return TimeSpan.FromSeconds(SameSizeCost(same[..sameCount], dirtyChunks));
        }

        if (count < MinimumSamples)
        {
            return null;
        }

        return TimeSpan.FromSeconds(Quantile.Median(scaled[..count]));
    }

    /// <summary>
    /// The price of a final harvest from those of its size: the median intercept under the
    /// Theil-Sen slope in the chunks plus the slope times <paramref name="dirtyChunks"/>; with no
    /// slope (no count asked for, or too few pairs far enough apart), the median of all.
    /// </summary>
    private static double SameSizeCost(ReadOnlySpan<HarvestSample> same, double? dirtyChunks)
    {
        Span<double> values = stackalloc double[HarvestCapacity * (HarvestCapacity - 1) / 2];
        double expected = dirtyChunks is double d && double.IsFinite(d) ? Math.Max(0, d) : double.NaN;
        double slope = double.IsNaN(expected) ? 0 : ChunkSlope(same, values);

        // With a slope, samples without a chunk count (NaN) drop out of the intercept as they did of the slopes.
        int n = 0;
        foreach (HarvestSample h in same)
        {
            if (slope == 0)
            {
                values[n++] = h.Seconds;
            }
            else if (double.IsFinite(h.Chunks))
            {
                values[n++] = h.Seconds - (slope * h.Chunks);
            }
        }

        double intercept = Quantile.Median(values[..n]);
        return slope == 0 ? intercept : Math.Max(0, intercept + (slope * expected));
    }

    /// <summary>
    /// The median of the pairwise slopes between harvests at least <see cref="MinimumChunkSpread"/>
    /// chunks apart, never below 0; 0 with fewer than three such pairs, or when one harvest is
    /// in all of them at either end. One random writer's harvest among sequential ones makes as
    /// many pairs as there are sequential ones, all through its one time: at 3 GiB one of 6.3 ms
    /// at 50 chunks among ones of 3.1 ms at 1-2 priced the next at 9.9 ms, which took 3.9 ms.
    /// </summary>
    private static double ChunkSlope(ReadOnlySpan<HarvestSample> same, Span<double> scratch)
    {
        int pairs = 0;
        int lower = 0;
        int upper = 0;
        for (int i = 0; i < same.Length; i++)
        {
            for (int j = i + 1; j < same.Length; j++)
            {
                double dc = same[j].Chunks - same[i].Chunks;
                if (Math.Abs(dc) >= MinimumChunkSpread)
                {
                    scratch[pairs++] = (same[j].Seconds - same[i].Seconds) / dc;
                    (int low, int high) = dc > 0 ? (i, j) : (j, i);
                    lower |= 1 << low;
                    upper |= 1 << high;
                }
            }
        }

        // Bit sets of the harvests at each end (HarvestCapacity is at most 32).
        bool spread = BitOperations.PopCount((uint)lower) >= 2 && BitOperations.PopCount((uint)upper) >= 2;
        return pairs >= MinimumSamples && spread ? Math.Max(0, Quantile.Median(scratch[..pairs])) : 0;
    }

    /// <summary>The final harvests of <paramref name="key"/>, loaded from the store the first time. Called under the lock.</summary>
    private List<HarvestSample> Harvests(string key)
    {
        if (!_harvests.TryGetValue(key, out List<HarvestSample>? list))
        {
            _harvests[key] = list = _store?.Load(HarvestPrefix + key) is { } entry ? HarvestsFromEntry(entry) : new List<HarvestSample>();
        }

        return list;
    }

    /// <summary>
    /// Adds a final harvest, keeping the latest <see cref="HarvestCapacity"/> of its memory size
    /// and <see cref="HarvestTotal"/> in all: a size's harvests price the next of that size, and
    /// migrations of other sizes must not push them out. In a matrix of 256 MiB, 1 GiB and
    /// 3 GiB, 18 smaller migrations between two of 3 GiB left none of that size in a list of 16,
    /// and the smaller ones scaled up priced a 3 GiB harvest at 7.7 ms against 3.7-5.6 ms taken.
    /// </summary>
    private static void KeepHarvest(List<HarvestSample> list, HarvestSample item)
    {
        int sameSize = 0;
        int oldest = -1;
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i].MemoryBytes == item.MemoryBytes && sameSize++ == 0)
            {
                oldest = i;
            }
        }

        if (sameSize >= HarvestCapacity)
        {
            list.RemoveAt(oldest);
        }
        else if (list.Count >= HarvestTotal)
        {
            list.RemoveAt(0);
        }

        list.Add(item);
    }

    /// <summary>One final harvest; <see cref="Chunks"/> is NaN where it was not counted.</summary>
    private readonly record struct HarvestSample(ulong MemoryBytes, double Chunks, double Seconds);
}
