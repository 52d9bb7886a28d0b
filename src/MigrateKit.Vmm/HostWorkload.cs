using System;
using MigrateKit.Guests;
using MigrateKit.Memory;

namespace MigrateKit.Vmm;

/// <summary>
/// A workload for a <see cref="HostVm"/>: the same write patterns as <see cref="GuestPrograms"/>,
/// run by a host thread instead of a KVM vCPU. Ranges are guest-physical and page-aligned.
/// </summary>
public sealed record HostWorkload(HostWorkloadKind Kind, GuestRange Range, GuestRange Cold = default, uint ColdEvery = 0, uint Seed = 0)
{
    /// <summary>An idle workload.</summary>
    public static HostWorkload Idle() => new(HostWorkloadKind.Idle, default);

    /// <summary>One write per page of <c>[start, end)</c> per pass.</summary>
    public static HostWorkload Sweep(ulong start, ulong end) => Checked(new(HostWorkloadKind.Sweep, new GuestRange(start, end)));

    /// <summary>The hot range every pass, the cold range every <paramref name="coldEvery"/> passes.</summary>
    public static HostWorkload HotCold(GuestRange hot, GuestRange cold, uint coldEvery) => Checked(new(HostWorkloadKind.HotCold, hot, cold, coldEvery));

    /// <summary>Random page writes over <c>[start, end)</c>; <paramref name="seed"/> must be non-zero.</summary>
    public static HostWorkload RandomWrites(ulong start, ulong end, uint seed) => Checked(new(HostWorkloadKind.RandomWrites, new GuestRange(start, end), Seed: seed));

    /// <summary>The self-checking workload over <c>[start, end)</c>.</summary>
    public static HostWorkload Verifier(ulong start, ulong end) => Checked(new(HostWorkloadKind.Verifier, new GuestRange(start, end)));

    /// <summary>Fills <c>[start, end)</c> once and halts.</summary>
    public static HostWorkload Fill(ulong start, ulong end) => Checked(new(HostWorkloadKind.Fill, new GuestRange(start, end)));

    internal static HostWorkload Checked(HostWorkload w)
    {
        CheckRange(w.Range, "range");
        if (w.Kind == HostWorkloadKind.HotCold)
        {
            CheckRange(w.Cold, "cold range");
            if (w.Cold.Overlaps(w.Range))
            {
                throw new ArgumentException($"The hot range [0x{w.Range.Start:x}, 0x{w.Range.End:x}) and the cold range [0x{w.Cold.Start:x}, 0x{w.Cold.End:x}) overlap.");
            }

            if (w.ColdEvery == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(ColdEvery), "The cold range is written every n passes, n >= 1.");
            }
        }

        if (w.Kind == HostWorkloadKind.RandomWrites && w.Seed == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Seed), "xorshift32 needs a non-zero seed.");
        }

        return w;
    }

    private static void CheckRange(GuestRange r, string what)
    {
        if (r.End <= r.Start || r.Start % GuestMemoryLayout.PageSize != 0 || r.End % GuestMemoryLayout.PageSize != 0)
        {
            throw new ArgumentException($"The {what} [0x{r.Start:x}, 0x{r.End:x}) must be non-empty and page-aligned.");
        }
    }
}
