using System;
using System.Buffers.Binary;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Kvm;
using MigrateKit.Tests.Guests;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>RealMode: the state and the little firmware a booted image starts with.</summary>
[TestClass]
public sealed class RealModeTests
{
    [TestMethod]
    public void WriteFirmware_PointsInt13hAtTheHandler_AndWritesNothingElse()
    {
        byte[] low = new byte[0x1000];
        RealMode.WriteFirmware(low);
        Assert.AreEqual(RealMode.DiskHandlerAddress, BinaryPrimitives.ReadUInt16LittleEndian(low.AsSpan(0x13 * 4)), "vector offset");
        Assert.AreEqual((ushort)0, BinaryPrimitives.ReadUInt16LittleEndian(low.AsSpan((0x13 * 4) + 2)), "vector segment");
        CollectionAssert.AreEqual(RealMode.DiskHandler.ToArray(), low.AsSpan(RealMode.DiskHandlerAddress, RealMode.DiskHandler.Length).ToArray());

        // Every other byte stays zero: only one vector and the handler.
        low.AsSpan(0x13 * 4, 4).Clear();
        low.AsSpan(RealMode.DiskHandlerAddress, RealMode.DiskHandler.Length).Clear();
        Assert.IsFalse(low.AsSpan().ContainsAnyExcept((byte)0));
    }

    [TestMethod]
    public void DiskHandler_ReportsSuccessAndReturnsWithoutRestoringFlags()
    {
        string[] code = Objdump.Disassemble(RealMode.DiskHandler.ToArray(), "i8086", RealMode.DiskHandlerAddress);
        CollectionAssert.AreEqual(new[] { "xor ah,ah", "clc", "retf 0x2" }, code);
    }

    [TestMethod]
    public void WriteFirmware_IntoTooLittleMemory_Throws() =>
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => RealMode.WriteFirmware(new byte[RealMode.FirmwareLength - 1]));

    [TestMethod]
    public void Enter_SetsSixteenBitSegmentsAtZero_AndTheVectorTable()
    {
        KvmSpecialRegisters s = RealMode.Enter(ProtectedMode.Flat32(default));
        foreach (KvmSegment segment in new[] { s.Cs, s.Ds, s.Es, s.Fs, s.Gs, s.Ss })
        {
            Assert.AreEqual((ushort)0, segment.Selector);
            Assert.AreEqual(0UL, segment.Base);
            Assert.AreEqual(0xFFFFu, segment.Limit);
            Assert.AreEqual((byte)0, segment.Db, "16-bit");
            Assert.AreEqual((byte)0, segment.G, "byte granular");
            Assert.AreEqual((byte)1, segment.Present);
            Assert.AreEqual((byte)1, segment.S);
        }

        Assert.AreEqual((byte)11, s.Cs.Type, "code: execute/read, accessed");
        Assert.AreEqual((byte)3, s.Ds.Type, "data: read/write, accessed");
        Assert.AreEqual(0UL, s.Idt.Base);
        Assert.AreEqual((ushort)0x3FF, s.Idt.Limit);
    }

    [TestMethod]
    public void Enter_TurnsProtectionAndPagingOff_AndKeepsOtherCr0Bits()
    {
        KvmSpecialRegisters before = default;
        before.Cr0 = 0xE000_0011;
        before.Cr4 = 0x20;
        before.Efer = 0x500;
        KvmSpecialRegisters s = RealMode.Enter(before);
        Assert.AreEqual(0x6000_0010UL, s.Cr0);
        Assert.AreEqual(0UL, s.Cr4);
        Assert.AreEqual(0UL, s.Efer);
    }

    [TestMethod]
    public void Registers_EnterTheBootSectorWithTheBootDriveInDl()
    {
        KvmRegisters r = RealMode.Registers();
        Assert.AreEqual(BootSector.BootAddress, r.Rip);
        Assert.AreEqual(0x80UL, r.Rdx);
        Assert.AreEqual(0x2UL, r.Rflags, "interrupts off, the reserved bit set");
    }

    [TestMethod]
    public void CheckImage_AcceptsWhatBootSectorBuilds()
    {
        GuestProgram sweep = GuestPrograms.Sweep(BootSector.MinimumWriteAddress, 2 * BootSector.MinimumWriteAddress, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress);
        RealMode.CheckImage(BootSector.Build(sweep));
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(511)]
    [DataRow(1000)]
    [DataRow(129 * 512)]
    public void CheckImage_RejectsPartialOrTooManySectors(int length)
    {
        byte[] image = new byte[length];
        if (length >= 512)
        {
            image[510] = 0x55;
            image[511] = 0xAA;
        }

        var ex = Assert.ThrowsExactly<ArgumentException>(() => RealMode.CheckImage(image));
        StringAssert.Contains(ex.Message, "sectors");
    }

    [TestMethod]
    public void CheckImage_RejectsAnImageWithoutTheBootSignature()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => RealMode.CheckImage(new byte[1024]));
        StringAssert.Contains(ex.Message, "0x55 0xAA");
    }
}
