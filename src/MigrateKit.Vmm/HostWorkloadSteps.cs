using System;
using System.Runtime.InteropServices;
using MigrateKit.Guests;
using MigrateKit.Memory;

namespace MigrateKit.Vmm;

/// <summary>
/// One write of a <see cref="HostWorkload"/> at a time, as pure functions of the workload and
/// the worker's state: which page comes next, what goes into it, and the state after it.
/// </summary>
internal static class HostWorkloadSteps
{
    private const ulong Page = GuestMemoryLayout.PageSize;

    /// <summary>The steps of the longest pass (for hot/cold, the hot and cold ranges of a cold pass; for bursty, the burst and the quiet ticks).</summary>
    internal static ulong MaxPassLength(HostWorkload w) => (w.Range.Length / Page) + w.Kind switch
    {
        HostWorkloadKind.HotCold => w.Cold.Length / Page,
        HostWorkloadKind.Bursty => w.QuietTicks,
        _ => 0,
    };

    /// <summary>Whether the step at the current cursor writes a page (a bursty workload's quiet ticks write none).</summary>
    internal static bool Writes(HostWorkload w, in HostWorkerState s) =>
        w.Kind != HostWorkloadKind.Bursty || s.Position < w.Range.Length / Page;

    /// <summary>The guest-physical page the write at the current cursor goes to, and whether it ends the pass.</summary>
    internal static (ulong Address, bool LastInPass) Locate(HostWorkload w, in HostWorkerState s)
    {
        ulong pages = w.Range.Length / Page;
        switch (w.Kind)
        {
            case HostWorkloadKind.HotCold:
                bool coldPass = (s.Pass - 1) % w.ColdEvery == 0;
                ulong total = pages + (coldPass ? w.Cold.Length / Page : 0);
                ulong address = s.Position < pages ? w.Range.Start + (s.Position * Page) : w.Cold.Start + ((s.Position - pages) * Page);
                return (address, s.Position + 1 == total);
            case HostWorkloadKind.RandomWrites:
                // The position counts writes; the page comes from the generator's state.
                return (w.Range.Start + ((s.Rng % pages) * Page), s.Position + 1 == pages);
            case HostWorkloadKind.Phased:
                ulong passPages = (s.Pass <= w.GrowAfter ? w.EarlySet.Length : w.Range.Length) / Page;
                return (w.Range.Start + (s.Position * Page), s.Position + 1 == passPages);
            case HostWorkloadKind.Bursty:
                // A quiet tick names the range's first page but writes nothing (see Writes).
                return (w.Range.Start + (Math.Min(s.Position, pages - 1) * Page), s.Position + 1 == pages + w.QuietTicks);
            default:
                return (w.Range.Start + (s.Position * Page), s.Position + 1 == pages);
        }
    }

    /// <summary>The index of the page at <paramref name="address"/> within the workload's (hot) range, as the verifier's values use it.</summary>
    internal static uint PageIndex(HostWorkload w, ulong address) => (uint)((address - w.Range.Start) / Page);

    /// <summary>Writes one page of pass <paramref name="pass"/>; returns the page index when a verifier check failed, else -1.</summary>
    internal static long Write(HostWorkload w, Span<byte> page, uint pageIndex, uint pass)
    {
        switch (w.Kind)
        {
            case HostWorkloadKind.Sweep:
            case HostWorkloadKind.HotCold:
            case HostWorkloadKind.RandomWrites:
            case HostWorkloadKind.Phased:
            case HostWorkloadKind.Bursty:
                page[0] = (byte)pass;
                return -1;
            case HostWorkloadKind.Verifier:
                ref uint cell = ref MemoryMarshal.Cast<byte, uint>(page)[0];
                long failure = pass > 1 && cell != GuestPrograms.VerifierValue(pageIndex, pass - 1) ? pageIndex : -1;
                cell = GuestPrograms.VerifierValue(pageIndex, pass);
                return failure;
            case HostWorkloadKind.Fill:
                MemoryMarshal.Cast<byte, uint>(page).Fill(unchecked((pageIndex * 0x9E37_79B1u) | 1));
                return -1;
            default:
                return -1;
        }
    }

    /// <summary>Advances the state past one write.</summary>
    /// <returns>Whether the write ended a pass.</returns>
    internal static bool Advance(HostWorkload w, ref HostWorkerState s, long failure, bool lastInPass)
    {
        if (Writes(w, s))
        {
            s.PagesWritten++;
        }

        if (failure >= 0 && s.Failures++ == 0)
        {
            s.FirstFailedPage = failure;
        }

        if (w.Kind == HostWorkloadKind.RandomWrites)
        {
            s.Rng = XorShift(s.Rng);
        }

        if (lastInPass)
        {
            s.Position = 0;
            s.Pass++;
            s.Halted = w.Kind == HostWorkloadKind.Fill;
        }
        else
        {
            s.Position++;
        }

        return lastInPass;
    }

    internal static uint XorShift(uint x)
    {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x;
    }
}
