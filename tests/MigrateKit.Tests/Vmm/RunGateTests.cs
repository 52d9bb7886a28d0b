using System;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>RunGate: pausing, parking and stopping the guest-running threads of a VM.</summary>
[TestClass]
public sealed class RunGateTests
{
    // Only a bound on a broken test: every wait below ends on a signal, not on time.
    private static readonly TimeSpan Hang = TimeSpan.FromMinutes(1);

    [TestMethod]
    public void Pause_WaitsUntilTheThreadParks_AndResumeLetsItGoOn()
    {
        var gate = new RunGate();
        gate.Starting();
        gate.SetPause(true);
        var thread = new Thread(() => gate.Park(static () => false));
        thread.Start();
        lock (gate.Lock)
        {
            gate.WaitUntilNoneRunning();
        }

        Assert.AreEqual(0, gate.Running);
        gate.SetPause(false);
        Assert.IsTrue(thread.Join(Hang));
        Assert.AreEqual(1, gate.Running, "an unparked thread runs again");
    }

    [TestMethod]
    public void Park_WhileTheHoldIsTrue_LastsUntilTheStop()
    {
        var gate = new RunGate();
        gate.Starting();
        var thread = new Thread(() => gate.Park(static () => true));
        thread.Start();
        lock (gate.Lock)
        {
            gate.WaitUntilNoneRunning();
        }

        gate.SetPause(false);
        Assert.IsTrue(thread.IsAlive, "a halted thread stays parked without a pause");
        gate.RequestStop();
        Assert.IsTrue(thread.Join(Hang));
        Assert.IsTrue(gate.StopRequested);
    }

    [TestMethod]
    public void WaitForRelease_HoldsAThreadStartedAhead_UntilReleased_OrUntilTheStop()
    {
        var gate = new RunGate();
        bool released = false;
        bool? ran = null;
        var thread = new Thread(() => ran = gate.WaitForRelease(() => released));
        thread.Start();
        Assert.IsFalse(thread.Join(50), "it waits until released");
        lock (gate.Lock)
        {
            released = true;
            Monitor.PulseAll(gate.Lock);
        }

        Assert.IsTrue(thread.Join(Hang));
        Assert.IsTrue(ran);
        Assert.AreEqual(0, gate.Running, "a released thread is counted by whoever released it");

        bool? left = null;
        var unused = new Thread(() => left = gate.WaitForRelease(static () => false));
        unused.Start();
        gate.RequestStop();
        Assert.IsTrue(unused.Join(Hang));
        Assert.IsFalse(left, "a stop ends the wait unreleased");
    }

    [TestMethod]
    public void Hold_ReturnsAtOnce_WhileAPauseIsRequested()
    {
        var gate = new RunGate();
        gate.SetPause(true);
        gate.Hold(Timeout.InfiniteTimeSpan);
        Assert.IsTrue(gate.PauseRequested);
    }

    [TestMethod]
    public void Hold_EndsAtTheStop()
    {
        var gate = new RunGate();
        var thread = new Thread(() => gate.Hold(Timeout.InfiniteTimeSpan));
        thread.Start();
        gate.RequestStop();
        Assert.IsTrue(thread.Join(Hang));
    }

    [TestMethod]
    public void Report_WakesAThreadWaitingOnTheLock()
    {
        var gate = new RunGate();
        bool reported = false;
        var waiter = new Thread(() =>
        {
            lock (gate.Lock)
            {
                while (!reported)
                {
                    Monitor.Wait(gate.Lock);
                }
            }
        });
        waiter.Start();
        gate.Report(() => reported = true);
        Assert.IsTrue(waiter.Join(Hang));
    }

    [TestMethod]
    public void Ended_UncountsTheThread()
    {
        var gate = new RunGate();
        gate.Starting();
        gate.Starting();
        gate.Ended();
        Assert.AreEqual(1, gate.Running);
    }
}
