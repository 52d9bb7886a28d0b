using System;
using System.Collections.Concurrent;
using System.CommandLine;
using Microsoft.Extensions.Logging;
using MigrateKit.Estimation;

namespace MigrateKit.Cli;

/// <summary>
/// <c>--calibration-store PATH</c> and <c>--no-calibration-store</c>: the file that keeps what
/// migrations learned about this machine (a libvirt host pair's stop-and-copy speed and fixed
/// downtime, the engine's past switchovers) across runs.
/// </summary>
internal sealed class CalibrationStoreOptions(string what)
{
    // One history per store file and process, so the migrations of a process learn from each other.
    private static readonly ConcurrentDictionary<string, DowntimeHistory> Histories = new(StringComparer.Ordinal);

    internal Option<string?> Path { get; } = new("--calibration-store") { Description = $"The file that keeps {what} across runs (default: $XDG_STATE_HOME/migratekit/calibration.json, else ~/.local/state/migratekit/calibration.json)." };

    internal Option<bool> None { get; } = new("--no-calibration-store") { Description = "Neither read nor write the calibration store: learn within this run only." };

    internal void AddTo(Command command)
    {
        command.Options.Add(Path);
        command.Options.Add(None);
    }

    /// <summary>The calibration store the options name: the default file, another file, or none.</summary>
    /// <exception cref="FormatException">Both options, or an empty path.</exception>
    internal FileCalibrationStore? Store(ParseResult p, bool verbose)
    {
        string? path = p.GetValue(Path);
        if (p.GetValue(None))
        {
            return path is null ? null : throw new FormatException("--calibration-store and --no-calibration-store exclude each other.");
        }

        if (path is not null && string.IsNullOrWhiteSpace(path))
        {
            throw new FormatException("--calibration-store needs a file path.");
        }

        // A store that cannot be read is worth a warning even without --verbose.
        return new FileCalibrationStore(path, new StderrLogger<FileCalibrationStore>(verbose ? LogLevel.Debug : LogLevel.Warning));
    }

    /// <summary>The engine's downtime history kept in the store the options name (this process's only with --no-calibration-store).</summary>
    /// <exception cref="FormatException">Both options, or an empty path.</exception>
    internal DowntimeHistory History(ParseResult p, bool verbose) =>
        Store(p, verbose) is { } store
            ? Histories.GetOrAdd(store.Path, _ => new DowntimeHistory(store, new StderrLogger<DowntimeHistory>(verbose ? LogLevel.Debug : LogLevel.Warning)))
            : DowntimeHistory.Shared;
}
