using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class DirtyCurveTests
{
    private static DirtyCurvePoint P(double seconds, long pages) => new(TimeSpan.FromSeconds(seconds), pages);

    [TestMethod]
    public void PagesAt_InterpolatesFromZero_BetweenPoints_AndExtrapolatesTheLastSlope()
    {
        var curve = new DirtyCurve([P(0.1, 100), P(0.5, 300), P(1, 400)]);

        Assert.AreEqual(0, curve.PagesAt(TimeSpan.Zero));
        Assert.AreEqual(50, curve.PagesAt(TimeSpan.FromSeconds(0.05)), 1e-9);
        Assert.AreEqual(200, curve.PagesAt(TimeSpan.FromSeconds(0.3)), 1e-9);
        Assert.AreEqual(400, curve.PagesAt(TimeSpan.FromSeconds(1)), 1e-9);
        Assert.AreEqual(600, curve.PagesAt(TimeSpan.FromSeconds(2)), 1e-9);
        Assert.AreEqual(TimeSpan.FromSeconds(1), curve.Span);
    }

    [TestMethod]
    public void APointBelowAnEarlierOne_IsRaisedToIt_SoTheCurveNeverFalls()
    {
        var curve = new DirtyCurve([P(0.1, 100), P(0.2, 80), P(0.5, 120)], hotPages: 7);

        CollectionAssert.AreEqual(new long[] { 100, 100, 120 }, new[] { curve.Points[0].DistinctPages, curve.Points[1].DistinctPages, curve.Points[2].DistinctPages });
        Assert.AreEqual(7, curve.HotPages);
    }

    [TestMethod]
    public void ASaturatedCurve_StaysFlatPastItsLastPoint()
    {
        var curve = new DirtyCurve([P(0.1, 500), P(1, 1000), P(5, 1000)]);

        Assert.AreEqual(1000, curve.PagesAt(TimeSpan.FromSeconds(60)), 1e-9);
    }

    [TestMethod]
    public void FromRates_TurnsEachPeriodsRateIntoDistinctPages_AveragingRepeats()
    {
        // 40 MiB/s over 1 s is 10240 pages; 12 and 14 MiB/s over 2 s average to 13 MiB/s: 6656 pages, raised to 10240.
        DirtyCurve curve = DirtyCurve.FromRates([(TimeSpan.FromSeconds(2), 12.0 * (1 << 20)), (TimeSpan.FromSeconds(1), 40.0 * (1 << 20)), (TimeSpan.FromSeconds(2), 14.0 * (1 << 20)), (TimeSpan.FromSeconds(4), 8.0 * (1 << 20))]);

        Assert.HasCount(3, curve.Points);
        Assert.AreEqual(P(1, 10240), curve.Points[0]);
        Assert.AreEqual(P(2, 10240), curve.Points[1]);
        Assert.AreEqual(P(4, 10240), curve.Points[2], "8 MiB/s over 4 s is 8192 pages, raised to the 10240 before it");
    }

    [TestMethod]
    public void BadPoints_AreRejectedNamingTheProblem()
    {
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new DirtyCurve([])).Message, "at least one point");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new DirtyCurve([P(0.2, 1), P(0.2, 2)])).Message, "longer than the one before");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new DirtyCurve([P(0, 1)])).Message, "positive");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new DirtyCurve([P(1, -1)])).Message, "negative");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => DirtyCurve.FromRates([(TimeSpan.FromSeconds(1), double.NaN)])).Message, "non-negative number");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => DirtyCurve.FromRates([(TimeSpan.Zero, 1.0)])).Message, "period must be positive");
    }
}
