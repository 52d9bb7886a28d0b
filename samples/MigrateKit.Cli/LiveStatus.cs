using System;
using System.Diagnostics;
using System.Globalization;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>
/// What a running command is doing right now, so no stretch of more than a second passes without
/// something moving on screen: the live table shows it with a spinner and the seconds spent in it;
/// with <c>--verbose</c> (logs share the terminal) each phase is one line on stderr instead.
/// </summary>
internal sealed class LiveStatus
{
    private static readonly string[] Spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
    private readonly bool _lines;
    private volatile Phase? _phase;

    private LiveStatus(bool lines) => _lines = lines;

    /// <summary>Shown by the live display (see <see cref="Caption"/>).</summary>
    internal static LiveStatus Rendered() => new(lines: false);

    /// <summary>Each phase as a line on stderr (with --verbose), or nothing (with --json alone).</summary>
    internal static LiveStatus Lines(bool enabled) => new(lines: enabled);

    /// <summary>Enters a phase, e.g. "starting the VM".</summary>
    internal void Set(string text, bool migrating = false)
    {
        _phase = new Phase(text, Stopwatch.GetTimestamp(), migrating);
        if (_lines)
        {
            Console.Error.WriteLine($"migratekit: {text}");
        }
    }

    /// <summary>A round ended: while migrating, the phase names the round that runs now.</summary>
    internal void RoundEnded(MigrationProgress p)
    {
        if (_phase is { Migrating: true })
        {
            string next = p.Action switch
            {
                MigrationAction.SwitchOver => "switching over: source paused, sending the rest",
                MigrationAction.Abort => "aborting: the source resumes",
                _ => string.Create(CultureInfo.InvariantCulture, $"migrating: round {p.Round + 1}"),
            };
            _phase = new Phase(next, Stopwatch.GetTimestamp(), Migrating: true);
        }
    }

    /// <summary>The line under the live table: spinner, phase, seconds in it; null when idle.</summary>
    internal string? Caption()
    {
        if (_phase is not { } phase)
        {
            return null;
        }

        double seconds = Stopwatch.GetElapsedTime(phase.Since).TotalSeconds;
        string spin = Spinner[(int)(Environment.TickCount64 / 100 % Spinner.Length)];
        return string.Create(CultureInfo.InvariantCulture, $"{spin} {phase.Text} ({seconds:F1} s)");
    }

    /// <summary>The command is done: nothing more to show.</summary>
    internal void Clear() => _phase = null;

    private sealed record Phase(string Text, long Since, bool Migrating);
}
