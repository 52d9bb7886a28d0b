using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;

namespace MigrateKit.Tests.Libvirt;

/// <summary>PairCalibrationStore: one entry per ordered host pair, combined with every migration, worse figures weighing more.</summary>
[TestClass]
public sealed class PairCalibrationStoreTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 15, 0, 0, TimeSpan.Zero);

    private static HostPairCalibration Figures(double speedMiBps, double fixedMs, int samples = 1) =>
        new(speedMiBps * (1 << 20), TimeSpan.FromMilliseconds(fixedMs), samples);

    [TestMethod]
    [DataRow("qemu:///system", "qemu:///system")]
    [DataRow(" QEMU+SSH://Host2.Example/system/ ", "qemu+ssh://host2.example/system")]
    [DataRow("qemu+ssh://Root@Host2/system", "qemu+ssh://Root@host2/system")]
    [DataRow("qemu:///system?socket=/var/lib/X/libvirt-sock", "qemu:///system?socket=/var/lib/X/libvirt-sock")]
    public void Normalise_LowerCasesSchemeAndHost_AndDropsATrailingSlash(string uri, string expected)
    {
        Assert.AreEqual(expected, PairCalibrationStore.Normalise(uri));
    }

    [TestMethod]
    public void Key_IsPerOrderedPair()
    {
        Assert.AreEqual(PairCalibrationStore.Key("qemu+ssh://A/system", "qemu+ssh://b/system"), PairCalibrationStore.Key("qemu+ssh://a/system/", "qemu+ssh://B/system"));
        Assert.AreNotEqual(PairCalibrationStore.Key("qemu+ssh://a/system", "qemu+ssh://b/system"), PairCalibrationStore.Key("qemu+ssh://b/system", "qemu+ssh://a/system"));
    }

    private static PairCalibrationStore.SwitchoverSeen Seen(double speedMiBps, double pendingMiB, double downtimeMs) =>
        new(speedMiBps * (1 << 20), (ulong)(pendingMiB * (1 << 20)), downtimeMs);

    [TestMethod]
    public void Learn_TheFirstMigration_StoresItsSpeedAndTheRestOfItsDowntime_AndLoadsBack()
    {
        var store = new InMemoryCalibrationStore();
        Assert.IsNull(PairCalibrationStore.Load(store, "qemu:///a", "qemu:///b"));

        // 100 MiB at 2000 MiB/s is 50 ms of the 90 ms: 40 ms are fixed.
        PairCalibrationStore.Learn(store, "qemu:///a", "qemu:///b", Seen(2000, 100, 90), Now);

        HostPairCalibration loaded = PairCalibrationStore.Load(store, "qemu:///a", "qemu:///b")!;
        Assert.AreEqual(2000.0 * (1 << 20), loaded.StopAndCopyBytesPerSecond);
        Assert.AreEqual(40, loaded.FixedDowntime.TotalMilliseconds, 1e-6);
        Assert.AreEqual(1, loaded.Migrations);
        Assert.AreEqual(Now, store.Load(PairCalibrationStore.Key("qemu:///a", "qemu:///b"))!.Updated);
    }

    [TestMethod]
    public void Combine_ABetterSampleWeighsOnce_AWorseOneDouble_AndTheFixedPartIsTakenAtTheCombinedSpeed()
    {
        HostPairCalibration known = Figures(2000, 40, samples: 3);

        // Faster: (3 x 2000 + 3000) / 4 = 2250 MiB/s; 90 ms less 90 MiB at 2250 MiB/s = 50 ms, worse: (3 x 40 + 2 x 50) / 5 = 44.
        HostPairCalibration faster = PairCalibrationStore.Combine(known, Seen(3000, 90, 90));
        Assert.AreEqual(2250 * (double)(1 << 20), faster.StopAndCopyBytesPerSecond, 1);
        Assert.AreEqual(44, faster.FixedDowntime.TotalMilliseconds, 1e-6);
        Assert.AreEqual(4, faster.Migrations);

        // Slower: (3 x 2000 + 2 x 1000) / 5 = 1600 MiB/s; 60 ms less 40 MiB at 1600 MiB/s = 35 ms, better: (3 x 40 + 35) / 4.
        HostPairCalibration slower = PairCalibrationStore.Combine(known, Seen(1000, 40, 60));
        Assert.AreEqual(1600 * (double)(1 << 20), slower.StopAndCopyBytesPerSecond, 1);
        Assert.AreEqual(38.75, slower.FixedDowntime.TotalMilliseconds, 1e-6);
    }

    [TestMethod]
    public void Combine_EarlierSamplesWeighAtMostMaxWeight_AndTheFixedPartIsNeverNegative()
    {
        HostPairCalibration known = Figures(2000, 40, samples: 100);

        HostPairCalibration combined = PairCalibrationStore.Combine(known, Seen(2000, 20, 32));
        Assert.AreEqual(40 - (18.0 / (PairCalibrationStore.MaxWeight + 1)), combined.FixedDowntime.TotalMilliseconds, 1e-6);
        Assert.AreEqual(101, combined.Migrations);

        Assert.AreEqual(TimeSpan.Zero, PairCalibrationStore.Combine(null, Seen(1000, 100, 50)).FixedDowntime);
    }

    [TestMethod]
    public void Load_AnEntryWithoutUsableFiguresCountsAsNone()
    {
        var store = new InMemoryCalibrationStore();
        store.Save(PairCalibrationStore.Key("qemu:///a", "qemu:///b"), new CalibrationEntry(
            new System.Collections.Generic.Dictionary<string, double> { [PairCalibrationStore.SpeedName] = 0, [PairCalibrationStore.FixedName] = 5 }, 1, Now));

        Assert.IsNull(PairCalibrationStore.Load(store, "qemu:///a", "qemu:///b"));
    }
}
