using System;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Vmm;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>
/// <see cref="MigrationPlanner"/> on real VMs: the curve of a sweep saturates at its set, and a VM
/// another tracker (a migration's) already tracks is refused with tracking left as it was.
/// </summary>
[TestClass]
public sealed class MigrationPlannerVmTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong SetPages = 4 * MiB / 4096;

    private static readonly MigrationPlannerOptions Short = new() { Marks = [.. new[] { 0.1, 0.2, 0.5, 1.0 }.Select(TimeSpan.FromSeconds)] };

    [TestMethod]
    [TestCategory("Kvm")]
    public async Task MicroVm_SweepCurveSaturatesAtItsSet_AndAVmAnotherTrackerTracksIsRefused()
    {
        KvmRequirement.Require();
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 32 * MiB, ManualDirtyLogProtect = true });
        vm.Load(GuestPrograms.Sweep(MiB, 5 * MiB));
        vm.Start();
        TestVms.WaitForPass(vm, 1);

        await AssertObservesAndRefusesAsync(vm, "Dirty logging is already on");
    }

    [TestMethod]
    public async Task HostVm_SweepCurveSaturatesAtItsSet_AndAVmAnotherTrackerTracksIsRefused()
    {
        WriteTrackingRequirement.Require();
        using var vm = new HostVm(32 * MiB);
        vm.Load(HostWorkload.Sweep(MiB, 5 * MiB));
        vm.SetPaceLimit(25_000);
        vm.Start();
        Assert.IsTrue(vm.WaitForPass(1, TestVms.PassTimeout));

        await AssertObservesAndRefusesAsync(vm, "already");
    }

    private static async Task AssertObservesAndRefusesAsync(IWorkloadVm vm, string refusal)
    {
        var planner = new MigrationPlanner(Short);
        using (IDirtyPageTracker migrating = vm.CreateTracker())
        {
            migrating.Start();
            using IDirtyPageTracker second = vm.CreateTracker();
            var refused = await Assert.ThrowsExactlyAsync<ObservationRefusedException>(() => planner.ObserveAsync(second));
            StringAssert.Contains(refused.Message, refusal);
            Assert.IsTrue(migrating.IsTracking, "the other tracker keeps tracking");
            Assert.IsFalse(second.IsTracking);
            migrating.Stop();
        }

        using IDirtyPageTracker tracker = vm.CreateTracker();
        DirtyObservation seen = await planner.ObserveAsync(tracker);

        long[] pages = [.. seen.Curve.Points.Select(p => p.DistinctPages)];
        string curve = string.Join(", ", pages);
        Assert.HasCount(4, pages);
        Assert.IsTrue(pages[0] > 0, curve);
        Assert.IsTrue(pages[^1] is >= (long)SetPages and <= (long)SetPages + 16, $"the sweep's {SetPages} pages (and the program's): {curve}");
        Assert.IsFalse(tracker.IsTracking);
        Assert.IsTrue(seen.PopulatedPages >= SetPages, seen.PopulatedPages.ToString());
        Assert.AreEqual(!tracker.FinalHarvestRearms, seen.FinalHarvestCost is { } f && f > TimeSpan.Zero, $"a read-only final harvest is timed: {seen.FinalHarvestCost}");
    }
}
