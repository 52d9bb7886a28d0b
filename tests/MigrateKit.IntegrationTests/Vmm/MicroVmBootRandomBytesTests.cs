using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Vmm;
using static MigrateKit.IntegrationTests.TestSupport.TestVms;

namespace MigrateKit.IntegrationTests.Vmm;

/// <summary>The random-bytes guest of <c>bench vs-qemu</c>'s random-100mib scenario (1 MiB rewritten, as there), booted in a MicroVm on real KVM.</summary>
[TestClass]
[TestCategory("Kvm")]
public sealed class MicroVmBootRandomBytesTests
{
    private const ulong Start = BootSector.MinimumWriteAddress;
    private const ulong End = Start + MiB;
    private const uint Seed = 0x9E37_79B9;

    [TestInitialize]
    public void RequireKvm() => KvmRequirement.Require();

    [TestMethod]
    public void RandomBytesImage_Boots_ReportsPasses_AndEveryDwordHoldsTheDocumentedXorshiftValue()
    {
        using MicroVm vm = MicroVmBootTests.BootVm(End + MiB);
        vm.Boot(GuestPrograms.RandomBytes(Start, End, Seed, GuestPorts.Com1, BootSector.ProgramAddress));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        vm.Start();
        WaitForPass(vm, 1);
        Console.WriteLine($"pass1 {sw.ElapsedMilliseconds}");
        WaitForPass(vm, 2);
        Console.WriteLine($"pass2 {sw.ElapsedMilliseconds}");
        vm.Pause();
        VcpuStatus status = vm.GetStatus()[0];
        Assert.IsNull(status.Fault);

        // Pass p is reported and pass p + 1 may be under way: each dword holds its value of one or the other.
        const int Length = (int)(End - Start);
        byte[] passes = new byte[Length * (status.Passes + 1)];
        GuestPrograms.RandomBytesContent(passes, Seed);
        ReadOnlySpan<byte> completed = passes.AsSpan(Length * ((int)status.Passes - 1), Length), underWay = passes.AsSpan(Length * (int)status.Passes, Length);
        ReadOnlySpan<byte> memory = vm.Memory.GetSpan(Start, Length);
        int fromTheNextPass = 0;
        for (int i = 0; i < Length; i += 4)
        {
            uint actual = BitConverter.ToUInt32(memory.Slice(i, 4));
            bool next = memory.Slice(i, 4).SequenceEqual(underWay.Slice(i, 4));
            Assert.IsTrue(next || memory.Slice(i, 4).SequenceEqual(completed.Slice(i, 4)), $"0x{Start + (ulong)i:x} holds 0x{actual:x8}, neither pass {status.Passes}'s nor the next's value");
            fromTheNextPass += next ? 1 : 0;
        }

        Console.WriteLine($"paused after pass {status.Passes}, {fromTheNextPass} of {Length / 4} dwords already rewritten by the next");
    }
}
