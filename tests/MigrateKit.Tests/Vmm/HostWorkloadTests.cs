using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>HostWorkload's factories for the workloads whose dirtying changes while they run, and their checks.</summary>
[TestClass]
public sealed class HostWorkloadTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong Page = 4096;

    [TestMethod]
    public void Phased_KeepsTheEarlySetAndThePassesBeforeItGrows()
    {
        HostWorkload w = HostWorkload.Phased(MiB, 2 * MiB, MiB + (4 * Page), growAfter: 5);
        Assert.AreEqual(HostWorkloadKind.Phased, w.Kind);
        Assert.AreEqual(MiB + (4 * Page), w.EarlySet.End);
        Assert.AreEqual(5u, w.GrowAfter);
    }

    [TestMethod]
    public void Phased_RejectsAnEarlySetOutsideTheRange_OrNoEarlyPasses()
    {
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => HostWorkload.Phased(MiB, 2 * MiB, 3 * MiB, 5)).Message, "early set");
        Assert.ThrowsExactly<ArgumentException>(() => HostWorkload.Phased(MiB, 2 * MiB, MiB, 5), "an empty early set");
        Assert.ThrowsExactly<ArgumentException>(() => HostWorkload.Phased(MiB, 2 * MiB, MiB + 100, 5), "an unaligned early set");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => HostWorkload.Phased(MiB, 2 * MiB, MiB + Page, 0));
    }

    [TestMethod]
    public void Bursty_KeepsItsQuietTicks_AndRejectsNone()
    {
        Assert.AreEqual(7u, HostWorkload.Bursty(MiB, 2 * MiB, 7).QuietTicks);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => HostWorkload.Bursty(MiB, 2 * MiB, 0));
    }

    [TestMethod]
    public void PhasedAndBursty_MigrateInTheDeviceState()
    {
        foreach (HostWorkload w in new[] { HostWorkload.Phased(MiB, 2 * MiB, MiB + Page, 3), HostWorkload.Bursty(MiB, 2 * MiB, 9) })
        {
            var state = new HostWorkerState { Pass = 2, Position = 1, FirstFailedPage = -1 };
            (HostWorkload read, HostWorkerState progress) = HostDeviceState.Read(HostDeviceState.Write(w, state, started: true));
            Assert.AreEqual(w, read);
            HostDeviceState.CheckWorkload(read);
            HostDeviceState.CheckFits(read, progress);
        }
    }
}
