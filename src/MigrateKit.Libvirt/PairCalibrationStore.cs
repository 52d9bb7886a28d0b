using System;
using System.Collections.Generic;
using MigrateKit.Estimation;

namespace MigrateKit.Libvirt;

/// <summary>
/// A pair of hosts' <see cref="HostPairCalibration"/> in an <see cref="ICalibrationStore"/>, one entry per
/// ordered pair of normalised URIs (<see cref="Key"/>), with figures
/// <c>stopAndCopyBytesPerSecond</c> and <c>fixedDowntimeMs</c>. Each migration adds a sample: the speed
/// it showed, then the fixed part of its downtime at the combined speed (so that the stored pair of
/// figures explains the downtimes seen, whatever the error of one speed sample). Each figure is a
/// weighted mean of what was known (weighing its samples, at most <see cref="MaxWeight"/>) and the new
/// one, which weighs double when it is worse (slower, or more fixed downtime): a bad run is not
/// averaged away by the good ones before it.
/// </summary>
internal static class PairCalibrationStore
{
    /// <summary>The most weight earlier samples carry against a new one.</summary>
    internal const int MaxWeight = 8;

    internal const string SpeedName = "stopAndCopyBytesPerSecond";
    internal const string FixedName = "fixedDowntimeMs";

    /// <summary>
    /// The store key of a pair: <c>libvirt:SOURCE -> DESTINATION</c>, each URI trimmed, its scheme and
    /// host lower-cased and a trailing slash of its path dropped, so spellings of one host share an entry.
    /// </summary>
    internal static string Key(string sourceUri, string destinationUri) => $"libvirt:{Normalise(sourceUri)} -> {Normalise(destinationUri)}";

    internal static string Normalise(string uri)
    {
        uri = uri.Trim();
        int schemeEnd = uri.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0)
        {
            return uri;
        }

        int pathStart = uri.IndexOfAny(['/', '?'], schemeEnd + 3);
        string authority = pathStart < 0 ? uri[(schemeEnd + 3)..] : uri[(schemeEnd + 3)..pathStart];
        string rest = pathStart < 0 ? string.Empty : uri[pathStart..];
        int query = rest.IndexOf('?', StringComparison.Ordinal);
        string path = query < 0 ? rest : rest[..query];
        string tail = query < 0 ? string.Empty : rest[query..];
        if (path.Length > 1)
        {
            path = path.TrimEnd('/');
        }

        // The user part of an authority is case-sensitive; the host is not.
        int at = authority.LastIndexOf('@');
        string host = at < 0 ? authority.ToLowerInvariant() : authority[..(at + 1)] + authority[(at + 1)..].ToLowerInvariant();
        return $"{uri[..schemeEnd].ToLowerInvariant()}://{host}{path}{tail}";
    }

    /// <summary>The pair's figures in <paramref name="store"/>, or null when there are none (or they are unusable).</summary>
    internal static HostPairCalibration? Load(ICalibrationStore store, string sourceUri, string destinationUri)
    {
        CalibrationEntry? entry = store.Load(Key(sourceUri, destinationUri));
        if (entry?.Get(SpeedName) is not (> 0 and var speed) || entry.Get(FixedName) is not (>= 0 and var fixedMs))
        {
            return null;
        }

        return new HostPairCalibration(speed, TimeSpan.FromMilliseconds(fixedMs), entry.Samples);
    }

    /// <summary>Combines a migration's switchover with what <paramref name="store"/> holds for the pair and saves the result.</summary>
    /// <returns>The figures saved.</returns>
    internal static HostPairCalibration Learn(ICalibrationStore store, string sourceUri, string destinationUri, SwitchoverSeen seen, DateTimeOffset now)
    {
        HostPairCalibration combined = Combine(Load(store, sourceUri, destinationUri), seen);
        store.Save(Key(sourceUri, destinationUri), Entry(combined, now));
        return combined;
    }

    /// <summary>The store entry of a pair's figures.</summary>
    internal static CalibrationEntry Entry(HostPairCalibration figures, DateTimeOffset now) => new(
        new Dictionary<string, double>
        {
            [SpeedName] = figures.StopAndCopyBytesPerSecond,
            [FixedName] = figures.FixedDowntime.TotalMilliseconds,
        },
        Math.Max(figures.Migrations, 1),
        now);

    /// <summary>Folds one migration's switchover into <paramref name="known"/>.</summary>
    internal static HostPairCalibration Combine(HostPairCalibration? known, SwitchoverSeen seen)
    {
        int weight = Math.Clamp(known?.Migrations ?? 0, 0, MaxWeight);
        double speed = known is null ? seen.BytesPerSecond : Mean(known.StopAndCopyBytesPerSecond, seen.BytesPerSecond, weight, worseIsHigher: false);
        double fixedMs = Math.Max(0, seen.DowntimeMs - (seen.PendingBytes / speed * 1000));
        if (known is not null)
        {
            fixedMs = Mean(known.FixedDowntime.TotalMilliseconds, fixedMs, weight, worseIsHigher: true);
        }

        return new HostPairCalibration(speed, TimeSpan.FromMilliseconds(fixedMs), (known?.Migrations ?? 0) + 1);
    }

    private static double Mean(double known, double sample, int weight, bool worseIsHigher)
    {
        int sampleWeight = (worseIsHigher ? sample > known : sample < known) ? 2 : 1;
        return ((known * weight) + (sample * sampleWeight)) / (weight + sampleWeight);
    }

    /// <summary>What one migration's switchover showed.</summary>
    /// <param name="BytesPerSecond">The stop-and-copy speed it showed (or the one it assumed, when it measured none).</param>
    /// <param name="PendingBytes">What its stop-and-copy sent, as forecast at the switchover.</param>
    /// <param name="DowntimeMs">The downtime libvirt reported.</param>
    internal readonly record struct SwitchoverSeen(double BytesPerSecond, ulong PendingBytes, double DowntimeMs);
}
