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

    [TestMethod]
    public void Learn_TheFirstSampleIsStoredAsIs_AndLoadsBack()
    {
        var store = new InMemoryCalibrationStore();
        Assert.IsNull(PairCalibrationStore.Load(store, "qemu:///a", "qemu:///b"));

        PairCalibrationStore.Learn(store, "qemu:///a", "qemu:///b", Figures(2000, 40), Now);

        HostPairCalibration loaded = PairCalibrationStore.Load(store, "qemu:///a", "qemu:///b")!;
        Assert.AreEqual(Figures(2000, 40), loaded);
        Assert.AreEqual(Now, store.Load(PairCalibrationStore.Key("qemu:///a", "qemu:///b"))!.Updated);
    }

    [TestMethod]
    public void Combine_ABetterSampleMovesTheFiguresByItsWeight_AWorseOneHalfWay()
    {
        HostPairCalibration known = Figures(2000, 40, samples: 3);

        HostPairCalibration better = PairCalibrationStore.Combine(known, Figures(3000, 20));
        Assert.AreEqual(2250 * (double)(1 << 20), better.StopAndCopyBytesPerSecond, 1);
        Assert.AreEqual(35, better.FixedDowntime.TotalMilliseconds, 1e-6);
        Assert.AreEqual(4, better.Migrations);

        HostPairCalibration worse = PairCalibrationStore.Combine(known, Figures(1000, 80));
        Assert.AreEqual(1500 * (double)(1 << 20), worse.StopAndCopyBytesPerSecond, 1);
        Assert.AreEqual(60, worse.FixedDowntime.TotalMilliseconds, 1e-6);
    }

    [TestMethod]
    public void Combine_EarlierSamplesWeighAtMostMaxWeight()
    {
        HostPairCalibration known = Figures(2000, 40, samples: 100);

        HostPairCalibration combined = PairCalibrationStore.Combine(known, Figures(2000, 22));

        Assert.AreEqual(40 - (18.0 / (PairCalibrationStore.MaxWeight + 1)), combined.FixedDowntime.TotalMilliseconds, 1e-6);
        Assert.AreEqual(101, combined.Migrations);
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
