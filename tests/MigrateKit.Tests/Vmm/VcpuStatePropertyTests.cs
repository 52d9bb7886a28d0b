using System;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Kvm;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>VcpuState.Deserialize on arbitrary bytes: a value or a <see cref="FormatException"/>, nothing else.</summary>
[TestClass]
public sealed class VcpuStatePropertyTests
{
    [TestMethod]
    public void RandomBytes_DecodeOrThrowFormatException()
    {
        Gen.Byte.Array[0, 4096].DecodeOnlyThrows<FormatException>(b => VcpuState.Deserialize(b));
    }

    [TestMethod]
    public void MutatedValidBlobs_DecodeOrThrowFormatException()
    {
        var regs = new KvmRegisters { Rip = 0x1000, Rflags = 2 };
        byte[] valid = VcpuState.Serialize([new VcpuState(0, regs, default), new VcpuState(1, regs, default, Running: false)]);
        ByteMutations.Of(valid).DecodeOnlyThrows<FormatException>(b => VcpuState.Deserialize(b));
    }
}
