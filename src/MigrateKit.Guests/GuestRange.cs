namespace MigrateKit.Guests;

/// <summary>A guest-physical range <c>[Start, End)</c>.</summary>
/// <param name="Start">First address.</param>
/// <param name="End">One past the last address.</param>
public readonly record struct GuestRange(ulong Start, ulong End)
{
    /// <summary>The length in bytes.</summary>
    public ulong Length => End - Start;

    /// <summary>Whether two ranges share an address.</summary>
    public bool Overlaps(GuestRange other) => Start < other.End && other.Start < End;
}
