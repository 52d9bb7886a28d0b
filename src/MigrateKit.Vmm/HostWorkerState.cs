namespace MigrateKit.Vmm;

/// <summary>Where a <see cref="HostVm"/>'s worker is in its workload: the cursor and the counts its status reports.</summary>
internal struct HostWorkerState
{
    /// <summary>The pass being written, from 1.</summary>
    public uint Pass;

    /// <summary>The xorshift32 state of a random-writes workload.</summary>
    public uint Rng;

    /// <summary>The next write within the pass.</summary>
    public ulong Position;

    public long Failures;

    /// <summary>The page index of the first self-check failure, or -1.</summary>
    public long FirstFailedPage;

    public long PagesWritten;

    /// <summary>Whether the workload has ended (a fill) and writes nothing more.</summary>
    public bool Halted;

    /// <summary>The state before the first write of a workload.</summary>
    internal static HostWorkerState Initial(HostWorkload workload) => new() { Pass = 1, Rng = workload.Seed };
}
