using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace MigrateKit.Estimation;

/// <summary>DowntimeHistory's store: what it saves and loads, and a save that cannot fail a migration.</summary>
public sealed partial class DowntimeHistory
{
    // Saves run outside the samples' lock (forecasts read under it every round); this one orders them.
    private readonly object _saveLock = new();
    private readonly Dictionary<string, long> _savedGenerations = new(StringComparer.Ordinal);
    private long _generation;
    private int _saveFailures;

    /// <summary>
    /// Saves to <paramref name="store"/>. A store that cannot be written costs the persistence, never the
    /// migration that is learning (the engine records a pause before round 0 and the switchover
    /// after the destination runs the VM): this process keeps what it learns. Of two migrations
    /// recording the same key at once, the entry built later is the one kept.
    /// </summary>
    /// <param name="store">This history's store.</param>
    /// <param name="key">The store's key.</param>
    /// <param name="entry">The key's samples.</param>
    /// <param name="generation">When <paramref name="entry"/> was built, in this history's records (taken under the samples' lock, by <see cref="Keep"/>).</param>
    private void Save(ICalibrationStore store, string key, CalibrationEntry entry, long generation)
    {
        if (t_deferred is { } deferred && deferred.History == this)
        {
            deferred.Saves.Add((key, entry, generation));
            return;
        }

        SaveNow(store, [(key, entry, generation)]);
    }

    /// <summary>Saves <paramref name="saves"/> in one call to the store, leaving out any key a later-built entry was saved under already.</summary>
    private void SaveNow(ICalibrationStore store, List<(string Key, CalibrationEntry Entry, long Generation)> saves)
    {
        try
        {
            lock (_saveLock)
            {
                var latest = new Dictionary<string, (CalibrationEntry Entry, long Generation)>(StringComparer.Ordinal);
                foreach ((string key, CalibrationEntry entry, long generation) in saves)
                {
                    bool superseded = (_savedGenerations.TryGetValue(key, out long saved) && saved > generation)
                        || (latest.TryGetValue(key, out var batched) && batched.Generation > generation);
                    if (!superseded)
                    {
                        latest[key] = (entry, generation);
                    }
                }

                if (latest.Count == 0)
                {
                    return;
                }

                if (latest.Count == 1)
                {
                    (string key, (CalibrationEntry entry, long _)) = latest.First();
                    store.Save(key, entry);
                }
                else
                {
                    store.SaveAll([.. latest.Select(e => KeyValuePair.Create(e.Key, e.Value.Entry))]);
                }

                foreach ((string key, (CalibrationEntry _, long generation)) in latest)
                {
                    _savedGenerations[key] = generation;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Saves come several to a migration: one warning tells the user, the rest would only repeat it.
            string keys = string.Join(", ", saves.Select(s => s.Key).Distinct());
            if (Interlocked.Increment(ref _saveFailures) == 1)
            {
                LogSaveFailed(_logger, ex, keys);
            }
            else
            {
                LogSaveFailedAgain(_logger, ex, keys);
            }
        }
    }

    /// <summary>
    /// Saves the pauses recorded without a save (see <see cref="RecordPause(string, TimeSpan, bool)"/>)
    /// that no later save of their key carried to the store. Never throws for the store: a
    /// migration ending, whatever its outcome, calls it.
    /// </summary>
    internal void SaveHeld()
    {
        ICalibrationStore? store = _store;
        List<(string Key, CalibrationEntry Entry, long Generation)> saves;
        lock (_samples)
        {
            // Nothing is held after a switchover, which saved its pause: most runs end here.
            if (store is null || _heldPauses.Count == 0)
            {
                return;
            }

            saves = new(_heldPauses.Count);
            foreach (string key in _heldPauses)
            {
                saves.Add((PausePrefix + key, PausesToEntry(Pauses(key)), ++_generation));
            }

            _heldPauses.Clear();
        }

        try
        {
            SaveNow(store, saves);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // SaveNow logs what an unwritable store throws; a store's own failure must not replace the migration's outcome either.
            LogSaveFailed(_logger, ex, string.Join(", ", saves.Select(s => s.Key)));
        }
    }

    /// <summary>
    /// Holds this thread's saves to the store until the scope is disposed, then makes them in one
    /// call (<see cref="ICalibrationStore.SaveAll"/>): a switchover teaches several keys, and a
    /// file store rewrites its file once for all of them. What is learned counts at once in this
    /// process; only the store waits.
    /// </summary>
    internal SaveScope DeferSaves()
    {
        if (_store is null || t_deferred is not null)
        {
            return default;
        }

        t_deferred = new Deferred(this);
        return new SaveScope(t_deferred);
    }

    // Set by DeferSaves for the thread that records a switchover's figures one after another.
    [ThreadStatic]
    private static Deferred? t_deferred;

    internal sealed class Deferred(DowntimeHistory history)
    {
        public DowntimeHistory History { get; } = history;

        public List<(string Key, CalibrationEntry Entry, long Generation)> Saves { get; } = [];
    }

    /// <summary>The scope of <see cref="DeferSaves"/>: disposing it makes the saves held.</summary>
    internal readonly struct SaveScope : IDisposable
    {
        private readonly Deferred? _deferred;

        internal SaveScope(Deferred deferred) => _deferred = deferred;

        public void Dispose()
        {
            if (_deferred is null || t_deferred != _deferred)
            {
                return;
            }

            t_deferred = null;
            if (_deferred.Saves.Count > 0)
            {
                _deferred.History.SaveNow(_deferred.History._store!, _deferred.Saves);
            }
        }
    }

    [LoggerMessage(160, LogLevel.Warning, "The downtime history could not save {Keys} to its calibration store; this process keeps what it learns, later processes will not")]
    private static partial void LogSaveFailed(ILogger logger, Exception exception, string keys);

    [LoggerMessage(161, LogLevel.Debug, "The downtime history could not save {Keys} to its calibration store either")]
    private static partial void LogSaveFailedAgain(ILogger logger, Exception exception, string keys);

    /// <summary>How many saves to the store failed (it could not be written, or another process held its lock too long); the history in this process is unaffected by them.</summary>
    public int SaveFailures => Volatile.Read(ref _saveFailures);

    /// <summary>The pauses of <paramref name="key"/>, loaded from the store the first time (a figure missing or out of range ends them). Called under the lock.</summary>
    private List<double> Pauses(string key)
    {
        if (!_pauses.TryGetValue(key, out List<double>? list))
        {
            _pauses[key] = list = new List<double>();
            CalibrationEntry? entry = _store?.Load(PausePrefix + key);
            for (int i = 0; entry is not null && i < PauseCapacity && entry.Get($"p.{i}") is double p && p > 0 && p < 60; i++)
            {
                list.Add(p);
            }
        }

        return list;
    }

    private static CalibrationEntry PausesToEntry(List<double> list)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < list.Count; i++)
        {
            values[$"p.{i}"] = list[i];
        }

        return new CalibrationEntry(values, list.Count, DateTimeOffset.UtcNow);
    }

    private static CalibrationEntry ToEntry(List<Sample> list)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < list.Count; i++)
        {
            values[$"t.{i}"] = list[i].Transfer;
            values[$"f.{i}"] = list[i].Fixed;
            values[$"a.{i}"] = list[i].Actual;
            if (double.IsFinite(list[i].ActualTransfer))
            {
                values[$"x.{i}"] = list[i].ActualTransfer;
            }
        }

        return new CalibrationEntry(values, list.Count, DateTimeOffset.UtcNow);
    }

    /// <summary>The switchovers an entry holds; a figure missing or out of range ends them (a damaged entry loses its tail, never the process).</summary>
    private static List<Sample> FromEntry(CalibrationEntry entry)
    {
        var list = new List<Sample>();
        for (int i = 0; i < Capacity; i++)
        {
            if (entry.Get($"t.{i}") is not double t || entry.Get($"f.{i}") is not double f || entry.Get($"a.{i}") is not double a
                || !(t >= 0 && f >= 0 && a > 0 && t < 3600 && f < 3600 && a < 3600))
            {
                break;
            }

            // The transfer part is optional; one out of range counts as not measured.
            double x = entry.Get($"x.{i}") is double part && part >= 0 && part <= a ? part : double.NaN;
            list.Add(new Sample(t, f, a, x));
        }

        return list;
    }

    private static CalibrationEntry ToEntry(List<HarvestSample> list)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < list.Count; i++)
        {
            values[$"m.{i}"] = list[i].MemoryBytes;
            values[$"h.{i}"] = list[i].Seconds;
            if (double.IsFinite(list[i].Chunks))
            {
                values[$"c.{i}"] = list[i].Chunks;
            }
        }

        return new CalibrationEntry(values, list.Count, DateTimeOffset.UtcNow);
    }

    /// <summary>The final harvests an entry holds, under the limits of one kept here; as for the switchovers, a figure missing or out of range ends them.</summary>
    private static List<HarvestSample> HarvestsFromEntry(CalibrationEntry entry)
    {
        var list = new List<HarvestSample>();
        for (int i = 0; i < HarvestTotal; i++)
        {
            if (entry.Get($"m.{i}") is not double m || entry.Get($"h.{i}") is not double h || !(m >= 1 && m < 1e15 && h > 0 && h < 60))
            {
                break;
            }

            // A chunk count is optional; one out of range counts as not taken.
            double c = entry.Get($"c.{i}") is double chunks && chunks >= 0 && chunks < 1e12 ? chunks : double.NaN;
            KeepHarvest(list, new HarvestSample((ulong)m, c, h));
        }

        return list;
    }
}
