using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Text;

namespace MigrateKit.Guests;

/// <summary>
/// Builds a bootable raw disk image that runs a <see cref="GuestProgram"/> on a PC BIOS: QEMU's
/// <c>pc</c> machine with SeaBIOS, under KVM or TCG, alone or in a libvirt domain. The guest
/// programs MigrateKit.Vmm's <c>MicroVm</c> runs thereby run unchanged in a full QEMU, and the same image boots in a
/// <c>MicroVm</c> too (<c>MicroVm.Boot</c>, which provides the little of a BIOS the stub calls); built with
/// <see cref="GuestPorts.Com1"/>, they report their passes as text on the first serial port.
/// </summary>
/// <remarks>
/// <para>Image layout, in 512-byte sectors:</para>
/// <code>
/// sector 0       boot stub: 16-bit code, 32-bit code, GDT, disk address packet, error text;
///                0x55 0xAA at offset 510
/// sectors 1..n   the program, zero-padded to whole sectors
/// </code>
/// <para>The BIOS loads sector 0 at 0x7C00 and jumps there in real mode with the boot drive in
/// DL. The stub disables interrupts, zeroes the segment registers, sets a stack below 0x7C00,
/// enables the A20 line (port 0x92), reads sectors 1..n to <see cref="ProgramAddress"/> with
/// <c>int 13h</c> AH=42h (the EDD extended read by LBA, which SeaBIOS provides), loads a flat
/// GDT (code 0x08, data 0x10: base 0, limit 4 GiB), sets CR0.PE, far-jumps into 32-bit code, loads
/// the data selector into DS, ES, FS, GS and SS, sets ESP to <see cref="StackTop"/> and jumps to the
/// program with interrupts still disabled (there is no IDT) and paging off. If the disk read fails
/// it writes <c>boot: disk read failed</c> to COM1 and halts.</para>
/// <para>The program always starts in sector 1, never after the stub in sector 0: its address is
/// then one constant the caller knows before building it, and every image takes the same path
/// through the stub. Memory below 1 MiB holds the interrupt vector table and BIOS data
/// (0x0–0x4FF), the stack (below 0x7C00), the boot sector (0x7C00), the program (from 0x7E00) and
/// above 0x9FC00 the BIOS's own data, video memory and ROMs, so a program's working set must lie
/// at or above <see cref="MinimumWriteAddress"/>, and inside the guest's RAM (which the image
/// cannot know: give the domain enough memory).</para>
/// </remarks>
public static class BootSector
{
    /// <summary>The size of a disk sector, and the unit of the image's size.</summary>
    public const int SectorSize = 512;

    /// <summary>Where the BIOS loads sector 0 (the stub) and enters it.</summary>
    public const ulong BootAddress = 0x7C00;

    /// <summary>
    /// Where the program is loaded (sector 1 onwards) and entered: build programs with
    /// <c>loadAddress: BootSector.ProgramAddress</c>.
    /// </summary>
    public const ulong ProgramAddress = BootAddress + SectorSize;

    /// <summary>ESP when the program is entered; the stack grows down through free conventional memory.</summary>
    public const ulong StackTop = BootAddress;

    /// <summary>The lowest address a program may write: everything below 1 MiB belongs to the firmware and the image.</summary>
    public const ulong MinimumWriteAddress = 0x10_0000;

    /// <summary>The most sectors one extended read may transfer (EDD: 127), so the longest program is 127 sectors.</summary>
    public const int MaxProgramSectors = 127;

    /// <summary>The longest program an image can hold, in bytes.</summary>
    public const int MaxProgramLength = MaxProgramSectors * SectorSize;

    /// <summary>The code segment selector of the stub's GDT.</summary>
    internal const ushort CodeSelector = 0x08;

    /// <summary>The data segment selector of the stub's GDT.</summary>
    internal const ushort DataSelector = 0x10;

    /// <summary>The text the stub writes to COM1 when the disk read fails.</summary>
    internal const string DiskErrorText = "boot: disk read failed\n";

    private const ushort Com1 = 0x3F8;

    /// <summary>
    /// Builds a raw disk image (a whole number of sectors) that boots into <paramref name="program"/>.
    /// Attach it as a raw IDE disk (QEMU: <c>-drive file=IMAGE,format=raw,if=ide</c>).
    /// </summary>
    /// <param name="program">A program built with <c>loadAddress: BootSector.ProgramAddress</c>
    /// whose working set lies at or above <see cref="MinimumWriteAddress"/>; usually with
    /// <see cref="GuestPorts.Com1"/> ports so its reports reach the serial port.</param>
    /// <returns>The image: the stub in sector 0, the program from sector 1.</returns>
    /// <exception cref="ArgumentException">The program was built for another address, is longer than
    /// <see cref="MaxProgramLength"/>, or writes below 1 MiB.</exception>
    public static byte[] Build(GuestProgram program)
    {
        ArgumentNullException.ThrowIfNull(program);
        if (program.LoadAddress != ProgramAddress)
        {
            throw new ArgumentException($"The {program.Name} program was built for 0x{program.LoadAddress:x}, but the boot image loads it at 0x{ProgramAddress:x}: build it with loadAddress: BootSector.ProgramAddress.", nameof(program));
        }

        if (program.Code.Length > MaxProgramLength)
        {
            throw new ArgumentException($"The {program.Name} program has {program.Code.Length} bytes; a boot image holds at most {MaxProgramLength} ({MaxProgramSectors} sectors).", nameof(program));
        }

        foreach (GuestRange w in program.Writes)
        {
            if (w.Start < MinimumWriteAddress)
            {
                throw new ArgumentException($"The {program.Name} program writes [0x{w.Start:x}, 0x{w.End:x}), below 1 MiB, where the BIOS data, the boot image, its stack, video memory and the ROMs live; its working set must start at or above 0x{MinimumWriteAddress:x}.", nameof(program));
            }
        }

        int sectors = (program.Code.Length + SectorSize - 1) / SectorSize;
        byte[] image = new byte[(1 + sectors) * SectorSize];
        Stub(sectors).CopyTo(image, 0);
        program.Code.CopyTo(image, SectorSize);
        return image;
    }

    /// <summary>Sector 0 for a program of <paramref name="programSectors"/> sectors, signature included.</summary>
    internal static byte[] Stub(int programSectors) => BuildStub(programSectors).Sector;

    /// <summary>Sector 0 and where its parts start (offsets into the sector).</summary>
    internal static StubLayout BuildStub(int programSectors)
    {
        if (programSectors is < 1 or > MaxProgramSectors)
        {
            throw new ArgumentOutOfRangeException(nameof(programSectors), programSectors, $"A boot image holds 1 to {MaxProgramSectors} program sectors.");
        }

        var s = new StubWriter();

        // ---- 16-bit real mode, at 0x7C00 ----
        s.Emit(0xFA);                                   // cli: the program has no IDT, so interrupts stay off
        s.Emit(0xFC);                                   // cld
        s.Emit(0x31, 0xC0);                             // xor ax, ax
        s.Emit(0x8E, 0xD8);                             // mov ds, ax
        s.Emit(0x8E, 0xC0);                             // mov es, ax
        s.Emit(0x8E, 0xD0);                             // mov ss, ax
        s.Emit(0xBC);                                   // mov sp, StackTop
        s.Emit16((ushort)StackTop);
        s.Emit(0xEA);                                   // jmp 0x0000:next: some BIOSes enter at 07C0:0000
        s.Emit16(s.Address(s.Position + 4));
        s.Emit16(0);
        s.Emit(0xE4, 0x92);                             // in al, 0x92: fast A20 gate
        s.Emit(0x0C, 0x02);                             // or al, 2: A20 on
        s.Emit(0x24, 0xFE);                             // and al, 0xfe: bit 0 would reset the machine
        s.Emit(0xE6, 0x92);                             // out 0x92, al
        s.Emit(0xBE);                                   // mov si, dap
        int dapRef = s.Reserve(2);
        s.Emit(0xB4, 0x42);                             // mov ah, 0x42: extended read; dl = boot drive from the BIOS
        s.Emit(0xCD, 0x13);                             // int 0x13
        s.Emit(0x72);                                   // jc fail
        int failRef = s.Reserve(1);
        s.Emit(0xFA);                                   // cli: the BIOS call may have enabled interrupts
        s.Emit(0x0F, 0x01, 0x16);                       // lgdt [gdtr]
        int gdtrRef = s.Reserve(2);
        s.Emit(0x0F, 0x20, 0xC0);                       // mov eax, cr0
        s.Emit(0x0C, 0x01);                             // or al, 1: CR0.PE
        s.Emit(0x0F, 0x22, 0xC0);                       // mov cr0, eax
        s.Emit(0x66, 0xEA);                             // jmp dword CodeSelector:pm32
        int pm32Ref = s.Reserve(4);
        s.Emit16(CodeSelector);

        s.PatchRel8(failRef);                           // fail: write the error text to COM1, halt
        s.Emit(0xBE);                                   // mov si, text
        int textRef = s.Reserve(2);
        s.Emit(0xBA);                                   // mov dx, 0x3f8
        s.Emit16(Com1);
        int print = s.Position;
        s.Emit(0xAC);                                   // lodsb
        s.Emit(0x84, 0xC0);                             // test al, al
        s.Emit(0x74, 0x03);                             // jz halt
        s.Emit(0xEE);                                   // out dx, al
        s.Emit(0xEB, (byte)(print - (s.Position + 2))); // jmp print
        int halt = s.Position;
        s.Emit(0xF4);                                   // halt: hlt
        s.Emit(0xEB, (byte)(halt - (s.Position + 2))); // jmp halt

        // ---- 32-bit protected mode, flat segments ----
        int pm32 = s.Position;
        s.Patch32(pm32Ref, s.Address(pm32));
        s.Emit(0xB8);                                   // mov eax, DataSelector
        s.Emit32(DataSelector);
        s.Emit(0x8E, 0xD8);                             // mov ds, eax
        s.Emit(0x8E, 0xC0);                             // mov es, eax
        s.Emit(0x8E, 0xE0);                             // mov fs, eax
        s.Emit(0x8E, 0xE8);                             // mov gs, eax
        s.Emit(0x8E, 0xD0);                             // mov ss, eax
        s.Emit(0xBC);                                   // mov esp, StackTop
        s.Emit32((uint)StackTop);
        s.Emit(0xE9);                                   // jmp ProgramAddress
        s.Emit32((uint)(ProgramAddress - s.Address(s.Position + 4)));

        // ---- data ----
        s.Align(8);
        int gdt = s.Position;
        s.Emit64(0);                                    // null descriptor
        s.Emit64(0x00CF_9A00_0000_FFFF);                // 0x08: code, base 0, limit 4 GiB, 32-bit, execute/read
        s.Emit64(0x00CF_9200_0000_FFFF);                // 0x10: data, base 0, limit 4 GiB, read/write
        int gdtr = s.Position;
        s.Patch16(gdtrRef, s.Address(gdtr));
        s.Emit16(3 * 8 - 1);                            // gdtr: limit
        s.Emit32(s.Address(gdt));                       //       base
        s.Align(4);
        int dap = s.Position;
        s.Patch16(dapRef, s.Address(dap));
        s.Emit(0x10, 0x00);                             // disk address packet: size 16, reserved
        s.Emit16((ushort)programSectors);               // sectors to read
        s.Emit16(0);                                    // buffer offset
        s.Emit16((ushort)(ProgramAddress >> 4));        // buffer segment: 0x07E0:0000 = ProgramAddress
        s.Emit64(1);                                    // first sector (LBA)
        int text = s.Position;
        s.Patch16(textRef, s.Address(text));
        s.Emit(Encoding.ASCII.GetBytes(DiskErrorText));
        s.Emit(0);

        return new StubLayout(s.ToSector(), pm32, gdt, gdtr, dap, text);
    }

    /// <summary>Sector 0 and the offsets of its parts.</summary>
    /// <param name="Sector">The 512 bytes, signature included.</param>
    /// <param name="ProtectedModeEntry">The first 32-bit instruction (the far jump's target).</param>
    /// <param name="Gdt">The GDT: null, code (0x08) and data (0x10) descriptors.</param>
    /// <param name="Gdtr">The 6-byte operand of <c>lgdt</c>.</param>
    /// <param name="DiskAddressPacket">The 16-byte packet for <c>int 13h</c> AH=42h.</param>
    /// <param name="ErrorText">The NUL-terminated disk error text.</param>
    internal readonly record struct StubLayout(byte[] Sector, int ProtectedModeEntry, int Gdt, int Gdtr, int DiskAddressPacket, int ErrorText);

    /// <summary>Sector 0 under construction: bytes, forward references and the boot signature.</summary>
    private sealed class StubWriter
    {
        private readonly List<byte> _bytes = new(SectorSize);

        internal int Position => _bytes.Count;

        /// <summary>The address of <paramref name="offset"/> once the BIOS has loaded the sector.</summary>
        internal ushort Address(int offset) => checked((ushort)(BootAddress + (ulong)offset));

        internal void Emit(params ReadOnlySpan<byte> bytes)
        {
            foreach (byte b in bytes)
            {
                _bytes.Add(b);
            }
        }

        internal void Emit16(ushort value) => Emit((byte)value, (byte)(value >> 8));

        internal void Emit32(uint value) => Emit((byte)value, (byte)(value >> 8), (byte)(value >> 16), (byte)(value >> 24));

        internal void Emit64(ulong value)
        {
            Emit32((uint)value);
            Emit32((uint)(value >> 32));
        }

        internal int Reserve(int length)
        {
            int at = Position;
            for (int i = 0; i < length; i++)
            {
                _bytes.Add(0);
            }

            return at;
        }

        internal void Align(int alignment)
        {
            while (Position % alignment != 0)
            {
                _bytes.Add(0);
            }
        }

        internal void Patch16(int at, ushort value)
        {
            _bytes[at] = (byte)value;
            _bytes[at + 1] = (byte)(value >> 8);
        }

        internal void Patch32(int at, uint value)
        {
            Patch16(at, (ushort)value);
            Patch16(at + 2, (ushort)(value >> 16));
        }

        /// <summary>Points the rel8 at <paramref name="at"/> to the current position.</summary>
        internal void PatchRel8(int at) => _bytes[at] = unchecked((byte)checked((sbyte)(Position - (at + 1))));

        internal byte[] ToSector()
        {
            if (Position > SectorSize - 2)
            {
                throw new InvalidOperationException($"The boot stub has {Position} bytes; it must leave the last two of the sector for the signature.");
            }

            byte[] sector = new byte[SectorSize];
            _bytes.CopyTo(sector);
            BinaryPrimitives.WriteUInt16LittleEndian(sector.AsSpan(SectorSize - 2), 0xAA55);
            return sector;
        }
    }
}
