using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Kvm;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>ProtectedMode: the register state MicroVm vCPUs start in.</summary>
[TestClass]
public sealed class ProtectedModeTests
{
    [TestMethod]
    public void Flat32_SetsFlat4GiBCodeAndDataSegments()
    {
        KvmSpecialRegisters s = ProtectedMode.Flat32(default);
        Assert.AreEqual(ProtectedMode.CodeSelector, s.Cs.Selector);
        Assert.AreEqual((byte)11, s.Cs.Type, "execute/read, accessed");
        Assert.AreEqual((byte)1, s.Cs.Db, "32-bit code");
        Assert.AreEqual(0xFFFF_FFFFu, s.Cs.Limit);
        Assert.AreEqual((byte)1, s.Cs.G);
        foreach (KvmSegment data in new[] { s.Ds, s.Es, s.Fs, s.Gs, s.Ss })
        {
            Assert.AreEqual(ProtectedMode.DataSelector, data.Selector);
            Assert.AreEqual((byte)3, data.Type, "read/write, accessed");
            Assert.AreEqual(0UL, data.Base);
            Assert.AreEqual(0xFFFF_FFFFu, data.Limit);
        }
    }

    [TestMethod]
    public void Flat32_TurnsProtectionOnAndPagingOff_AndKeepsOtherCr0Bits()
    {
        KvmSpecialRegisters before = default;
        before.Cr0 = 0x8000_0010;
        before.Cr4 = 0x20;
        before.Efer = 0x500;
        KvmSpecialRegisters s = ProtectedMode.Flat32(before);
        Assert.AreEqual(0x11UL, s.Cr0);
        Assert.AreEqual(0UL, s.Cr4);
        Assert.AreEqual(0UL, s.Efer);
    }
}
