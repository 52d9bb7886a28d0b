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
/// <param name="Guest">"sweep" (one byte per page of 99 MiB, pass after pass), "random" (99 MiB of random bytes loaded, the first MiB rewritten from xorshift, pass after pass), "fill" (every page non-zero, then halt) or "idle" (one page written, then halt).</param>
/// <param name="Bandwidth">The bandwidth limit in bytes/s, or null for none.</param>
/// <param name="Throttle">QEMU with auto-converge, MigrateKit with its own throttle; both run unthrottled otherwise.</param>
internal sealed record VsQemuScenario(string Name, string Description, ulong Memory, string Guest, ulong? Bandwidth, bool Throttle)
{
    /// <summary>Where the guests' working sets start: the first address a boot image may write.</summary>
    internal const ulong Base = BootSector.MinimumWriteAddress;

    /// <summary>The sweep guests' working set, the anchor's.</summary>
    internal const ulong HotBytes = 99UL << 20;

    /// <summary>QEMU's xbzrle cache and MigrateKit's cache of sent pages where a scenario encodes pages: 256 MiB, as in issue 17.</summary>
    internal const long SentPageCacheBytes = 256L << 20;

    /// <summary>QEMU's multifd connections in the multifd scenario.</summary>
    internal const int MultifdChannels = 2;

    /// <summary>The seed of the random guest's xorshift (any non-zero value; fixed so both sides write the same bytes).</summary>
    internal const uint RandomSeed = 0x9E37_79B9;

    /// <summary>The seed of the random bytes loaded into the random guest's 99 MiB before boot (not the guest's, so its first pass changes them).</summary>
    internal const uint LoadedSeed = 0x2545_F491;

    /// <summary>What the random guest rewrites, pass after pass: the first MiB of its 99 MiB, a pass every ~2 s here.</summary>
    internal const ulong RandomRewriteBytes = 1UL << 20;

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
        new("anchor-100mib-xbzrle", "the anchor's guest at 100 MiB/s and 300 ms; QEMU with xbzrle (256 MiB cache), MigrateKit with its page encodings (256 MiB cache); no throttle", GiB, "sweep", MiBps100, false)
        {
            Qemu = VsQemuConfiguration.Xbzrle,
            Encodings = VsQemuEncodings.On,
        },
        new("anchor-100mib-multifd-zstd", "the anchor's guest at 100 MiB/s and 300 ms; QEMU with multifd (2 channels, zstd: QEMU 7.2 counts and rate-limits its pages uncompressed), MigrateKit with its page encodings (256 MiB cache); no throttle", GiB, "sweep", MiBps100, false)
        {
            Qemu = VsQemuConfiguration.MultifdZstd,
            Encodings = VsQemuEncodings.On,
        },

        // The 99 MiB is loaded, not written by the guest: an emulated vCPU here writes random bytes at ~0.5 MiB/s, a pass over 99 MiB would take minutes.
        new("random-100mib", "1 GiB, 99 MiB of pseudo-random bytes loaded before boot, the guest rewriting its first 1 MiB with fresh random bytes pass after pass (deltas cannot help), 100 MiB/s, 300 ms; MigrateKit with its page encodings and without; QEMU with xbzrle (256 MiB cache) for reference; no throttle", GiB, "random", MiBps100, false)
        {
            Qemu = VsQemuConfiguration.Xbzrle,
            Encodings = VsQemuEncodings.On,
            ComparesEncodings = true,
        },
        new("fill-1gib", "1 GiB, every page non-zero (written once, then the guest halts), no bandwidth limit", GiB, "fill", null, false),
        new("idle-4gib", "4 GiB, one page written, then the guest halts, no bandwidth limit", 4 * GiB, "idle", null, false),
    ];

    /// <summary>QEMU's migration capabilities beyond auto-converge (which <see cref="Throttle"/> sets).</summary>
    internal VsQemuConfiguration Qemu { get; init; }

    /// <summary>MigrateKit's page encodings in this scenario's MigrateKit runs.</summary>
    internal VsQemuEncodings Encodings { get; init; }

    /// <summary>Whether MigrateKit also runs with its encodings off, and its encodings must do no worse than that.</summary>
    internal bool ComparesEncodings { get; init; }

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
        "random" => GuestPrograms.RandomBytes(Base, Base + RandomRewriteBytes, RandomSeed, GuestPorts.Com1, BootSector.ProgramAddress),
        "fill" => GuestPrograms.Fill(Base, Memory, GuestPorts.Com1, BootSector.ProgramAddress),

        // One page, so the guest reports pass 1 when it has booted and then halts for good.
        "idle" => GuestPrograms.Fill(Base, Base + GuestMemoryLayout.PageSize, GuestPorts.Com1, BootSector.ProgramAddress),
        _ => throw new InvalidOperationException($"Unknown guest '{Guest}'."),
    };

    /// <summary>What both sides load at <see cref="Base"/> before boot: the random guest's 99 MiB of random bytes; null for the others.</summary>
    internal byte[]? LoadedMemory()
    {
        if (Guest != "random")
        {
            return null;
        }

        byte[] bytes = new byte[HotBytes];
        GuestPrograms.RandomBytesContent(bytes, LoadedSeed);
        return bytes;
    }

    /// <summary>Whether the guest halts after its first pass (so a second pass never comes).</summary>
    internal bool Halts => Guest is not ("sweep" or "random");
}

/// <summary>How QEMU migrates in a scenario, beyond auto-converge.</summary>
internal enum VsQemuConfiguration
{
    /// <summary>QEMU's defaults: every dirty page sent whole.</summary>
    Default,

    /// <summary>The <c>xbzrle</c> capability with a <see cref="VsQemuScenario.SentPageCacheBytes"/> cache: re-sent pages as deltas.</summary>
    Xbzrle,

    /// <summary>The <c>multifd</c> capability, <see cref="VsQemuScenario.MultifdChannels"/> channels, zstd compression (set on both QEMUs).</summary>
    MultifdZstd,
}

/// <summary>MigrateKit's page encodings in a run.</summary>
internal enum VsQemuEncodings
{
    /// <summary>The engine's default.</summary>
    EngineDefault,

    /// <summary>Every encoding on, with a <see cref="VsQemuScenario.SentPageCacheBytes"/> cache of sent pages.</summary>
    On,

    /// <summary>Every encoding off: each dirty page sent as it is.</summary>
    Off,
}
