using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using BenchmarkDotNet.Attributes;
using MigrateKit.Estimation;

namespace MigrateKit.Benchmarks;

/// <summary>
/// What a switchover's four history entries cost to save in a <see cref="FileCalibrationStore"/>
/// holding <see cref="Entries"/> full entries (32 switchovers each, as the engine keeps them):
/// four saves, each rewriting the file, against one <see cref="FileCalibrationStore.SaveAll"/>.
/// </summary>
public class CalibrationStoreBenchmarks
{
    private string _directory = null!;
    private FileCalibrationStore _store = null!;
    private KeyValuePair<string, CalibrationEntry>[] _switchover = null!;

    /// <summary>Entries in the file: a source that migrated to that many hosts.</summary>
    [Params(10, 100, 1024)]
    public int Entries { get; set; }

    /// <summary>Writes a store of <see cref="Entries"/> entries.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < DowntimeHistory.Capacity; i++)
        {
            values[$"t.{i}"] = 0.0012345678901 * (i + 1);
            values[$"f.{i}"] = 0.0023456789012;
            values[$"a.{i}"] = 0.0034567890123;
            values[$"x.{i}"] = 0.0011234567890;
        }

        var entry = new CalibrationEntry(values, DowntimeHistory.Capacity, DateTimeOffset.UtcNow);
        _directory = Directory.CreateTempSubdirectory("migratekit-store-bench-").FullName;
        _store = new FileCalibrationStore(Path.Combine(_directory, "calibration.json"));
        _store.SaveAll([.. Enumerable.Range(0, Entries).Select(k => KeyValuePair.Create($"downtime.3/engine/write-protect/limited@tcp:10.0.{k / 256}.{k % 256}", entry))]);
        _switchover = [.. new[] { "downtime.3/engine/write-protect/limited@tcp:10.0.0.1", "downtime.3/engine/write-protect/limited", "harvest.3/engine/write-protect", "pause.1/engine/write-protect" }
            .Select(k => KeyValuePair.Create(k, entry))];
    }

    /// <summary>Removes the store.</summary>
    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_directory, recursive: true);

    /// <summary>One save per entry, as each record saved before a switchover's were batched.</summary>
    [Benchmark(Baseline = true)]
    public void FourSaves()
    {
        foreach ((string key, CalibrationEntry entry) in _switchover)
        {
            _store.Save(key, entry);
        }
    }

    /// <summary>The four entries in one rewrite.</summary>
    [Benchmark]
    public void OneSaveAll() => _store.SaveAll(_switchover);
}
