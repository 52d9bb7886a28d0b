using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Estimation;

/// <summary>FileCalibrationStore: one JSON file, written atomically under a lock, never a crash on a bad file.</summary>
[TestClass]
public sealed class FileCalibrationStoreTests
{
    private string _dir = null!;

    [TestInitialize]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("migratekit-calibration-").FullName;

    [TestCleanup]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private string StorePath => Path.Combine(_dir, "state", "migratekit", "calibration.json");

    private static CalibrationEntry Entry(double speed, int samples = 1) =>
        new(new Dictionary<string, double> { ["speed"] = speed, ["fixedMs"] = 12.5 }, samples, new DateTimeOffset(2026, 12, 3, 15, 0, 0, TimeSpan.Zero));

    [TestMethod]
    public void Load_WithoutAFile_IsNull()
    {
        Assert.IsNull(new FileCalibrationStore(StorePath).Load("pair"));
    }

    [TestMethod]
    public void Save_ThenLoadFromAnotherInstance_ReturnsTheSameFigures()
    {
        new FileCalibrationStore(StorePath).Save("pair", Entry(1.5e9, 3));

        CalibrationEntry? loaded = new FileCalibrationStore(StorePath).Load("pair");

        Assert.IsNotNull(loaded);
        Assert.AreEqual(1.5e9, loaded.Get("speed"));
        Assert.AreEqual(12.5, loaded.Get("fixedMs"));
        Assert.AreEqual(3, loaded.Samples);
        Assert.AreEqual(Entry(0).Updated, loaded.Updated);
        Assert.IsNull(loaded.Get("missing"));
    }

    [TestMethod]
    public void Save_KeepsTheOtherKeys_AndLeavesNoTemporaryFileBehind()
    {
        var store = new FileCalibrationStore(StorePath);
        store.Save("a", Entry(1));
        store.Save("b", Entry(2));
        store.Save("a", Entry(3));

        Assert.AreEqual(3, store.Load("a")!.Get("speed"));
        Assert.AreEqual(2, store.Load("b")!.Get("speed"));
        string[] files = Directory.GetFiles(Path.GetDirectoryName(StorePath)!).Select(Path.GetFileName).Order().ToArray()!;
        CollectionAssert.AreEqual(new[] { "calibration.json", "calibration.json.lock" }, files);
    }

    [TestMethod]
    public void ConcurrentSavesFromSeparateInstances_LoseNoEntry_AndLeaveAValidFile()
    {
        Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            for (int round = 0; round < 5; round++)
            {
                new FileCalibrationStore(StorePath).Save($"pair-{i}", Entry(i + round));
            }
        });

        var store = new FileCalibrationStore(StorePath);
        for (int i = 0; i < 16; i++)
        {
            Assert.AreEqual(i + 4.0, store.Load($"pair-{i}")?.Get("speed"), $"pair-{i}");
        }
    }

    [TestMethod]
    [DataRow("{ not json")]
    [DataRow("")]
    [DataRow("{\"version\": 99, \"entries\": {}}")]
    [DataRow("[1, 2, 3]")]
    public void CorruptFile_CountsAsEmptyWithAWarning_AndTheNextSaveReplacesIt(string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(StorePath)!);
        File.WriteAllText(StorePath, content);
        var logger = new ListLogger<FileCalibrationStore>();
        var store = new FileCalibrationStore(StorePath, logger);

        Assert.IsNull(store.Load("pair"));
        Assert.IsTrue(logger.Entries.Any(e => e.Level == LogLevel.Warning && e.Message.Contains(StorePath, StringComparison.Ordinal)));

        store.Save("pair", Entry(7));
        Assert.AreEqual(7, new FileCalibrationStore(StorePath).Load("pair")!.Get("speed"));
    }

    /// <summary>Writes a file at the cap, entry destN updated N minutes after the time returned.</summary>
    private DateTimeOffset WriteAFullFile()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(StorePath)!);
        var start = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        IEnumerable<string> stored = Enumerable.Range(0, FileCalibrationStore.MaxEntries)
            .Select(i => $"\"dest{i}\": {{\"values\": {{\"a.0\": 0.001}}, \"samples\": 1, \"updated\": \"{start.AddMinutes(i):O}\"}}");
        File.WriteAllText(StorePath, $"{{\"version\": 1, \"entries\": {{{string.Join(",", stored)}}}}}");
        return start;
    }

    [TestMethod]
    public void AFullFile_DropsItsLeastRecentlyUpdatedEntries_NeverTheOneSaved()
    {
        // A file at the cap, entry i updated i minutes after the first; "oldest" was updated before all of them.
        DateTimeOffset start = WriteAFullFile();
        var store = new FileCalibrationStore(StorePath);
        Assert.IsNotNull(store.Load("dest0"));

        // The new entry is older than every other: it is kept all the same, and dest0 goes.
        store.Save("oldest", Entry(1) with { Updated = start.AddDays(-1) });
        Assert.IsNotNull(store.Load("oldest"));
        Assert.IsNull(store.Load("dest0"));
        Assert.IsNotNull(store.Load("dest1"));

        // An update of a key the file holds drops nothing.
        store.Save("dest5", Entry(2));
        Assert.IsNotNull(store.Load("dest1"));
        using var file = System.Text.Json.JsonDocument.Parse(File.ReadAllText(StorePath));
        Assert.AreEqual(FileCalibrationStore.MaxEntries, file.RootElement.GetProperty("entries").EnumerateObject().Count());
    }

    [TestMethod]
    public void SaveAll_WritesEveryEntryInOneRewrite_AndAFullFileKeepsThemAll()
    {
        // A file at the cap: a batch of two new keys (one given twice), older than the file's entries, drops the two least recent.
        DateTimeOffset start = WriteAFullFile();
        var store = new FileCalibrationStore(StorePath);
        DateTime before = File.GetLastWriteTimeUtc(StorePath);

        store.SaveAll([new("x", Entry(1) with { Updated = start.AddDays(-1) }), new("y", Entry(2) with { Updated = start.AddDays(-1) }), new("x", Entry(3) with { Updated = start.AddDays(-1) })]);

        Assert.AreEqual(3, store.Load("x")!.Get("speed"), "a key given twice keeps the later entry");
        Assert.AreEqual(2, store.Load("y")!.Get("speed"));
        Assert.IsNull(store.Load("dest0"));
        Assert.IsNull(store.Load("dest1"));
        Assert.IsNotNull(store.Load("dest2"));
        Assert.AreNotEqual(before, File.GetLastWriteTimeUtc(StorePath));
        Assert.AreEqual(1, Directory.GetFiles(Path.GetDirectoryName(StorePath)!).Count(f => !f.EndsWith(".lock", StringComparison.Ordinal)), "no temporary file left");
    }

    [TestMethod]
    public void SaveAll_WithOneInvalidEntry_SavesNone()
    {
        var store = new FileCalibrationStore(StorePath);
        store.Save("a", Entry(1));

        Assert.ThrowsExactly<ArgumentException>(() => store.SaveAll([new("a", Entry(2)), new("b", Entry(double.PositiveInfinity))]));
        Assert.ThrowsExactly<ArgumentException>(() => store.SaveAll([new("a", Entry(2)), new("", Entry(3))]));

        Assert.AreEqual(1, store.Load("a")!.Get("speed"));
        Assert.IsNull(store.Load("b"));
    }

    /// <summary>A store over a file whose entry "bad" has no samples, next to <paramref name="good"/> (speed 2).</summary>
    private (FileCalibrationStore Store, ListLogger<FileCalibrationStore> Logger) WithABadEntryAnd(string good)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(StorePath)!);
        File.WriteAllText(StorePath, """
            {"version": 1, "entries": {
              "bad": {"values": {"speed": 1}, "samples": 0, "updated": "2026-12-03T15:00:00+00:00"},
              "GOOD": {"values": {"speed": 2}, "samples": 1, "updated": "2026-12-03T15:00:00+00:00"}}}
            """.Replace("GOOD", good, StringComparison.Ordinal));
        var logger = new ListLogger<FileCalibrationStore>();
        return (new FileCalibrationStore(StorePath, logger), logger);
    }

    [TestMethod]
    public void Load_ReadsTheFileOnceUntilItChanges_AndSeesAnotherProcesssSave()
    {
        // An entry that cannot be read warns at each read of the file.
        (FileCalibrationStore store, ListLogger<FileCalibrationStore> logger) = WithABadEntryAnd("a");

        Assert.AreEqual(2, store.Load("a")!.Get("speed"));
        Assert.IsNull(store.Load("b"));
        Assert.AreEqual(1, logger.Entries.Count(e => e.Level == LogLevel.Warning), "one read for both loads");

        // Another process's save replaces the file; the next load reads it.
        new FileCalibrationStore(StorePath).Save("b", Entry(3));
        Assert.AreEqual(3, store.Load("b")!.Get("speed"));
        Assert.AreEqual(2, store.Load("a")!.Get("speed"));

        // So does its removal.
        File.Delete(StorePath);
        Assert.IsNull(store.Load("a"));
    }

    [TestMethod]
    public void AnInvalidEntryInTheFile_IsSkipped_AndTheOthersLoad()
    {
        (FileCalibrationStore store, ListLogger<FileCalibrationStore> logger) = WithABadEntryAnd("good");

        Assert.IsNull(store.Load("bad"));
        Assert.AreEqual(2, store.Load("good")!.Get("speed"));
        Assert.IsTrue(logger.Entries.Any(e => e.Level == LogLevel.Warning));
    }

    [TestMethod]
    public void Save_RefusesAnEntryWithANonFiniteValueOrNoSamples()
    {
        var store = new FileCalibrationStore(StorePath);
        Assert.ThrowsExactly<ArgumentException>(() => store.Save("pair", Entry(double.NaN)));
        Assert.ThrowsExactly<ArgumentException>(() => store.Save("pair", Entry(1, samples: 0)));
        Assert.ThrowsExactly<ArgumentException>(() => store.Save("", Entry(1)));
        Assert.IsFalse(File.Exists(StorePath));
    }

    [TestMethod]
    public void DefaultPath_FollowsXdgStateHome_ElseTheHomeDirectory()
    {
        string? saved = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
        try
        {
            Environment.SetEnvironmentVariable("XDG_STATE_HOME", _dir);
            Assert.AreEqual(Path.Combine(_dir, "migratekit", "calibration.json"), FileCalibrationStore.DefaultPath);
            Assert.AreEqual(FileCalibrationStore.DefaultPath, new FileCalibrationStore().Path);

            // Relative values are ignored, as the XDG base directory specification says.
            Environment.SetEnvironmentVariable("XDG_STATE_HOME", "relative/dir");
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            Assert.AreEqual(Path.Combine(home, ".local", "state", "migratekit", "calibration.json"), FileCalibrationStore.DefaultPath);
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_STATE_HOME", saved);
        }
    }
}
