using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MigrateKit.Estimation;

/// <summary>
/// A <see cref="ICalibrationStore"/> in one small JSON file, shared by every process of the user:
/// <c>{"version": 1, "entries": {"key": {"values": {...}, "samples": 3, "updated": "..."}}}</c>.
/// A save rewrites the file under a lock file (<c>PATH.lock</c>, held with an exclusive lock, so
/// processes saving at once take turns and none loses the other's entries) through a temporary file
/// renamed over it, so a reader sees the old file or the new one, never half of one. Loads read
/// the file again only when its length or write time changed. A file that cannot be read or
/// parsed counts as empty, with a warning logged; the next save replaces it.
/// </summary>
public sealed partial class FileCalibrationStore : ICalibrationStore
{
    /// <summary>How long a save waits for another process's save to finish.</summary>
    internal static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The most entries the file keeps: a save beyond it drops the least recently updated ones,
    /// never those it saves (the engine keeps its switchovers per destination host, so a source
    /// that migrates to many hosts adds entries for each).
    /// </summary>
    public const int MaxEntries = 1024;

    private const int Version = 1;
    private readonly ILogger _logger;
    private readonly object _readLock = new();
    private ((long Length, DateTime Written) Stamp, Dictionary<string, CalibrationEntry> Entries)? _read;

    /// <summary>Creates a store.</summary>
    /// <param name="path">The JSON file; its directory is created on the first save. Null for <see cref="DefaultPath"/>.</param>
    /// <param name="logger">Where a file that cannot be read is reported; null for none.</param>
    public FileCalibrationStore(string? path = null, ILogger? logger = null)
    {
        if (path is not null)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(path);
        }

        Path = System.IO.Path.GetFullPath(path ?? DefaultPath);
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The JSON file.</summary>
    public string Path { get; }

    /// <summary>
    /// <c>$XDG_STATE_HOME/migratekit/calibration.json</c>, or <c>~/.local/state/migratekit/calibration.json</c>
    /// when <c>XDG_STATE_HOME</c> is unset or not an absolute path (as the XDG base directory specification says).
    /// </summary>
    public static string DefaultPath
    {
        get
        {
            string? state = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
            if (string.IsNullOrEmpty(state) || !System.IO.Path.IsPathRooted(state))
            {
                state = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
            }

            return System.IO.Path.Combine(state, "migratekit", "calibration.json");
        }
    }

    /// <inheritdoc/>
    public CalibrationEntry? Load(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return Current().TryGetValue(key, out CalibrationEntry? entry) ? entry : null;
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">An empty key, or an entry that fails <see cref="CalibrationEntry.Validate"/>.</exception>
    /// <exception cref="IOException">The file could not be written, or another process held the lock for <see cref="LockTimeout"/>.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory or file may not be written.</exception>
    public void Save(string key, CalibrationEntry entry)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(entry);
        SaveAll([new(key, entry)]);
    }

    /// <inheritdoc/>
    /// <remarks>One rewrite of the file under its lock: other processes see all of the entries or none.</remarks>
    /// <exception cref="ArgumentException">An empty key, or an entry that fails <see cref="CalibrationEntry.Validate"/>; nothing is saved.</exception>
    /// <exception cref="IOException">The file could not be written, or another process held the lock for <see cref="LockTimeout"/>.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory or file may not be written.</exception>
    public void SaveAll(IReadOnlyList<KeyValuePair<string, CalibrationEntry>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach ((string key, CalibrationEntry entry) in entries)
        {
            ArgumentException.ThrowIfNullOrEmpty(key, nameof(entries));
            ArgumentNullException.ThrowIfNull(entry, nameof(entries));
            entry.Validate();
        }

        if (entries.Count == 0)
        {
            return;
        }

        string directory = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(directory);
        using FileStream held = AcquireLock();
        Dictionary<string, CalibrationEntry> all = ReadAll();
        var saved = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string key, CalibrationEntry entry) in entries)
        {
            all[key] = entry;
            saved.Add(key);
        }

        if (all.Count > MaxEntries)
        {
            foreach (string stale in all.Where(e => !saved.Contains(e.Key)).OrderBy(e => e.Value.Updated).Take(all.Count - MaxEntries).Select(e => e.Key).ToArray())
            {
                all.Remove(stale);
            }
        }

        string temp = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(Path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(temp, Serialize(all));
            File.Move(temp, Path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>
    /// The entries as last read, read again when the file's length or write time changed: a
    /// migration loads several keys as it starts, and a save replaces the file by a rename, so a
    /// change shows in both.
    /// </summary>
    private Dictionary<string, CalibrationEntry> Current()
    {
        var file = new FileInfo(Path);
        (long, DateTime) stamp = file.Exists ? (file.Length, file.LastWriteTimeUtc) : (-1, default);
        lock (_readLock)
        {
            if (_read is not { } read || read.Stamp != stamp)
            {
                // Replaced between the stat and the read: the next load sees a new stamp and reads again.
                _read = read = (stamp, ReadAll());
            }

            return read.Entries;
        }
    }

    /// <summary>Every entry in the file; empty when there is no file, or (with a warning) when it cannot be read.</summary>
    private Dictionary<string, CalibrationEntry> ReadAll()
    {
        var entries = new Dictionary<string, CalibrationEntry>(StringComparer.Ordinal);
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(Path));
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("version", out JsonElement version) || version.ValueKind != JsonValueKind.Number
                || version.GetInt32() != Version || !root.TryGetProperty("entries", out JsonElement all) || all.ValueKind != JsonValueKind.Object)
            {
                LogUnreadable(_logger, null, Path);
                return entries;
            }

            foreach (JsonProperty stored in all.EnumerateObject())
            {
                try
                {
                    CalibrationEntry entry = ReadEntry(stored.Value);
                    entry.Validate();
                    entries[stored.Name] = entry;
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException or KeyNotFoundException)
                {
                    // One bad entry (a hand edit) costs that entry only.
                    LogUnreadable(_logger, ex, Path);
                }
            }
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return entries;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or FormatException or InvalidOperationException)
        {
            LogUnreadable(_logger, ex, Path);
            return new Dictionary<string, CalibrationEntry>(StringComparer.Ordinal);
        }

        return entries;
    }

    private static CalibrationEntry ReadEntry(JsonElement stored)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (JsonProperty value in stored.GetProperty("values").EnumerateObject())
        {
            values[value.Name] = value.Value.GetDouble();
        }

        return new CalibrationEntry(values, stored.GetProperty("samples").GetInt32(), stored.GetProperty("updated").GetDateTimeOffset());
    }

    private static byte[] Serialize(Dictionary<string, CalibrationEntry> entries)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteNumber("version", Version);
            json.WriteStartObject("entries");
            foreach ((string key, CalibrationEntry entry) in entries)
            {
                json.WriteStartObject(key);
                json.WriteStartObject("values");
                foreach ((string name, double value) in entry.Values)
                {
                    json.WriteNumber(name, value);
                }

                json.WriteEndObject();
                json.WriteNumber("samples", entry.Samples);
                json.WriteString("updated", entry.Updated);
                json.WriteEndObject();
            }

            json.WriteEndObject();
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private FileStream AcquireLock()
    {
        // FileShare.None takes an exclusive flock on Unix: a second process (or stream) waits here.
        string lockPath = Path + ".lock";
        long started = Environment.TickCount64;
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (Environment.TickCount64 - started < LockTimeout.TotalMilliseconds)
            {
                Thread.Sleep(10);
            }
        }
    }

    [LoggerMessage(150, LogLevel.Warning, "The calibration store {Path} cannot be read; it counts as empty and the next save replaces it")]
    private static partial void LogUnreadable(ILogger logger, Exception? exception, string path);
}
