using System;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
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

    // Set by the command's worker, advanced by the render loop as rounds end: one lock, so a round
    // report drained late never overwrites a phase the worker has moved on to.
    private readonly Lock _gate = new();
    private Phase? _phase;

    private LiveStatus(bool lines) => _lines = lines;

    /// <summary>How the rounds of the running migration are named.</summary>
    internal enum Rounds
    {
        /// <summary>Not migrating: rounds ending do not change the phase.</summary>
        None,

        /// <summary>MigrateKit's engine: its rounds and its switchover.</summary>
        Engine,

        /// <summary>QEMU's pre-copy through libvirt: iterations; switchover is QEMU's own decision.</summary>
        Libvirt,
    }

    /// <summary>Shown by the live display (see <see cref="Caption"/>).</summary>
    internal static LiveStatus Rendered() => new(lines: false);

    /// <summary>Each phase as a line on stderr (with --verbose), or nothing (with --json alone).</summary>
    internal static LiveStatus Lines(bool enabled) => new(lines: enabled);

    /// <summary>Enters a phase, e.g. "starting the VM".</summary>
    internal void Set(string text, Rounds rounds = Rounds.None)
    {
        lock (_gate)
        {
            _phase = new Phase(text, Stopwatch.GetTimestamp(), rounds);
        }

        if (_lines)
        {
            Console.Error.WriteLine($"migratekit: {text}");
        }
    }

    /// <summary>A round ended: while migrating, the phase names what runs now.</summary>
    internal void RoundEnded(MigrationProgress p)
    {
        lock (_gate)
        {
            if (_phase is not { Rounds: not Rounds.None } phase)
            {
                return;
            }

            string next = (phase.Rounds, p.Action) switch
            {
                (_, MigrationAction.Abort) => "aborting: the source keeps running",
                (Rounds.Engine, MigrationAction.SwitchOver) => "switching over: source paused, sending the rest",
                (Rounds.Engine, _) => string.Create(CultureInfo.InvariantCulture, $"migrating: round {p.Round + 1}"),
                _ => string.Create(CultureInfo.InvariantCulture, $"QEMU pre-copy: iteration {p.Round + 1}"),
            };
            _phase = phase with { Text = next, Since = Stopwatch.GetTimestamp() };
        }
    }

    /// <summary>A decision came with a round: the phase line names it (and, without the live table, a line says it).</summary>
    internal void Decided(MigrationDecision decision)
    {
        lock (_gate)
        {
            if (_phase is { } phase)
            {
                _phase = phase with { Text = $"{phase.Text}; {decision.Action}: {decision.Reason}" };
            }
        }

        if (_lines)
        {
            Console.Error.WriteLine($"migratekit: {decision.Action}: {decision.Reason}");
        }
    }

    /// <summary>The line under the live table: spinner, phase, seconds in it; null when idle.</summary>
    internal string? Caption()
    {
        Phase? phase;
        lock (_gate)
        {
            phase = _phase;
        }

        if (phase is null)
        {
            return null;
        }

        double seconds = Stopwatch.GetElapsedTime(phase.Since).TotalSeconds;
        string spin = Spinner[(int)(Environment.TickCount64 / 100 % Spinner.Length)];
        return string.Create(CultureInfo.InvariantCulture, $"{spin} {phase.Text} ({seconds:F1} s)");
    }

    /// <summary>The command is done: nothing more to show.</summary>
    internal void Clear()
    {
        lock (_gate)
        {
            _phase = null;
        }
    }

    private sealed record Phase(string Text, long Since, Rounds Rounds);
}
