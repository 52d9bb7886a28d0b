using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Reports;

namespace MigrateKit.Tests.Reports;

/// <summary>Axis units, log-axis ticks and the report's X positions.</summary>
[TestClass]
public sealed class ScaleTests
{
    [TestMethod]
    [DataRow(0d, "B")]
    [DataRow(1023d, "B")]
    [DataRow(1024d, "KiB")]
    [DataRow(300e6, "MiB")]
    [DataRow(5e9, "GiB")]
    public void ByteUnit_IsTheLargestUnitTheMaximumReaches(double max, string unit) =>
        Assert.AreEqual(unit, ByteUnit.For(max).Name);

    [TestMethod]
    public void ByteUnit_Apply_Divides() =>
        CollectionAssert.AreEqual(new[] { 1d, 2.5d }, ByteUnit.For(3 << 20).Apply([1 << 20, 2.5 * (1 << 20)]));

    [TestMethod]
    public void WantsLog_OnlyForValuesFarApart()
    {
        Assert.IsFalse(Scale.WantsLog([960, 620, 190, 300, 212]));
        Assert.IsTrue(Scale.WantsLog([5000, 80, 48, 300]));
        Assert.IsFalse(Scale.WantsLog([0, 0, 12]), "zeros do not count");
        Assert.IsFalse(Scale.WantsLog([]));
    }

    [TestMethod]
    public void DecadeTicks_LabelEachDecade_AndTwoAndFiveWhenFewAreInView()
    {
        (double[] major, string[] labels, double[] minor) = Scale.DecadeTicks(1.2, 3.7, Scale.Milliseconds);
        CollectionAssert.IsSubsetOf(new[] { "10 ms", "100 ms", "1 s", "10 s", "20 ms", "50 ms", "200 ms", "500 ms", "2 s", "5 s" }, labels);
        Assert.HasCount(labels.Length, major);
        Assert.HasCount(8 * 4, minor);

        (_, string[] wide, _) = Scale.DecadeTicks(0, 6, Scale.Milliseconds);
        CollectionAssert.AreEqual(new[] { "1 ms", "10 ms", "100 ms", "1 s", "10 s", "100 s", "1000 s" }, wide);
    }

    [TestMethod]
    public void ZeroTo_NeverCollapses()
    {
        Assert.AreEqual((0d, 1d), Scale.ZeroTo([0, 0]));
        Assert.AreEqual((0d, 1d), Scale.ZeroTo([]));
        (double bottom, double top) = Scale.ZeroTo([double.NaN, 100]);
        Assert.AreEqual(0, bottom);
        Assert.AreEqual(115, top, 1e-9);
    }

    [TestMethod]
    public void Series_PutTheSwitchoverRowLast_ButNotTheRoundThatDecidedIt()
    {
        MigrationReport report = SampleReports.Converging();
        var s = ReportSeries.Of(report);
        Assert.AreEqual(9, s.AxisCount);
        Assert.AreEqual(8, s.SwitchoverIndex);
        Assert.AreEqual(8, s.SwitchoverPosition);
        Assert.AreEqual(8, s.PreCopyCount);
        Assert.AreEqual("switchover", s.Labels[8]);
        Assert.AreEqual("7", s.Labels[7], "round 7's action is switchover too, but it is a pre-copy round");
        Assert.AreEqual(report.RoundsDetail[2].DirtyRate * 4096, s.DirtyRateBytesPerSecond[2]);
    }

    [TestMethod]
    public void Series_AddASwitchoverPosition_WhenADowntimeHasNoRow()
    {
        var s = ReportSeries.Of(SampleReports.LibvirtCompleted());
        Assert.AreEqual(-1, s.SwitchoverIndex);
        Assert.AreEqual(3, s.SwitchoverPosition);
        CollectionAssert.AreEqual(new[] { "1", "2", "3", "switchover" }, s.Labels);
        Assert.AreEqual(3, s.PreCopyCount);
    }

    [TestMethod]
    public void Series_OfAnAbortedReport_HaveNoSwitchover()
    {
        var s = ReportSeries.Of(SampleReports.AbortedAfterOneRound());
        Assert.AreEqual(-1, s.SwitchoverPosition);
        Assert.AreEqual(1, s.AxisCount);
        Assert.AreEqual(0, ReportSeries.Of(SampleReports.FailedWithoutRounds()).AxisCount);
        Assert.IsFalse(Enumerable.Range(0, 1).Any(i => ReportSeries.IsSwitchoverRow(SampleReports.AbortedAfterOneRound(), i)));
    }
}
