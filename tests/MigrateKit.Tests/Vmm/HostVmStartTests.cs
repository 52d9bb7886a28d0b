using System;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>A HostVm's worker: readied ahead by the resume estimate, so a destination starts it by a wake.</summary>
[TestClass]
public sealed class HostVmStartTests
{
    private const ulong MiB = 1UL << 20;

    [TestMethod]
    public void TheEstimate_ReadiesAWaitingWorker_ThatWritesNothingUntilStart()
    {
        using var vm = new HostVm(8 * MiB);
        vm.Load(HostWorkload.Sweep(MiB, 2 * MiB));
        Assert.IsNull(vm.WorkerThread);

        TimeSpan cost = vm.EstimateResumeCost();
        Thread worker = vm.WorkerThread!;
        Assert.IsNotNull(worker);
        Assert.IsTrue(worker.IsAlive, "the readied worker waits");
        Assert.IsTrue(cost > TimeSpan.Zero && cost < TimeSpan.FromSeconds(1), $"estimate {cost}");

        // A second estimate measures again but readies no second worker.
        vm.EstimateResumeCost();
        Assert.AreSame(worker, vm.WorkerThread);

        Thread.Sleep(50);
        Assert.IsFalse(vm.IsRunning);
        Assert.AreEqual(0L, vm.GetStatus().PagesWritten, "a readied worker writes nothing before Start");

        // The state can still be restored before Start, as a destination does after the estimate.
        vm.RestoreDeviceState(vm.SaveDeviceState());
        vm.Start();
        Assert.AreSame(worker, vm.WorkerThread, "Start wakes the readied worker instead of starting another");
        Assert.IsTrue(vm.WaitForPass(2, TimeSpan.FromSeconds(30)), "the started worker makes passes");
        Assert.AreEqual(0L, vm.GetStatus().Failures);
        Assert.IsTrue(vm.Pause() < TimeSpan.FromSeconds(10));
        Assert.IsFalse(vm.IsRunning);
        vm.Resume();
        Assert.IsTrue(vm.IsRunning);
    }

    [TestMethod]
    public void AReadiedVm_DisposedUnstarted_EndsItsWaitingWorker()
    {
        var vm = new HostVm(8 * MiB);
        vm.Load(HostWorkload.Sweep(MiB, 2 * MiB));
        vm.EstimateResumeCost();
        Thread worker = vm.WorkerThread!;
        Assert.IsTrue(worker.IsAlive);

        vm.Dispose();
        Assert.IsTrue(worker.Join(TimeSpan.FromSeconds(10)), "the readied worker of a VM disposed unstarted ended");
        Assert.AreEqual(0L, vm.GetStatus().PagesWritten);
    }

    [TestMethod]
    public void AStoppedVm_RefusesToStart_AndItsEstimateReadiesNoWorker()
    {
        using var vm = new HostVm(8 * MiB);
        vm.Load(HostWorkload.Sweep(MiB, 2 * MiB));
        vm.Stop();
        vm.EstimateResumeCost();
        Assert.IsNull(vm.WorkerThread);
        InvalidOperationException ex = Assert.ThrowsExactly<InvalidOperationException>(vm.Start);
        StringAssert.Contains(ex.Message, "stopped");
    }

    [TestMethod]
    public void AStartedVm_IsEstimatedWithoutAnotherWorker()
    {
        using var vm = new HostVm(8 * MiB);
        vm.Load(HostWorkload.Sweep(MiB, 2 * MiB));
        vm.Start();
        Thread worker = vm.WorkerThread!;
        TimeSpan cost = vm.EstimateResumeCost();
        Assert.IsTrue(cost > TimeSpan.Zero && cost < TimeSpan.FromSeconds(1), $"estimate {cost}");
        Assert.AreSame(worker, vm.WorkerThread);
        Assert.ThrowsExactly<InvalidOperationException>(vm.Start);
    }
}
