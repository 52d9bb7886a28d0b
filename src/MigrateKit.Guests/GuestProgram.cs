using System.Collections.Generic;

namespace MigrateKit.Guests;

/// <summary>
/// Machine code for a guest, entered in 32-bit protected mode with flat segments and no paging.
/// The code is position independent; it is placed at <see cref="LoadAddress"/> and entered there.
/// </summary>
/// <param name="Name">A short name (sweep, hotcold, random, verify, fill, idle).</param>
/// <param name="Code">The machine code.</param>
/// <param name="LoadAddress">Where the code goes in guest-physical memory.</param>
/// <param name="Ports">The ports it writes.</param>
/// <param name="Writes">The guest-physical ranges it writes (the code itself is never among them).</param>
public sealed record GuestProgram(string Name, byte[] Code, ulong LoadAddress, GuestPorts Ports, IReadOnlyList<GuestRange> Writes)
{
    /// <summary>The range occupied by the code.</summary>
    public GuestRange CodeRange => new(LoadAddress, LoadAddress + (ulong)Code.Length);
}
