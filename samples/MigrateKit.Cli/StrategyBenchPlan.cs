using System;
using System.Collections.Generic;
using System.Linq;
using MigrateKit.Estimation;
using MigrateKit.Guests;

namespace MigrateKit.Cli;

/// <summary>The four ways <c>bench libvirt-strategies</c> migrates a domain.</summary>
internal enum StrategyBenchConfig
{
    /// <summary>libvirt's live pre-copy with nothing added.</summary>
    LibvirtDefault,

    /// <summary>The same with QEMU's auto-converge (<c>VIR_MIGRATE_AUTO_CONVERGE</c>).</summary>
    LibvirtAutoConverge,

    /// <summary>The same with xbzrle deltas (<c>--compressed --comp-methods xbzrle</c>) and a 256 MiB cache.</summary>
    LibvirtXbzrle,

    /// <summary>MigrateKit's <see cref="Libvirt.LibvirtStrategy.Auto"/>, uncalibrated, with no calibration store.</summary>
    MigrateKitAuto,
}

/// <summary>The configurations' names and the order each run takes them in.</summary>
internal static class StrategyBenchConfigs
{
    internal static readonly StrategyBenchConfig[] All =
        [StrategyBenchConfig.LibvirtDefault, StrategyBenchConfig.LibvirtAutoConverge, StrategyBenchConfig.LibvirtXbzrle, StrategyBenchConfig.MigrateKitAuto];

    internal static string Name(this StrategyBenchConfig config) => config switch
    {
        StrategyBenchConfig.LibvirtDefault => "libvirt-default",
        StrategyBenchConfig.LibvirtAutoConverge => "libvirt-autoconverge",
        StrategyBenchConfig.LibvirtXbzrle => "libvirt-xbzrle",
        StrategyBenchConfig.MigrateKitAuto => "migratekit-auto",
        _ => throw new ArgumentOutOfRangeException(nameof(config), config, null),
    };

    internal static bool IsPlain(this StrategyBenchConfig config) => config != StrategyBenchConfig.MigrateKitAuto;

    /// <summary>
    /// The order of run <paramref name="run"/> (from 1): <see cref="All"/> rotated left by one per
    /// run, so no configuration always goes first (on a guest that has just arrived) or always last.
    /// </summary>
    internal static StrategyBenchConfig[] Order(int run)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(run, 1);
        int shift = (run - 1) % All.Length;
        return [.. All.Skip(shift), .. All.Take(shift)];
    }
}

/// <summary>A guest program the bench migrates, as a boot-sector domain.</summary>
/// <param name="Name">The name <c>--guests</c> takes.</param>
/// <param name="Description">What it does to its memory.</param>
/// <param name="Program">Builds the program for <see cref="BootSector"/>.</param>
internal sealed record StrategyBenchGuest(string Name, string Description, Func<GuestProgram> Program)
{
    private const ulong MiB = 1UL << 20;

    /// <summary>Passes of the idle guest's spin: a fraction of a second under KVM, a few seconds under TCG.</summary>
    private const uint IdleSpin = 1_000_000;

    internal static readonly StrategyBenchGuest[] All =
    [
        new("onebyte", "one byte in each page of a 99 MiB set, pass after pass (deltas win)",
            () => GuestPrograms.Sweep(MiB, 100 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress)),
        new("random", "every dword of a 16 MiB set rewritten with xorshift values, pass after pass (deltas lose)",
            () => GuestPrograms.RandomBytes(MiB, 17 * MiB, 0x9E37_79B9, GuestPorts.Com1, BootSector.ProgramAddress)),

        // A halted guest would never report a pass, and the bench checks each migration by the
        // passes going on: this one writes one byte of one page, then spins without touching memory.
        new("idle", "mostly zero: one page written per pass, then a spin that writes nothing",
            () => GuestPrograms.Bursty(MiB, MiB + 4096, IdleSpin, GuestPorts.Com1, BootSector.ProgramAddress)),
    ];

    /// <summary>The highest address the program writes.</summary>
    internal ulong WritesEnd => Program().Writes.Max(w => w.End);

    internal static StrategyBenchGuest Find(string name) =>
        All.FirstOrDefault(g => g.Name == name) ?? throw new FormatException($"--guests: '{name}' is not a guest of this bench: use {string.Join(", ", All.Select(g => g.Name))}.");
}

/// <summary>What <c>bench libvirt-strategies</c> runs.</summary>
internal sealed record StrategyBenchSettings
{
    /// <summary>The xbzrle cache of the plain libvirt-xbzrle configuration: the 256 MiB the issue measured with, at most half the guest.</summary>
    internal const ulong XbzrleCache = 256UL << 20;

    public required string From { get; init; }

    public required string To { get; init; }

    public required int Runs { get; init; }

    public required ulong Memory { get; init; }

    public required long Bandwidth { get; init; }

    public required TimeSpan MaxDowntime { get; init; }

    public required TimeSpan Deadline { get; init; }

    public required IReadOnlyList<StrategyBenchGuest> Guests { get; init; }

    /// <summary>What the MigrateKit runs learn of the host pair, shared across the bench as an orchestrator's store would be; null for none.</summary>
    public ICalibrationStore? Store { get; init; }

    internal ulong XbzrleCacheBytes => Math.Min(XbzrleCache, Memory / 2);

    /// <summary>The migration stream's address: both harness hosts are this machine.</summary>
    internal const string MigrationUri = "tcp://127.0.0.1";

    /// <summary>Every migration the bench makes, in order: per guest, per run, the rotated configurations.</summary>
    internal IEnumerable<StrategyBenchSlot> Schedule() =>
        from guest in Guests
        from run in Enumerable.Range(1, Runs)
        from slot in StrategyBenchConfigs.Order(run).Select((config, i) => new StrategyBenchSlot(guest.Name, run, i + 1, config))
        select slot;
}

/// <summary>One migration of the schedule.</summary>
/// <param name="Guest">The guest's name.</param>
/// <param name="Run">The run, from 1.</param>
/// <param name="Position">Its place in the run, from 1.</param>
/// <param name="Config">The configuration.</param>
internal sealed record StrategyBenchSlot(string Guest, int Run, int Position, StrategyBenchConfig Config);
