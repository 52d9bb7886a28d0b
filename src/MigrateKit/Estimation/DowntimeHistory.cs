using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MigrateKit.Estimation;

/// <summary>
/// How the forecasts of earlier switchovers fared: the correction they suggest for the next
/// forecast and the spread that is left after it.
/// </summary>
/// <param name="TransferRatio">Actual over predicted transfer time, the median over the switchovers that measured it (1: no correction).</param>
/// <param name="FixedBias">What the fixed costs took beyond their forecast (may be negative).</param>
/// <param name="ErrorAbove">How far above the corrected forecast earlier downtimes went (a high quantile; 0 without history).</param>
/// <param name="ErrorBelow">How far below the corrected forecast earlier downtimes went (a high quantile; 0 without history).</param>
/// <param name="Samples">The switchovers this is drawn from.</param>
public readonly record struct DowntimeCorrection(double TransferRatio, TimeSpan FixedBias, TimeSpan ErrorAbove, TimeSpan ErrorBelow, int Samples)
{
    /// <summary>No history: no correction, no spread.</summary>
    public static DowntimeCorrection None { get; } = new(1, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, 0);
}

/// <summary>
/// The downtimes of this machine's past switchovers next to what was forecast for them, by kind
/// of migration (a key the caller chooses, e.g. whether a bandwidth limit applies and which
/// tracker runs). A switchover pays costs no pre-copy round shows: the destination's checks and
/// start, the round trips of the commit step, and a transfer that runs faster once the guest no
/// longer competes for the CPU. This learns them as actual = fixed + bias + ratio × transfer over
/// the recent switchovers of the key: the ratio is the median of the transfer part's actual over
/// forecast where it was measured on its own and forecast at 1 ms at least, the bias the median
/// of what the rest leaves (until three such transfers tell the ratio, of what their measured
/// parts leave: one transfer's miss is no fixed cost of the next switchover). Medians, because
/// one part's spike (a resume the scheduler delayed by 8 ms) must move neither; a least-squares
/// line through the totals let such spikes and the largest transfers swing the ratio between
/// its bounds from one switchover to the next; and until three switchovers, the bias counts
/// only in part, as a median of one or two is one spike. The spread of what the line misses is kept for
/// the forecast's interval. With a store, the switchovers outlive the process (under the key
/// "downtime.3/" + the kind; figures t.N, f.N, a.N and, where measured, x.N, the transfer part,
/// in seconds). Thread-safe.
/// </summary>
public sealed partial class DowntimeHistory
{
    /// <summary>Switchovers kept per key.</summary>
    public const int Capacity = 32;

    // ".3": since 2026-12-05 a switchover carries its transfer part, which alone tells the ratio;
    // ".2" (2026-12-04) left out the compiler's time from a HostVm's resume estimate.
    private const string StorePrefix = "downtime.3/";

    /// <summary>The forecast transfer a switchover needs for its measured one to tell the ratio: below, latency outweighs the work.</summary>
    private const double MinimumRatioTransfer = 1e-3;

    /// <summary>Switchovers with a measured transfer needed before their ratio is used.</summary>
    private const int MinimumRatioSamples = 3;

    /// <summary>Switchovers needed before their bias counts in full.</summary>
    private const int MinimumBiasSamples = 3;

    /// <summary>Final harvests kept per key and memory size.</summary>
    private const int HarvestCapacity = 16;

    /// <summary>Final harvests kept per key, of every size.</summary>
    private const int HarvestTotal = 64;

    /// <summary>Pauses kept per key.</summary>
    private const int PauseCapacity = 16;

    private const string PausePrefix = "pause.1/";

    /// <summary>Final harvests, or pauses, of a kind needed before they price the next one.</summary>
    private const int MinimumSamples = 3;

    // ".2": since 2026-12-05 each final harvest carries the 2 MiB chunks it found dirty.
    // ".3": since 2026-12-06 a write-protect tracker's final harvest only reads, at about a
    // quarter of the cost: earlier entries would price it several times too high.
    private const string HarvestPrefix = "harvest.3/";

    /// <summary>Chunks two final harvests must differ by for their times to tell a cost per chunk.</summary>
    private const double MinimumChunkSpread = 4;

    private readonly Dictionary<string, List<Sample>> _samples = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<HarvestSample>> _harvests = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<double>> _pauses = new(StringComparer.Ordinal);
    private readonly HashSet<string> _heldPauses = new(StringComparer.Ordinal);
    private readonly ICalibrationStore? _store;
    private readonly ILogger _logger;

    /// <summary>Creates a history kept in this process, or also in <paramref name="store"/>.</summary>
    /// <param name="store">Where the switchovers are loaded from and saved to; null: this process only.</param>
    public DowntimeHistory(ICalibrationStore? store = null)
        : this(store, null)
    {
    }

    /// <summary>Creates a history kept in this process and in <paramref name="store"/>, telling <paramref name="logger"/> when the store cannot be written.</summary>
    /// <param name="store">Where the switchovers are loaded from and saved to; null: this process only.</param>
    /// <param name="logger">Gets a warning at the first save that fails (later ones at Debug); null: none.</param>
    public DowntimeHistory(ICalibrationStore? store, ILogger? logger)
    {
        _store = store;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>A history of this process only, for the migrations of a process that name no other.</summary>
    public static DowntimeHistory Shared { get; } = new();

    /// <summary>Records one switchover.</summary>
    /// <param name="key">The kind of migration.</param>
    /// <param name="predictedTransfer">The forecast's transfer part before any correction.</param>
    /// <param name="predictedFixed">The forecast's fixed parts before any correction.</param>
    /// <param name="actual">The downtime measured.</param>
    /// <param name="actualTransfer">The transfer part of <paramref name="actual"/>, where measured; null: only the total is known, and this switchover tells no ratio.</param>
    public void Record(string key, TimeSpan predictedTransfer, TimeSpan predictedFixed, TimeSpan actual, TimeSpan? actualTransfer = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (actual <= TimeSpan.Zero || predictedTransfer < TimeSpan.Zero || predictedFixed < TimeSpan.Zero)
        {
            return;
        }

        double transferPart = actualTransfer is TimeSpan x && x >= TimeSpan.Zero && x <= actual ? x.TotalSeconds : double.NaN;
        Keep(StorePrefix, key, new Sample(predictedTransfer.TotalSeconds, predictedFixed.TotalSeconds, actual.TotalSeconds, transferPart), static (list, s) => KeepLatest(list, s, Capacity), Samples, ToEntry);
    }

    /// <summary>How many switchovers of <paramref name="key"/> are recorded.</summary>
    public int Count(string key)
    {
        lock (_samples)
        {
            return Samples(key).Count;
        }
    }

    /// <summary>Forgets every switchover.</summary>
    public void Clear()
    {
        lock (_samples)
        {
            _samples.Clear();
            _harvests.Clear();
            _pauses.Clear();
            _heldPauses.Clear();
        }
    }

    /// <summary>
    /// Records how long stopping the guest took. One pause in thirty took 2-4 ms on a 2-core
    /// machine against 0.1 ms typical (the vCPU's thread was runnable, not running, when asked to
    /// stop); the one pause a migration calibrates with priced all its forecasts, where the median
    /// of the recent ones does not move for one. With a store, kept under "pause.1/" + the kind
    /// (figures p.N in seconds).
    /// </summary>
    /// <param name="key">The kind of source.</param>
    /// <param name="latency">From the request to the guest being stopped.</param>
    public void RecordPause(string key, TimeSpan latency) => RecordPause(key, latency, save: true);

    /// <summary>
    /// Records a pause; without <paramref name="save"/> it counts at once, and reaches the store
    /// with the key's next save or at <see cref="SaveHeld"/>: the engine's pause before round 0
    /// would otherwise rewrite a file store before the first round (about 100 ms at its cap).
    /// </summary>
    internal void RecordPause(string key, TimeSpan latency, bool save)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (latency <= TimeSpan.Zero)
        {
            return;
        }

        if (save)
        {
            Keep(PausePrefix, key, latency.TotalSeconds, static (list, p) => KeepLatest(list, p, PauseCapacity), Pauses, PausesToEntry);
            return;
        }

        lock (_samples)
        {
            KeepLatest(Pauses(key), latency.TotalSeconds, PauseCapacity);
            if (_store is not null)
            {
                _heldPauses.Add(key);
            }
        }
    }

    /// <summary>The median of the recent pauses of <paramref name="key"/>; null with fewer than three.</summary>
    public TimeSpan? PauseCost(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        Span<double> values = stackalloc double[PauseCapacity];
        int count;
        lock (_samples)
        {
            List<double> list = Pauses(key);
            count = list.Count;
            CollectionsMarshal.AsSpan(list).CopyTo(values);
        }

        return count < MinimumSamples ? null : TimeSpan.FromSeconds(Quantile.Median(values[..count]));
    }

    /// <summary>The correction the switchovers of <paramref name="key"/> suggest.</summary>
    public DowntimeCorrection Correction(string key) => Correction(key, null);

    /// <summary>
    /// The correction the switchovers of <paramref name="key"/> suggest, or those of the broader
    /// <paramref name="fallbackKey"/> while <paramref name="key"/> has none. Until three
    /// switchovers of <paramref name="key"/> tell its bias, the bias counts at n/3 and the rest is
    /// <paramref name="fallbackKey"/>'s where that has three, else nothing: one switchover the
    /// scheduler delayed (a resume of 5.2 ms where 0.2-0.3 ms is usual) is no fixed cost of the
    /// next. What the bias leaves out stays in the spread, so the upper bound still holds it.
    /// </summary>
    /// <param name="key">The kind of migration.</param>
    /// <param name="fallbackKey">A broader kind that <paramref name="key"/>'s switchovers are also recorded under; null: none.</param>
    public DowntimeCorrection Correction(string key, string? fallbackKey)
    {
        ArgumentNullException.ThrowIfNull(key);

        // Asked after every harvest: copied and sorted on the stack, nothing allocated.
        Span<Sample> s = stackalloc Sample[Capacity];
        lock (_samples)
        {
            List<Sample> list = Samples(key);
            CollectionsMarshal.AsSpan(list).CopyTo(s);
            s = s[..list.Count];
        }

        string? broader = fallbackKey != key ? fallbackKey : null;
        if (s.Length == 0)
        {
            return broader is null ? DowntimeCorrection.None : Correction(broader, null);
        }

        double prior = 0;
        if (broader is not null && s.Length < MinimumBiasSamples && Correction(broader, null) is { Samples: >= MinimumBiasSamples } every)
        {
            prior = every.FixedBias.TotalSeconds;
        }

        (double ratio, double bias) = Fit(s, prior);
        Span<double> misses = stackalloc double[s.Length];
        for (int i = 0; i < s.Length; i++)
        {
            misses[i] = s[i].Actual - (s[i].Fixed + bias + (ratio * s[i].Transfer));
        }

        Quantile.Sort(misses);

        // With few samples the extremes are all there is; from five on, the 90th percentiles.
        double above = Math.Max(0, misses.Length < 5 ? misses[^1] : Quantile.Of(misses, 0.9));
        double below = Math.Max(0, -(misses.Length < 5 ? misses[0] : Quantile.Of(misses, 0.1)));
        return new DowntimeCorrection(ratio, TimeSpan.FromSeconds(bias), TimeSpan.FromSeconds(above), TimeSpan.FromSeconds(below), s.Length);
    }

    /// <summary>The switchovers of <paramref name="key"/>, loaded from the store the first time. Called under the lock.</summary>
    private List<Sample> Samples(string key)
    {
        if (!_samples.TryGetValue(key, out List<Sample>? list))
        {
            _samples[key] = list = _store?.Load(StorePrefix + key) is { } entry ? FromEntry(entry) : new List<Sample>();
        }

        return list;
    }

    /// <summary>
    /// The ratio: the median of actual over forecast transfer parts, of the switchovers that
    /// measured theirs and were forecast <see cref="MinimumRatioTransfer"/> at least (1 with
    /// fewer than <see cref="MinimumRatioSamples"/>). The bias: the median of what the fixed
    /// costs and the ratioed transfer leave of each downtime; until the ratio is known, of what
    /// the fixed costs and the measured transfer leave, where that transfer tells the ratio.
    /// With fewer than <see cref="MinimumBiasSamples"/> switchovers, that median counts at n/3
    /// and <paramref name="prior"/> (a broader kind's bias, or 0) at the rest.
    /// </summary>
    private static (double Ratio, double Bias) Fit(ReadOnlySpan<Sample> s, double prior)
    {
        Span<double> values = stackalloc double[s.Length];
        int n = 0;
        foreach (Sample v in s)
        {
            if (TellsRatio(v))
            {
                values[n++] = v.ActualTransfer / v.Transfer;
            }
        }

        bool ratioKnown = n >= MinimumRatioSamples;
        double ratio = ratioKnown ? Math.Clamp(Quantile.Median(values[..n]), 0.3, 3) : 1;
        for (int i = 0; i < s.Length; i++)
        {
            // Until the ratio is known, the miss of a transfer that will tell it (a process's first
            // is the slowest) stays out of the bias: it is no fixed cost of the next switchover.
            // A short transfer's is latency, and stays in.
            double transfer = ratioKnown || !TellsRatio(s[i]) ? ratio * s[i].Transfer : s[i].ActualTransfer;
            values[i] = s[i].Actual - s[i].Fixed - transfer;
        }

        double weight = Math.Min(1, (double)s.Length / MinimumBiasSamples);
        return (ratio, (weight * Quantile.Median(values)) + ((1 - weight) * prior));
    }

    /// <summary>Whether a switchover's transfer part was measured and long enough to tell the ratio.</summary>
    private static bool TellsRatio(Sample v) => double.IsFinite(v.ActualTransfer) && v.Transfer >= MinimumRatioTransfer;

    /// <summary>
    /// Adds <paramref name="item"/> to the latest of its kind (<paramref name="add"/> drops the
    /// oldest it must) and, with a store, saves them in the order they were built.
    /// </summary>
    private void Keep<T>(string prefix, string key, T item, Action<List<T>, T> add, Func<string, List<T>> kind, Func<List<T>, CalibrationEntry> toEntry)
    {
        ICalibrationStore? store = _store;
        CalibrationEntry? entry = null;
        long generation;
        lock (_samples)
        {
            List<T> list = kind(key);
            add(list, item);
            generation = ++_generation;
            if (_heldPauses.Count > 0 && prefix == PausePrefix)
            {
                // This save carries the held pauses of the key with it.
                _heldPauses.Remove(key);
            }
            if (store is not null)
            {
                entry = toEntry(list);
            }
        }

        if (store is not null)
        {
            Save(store, prefix + key, entry!, generation);
        }
    }

    private static void KeepLatest<T>(List<T> list, T item, int capacity)
    {
        if (list.Count == capacity)
        {
            list.RemoveAt(0);
        }

        list.Add(item);
    }

    /// <summary>One switchover; <see cref="ActualTransfer"/> is NaN where only the total was measured.</summary>
    private readonly record struct Sample(double Transfer, double Fixed, double Actual, double ActualTransfer);
}

