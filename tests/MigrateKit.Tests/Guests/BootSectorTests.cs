using System;
using System.Buffers.Binary;
using System.Linq;
using System.Text;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;

namespace MigrateKit.Tests.Guests;

/// <summary>
/// BootSector: the image layout, the stub's code (against objdump) and data, and the checks on the
/// program. Booting the images under QEMU is in the integration tests.
/// </summary>
[TestClass]
public sealed class BootSectorTests
{
    private const ulong MiB = 1UL << 20;

    [TestMethod]
    public void Constants_DescribeTheMemoryMap()
    {
        Assert.AreEqual(512, BootSector.SectorSize);
        Assert.AreEqual(0x7C00UL, BootSector.BootAddress);
        Assert.AreEqual(0x7E00UL, BootSector.ProgramAddress, "the sector after the stub");
        Assert.AreEqual(0x7C00UL, BootSector.StackTop);
        Assert.AreEqual(0x10_0000UL, BootSector.MinimumWriteAddress);
        ulong end = BootSector.ProgramAddress + (ulong)BootSector.MaxProgramLength;
        Assert.AreEqual(0x1_7C00UL, end, "the longest program ends far below the EBDA at 0x9FC00");
    }

    [TestMethod]
    public void Image_IsTheStub_ThenTheProgramFromSectorOne_WithTheBootSignature()
    {
        GuestProgram program = GuestPrograms.Sweep(MiB, 100 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress);
        byte[] image = BootSector.Build(program);

        Assert.HasCount(1024, image);
        Assert.AreEqual(0x55, image[510]);
        Assert.AreEqual(0xAA, image[511]);
        Assert.AreSequenceEqual(BootSector.Stub(1), image[..512]);
        Assert.AreSequenceEqual(program.Code, image[512..(512 + program.Code.Length)]);
        Assert.IsTrue(image.AsSpan(512 + program.Code.Length).IndexOfAnyExcept((byte)0) < 0, "zero padding");
    }

    [TestMethod]
    [DataRow(1, 1024)]
    [DataRow(511, 1024)]
    [DataRow(512, 1024)]
    [DataRow(513, 1536)]
    [DataRow(2000, 2560)]
    [DataRow(BootSector.MaxProgramLength, 128 * 512)]
    public void ImageSize_IsWholeSectors_AndThePacketReadsExactlyTheProgramsSectors(int codeLength, int imageLength)
    {
        byte[] image = BootSector.Build(Raw(codeLength));
        Assert.HasCount(imageLength, image);

        BootSector.StubLayout stub = BootSector.BuildStub((imageLength / 512) - 1);
        Assert.AreSequenceEqual(stub.Sector, image[..512]);
        ReadOnlySpan<byte> dap = image.AsSpan(stub.DiskAddressPacket, 16);
        Assert.AreEqual(0x10, dap[0], "packet size");
        Assert.AreEqual(0, dap[1]);
        Assert.AreEqual((imageLength / 512) - 1, BinaryPrimitives.ReadUInt16LittleEndian(dap[2..]), "sectors");
        Assert.AreEqual(0, BinaryPrimitives.ReadUInt16LittleEndian(dap[4..]), "buffer offset");
        Assert.AreEqual(0x07E0, BinaryPrimitives.ReadUInt16LittleEndian(dap[6..]), "buffer segment: 0x07E0:0 = 0x7E00");
        Assert.AreEqual(1UL, BinaryPrimitives.ReadUInt64LittleEndian(dap[8..]), "from LBA 1");
        Assert.AreEqual(0, stub.DiskAddressPacket % 4, "aligned");
    }

    [TestMethod]
    public void Gdt_IsNull_FlatCode_FlatData_AndGdtrPointsAtIt()
    {
        BootSector.StubLayout stub = BootSector.BuildStub(1);
        Assert.AreEqual(0, stub.Gdt % 8, "aligned");
        ulong Descriptor(int i) => BinaryPrimitives.ReadUInt64LittleEndian(stub.Sector.AsSpan(stub.Gdt + (8 * i)));
        Assert.AreEqual(0UL, Descriptor(0));
        Assert.AreEqual(0x00CF_9A00_0000_FFFFUL, Descriptor(1), "0x08: base 0, limit 0xFFFFF pages, present, ring 0, code execute/read, 32-bit");
        Assert.AreEqual(0x00CF_9200_0000_FFFFUL, Descriptor(2), "0x10: base 0, limit 0xFFFFF pages, present, ring 0, data read/write, 32-bit");
        Assert.AreEqual(23, BinaryPrimitives.ReadUInt16LittleEndian(stub.Sector.AsSpan(stub.Gdtr)), "limit: three descriptors");
        Assert.AreEqual((uint)BootSector.BootAddress + (uint)stub.Gdt, BinaryPrimitives.ReadUInt32LittleEndian(stub.Sector.AsSpan(stub.Gdtr + 2)), "base");
    }

    [TestMethod]
    public void ErrorText_IsNulTerminated_AndFitsBeforeTheSignature()
    {
        BootSector.StubLayout stub = BootSector.BuildStub(1);
        byte[] text = Encoding.ASCII.GetBytes(BootSector.DiskErrorText + "\0");
        Assert.AreSequenceEqual(text, stub.Sector[stub.ErrorText..(stub.ErrorText + text.Length)]);
        Assert.IsLessThanOrEqualTo(510, stub.ErrorText + text.Length);
    }

    [TestMethod]
    public void Stub_Disassembles_AsRealModeSetUp_DiskRead_AndTheSwitchToProtectedMode()
    {
        BootSector.StubLayout stub = BootSector.BuildStub(3);
        string At(int offset) => Objdump.Hex(BootSector.BootAddress + (ulong)offset);

        string[] real = Objdump.Disassemble(stub.Sector, "i8086", BootSector.BootAddress, 0, stub.ProtectedModeEntry);
        string[] expectedReal =
        [
            "cli",
            "cld",
            "xor ax,ax",
            "mov ds,ax",
            "mov es,ax",
            "mov ss,ax",
            "mov sp,0x7c00",
            "jmp 0x0:0x7c12",
            "in al,0x92",
            "or al,0x2",
            "and al,0xfe",
            "out 0x92,al",
            $"mov si,{At(stub.DiskAddressPacket)}",
            "mov ah,0x42",
            "int 0x13",
            "jb 0x7c39",
            "cli",
            $"lgdtw ds:{At(stub.Gdtr)}",
            "mov eax,cr0",
            "or al,0x1",
            "mov cr0,eax",
            $"jmp 0x8:{At(stub.ProtectedModeEntry)}",
            $"mov si,{At(stub.ErrorText)}",     // 0x7c39: the disk read failed
            "mov dx,0x3f8",
            "lods al,BYTE PTR ds:[si]",
            "test al,al",
            "je 0x7c47",
            "out dx,al",
            "jmp 0x7c3f",
            "hlt",                              // 0x7c47
            "jmp 0x7c47",
        ];
        Assert.AreEqual(string.Join('\n', expectedReal), string.Join('\n', real));

        string[] protectedMode = Objdump.Disassemble(stub.Sector, "i386", BootSector.BootAddress, stub.ProtectedModeEntry, stub.Gdt);
        string[] expectedProtected =
        [
            "mov eax,0x10",
            "mov ds,eax",
            "mov es,eax",
            "mov fs,eax",
            "mov gs,eax",
            "mov ss,eax",
            "mov esp,0x7c00",
            "jmp 0x7e00",
        ];
        Assert.AreEqual(string.Join('\n', expectedProtected), string.Join('\n', protectedMode.Where(i => i != "add BYTE PTR [eax],al").ToArray()), "then only alignment zeros");
    }

    [TestMethod]
    public void Stub_DiffersOnlyInTheSectorCount()
    {
        BootSector.StubLayout one = BootSector.BuildStub(1);
        BootSector.StubLayout many = BootSector.BuildStub(BootSector.MaxProgramSectors);
        int[] differing = Enumerable.Range(0, 512).Where(i => one.Sector[i] != many.Sector[i]).ToArray();
        Assert.AreSequenceEqual(new[] { one.DiskAddressPacket + 2 }, differing);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => BootSector.BuildStub(0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => BootSector.BuildStub(BootSector.MaxProgramSectors + 1));
    }

    [TestMethod]
    public void EveryProgram_WithItsWorkingSetAbove1MiB_Builds()
    {
        const ulong At = BootSector.ProgramAddress;
        GuestPorts com1 = GuestPorts.Com1;
        GuestProgram[] programs =
        [
            GuestPrograms.Sweep(MiB, 100 * MiB, ports: com1, loadAddress: At),
            GuestPrograms.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(2 * MiB, 8 * MiB), 4, com1, At),
            GuestPrograms.RandomWrites(MiB, 2 * MiB, 5, com1, At),
            GuestPrograms.Verifier(MiB, 100 * MiB, com1, At),
            GuestPrograms.Fill(MiB, 2 * MiB, com1, At),
            GuestPrograms.Idle(com1, At),
            GuestPrograms.Sweep(MiB, 2 * MiB, loadAddress: At),   // dword reports: legal, if unseen under QEMU
        ];

        foreach (GuestProgram p in programs)
        {
            byte[] image = BootSector.Build(p);
            Assert.AreEqual(0, image.Length % 512, p.Name);
            Assert.AreSequenceEqual(p.Code, image[512..(512 + p.Code.Length)], p.Name);
        }
    }

    [TestMethod]
    public void AProgramBuiltForAnotherAddress_IsRejected()
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => BootSector.Build(GuestPrograms.Sweep(MiB, 2 * MiB, ports: GuestPorts.Com1)));
        Assert.AreEqual("program", ex.ParamName);
        Assert.Contains("0x1000", ex.Message);
        Assert.Contains("BootSector.ProgramAddress", ex.Message);
    }

    [TestMethod]
    [DataRow(0x8_0000UL, 0x9_0000UL)]     // conventional memory
    [DataRow(0xA_0000UL, 0xC_0000UL)]     // video memory
    [DataRow(0xF_F000UL, 0x20_0000UL)]    // straddles 1 MiB
    [DataRow(0x1_0000UL, 0x2_0000UL)]     // over the stack and the image
    public void AWorkingSetBelow1MiB_IsRejected(ulong start, ulong end)
    {
        GuestProgram p = GuestPrograms.Sweep(start, end, ports: GuestPorts.Com1, loadAddress: 0x20_0000);
        p = p with { LoadAddress = BootSector.ProgramAddress };
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => BootSector.Build(p));
        Assert.AreEqual("program", ex.ParamName);
        Assert.Contains("below 1 MiB", ex.Message);
        Assert.Contains($"0x{start:x}", ex.Message);
    }

    [TestMethod]
    public void AWorkingSetFromExactly1MiB_IsAccepted_AndTheSecondRangeIsCheckedToo()
    {
        _ = BootSector.Build(GuestPrograms.Sweep(BootSector.MinimumWriteAddress, 2 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress));

        GuestProgram hotCold = GuestPrograms.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(0xB_0000, 0xB_1000), 2, GuestPorts.Com1, 0x30_0000)
            with
        { LoadAddress = BootSector.ProgramAddress };
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => BootSector.Build(hotCold));
        Assert.Contains("0xb0000", ex.Message);
    }

    [TestMethod]
    public void AProgramLongerThan127Sectors_IsRejected()
    {
        _ = BootSector.Build(Raw(BootSector.MaxProgramLength));
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => BootSector.Build(Raw(BootSector.MaxProgramLength + 1)));
        Assert.AreEqual("program", ex.ParamName);
        Assert.Contains("127 sectors", ex.Message);
        Assert.ThrowsExactly<ArgumentNullException>(() => BootSector.Build(null!));
    }

    /// <summary>A program of <paramref name="length"/> bytes (hlt), at the boot image's address.</summary>
    private static GuestProgram Raw(int length) =>
        new("raw", Enumerable.Repeat((byte)0xF4, length).ToArray(), BootSector.ProgramAddress, GuestPorts.Com1, []);
}
