using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;
using MigrateKit.Tests.TestSupport;
using Moq;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class DomainProbesTests
{
    private const string Uri = "qemu:///system";
    private const string Vm = "vm";

    private readonly FakeTimeProvider _time = new();
    private readonly Mock<ILibvirtHost> _host = new();

    private ResilientHost Host()
    {
        var factory = new Mock<ILibvirtHostFactory>();
        factory.Setup(f => f.Open(Uri)).Returns(_host.Object);
        return new ResilientHost(factory.Object, Uri, TimeSpan.FromSeconds(30), _time, NullLogger.Instance);
    }

    private DomainProbes Probes() => new(_time, NullLogger.Instance);

    private static DirtyRateInfo Rate(DirtyRateCalcStatus status, ulong? mibPerSecond) =>
        new(status, null, TimeSpan.FromSeconds(1), mibPerSecond, "page-sampling", Array.Empty<ulong>());

    [TestMethod]
    public void MeasurePause_TimesSuspendAndResumeOnTheInjectedClock()
    {
        _host.Setup(h => h.Suspend(Vm)).Callback(() => _time.Advance(TimeSpan.FromMilliseconds(30)));
        _host.Setup(h => h.Resume(Vm)).Callback(() => _time.Advance(TimeSpan.FromMilliseconds(12)));
        var estimator = new DowntimeEstimator();
        using ResilientHost host = Host();

        Probes().MeasurePause(host, Vm, estimator, CancellationToken.None);

        Assert.AreEqual(TimeSpan.FromMilliseconds(30), estimator.PauseCost);
        Assert.AreEqual(TimeSpan.FromMilliseconds(12), estimator.ResumeCost);
        _host.Verify(h => h.Resume(Vm), Times.Once);
    }

    [TestMethod]
    public async Task MeasureDirtyRateAsync_AsksOnlyAfterThePeriod_AndReturnsBytesPerSecond()
    {
        var asked = new List<TimeSpan>();
        DateTimeOffset start = _time.GetUtcNow();
        _host.Setup(h => h.GetDirtyRate(Vm)).Returns(() =>
        {
            asked.Add(_time.GetUtcNow() - start);
            return asked.Count < 3 ? Rate(DirtyRateCalcStatus.Measuring, null) : Rate(DirtyRateCalcStatus.Measured, 90);
        });
        using ResilientHost host = Host();
        var options = new LibvirtMigrationOptions { DirtyRatePeriod = TimeSpan.FromSeconds(2), TimeProvider = _time };

        double? rate = await _time.AdvanceUntilDoneAsync(Probes().MeasureDirtyRateAsync(host, Vm, options, CancellationToken.None), TimeSpan.FromMilliseconds(50));

        Assert.AreEqual(90.0 * (1 << 20), rate);
        _host.Verify(h => h.StartDirtyRateCalc(Vm, TimeSpan.FromSeconds(2), DirtyRateMode.PageSampling), Times.Once);
        Assert.IsTrue(asked[0] >= TimeSpan.FromSeconds(2), $"asked after {asked[0]}, before the period ended");
        Assert.IsTrue(asked[1] - asked[0] >= DomainProbes.DirtyRatePollInterval);
    }

    [TestMethod]
    [DataRow(7, DirtyRateMode.PageSampling)]
    [DataRow(8, DirtyRateMode.DirtyRing)]
    public async Task MeasureDirtyRateAsync_DirtyRing_IsSampledInsteadOnQemuBefore8(int qemuMajor, DirtyRateMode expected)
    {
        _host.Setup(h => h.Versions()).Returns(new HostVersions(new Version(9, 0), new Version(qemuMajor, 2)));
        _host.Setup(h => h.GetDirtyRate(Vm)).Returns(Rate(DirtyRateCalcStatus.Measured, 10));
        using ResilientHost host = Host();
        var options = new LibvirtMigrationOptions { DirtyRatePeriod = TimeSpan.FromSeconds(1), DirtyRateMode = DirtyRateMode.DirtyRing, TimeProvider = _time };

        double? rate = await _time.AdvanceUntilDoneAsync(Probes().MeasureDirtyRateAsync(host, Vm, options, CancellationToken.None), TimeSpan.FromMilliseconds(50));

        Assert.AreEqual(10.0 * (1 << 20), rate);
        _host.Verify(h => h.StartDirtyRateCalc(Vm, TimeSpan.FromSeconds(1), expected), Times.Once);
    }

    [TestMethod]
    public async Task MeasureDirtyRateAsync_NeverMeasured_GivesUpAfterThePeriodAndTheGrace()
    {
        _host.Setup(h => h.GetDirtyRate(Vm)).Returns(Rate(DirtyRateCalcStatus.Measuring, null));
        using ResilientHost host = Host();
        var options = new LibvirtMigrationOptions { DirtyRatePeriod = TimeSpan.FromSeconds(1), TimeProvider = _time };
        DateTimeOffset start = _time.GetUtcNow();

        double? rate = await _time.AdvanceUntilDoneAsync(Probes().MeasureDirtyRateAsync(host, Vm, options, CancellationToken.None), TimeSpan.FromMilliseconds(100));

        Assert.IsNull(rate);
        TimeSpan waited = _time.GetUtcNow() - start;
        Assert.IsTrue(waited >= TimeSpan.FromSeconds(1) + DomainProbes.DirtyRateGrace && waited < TimeSpan.FromSeconds(13), $"gave up after {waited}");
    }

    [TestMethod]
    public async Task MeasureDirtyRateAsync_LibvirtRefuses_StartsWithoutIt()
    {
        _host.Setup(h => h.StartDirtyRateCalc(Vm, It.IsAny<TimeSpan>(), It.IsAny<DirtyRateMode>()))
            .Throws(LibvirtTestErrors.Create(84, 10, "this function is not supported by the connection driver"));
        using ResilientHost host = Host();

        double? rate = await Probes().MeasureDirtyRateAsync(host, Vm, new LibvirtMigrationOptions { TimeProvider = _time }, CancellationToken.None);

        Assert.IsNull(rate);
        _host.Verify(h => h.GetDirtyRate(Vm), Times.Never);
    }
}
