namespace MigrateKit.Guests;

/// <summary>The two I/O ports a guest program talks to.</summary>
/// <param name="Pace">Written (one byte) after every page write, so the VMM can throttle the guest
/// there; null emits no pace writes (for VMMs that cannot hold a vCPU on an I/O exit).</param>
/// <param name="Status">Written (one dword) at the end of every pass with the pass number, and with
/// <c>0x80000000 | page index</c> when a self-check fails.</param>
/// <param name="SerialText">When true, <paramref name="Status"/> is the base of a 16550 UART (COM1 is
/// 0x3F8) and every report is written as text instead of a dword: the value as 8 lowercase hex
/// digits and <c>'\n'</c>, one <c>out dx, al</c> per character, each after the line status
/// register (base + 5) shows the transmit holding register empty (bit 5). Under QEMU a dword
/// <c>out</c> to the UART would land in four of its registers. A serial-text program calls a
/// subroutine, so it needs a stack: ESP must point above 16 writable bytes outside its working set
/// (<see cref="BootSector"/> provides one): MigrateKit.Vmm's <c>MicroVm</c> runs such programs as
/// boot images (<c>MicroVm.Boot</c>), collecting the text into reports as it does dwords.</param>
public readonly record struct GuestPorts(ushort? Pace, ushort Status, bool SerialText = false)
{
    /// <summary>The MicroVm defaults: pace at 0xE0, status at 0xE4.</summary>
    public static GuestPorts Default => new(0xE0, 0xE4);

    /// <summary>
    /// For guests under QEMU (see <see cref="BootSector"/>): no pace port, status as text on COM1
    /// (0x3F8), which a domain's <c>&lt;serial&gt;</c> device or QEMU's <c>-serial</c> captures.
    /// </summary>
    public static GuestPorts Com1 => new(null, 0x3F8, SerialText: true);

    /// <summary>The bit that marks a status value as a self-check failure.</summary>
    public const uint FailureFlag = 0x8000_0000;

    /// <summary>Offset of a 16550's line status register from its base port.</summary>
    internal const ushort LineStatusOffset = 5;

    /// <summary>Line status bit 5: the transmit holding register is empty.</summary>
    internal const byte TransmitHoldingEmpty = 0x20;
}
