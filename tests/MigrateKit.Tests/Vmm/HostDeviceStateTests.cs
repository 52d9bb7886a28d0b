using System;
using System.Buffers.Binary;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>HostDeviceState: the 96-byte device state of a HostVm.</summary>
[TestClass]
public sealed class HostDeviceStateTests
{
    private const ulong MiB = 1UL << 20;

    private static readonly HostWorkload HotCold = HostWorkload.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(2 * MiB, 6 * MiB), 7);

    [TestMethod]
    public void Read_ReturnsWhatWriteEncoded()
    {
        var state = new HostWorkerState { Pass = 9, Rng = 5, Position = 300, Failures = 2, FirstFailedPage = 17, PagesWritten = 12_345, Halted = true };
        byte[] bytes = HostDeviceState.Write(HotCold, state, started: true);
        Assert.HasCount(HostDeviceState.Size, bytes);
        Assert.AreEqual((byte)3, bytes[7], "halted and started");
        (HostWorkload w, HostWorkerState read) = HostDeviceState.Read(bytes);
        Assert.AreEqual(HotCold, w);
        Assert.AreEqual(state, read);
    }

    [TestMethod]
    public void Read_RejectsAnotherMagicLengthVersionOrKind()
    {
        byte[] valid = HostDeviceState.Write(HotCold, HostWorkerState.Initial(HotCold), started: false);
        Assert.ThrowsExactly<FormatException>(() => HostDeviceState.Read(valid.AsSpan(0, 95)));
        Assert.ThrowsExactly<FormatException>(() => HostDeviceState.Read(With(valid, b => b[0] ^= 1)));
        FormatException version = Assert.ThrowsExactly<FormatException>(() => HostDeviceState.Read(With(valid, b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(4), 2))));
        StringAssert.Contains(version.Message, "version 2");
        FormatException kind = Assert.ThrowsExactly<FormatException>(() => HostDeviceState.Read(With(valid, b => b[6] = 42)));
        StringAssert.Contains(kind.Message, "kind 42");
    }

    [TestMethod]
    public void CheckWorkload_ReportsAnInvalidWorkloadAsAFormatError()
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => HostDeviceState.CheckWorkload(HotCold with { ColdEvery = 0 }));
        StringAssert.Contains(ex.Message, "workload is invalid");
        Assert.IsInstanceOfType<ArgumentException>(ex.InnerException);
    }

    [TestMethod]
    [DataRow(0u, 0UL)]
    [DataRow(1u, 5UL * 256)]
    public void CheckFits_RejectsProgressOutsideThePass(uint pass, ulong position)
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => HostDeviceState.CheckFits(HotCold, new HostWorkerState { Pass = pass, Position = position }));
        StringAssert.Contains(ex.Message, "progress");
    }

    [TestMethod]
    public void CheckFits_AcceptsTheLastWriteOfAColdPass()
    {
        HostDeviceState.CheckFits(HotCold, new HostWorkerState { Pass = 1, Position = (5UL * 256) - 1 });
    }

    private static byte[] With(byte[] source, Action<byte[]> change)
    {
        byte[] copy = (byte[])source.Clone();
        change(copy);
        return copy;
    }
}
