using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Memory;
using MigrateKit.Tracking;
using MigrateKit.Vmm;

namespace MigrateKit.IntegrationTests.Readme;

/// <summary>The README's library example, kept compiling and true.</summary>
[TestClass]
[TestCategory("Kvm")]
public sealed class ReadmeExampleTests
{
    [TestInitialize]
    public void RequireKvm() => KvmRequirement.Require();

    [TestMethod]
    public void ReadmeTrackingExample_ReportsTheSweptPagesAsOneRun()
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 64UL << 20 });
        vm.Load(GuestPrograms.Sweep(start: 1UL << 20, end: 9UL << 20));

        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        Assert.IsTrue(vm.WaitForPass(2, TimeSpan.FromSeconds(10)));
        vm.Pause();

        DirtyBitmap[] dirty = tracker.Regions.Select(r => new DirtyBitmap(r.PageCount)).ToArray();
        HarvestResult result = tracker.Harvest(dirty);
        var runs = new List<PageRun>();
        foreach (PageRun run in dirty[0].EnumerateRuns())
        {
            runs.Add(run);
        }

        Assert.AreEqual(2048UL, result.DirtyPages);
        Assert.HasCount(1, runs);
        Assert.AreEqual(new PageRun(256, 2048), runs[0]);
    }
}
