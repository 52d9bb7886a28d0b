using System;
using System.Collections.Generic;

namespace MigrateKit.Estimation;

/// <summary>
/// Where measured costs outlive the process that measured them: figures such as a host pair's
/// stop-and-copy speed and fixed downtime, under a key per thing measured. Orchestrators that keep
/// state in a store of their own implement this; <see cref="FileCalibrationStore"/> keeps one small
/// JSON file and <see cref="InMemoryCalibrationStore"/> keeps nothing past the process.
/// </summary>
/// <remarks>Implementations are called from any thread and must be safe for concurrent use.</remarks>
public interface ICalibrationStore
{
    /// <summary>The entry saved under <paramref name="key"/>, or null when there is none (or it cannot be read).</summary>
    CalibrationEntry? Load(string key);

    /// <summary>Saves <paramref name="entry"/> under <paramref name="key"/>, replacing what was there.</summary>
    void Save(string key, CalibrationEntry entry);

    /// <summary>
    /// Saves several entries, each replacing what was under its key. The engine saves what one
    /// switchover taught it in one call; a store that can write them together (one file rewrite,
    /// one transaction) should. This default saves them one by one.
    /// </summary>
    /// <param name="entries">The keys and their entries; a key given twice keeps the later entry.</param>
    void SaveAll(IReadOnlyList<KeyValuePair<string, CalibrationEntry>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach ((string key, CalibrationEntry entry) in entries)
        {
            Save(key, entry);
        }
    }
}
