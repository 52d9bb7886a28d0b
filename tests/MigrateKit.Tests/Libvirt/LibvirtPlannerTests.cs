using System;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using Moq;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class LibvirtPlannerTests
{
    private const string Uri = "qemu:///system";
    private const string Vm = "web1";

    private readonly FakeTimeProvider _time = new();
    private readonly Mock<ILibvirtHost> _host = new();
    private long _starts;
    private TimeSpan _period;

    [TestMethod]
    [DataRow(8UL, PlanVerdict.Converges)]
    [DataRow(200UL, PlanVerdict.ConvergesWithThrottle)]
    public async Task PlanAsync_TurnsLibvirtsRatesIntoACurve_AndPlansWithTheDomainsMemory(ulong mibPerSecond, PlanVerdict verdict)
    {
        _host.Setup(h => h.GetState(Vm)).Returns(new DomainStateInfo(DomainState.Running, 1));
        _host.Setup(h => h.GetJobStats(Vm, false)).Returns(new JobStats { Type = DomainJobType.None });
        _host.Setup(h => h.GetMemoryBytes(Vm)).Returns(1UL << 30);
        _host.Setup(h => h.StartDirtyRateCalc(Vm, It.IsAny<TimeSpan>(), DirtyRateMode.PageSampling)).Callback((string _, TimeSpan period, DirtyRateMode _) =>
        {
            _starts++;
            _period = period;
        });

        // Measured at once, each calculation with a start time of its own: a fresh result.
        _host.Setup(h => h.GetDirtyRate(Vm)).Returns(() =>
            new DirtyRateInfo(DirtyRateCalcStatus.Measured, null, _period, mibPerSecond, "page-sampling", Array.Empty<ulong>()) { StartTimeSeconds = _starts });
        var factory = new Mock<ILibvirtHostFactory>();
        factory.Setup(f => f.Open(Uri)).Returns(_host.Object);
        var planner = new LibvirtPlanner(factory.Object, null);

        LibvirtPlan plan = await _time.AdvanceUntilDoneAsync(
            planner.PlanAsync(Uri, Vm, 100 << 20, new MigrationOptions(), new LibvirtDirtyRateProbeOptions { TimeProvider = _time }, null, CancellationToken.None),
            TimeSpan.FromMilliseconds(50));

        Assert.HasCount(3, plan.Points);
        Assert.AreEqual(1UL << 30, plan.Observation.MemoryBytes);
        Assert.AreEqual((long)(mibPerSecond << 20) * 5 / 4096, plan.Observation.Curve.Points[^1].DistinctPages, "rate × period / page size over 5 s");
        Assert.AreEqual(verdict, plan.Plan.Verdict, plan.Plan.Reason);
        Assert.IsGreaterThan(0, plan.Plan.Rounds.Count);
    }

    [TestMethod]
    public async Task PlanAsync_RefusesABandwidthItCannotModel()
    {
        var planner = new LibvirtPlanner(new Mock<ILibvirtHostFactory>().Object, null);
        await Assert.ThrowsExactlyAsync<ArgumentOutOfRangeException>(() => planner.PlanAsync(Uri, Vm, 0));
        await Assert.ThrowsExactlyAsync<ArgumentOutOfRangeException>(() => planner.PlanAsync(Uri, Vm, double.PositiveInfinity));
    }

    [TestMethod]
    public async Task PlanAsync_RefusesWhatThePlanWouldRefuse_BeforeMeasuring()
    {
        // Each was refused by the plan's own checks only after seconds of measuring the domain.
        var hosts = new Mock<ILibvirtHostFactory>(MockBehavior.Strict);
        var planner = new LibvirtPlanner(hosts.Object, null);
        Assert.AreEqual("bandwidthBytesPerSecond", (await Assert.ThrowsExactlyAsync<ArgumentOutOfRangeException>(() => planner.PlanAsync(Uri, Vm, 1024))).ParamName);
        Assert.AreEqual("deadline", (await Assert.ThrowsExactlyAsync<ArgumentOutOfRangeException>(() => planner.PlanAsync(Uri, Vm, 1 << 20, deadline: TimeSpan.Zero))).ParamName);
        Assert.AreEqual("domain", (await Assert.ThrowsExactlyAsync<ArgumentException>(() => planner.PlanAsync(Uri, "", 1 << 20))).ParamName);
        Assert.AreEqual("MaxDowntime", (await Assert.ThrowsExactlyAsync<ArgumentException>(() => planner.PlanAsync(Uri, Vm, 1 << 20, new MigrationOptions { MaxDowntime = TimeSpan.Zero }))).ParamName);
        hosts.VerifyNoOtherCalls();
    }
}
