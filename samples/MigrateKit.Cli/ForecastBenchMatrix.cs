using System;
using System.Collections.Generic;
using System.Linq;
using MigrateKit.Memory;

namespace MigrateKit.Cli;

/// <summary>One cell of the <c>bench forecast</c> matrix: one kind of migration, repeated <see cref="ForecastMatrix.Runs"/> times.</summary>
internal sealed record ForecastCell(string Vm, string Tracker, string Workload, ulong Memory, ulong? Bandwidth, TimeSpan Limit)
{
    /// <summary>The tracker name a HostVm's cells carry: it always tracks with userfaultfd write-protection.</summary>
    internal const string WriteProtect = "write-protect";

    /// <summary>
    /// The set the workload rewrites: a quarter of the memory above 1 MiB, at most 99 MiB (the
    /// anchor's hot set), so hotcold keeps room for its cold set at every size.
    /// </summary>
    internal ulong Hot => Math.Min(99UL << 20, (Memory - Workloads.Base) / 4 / GuestMemoryLayout.PageSize * GuestMemoryLayout.PageSize);

    /// <summary>What <see cref="MigrationRunner.DemoAsync"/> runs for this cell: HostVm paced like <c>demo</c>, MicroVm unpaced.</summary>
    internal SourceSettings Source(bool verbose) => new()
    {
        Memory = Memory,
        Workload = Workload,
        Hot = Hot,
        Bandwidth = Bandwidth,
        MaxDowntime = Limit,
        Tracker = Tracker == WriteProtect ? "bitmap" : Tracker,
        Vm = Vm,
        Pace = Vm == VmKind.Host ? 25_000 : 0,
        Verbose = verbose,
    };
}

/// <summary>What <c>bench forecast</c> runs: the product of its lists, each cell <see cref="Runs"/> times, interleaved.</summary>
internal sealed record ForecastMatrix
{
    /// <summary>The workloads of the full matrix.</summary>
    internal static readonly string[] AllWorkloads = ["sweep", "hotcold", "random", "verify", "phased", "bursty"];

    /// <summary>The MicroVm trackers; a HostVm has only <see cref="ForecastCell.WriteProtect"/>.</summary>
    internal static readonly string[] MicroTrackers = ["bitmap", "ring"];

    /// <summary>"microvm", "hostvm" or both, in that order.</summary>
    internal required IReadOnlyList<string> Vms { get; init; }

    internal required IReadOnlyList<string> Workloads { get; init; }

    internal required IReadOnlyList<ulong> Memories { get; init; }

    /// <summary>Bandwidth limits in bytes/s; null is unlimited.</summary>
    internal required IReadOnlyList<ulong?> Bandwidths { get; init; }

    internal required IReadOnlyList<TimeSpan> Limits { get; init; }

    /// <summary>"bitmap", "ring" (MicroVm) and "write-protect" (HostVm).</summary>
    internal required IReadOnlyList<string> Trackers { get; init; }

    /// <summary>How often each cell runs.</summary>
    internal required int Runs { get; init; }

    /// <summary>The full matrix: every workload at 256 MiB, 1 GiB and 3 GiB, unlimited, 100 and 400 MiB/s, 30, 100 and 300 ms, every tracker, 3 runs.</summary>
    internal static ForecastMatrix Full(IReadOnlyList<string> vms) => new()
    {
        Vms = vms,
        Workloads = AllWorkloads,
        Memories = [256UL << 20, 1UL << 30, 3UL << 30],
        Bandwidths = [null, 100UL << 20, 400UL << 20],
        Limits = [TimeSpan.FromMilliseconds(30), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(300)],
        Trackers = [.. MicroTrackers, ForecastCell.WriteProtect],
        Runs = 3,
    };

    /// <summary>
    /// The matrix <c>--quick</c> runs: every workload, limit and tracker at 128 MiB, unlimited and
    /// 100 MiB/s, once: within five minutes on the reference machine (see docs/BENCHMARKS.md).
    /// </summary>
    internal static ForecastMatrix Quick(IReadOnlyList<string> vms) => Full(vms) with
    {
        Memories = [128UL << 20],
        Bandwidths = [null, 100UL << 20],
        Runs = 1,
    };

    /// <summary>Every cell once, in the order each round of runs goes through them.</summary>
    internal IReadOnlyList<ForecastCell> Cells()
    {
        var cells = new List<ForecastCell>();
        foreach (string vm in Vms)
        {
            IEnumerable<string> trackers = vm == VmKind.Host
                ? Trackers.Where(t => t == ForecastCell.WriteProtect)
                : Trackers.Where(t => t != ForecastCell.WriteProtect);
            foreach (string tracker in trackers)
            {
                foreach (string workload in Workloads)
                {
                    foreach (ulong memory in Memories)
                    {
                        foreach (ulong? bandwidth in Bandwidths)
                        {
                            cells.AddRange(Limits.Select(limit => new ForecastCell(vm, tracker, workload, memory, bandwidth, limit)));
                        }
                    }
                }
            }
        }

        return cells;
    }
}
