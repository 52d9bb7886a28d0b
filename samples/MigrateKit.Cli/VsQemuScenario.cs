using System;
using System.Linq;
using MigrateKit.Guests;
using MigrateKit.Memory;

namespace MigrateKit.Cli;

/// <summary>
/// One workload of <c>bench vs-qemu</c>: the guest, its memory and the migration's settings, the
/// same for QEMU and for MigrateKit.
/// </summary>
/// <param name="Name">The name <c>--scenario</c> takes.</param>
/// <param name="Description">What the guest does and how it migrates.</param>
/// <param name="Memory">Guest memory in bytes.</param>
/// <param name="Guest">"sweep" (one byte per page of 99 MiB, pass after pass), "fill" (every page non-zero, then halt) or "idle" (one page written, then halt).</param>
/// <param name="Bandwidth">The bandwidth limit in bytes/s, or null for none.</param>
/// <param name="Throttle">QEMU with auto-converge, MigrateKit with its own throttle; both run unthrottled otherwise.</param>
internal sealed record VsQemuScenario(string Name, string Description, ulong Memory, string Guest, ulong? Bandwidth, bool Throttle)
{
    /// <summary>Where the guests' working sets start: the first address a boot image may write.</summary>
    internal const ulong Base = BootSector.MinimumWriteAddress;

    /// <summary>The sweep guests' working set, the anchor's.</summary>
    internal const ulong HotBytes = 99UL << 20;

    /// <summary>QEMU's default downtime limit, used on both sides.</summary>
    internal static readonly TimeSpan MaxDowntime = TimeSpan.FromMilliseconds(300);

    private const ulong GiB = 1UL << 30;
    private const ulong MiBps100 = 100UL << 20;

    /// <summary>Every scenario, in the order <c>all</c> runs them.</summary>
    internal static readonly VsQemuScenario[] All =
    [
        new("unlimited", "1 GiB, one byte per page of 99 MiB rewritten pass after pass, no bandwidth limit", GiB, "sweep", null, false),
        new("anchor-100mib", "the same guest at 100 MiB/s and 300 ms, no throttle on either side", GiB, "sweep", MiBps100, false),
        new("anchor-100mib-autoconverge", "the same at 100 MiB/s and 300 ms; QEMU with auto-converge, MigrateKit with its own throttle", GiB, "sweep", MiBps100, true),
        new("fill-1gib", "1 GiB, every page non-zero (written once, then the guest halts), no bandwidth limit", GiB, "fill", null, false),
        new("idle-4gib", "4 GiB, one page written, then the guest halts, no bandwidth limit", 4 * GiB, "idle", null, false),
    ];

    /// <summary>The scenarios <c>--scenario</c> names: one name, a comma-separated list or <c>all</c>.</summary>
    /// <exception cref="FormatException">A name is unknown.</exception>
    internal static VsQemuScenario[] Select(string names)
    {
        if (string.Equals(names.Trim(), "all", StringComparison.OrdinalIgnoreCase))
        {
            return All;
        }

        string[] wanted = names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (wanted.Length == 0)
        {
            throw new FormatException($"--scenario: name a scenario ({string.Join(", ", All.Select(s => s.Name))}) or all.");
        }

        return [.. wanted.Distinct(StringComparer.Ordinal).Select(n => All.FirstOrDefault(s => s.Name == n)
            ?? throw new FormatException($"--scenario {n}: unknown; use {string.Join(", ", All.Select(s => s.Name))} or all."))];
    }

    /// <summary>The guest program both sides boot: reports on COM1, loaded where the boot image puts it.</summary>
    internal GuestProgram Program() => Guest switch
    {
        "sweep" => GuestPrograms.Sweep(Base, Base + HotBytes, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress),
        "fill" => GuestPrograms.Fill(Base, Memory, GuestPorts.Com1, BootSector.ProgramAddress),

        // One page, so the guest reports pass 1 when it has booted and then halts for good.
        "idle" => GuestPrograms.Fill(Base, Base + GuestMemoryLayout.PageSize, GuestPorts.Com1, BootSector.ProgramAddress),
        _ => throw new InvalidOperationException($"Unknown guest '{Guest}'."),
    };

    /// <summary>Whether the guest halts after its first pass (so a second pass never comes).</summary>
    internal bool Halts => Guest != "sweep";
}
