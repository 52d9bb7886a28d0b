using System;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;
using MigrateKit.Vmm;
using static MigrateKit.IntegrationTests.TestSupport.TestVms;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>A MicroVm that booted a boot-sector image migrates to another MicroVm over loopback TCP.</summary>
[TestClass]
[TestCategory("Kvm")]
public sealed class BootedMigrationTests
{
    private const ulong Memory = 64 * MiB;
    private const ulong SweepStart = BootSector.MinimumWriteAddress;
    private const ulong SweepEnd = SweepStart + (8 * MiB);

    [TestInitialize]
    public void RequireKvm() => KvmRequirement.Require();

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task BootedSweep_MigratesOverTcp_ByteForByte_AndKeepsReportingPassesOnTheDestination()
    {
        using MicroVm source = MicroVm.Create(new MicroVmOptions { MemorySize = Memory, Ports = GuestPorts.Com1, ManualDirtyLogProtect = true });
        source.Boot(GuestPrograms.Sweep(SweepStart, SweepEnd, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress));
        source.Start();
        WaitForPass(source, 3);

        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        var receiver = new MigrationReceiver(hello => MicroVm.Create(new MicroVmOptions { Regions = hello.Regions, VcpuCount = hello.VcpuCount, Ports = GuestPorts.Com1 }));
        Task<ReceiveResult> receiving = receiver.ReceiveAsync(listener);
        MigrationReport report;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress))
        {
            using IDirtyPageTracker tracker = source.CreateTracker();
            report = await new PreCopyEngine(source, tracker).MigrateAsync(connection);
        }

        ReceiveResult received = await receiving;
        using var destination = (MicroVm)received.Target!;
        Assert.AreEqual(MigrationStatus.Completed, report.Status, $"source: {report.Reason}; destination: {received.Reason}");
        Assert.AreEqual(MigrationStatus.Completed, received.Status, received.Reason);
        Assert.IsTrue(report.DigestsMatched == true, "the destination's memory differs from the source's at the switchover");
        Assert.IsTrue(report.SourceMemoryVerified == true, "the source's memory differs from what was sent: a write was missed");
        Assert.IsFalse(source.IsRunning);

        // What the running destination no longer writes is the source's, byte for byte: the vector
        // table and disk handler, the image with its GDT, and everything above the sweep.
        AssertSame(source, destination, 0, (BootSector.StackTop - 1) & ~0xFFFUL);
        AssertSame(source, destination, BootSector.BootAddress, SweepStart);
        AssertSame(source, destination, SweepEnd, Memory);

        // Resumed in protected mode where the source stopped: it goes on counting its passes.
        uint passes = source.GetStatus()[0].Passes;
        Assert.IsTrue(destination.WaitForPass(passes + 3, PassTimeout), $"stuck at {destination.GetStatus()[0]} (the source stopped at pass {passes})");
        Assert.IsNull(destination.GetStatus()[0].Fault);
    }

    private static void AssertSame(MicroVm source, MicroVm destination, ulong start, ulong end)
    {
        ReadOnlySpan<byte> a = source.Memory.GetSpan(start, (int)(end - start));
        ReadOnlySpan<byte> b = destination.Memory.GetSpan(start, (int)(end - start));
        int mismatch = a.CommonPrefixLength(b);
        Assert.AreEqual(a.Length, mismatch, $"[0x{start:x}, 0x{end:x}) differs first at 0x{start + (ulong)mismatch:x}");
    }
}
