using System;
using System.Buffers.Binary;
using MigrateKit.Guests;
using MigrateKit.Kvm;

namespace MigrateKit.Vmm;

/// <summary>
/// The state a PC BIOS leaves when it enters a boot sector, and the little of a BIOS that
/// <see cref="BootSector"/>'s stub calls: what <see cref="MicroVm.Boot(byte[], int)"/> sets up.
/// </summary>
internal static class RealMode
{
    /// <summary>The boot drive the BIOS passes in DL: the first hard disk.</summary>
    internal const byte BootDrive = 0x80;

    /// <summary>The disk services interrupt, whose AH=42h extended read the stub calls.</summary>
    internal const byte DiskInterrupt = 0x13;

    /// <summary>
    /// Where the disk handler lives: just above the BIOS data area, far below the stack the stub
    /// sets up under 0x7C00.
    /// </summary>
    internal const ushort DiskHandlerAddress = 0x500;

    /// <summary>The real-mode interrupt vector table: 256 far pointers at address 0.</summary>
    internal const ushort VectorTableLimit = (256 * 4) - 1;

    /// <summary>The bytes of firmware below the boot sector that <see cref="WriteFirmware"/> writes.</summary>
    internal const int FirmwareLength = DiskHandlerAddress + 6;

    // CR0 bits the BIOS leaves clear: protection and paging.
    private const ulong Cr0ProtectionEnable = 0x1;
    private const ulong Cr0Paging = 0x8000_0000;

    /// <summary>
    /// The disk handler: the image is in memory already (sector 0 at 0x7C00, the program right
    /// after it, where the stub's read would put it), so every call succeeds at once.
    /// </summary>
    /// <remarks><c>retf 2</c> rather than <c>iret</c>: the FLAGS the <c>int</c> pushed would bring back
    /// the caller's carry flag, and a clear carry is the success the stub checks.</remarks>
    internal static ReadOnlySpan<byte> DiskHandler =>
    [
        0x30, 0xE4,       // xor ah, ah: status 0
        0xF8,             // clc: success
        0xCA, 0x02, 0x00, // retf 2: return, dropping the FLAGS the int pushed
    ];

    /// <summary>
    /// Writes the vector table entry for <c>int 13h</c> and its handler into
    /// <paramref name="lowMemory"/>, guest memory from address 0 (at least <see cref="FirmwareLength"/> bytes).
    /// </summary>
    internal static void WriteFirmware(Span<byte> lowMemory)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lowMemory.Length, FirmwareLength);
        Span<byte> vector = lowMemory.Slice(DiskInterrupt * 4, 4);
        BinaryPrimitives.WriteUInt16LittleEndian(vector, DiskHandlerAddress); // offset
        BinaryPrimitives.WriteUInt16LittleEndian(vector[2..], 0);              // segment
        DiskHandler.CopyTo(lowMemory[DiskHandlerAddress..]);
    }

    /// <summary>
    /// Real mode as a BIOS enters a boot sector: every segment selector and base 0 with a 64 KiB
    /// limit (16-bit), CS:IP at 0:7C00 (with <see cref="Registers"/>), protection and paging off,
    /// the interrupt vector table at 0. Other fields (TR, LDT, the CR0 cache bits) keep what
    /// <paramref name="s"/> has, a vCPU's reset state.
    /// </summary>
    internal static KvmSpecialRegisters Enter(KvmSpecialRegisters s)
    {
        KvmSegment code = new()
        {
            Base = 0,
            Limit = 0xFFFF,
            Selector = 0,
            Type = 11,
            Present = 1,
            Dpl = 0,
            Db = 0,
            S = 1,
            L = 0,
            G = 0,
        };
        KvmSegment data = code with { Type = 3 };
        s.Cs = code;
        s.Ds = data;
        s.Es = data;
        s.Fs = data;
        s.Gs = data;
        s.Ss = data;
        s.Idt = new KvmDescriptorTable { Base = 0, Limit = VectorTableLimit };
        s.Cr0 &= ~(Cr0ProtectionEnable | Cr0Paging);
        s.Cr4 = 0;
        s.Efer = 0;
        return s;
    }

    /// <summary>The general registers at the boot sector's first instruction: IP 0x7C00, DL the boot drive, interrupts off.</summary>
    internal static KvmRegisters Registers() => new()
    {
        Rip = BootSector.BootAddress,
        Rdx = BootDrive,
        Rsp = BootSector.StackTop,
        Rflags = 0x2,
    };

    /// <summary>Checks that <paramref name="image"/> looks like what <see cref="BootSector.Build"/> makes.</summary>
    /// <exception cref="ArgumentException">It is not whole sectors, holds too many, or lacks the boot signature.</exception>
    internal static void CheckImage(byte[] image)
    {
        int maxLength = (1 + BootSector.MaxProgramSectors) * BootSector.SectorSize;
        if (image.Length < BootSector.SectorSize || image.Length % BootSector.SectorSize != 0 || image.Length > maxLength)
        {
            throw new ArgumentException($"A boot image is whole {BootSector.SectorSize}-byte sectors, 1 to {maxLength / BootSector.SectorSize} of them; this one has {image.Length} bytes.", nameof(image));
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(BootSector.SectorSize - 2)) != 0xAA55)
        {
            throw new ArgumentException("The image's first sector lacks the boot signature 0x55 0xAA at offset 510.", nameof(image));
        }
    }
}
