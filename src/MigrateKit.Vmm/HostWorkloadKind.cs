using MigrateKit.Guests;

namespace MigrateKit.Vmm;

/// <summary>What a <see cref="HostWorkload"/> does each pass.</summary>
public enum HostWorkloadKind : byte
{
    /// <summary>Nothing: an idle guest.</summary>
    Idle = 0,

    /// <summary>One byte per page of the range, the low byte of the pass number.</summary>
    Sweep = 1,

    /// <summary>The hot range every pass; the cold range on passes 1, 1 + n, 1 + 2n, ….</summary>
    HotCold = 2,

    /// <summary>As many writes as the range has pages, at pages chosen by xorshift32.</summary>
    RandomWrites = 3,

    /// <summary>Each page's first dword: checks the previous pass's <see cref="GuestPrograms.VerifierValue"/>, then stores this pass's.</summary>
    Verifier = 4,

    /// <summary>Every dword of every page once (non-zero, derived from the page index), then halts.</summary>
    Fill = 5,

    /// <summary>One byte per page of the early set (a prefix of the range) for the first passes, then of the whole range; see <see cref="HostWorkload.Phased"/>.</summary>
    Phased = 6,

    /// <summary>One byte per page of the range in a burst, then quiet ticks with no write; see <see cref="HostWorkload.Bursty"/>.</summary>
    Bursty = 7,
}
