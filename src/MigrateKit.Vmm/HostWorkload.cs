using System;
using MigrateKit.Guests;
using MigrateKit.Memory;

namespace MigrateKit.Vmm;

/// <summary>
/// A workload for a <see cref="HostVm"/>: the same write patterns as <see cref="GuestPrograms"/>,
/// run by a host thread instead of a KVM vCPU. Ranges are guest-physical and page-aligned.
/// </summary>
/// <remarks>
/// A phased workload keeps its early set in <see cref="Cold"/> and the passes before it grows in
/// <see cref="ColdEvery"/>; a bursty one its quiet ticks per pass in <see cref="ColdEvery"/>: the
/// device state a HostVm migrates carries these fields, so the new kinds migrate in the same format.
/// </remarks>
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

    /// <summary>
    /// One write per page of <c>[start, earlyEnd)</c> on passes 1 to <paramref name="growAfter"/>, then
    /// of <c>[start, end)</c>: the write pattern of <see cref="GuestPrograms.Phased"/>.
    /// </summary>
    public static HostWorkload Phased(ulong start, ulong end, ulong earlyEnd, uint growAfter) =>
        Checked(new(HostWorkloadKind.Phased, new GuestRange(start, end), new GuestRange(start, earlyEnd), growAfter));

    /// <summary>
    /// One write per page of <c>[start, end)</c>, then <paramref name="quietTicks"/> paced steps with
    /// no write, pass after pass: the write pattern of <see cref="GuestPrograms.Bursty"/>.
    /// </summary>
    public static HostWorkload Bursty(ulong start, ulong end, uint quietTicks) =>
        Checked(new(HostWorkloadKind.Bursty, new GuestRange(start, end), ColdEvery: quietTicks));

    /// <summary>The early set of a phased workload.</summary>
    internal GuestRange EarlySet => Cold;

    /// <summary>The passes a phased workload writes its early set before the whole range.</summary>
    internal uint GrowAfter => ColdEvery;

    /// <summary>The paced steps without a write that end each pass of a bursty workload.</summary>
    internal uint QuietTicks => ColdEvery;

    internal static HostWorkload Checked(HostWorkload w)
    {
        CheckRange(w.Range, "range");
        CheckPhases(w);
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

    private static void CheckPhases(HostWorkload w)
    {
        if (w.Kind == HostWorkloadKind.Phased)
        {
            CheckRange(w.EarlySet, "early set");
            if (w.EarlySet.Start != w.Range.Start || w.EarlySet.End > w.Range.End)
            {
                throw new ArgumentException($"The early set [0x{w.EarlySet.Start:x}, 0x{w.EarlySet.End:x}) must start the range [0x{w.Range.Start:x}, 0x{w.Range.End:x}) and lie within it.");
            }

            if (w.GrowAfter == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(ColdEvery), "The early set is written for n passes before the whole range, n >= 1.");
            }
        }

        if (w.Kind == HostWorkloadKind.Bursty && w.QuietTicks == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ColdEvery), "A bursty workload is quiet for n ticks after each burst, n >= 1.");
        }
    }

    private static void CheckRange(GuestRange r, string what)
    {
        if (r.End <= r.Start || r.Start % GuestMemoryLayout.PageSize != 0 || r.End % GuestMemoryLayout.PageSize != 0)
        {
            throw new ArgumentException($"The {what} [0x{r.Start:x}, 0x{r.End:x}) must be non-empty and page-aligned.");
        }
    }
}
