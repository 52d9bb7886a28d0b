using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;
using MigrateKit.Tests.TestSupport;
using Moq;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class LibvirtDirtyRateProbeTests
{
    private const string Uri = "qemu:///system";
    private const string Vm = "vm";
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(50);

    private readonly FakeTimeProvider _time = new();
    private readonly Mock<ILibvirtHost> _host = new();

    // QEMU's calculation on the fake clock: measuring for its period, then measured at the rate for that period.
    private long? _startSeconds;
    private TimeSpan _period;
    private DateTimeOffset _endsAt;
    private readonly List<(TimeSpan Period, TimeSpan At)> _started = [];

    public LibvirtDirtyRateProbeTests()
    {
        _host.Setup(h => h.Uri).Returns(Uri);
        _host.Setup(h => h.GetState(Vm)).Returns(new DomainStateInfo(DomainState.Running, 1));
        _host.Setup(h => h.GetJobStats(Vm, false)).Returns(new JobStats { Type = DomainJobType.None });
        _host.Setup(h => h.GetVirtType(Vm)).Returns("kvm");
        _host.Setup(h => h.Versions()).Returns(new HostVersions(new Version(9, 0, 0), new Version(8, 2, 0)));
        _host.Setup(h => h.StartDirtyRateCalc(Vm, It.IsAny<TimeSpan>(), It.IsAny<DirtyRateMode>())).Callback((string _, TimeSpan period, DirtyRateMode _) =>
        {
            _started.Add((period, _time.GetUtcNow() - Epoch));
            _startSeconds = _time.GetUtcNow().ToUnixTimeSeconds();
            _period = period;
            _endsAt = _time.GetUtcNow() + period;
        });
        _host.Setup(h => h.GetDirtyRate(Vm)).Returns(() => _startSeconds is null
            ? Info(DirtyRateCalcStatus.Unstarted, TimeSpan.Zero, null, null)
            : _time.GetUtcNow() < _endsAt
                ? Info(DirtyRateCalcStatus.Measuring, _period, null, _startSeconds)
                : Info(DirtyRateCalcStatus.Measured, _period, RateFor(_period), _startSeconds));
    }

    private DateTimeOffset Epoch { get; } = new FakeTimeProvider().GetUtcNow();

    // A working set that saturates: 40 MiB/s over 1 s, 30 over 2 s, 16 over 5 s.
    private static ulong RateFor(TimeSpan period) => period.TotalSeconds switch
    {
        1 => 40,
        2 => 30,
        _ => 16,
    };

    private static DirtyRateInfo Info(DirtyRateCalcStatus status, TimeSpan period, ulong? rate, long? start) =>
        new(status, null, period, rate, status == DirtyRateCalcStatus.Unstarted ? null : "page-sampling", Array.Empty<ulong>()) { StartTimeSeconds = start };

    private LibvirtDirtyRateProbe Probe()
    {
        var factory = new Mock<ILibvirtHostFactory>();
        factory.Setup(f => f.Open(Uri)).Returns(_host.Object);
        return new LibvirtDirtyRateProbe(factory.Object, null);
    }

    private LibvirtDirtyRateProbeOptions Options(DirtyRateMode mode = DirtyRateMode.PageSampling, params int[] seconds) => new()
    {
        Periods = seconds.Length == 0 ? new LibvirtDirtyRateProbeOptions().Periods : seconds.Select(s => TimeSpan.FromSeconds(s)).ToArray(),
        Mode = mode,
        TimeProvider = _time,
    };

    private Task<IReadOnlyList<LibvirtDirtyRatePoint>> MeasureAsync(LibvirtDirtyRateProbeOptions options) =>
        _time.AdvanceUntilDoneAsync(Probe().MeasureAsync(Uri, Vm, options, CancellationToken.None), Step);

    [TestMethod]
    public async Task MeasureAsync_RunsEachPeriodInTurn_AndReturnsItsRate()
    {
        IReadOnlyList<LibvirtDirtyRatePoint> points = await MeasureAsync(Options());

        LibvirtDirtyRatePoint[] expected =
        [
            new(TimeSpan.FromSeconds(1), 40, "page-sampling"),
            new(TimeSpan.FromSeconds(2), 30, "page-sampling"),
            new(TimeSpan.FromSeconds(5), 16, "page-sampling"),
        ];
        Assert.AreSequenceEqual(expected, points.ToArray());

        // Each calculation starts once the previous one has reported: 1 s, then 2 s, then 5 s.
        Assert.AreSequenceEqual(expected.Select(p => p.Period).ToArray(), _started.Select(s => s.Period).ToArray());
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(1), _started[1].At - _started[0].At);
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(2), _started[2].At - _started[1].At);
        _host.Verify(h => h.StartDirtyRateCalc(Vm, It.IsAny<TimeSpan>(), DirtyRateMode.PageSampling), Times.Exactly(3));
        _host.Verify(h => h.GetVirtType(Vm), Times.Never, "page sampling works on any accelerator");
    }

    [TestMethod]
    public async Task MeasureAsync_ThePreviousResultStillReadable_IsNotTakenForTheNewOne()
    {
        // A 1 s calculation finished earlier; QEMU keeps answering it until the new one replaces it.
        _time.Advance(TimeSpan.FromSeconds(30));
        long earlier = _time.GetUtcNow().ToUnixTimeSeconds() - 10;
        bool replaced = false;
        _host.Setup(h => h.StartDirtyRateCalc(Vm, It.IsAny<TimeSpan>(), It.IsAny<DirtyRateMode>())).Callback(() => _endsAt = _time.GetUtcNow() + TimeSpan.FromSeconds(3));
        _host.Setup(h => h.GetDirtyRate(Vm)).Returns(() =>
        {
            replaced |= _time.GetUtcNow() >= _endsAt && _endsAt != default;
            return replaced
                ? Info(DirtyRateCalcStatus.Measured, TimeSpan.FromSeconds(1), 7, earlier + 12)
                : Info(DirtyRateCalcStatus.Measured, TimeSpan.FromSeconds(1), 99, earlier);
        });

        IReadOnlyList<LibvirtDirtyRatePoint> points = await MeasureAsync(Options(seconds: 1));

        Assert.AreEqual(7.0, points.Single().MiBPerSecond);
    }

    [TestMethod]
    public async Task MeasureAsync_NeverMeasured_TimesOutAfterThePeriodAndTheGrace()
    {
        _host.Setup(h => h.GetDirtyRate(Vm)).Returns(Info(DirtyRateCalcStatus.Measuring, TimeSpan.FromSeconds(2), null, 5));
        DateTimeOffset start = _time.GetUtcNow();

        LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(() => MeasureAsync(Options(seconds: 2)));

        Assert.AreEqual(LibvirtDirtyRateFailure.TimedOut, ex.Failure);
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(12), _time.GetUtcNow() - start);
        Assert.IsLessThan(TimeSpan.FromSeconds(13), _time.GetUtcNow() - start);
        StringAssert.Contains(ex.Message, "Measuring");
    }

    [TestMethod]
    [DataRow(DomainState.Paused)]
    [DataRow(DomainState.Shutoff)]
    public async Task MeasureAsync_DomainNotRunning_IsRefusedBeforeStarting(DomainState state)
    {
        _host.Setup(h => h.GetState(Vm)).Returns(new DomainStateInfo(state, 0));

        LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(() => MeasureAsync(Options()));

        Assert.AreEqual(LibvirtDirtyRateFailure.NotRunning, ex.Failure);
        Assert.AreEqual(Vm, ex.Domain);
        StringAssert.Contains(ex.Message, state.ToString());
        _host.Verify(h => h.StartDirtyRateCalc(It.IsAny<string>(), It.IsAny<TimeSpan>(), It.IsAny<DirtyRateMode>()), Times.Never);
    }

    [TestMethod]
    public async Task MeasureAsync_NoSuchDomain_SaysSo()
    {
        _host.Setup(h => h.GetState(Vm)).Returns((DomainStateInfo?)null);

        LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(() => MeasureAsync(Options()));

        Assert.AreEqual(LibvirtDirtyRateFailure.NoDomain, ex.Failure);
        StringAssert.Contains(ex.Message, "no domain 'vm'");
    }

    [TestMethod]
    public async Task MeasureAsync_DomainMigrating_IsRefused()
    {
        _host.Setup(h => h.GetJobStats(Vm, false)).Returns(new JobStats { Type = DomainJobType.Unbounded });

        LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(() => MeasureAsync(Options()));

        Assert.AreEqual(LibvirtDirtyRateFailure.JobActive, ex.Failure);
        _host.Verify(h => h.StartDirtyRateCalc(It.IsAny<string>(), It.IsAny<TimeSpan>(), It.IsAny<DirtyRateMode>()), Times.Never);
    }

    [TestMethod]
    [DataRow(DirtyRateMode.DirtyBitmap)]
    [DataRow(DirtyRateMode.DirtyRing)]
    public async Task MeasureAsync_KvmModesOnATcgGuest_AreRefusedWithoutStarting(DirtyRateMode mode)
    {
        _host.Setup(h => h.GetVirtType(Vm)).Returns("qemu");

        LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(() => MeasureAsync(Options(mode)));

        Assert.AreEqual(LibvirtDirtyRateFailure.ModeNotSupported, ex.Failure);
        Assert.AreEqual(mode, ex.Mode);
        StringAssert.Contains(ex.Message, "page-sampling");
        _host.Verify(h => h.StartDirtyRateCalc(It.IsAny<string>(), It.IsAny<TimeSpan>(), It.IsAny<DirtyRateMode>()), Times.Never);
    }

    [TestMethod]
    public async Task MeasureAsync_DirtyRingOnATcgGuestOfAnOldQemu_PointsToPageSampling()
    {
        // It said "use dirty-bitmap", which a TCG guest refuses as well.
        _host.Setup(h => h.GetVirtType(Vm)).Returns("qemu");
        _host.Setup(h => h.Versions()).Returns(new HostVersions(new Version(9, 0, 0), new Version(7, 2, 22)));

        LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(() => MeasureAsync(Options(DirtyRateMode.DirtyRing)));

        StringAssert.Contains(ex.Message, "not KVM; use page-sampling.");
        Assert.DoesNotContain("use dirty-bitmap", ex.Message);
    }

    [TestMethod]
    [DataRow("7.2.22")]
    [DataRow("0.0.0")]
    public async Task MeasureAsync_DirtyRingBeforeQemu8_IsRefusedWithoutStarting(string qemu)
    {
        _host.Setup(h => h.Versions()).Returns(new HostVersions(new Version(9, 0, 0), Version.Parse(qemu)));

        LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(() => MeasureAsync(Options(DirtyRateMode.DirtyRing)));

        Assert.AreEqual(LibvirtDirtyRateFailure.ModeNotSupported, ex.Failure);
        StringAssert.Contains(ex.Message, $"QEMU {qemu}'s dirty-ring calculation stops the guest's vCPU");
        _host.Verify(h => h.StartDirtyRateCalc(It.IsAny<string>(), It.IsAny<TimeSpan>(), It.IsAny<DirtyRateMode>()), Times.Never);
    }

    [TestMethod]
    public async Task MeasureAsync_DirtyBitmapOnAKvmGuest_ReportsTheModeQemuUsed()
    {
        _host.Setup(h => h.GetDirtyRate(Vm)).Returns(() => _startSeconds is null || _time.GetUtcNow() < _endsAt
            ? Info(DirtyRateCalcStatus.Measuring, _period, null, _startSeconds)
            : new DirtyRateInfo(DirtyRateCalcStatus.Measured, null, _period, 12, "dirty-bitmap", Array.Empty<ulong>()) { StartTimeSeconds = _startSeconds });

        IReadOnlyList<LibvirtDirtyRatePoint> points = await MeasureAsync(Options(DirtyRateMode.DirtyBitmap, 1));

        Assert.AreEqual(new LibvirtDirtyRatePoint(TimeSpan.FromSeconds(1), 12, "dirty-bitmap"), points.Single());
        _host.Verify(h => h.StartDirtyRateCalc(Vm, TimeSpan.FromSeconds(1), DirtyRateMode.DirtyBitmap), Times.Once);
    }

    [TestMethod]
    public async Task MeasureAsync_DirtyRing_ReportsEachVcpusRate()
    {
        _host.Setup(h => h.GetDirtyRate(Vm)).Returns(() => _startSeconds is null || _time.GetUtcNow() < _endsAt
            ? Info(DirtyRateCalcStatus.Measuring, _period, null, _startSeconds)
            : new DirtyRateInfo(DirtyRateCalcStatus.Measured, null, _period, 20, "dirty-ring", [12UL, 8UL]) { StartTimeSeconds = _startSeconds });

        IReadOnlyList<LibvirtDirtyRatePoint> points = await MeasureAsync(Options(DirtyRateMode.DirtyRing, 2));

        LibvirtDirtyRatePoint point = points.Single();
        Assert.AreEqual(new LibvirtDirtyRatePoint(TimeSpan.FromSeconds(2), 20, "dirty-ring") { VcpuMiBPerSecond = [12, 8] }, point);
        Assert.AreNotEqual(new LibvirtDirtyRatePoint(TimeSpan.FromSeconds(2), 20, "dirty-ring") { VcpuMiBPerSecond = [12, 9] }, point);
        Assert.AreNotEqual(new LibvirtDirtyRatePoint(TimeSpan.FromSeconds(2), 20, "dirty-ring"), point);
    }

    [TestMethod]
    [DataRow(LibvirtErrorCodes.OperationUnsupported, LibvirtErrorDomains.Qemu, "Operation not supported: dirty-ring calculation mode requires dirty-ring feature enabled.", LibvirtDirtyRateFailure.ModeNotSupported)]
    [DataRow(LibvirtErrorCodes.InternalError, LibvirtErrorDomains.Qemu, "internal error: unable to execute QEMU command 'calc-dirty-rate': mode dirty-ring is not enabled, use other method instead.", LibvirtDirtyRateFailure.ModeNotSupported)]
    [DataRow(LibvirtErrorCodes.NoSupport, LibvirtErrorDomains.Domain, "this function is not supported by the connection driver: virDomainStartDirtyRateCalc", LibvirtDirtyRateFailure.ModeNotSupported)]
    [DataRow(LibvirtErrorCodes.OperationInvalid, LibvirtErrorDomains.Qemu, "Requested operation is not valid: domain is not running", LibvirtDirtyRateFailure.NotRunning)]
    [DataRow(LibvirtErrorCodes.NoDomain, LibvirtErrorDomains.Qemu, "Domain not found: no domain with matching name 'vm'", LibvirtDirtyRateFailure.NoDomain)]
    [DataRow(LibvirtErrorCodes.InternalError, LibvirtErrorDomains.Qemu, "internal error: unable to execute QEMU command 'calc-dirty-rate': the dirty rate is already being measured.", LibvirtDirtyRateFailure.LibvirtError)]
    public async Task MeasureAsync_LibvirtRefusingTheCalculation_IsMappedToAFailure(int code, int domain, string message, LibvirtDirtyRateFailure expected)
    {
        var refusal = new LibvirtException("virDomainStartDirtyRateCalc", code, domain, message);
        _host.Setup(h => h.StartDirtyRateCalc(Vm, It.IsAny<TimeSpan>(), It.IsAny<DirtyRateMode>())).Throws(refusal);

        LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(() => MeasureAsync(Options()));

        Assert.AreEqual(expected, ex.Failure);
        Assert.AreSame(refusal, ex.InnerException);
        StringAssert.Contains(ex.Message, message);
    }

    [TestMethod]
    public void DistinctPages_IsRateTimesPeriodOverThePageSize_OrderedByPeriod()
    {
        LibvirtDirtyRatePoint[] points =
        [
            new(TimeSpan.FromSeconds(5), 16, "page-sampling"),
            new(TimeSpan.FromSeconds(1), 40, "page-sampling"),
        ];

        IReadOnlyList<(TimeSpan Elapsed, long DistinctPages)> curve = LibvirtDirtyRateProbe.DistinctPages(points);

        // 40 MiB over 1 s is 10240 pages of 4 KiB; 16 MiB/s over 5 s is 80 MiB, 20480 pages.
        Assert.AreSequenceEqual(new[] { (TimeSpan.FromSeconds(1), 10240L), (TimeSpan.FromSeconds(5), 20480L) }, curve.ToArray());
        Assert.AreEqual(5120L, points[1].DistinctPages(8192));
    }
}
