using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Migration;
using MigrateKit.Transport;
using MigrateKit.Vmm;
using static MigrateKit.IntegrationTests.TestSupport.TestVms;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>The scenarios on MicroVms on real KVM, plus the dirty ring.</summary>
[TestClass]
[TestCategory("Kvm")]
public sealed class MigrationTests : LiveMigrationTests
{
    [TestInitialize]
    public void RequireKvm() => KvmRequirement.Require();

    [TestMethod]
    [DataRow("sweep")]
    [DataRow("hotcold")]
    [DataRow("random")]
    [DataRow("verify")]
    [DataRow("fill")]
    [DataRow("phased")]
    [DataRow("bursty")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task EveryWorkload_WithTheDirtyRing_MigratesByteForByte(string workload)
    {
        _ring = true;
        using IWorkloadVm source = StartWorkload(workload);
        await MigrateInMemoryAndCheck(source, new MigrationOptions { BandwidthLimit = 400L << 20 }, workload == "verify");
    }

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task TightLimit_WithTheDirtyRing_IsKeptOrEndsByPolicy_NeverSwitchesOverAboveAQuarterMore()
    {
        _ring = true;
        await AssertDowntimePromise(TimeSpan.FromMilliseconds(30));
    }

    private bool _ring;

    protected override IWorkloadVm StartSource(ulong memory, string workload, ulong start, ulong end)
    {
        GuestProgram program = workload switch
        {
            "sweep" => GuestPrograms.Sweep(start, end),
            "hotcold" => GuestPrograms.HotCold(new GuestRange(start, end), new GuestRange(end, end + (60 * MiB)), 1000),
            "random" => GuestPrograms.RandomWrites(start, end, 12345),
            "verify" => GuestPrograms.Verifier(start, end),
            "phased" => GuestPrograms.Phased(start, end, start + ((end - start) / 4), PhasedGrowAfter),
            "bursty" => GuestPrograms.Bursty(start, end, BurstyQuietTicks(start, end)),
            _ => GuestPrograms.Fill(start, end),
        };
        MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = memory, DirtyRingBytes = _ring ? 256 * 1024 : 0, ManualDirtyLogProtect = !_ring });
        try
        {
            vm.Load(program);
            vm.Start();
            WaitForPass(vm, 1);
            if (program.Name == "fill")
            {
                Assert.IsTrue(SpinWait.SpinUntil(() => vm.GetStatus()[0].Halted, TimeSpan.FromSeconds(60)), "fill did not finish");
            }

            return vm;
        }
        catch
        {
            // The test gets no VM to dispose of when the start fails.
            vm.Dispose();
            throw;
        }
    }

    protected override IMigrationTarget CreateTarget(MigrationHello hello) =>
        MicroVm.Create(new MicroVmOptions { Regions = hello.Regions, VcpuCount = hello.VcpuCount });
}
