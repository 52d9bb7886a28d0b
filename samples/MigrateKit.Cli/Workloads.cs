using System;
using MigrateKit.Guests;
using MigrateKit.Memory;
using MigrateKit.Vmm;

namespace MigrateKit.Cli;

/// <summary>The guest programs the CLI can run, laid out in guest memory from 1 MiB up.</summary>
internal static class Workloads
{
    internal const ulong Base = 1UL << 20;

    internal static readonly string[] Names = ["sweep", "hotcold", "random", "verify", "fill", "phased", "bursty"];

    /// <summary>
    /// The passes the phased workload writes a quarter of the hot set before all of it: with the
    /// pass that warms the VM up before the migration, the set grows during the pre-copy of a
    /// 128 MiB to 1 GiB migration on the reference machine (see docs/BENCHMARKS.md).
    /// </summary>
    internal const uint PhasedGrowAfter = 3;

    /// <summary>The bursty workload's quiet stretch after each burst over the hot set, in bursts' lengths.</summary>
    internal const uint BurstyQuietBursts = 3;

    /// <summary>Builds the program for a workload (MicroVm ports and load address unless given).</summary>
    /// <exception cref="ArgumentException">The workload is unknown or does not fit in memory.</exception>
    internal static GuestProgram Build(string workload, ulong memory, ulong hot, GuestPorts? ports = null, ulong loadAddress = GuestPrograms.DefaultLoadAddress)
    {
        Check(workload, memory, hot);

        switch (workload)
        {
            case "sweep":
                return GuestPrograms.Sweep(Base, Base + hot, ports: ports, loadAddress: loadAddress);
            case "hotcold":
                ulong coldSize = Math.Min(512UL << 20, memory - Base - hot);
                if (coldSize < GuestMemoryLayout.PageSize)
                {
                    throw new ArgumentException("hotcold needs memory for a cold set above the hot one: raise --memory or lower --hot.");
                }

                // The cold set is written once and then only every 1000 passes: effectively never during a migration.
                return GuestPrograms.HotCold(new GuestRange(Base, Base + hot), new GuestRange(Base + hot, Base + hot + coldSize), 1000, ports, loadAddress);
            case "random":
                return GuestPrograms.RandomWrites(Base, Base + hot, 0x9E37_79B9, ports, loadAddress);
            case "verify":
                return GuestPrograms.Verifier(Base, Base + hot, ports, loadAddress);
            case "fill":
                return GuestPrograms.Fill(Base, memory, ports, loadAddress);
            case "phased":
                return GuestPrograms.Phased(Base, Base + hot, Base + EarlySet(hot), PhasedGrowAfter, ports, loadAddress);
            case "bursty":
                return GuestPrograms.Bursty(Base, Base + hot, QuietTicks(hot), ports, loadAddress);
            default:
                throw new ArgumentException($"Unknown workload '{workload}': use {string.Join(", ", Names)}.");
        }
    }

    /// <summary>The same workload for a <see cref="HostVm"/>: the same ranges and write pattern.</summary>
    internal static HostWorkload BuildHost(string workload, ulong memory, ulong hot)
    {
        Check(workload, memory, hot);
        return workload switch
        {
            "sweep" => HostWorkload.Sweep(Base, Base + hot),
            "hotcold" => HostWorkload.HotCold(new GuestRange(Base, Base + hot), new GuestRange(Base + hot, Base + hot + ColdSize(memory, hot)), 1000),
            "random" => HostWorkload.RandomWrites(Base, Base + hot, 0x9E37_79B9),
            "verify" => HostWorkload.Verifier(Base, Base + hot),
            "fill" => HostWorkload.Fill(Base, memory),
            "phased" => HostWorkload.Phased(Base, Base + hot, Base + EarlySet(hot), PhasedGrowAfter),
            "bursty" => HostWorkload.Bursty(Base, Base + hot, QuietTicks(hot)),
            _ => throw new ArgumentException($"Unknown workload '{workload}': use {string.Join(", ", Names)}."),
        };
    }

    /// <summary>The phased workload's early set: a quarter of the hot set, at least one page.</summary>
    private static ulong EarlySet(ulong hot) => Math.Max(GuestMemoryLayout.PageSize, hot / 4 / GuestMemoryLayout.PageSize * GuestMemoryLayout.PageSize);

    private static uint QuietTicks(ulong hot) => (uint)(hot / GuestMemoryLayout.PageSize * BurstyQuietBursts);

    private static ulong ColdSize(ulong memory, ulong hot)
    {
        ulong coldSize = Math.Min(512UL << 20, memory - Base - hot);
        return coldSize >= GuestMemoryLayout.PageSize ? coldSize : throw new ArgumentException("hotcold needs memory for a cold set above the hot one: raise --memory or lower --hot.");
    }

    /// <summary>
    /// --hot when it is not given: 64 MiB, or half the memory above the first MiB where that is less,
    /// so a small VM still has room for a cold set.
    /// </summary>
    internal static ulong DefaultHot(ulong memory) =>
        Math.Min(64UL << 20, (memory - Math.Min(memory, Base)) / 2 / GuestMemoryLayout.PageSize * GuestMemoryLayout.PageSize);

    internal static void Check(string workload, ulong memory, ulong hot)
    {
        if (workload != "fill" && (hot == 0 || hot % GuestMemoryLayout.PageSize != 0 || Base + hot > memory))
        {
            throw new ArgumentException($"--hot {Units.FormatBytes(hot)} must be a non-zero multiple of 4 KiB that fits in --memory {Units.FormatBytes(memory)} above 1 MiB.");
        }
    }
}
