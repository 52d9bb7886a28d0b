using System;
using System.Collections.Concurrent;

namespace MigrateKit.Estimation;

/// <summary>A <see cref="ICalibrationStore"/> that keeps its entries in this object only: for tests, and for processes that must not write files.</summary>
public sealed class InMemoryCalibrationStore : ICalibrationStore
{
    private readonly ConcurrentDictionary<string, CalibrationEntry> _entries = new(StringComparer.Ordinal);

    /// <inheritdoc/>
    public CalibrationEntry? Load(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return _entries.TryGetValue(key, out CalibrationEntry? entry) ? entry : null;
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">An empty key, or an entry that fails <see cref="CalibrationEntry.Validate"/>.</exception>
    public void Save(string key, CalibrationEntry entry)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(entry);
        entry.Validate();
        _entries[key] = entry;
    }
}
