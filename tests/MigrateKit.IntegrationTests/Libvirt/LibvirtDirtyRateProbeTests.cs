using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Libvirt;

namespace MigrateKit.IntegrationTests.Libvirt;

/// <summary>
/// <see cref="LibvirtDirtyRateProbe"/> on a real QEMU guest of the harness's source host: a guest that
/// sweeps a 64 MiB working set over and over dirties the same 16384 pages in every period, so the
/// distinct pages stay at the working set however long the period (the curve is flat), and the rate in
/// MiB/s falls as 64 over the period.
/// </summary>
[TestClass]
[TestCategory("Libvirt")]
public sealed class LibvirtDirtyRateProbeTests
{
    private const ulong MiB = 1UL << 20;
    private const long WorkingSetPages = (long)(64 * MiB / 4096);

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void RequireHosts() => LibvirtHosts.Require();

    [TestMethod]
    [DataRow(DirtyRateMode.PageSampling, "page-sampling")]
    [DataRow(DirtyRateMode.DirtyBitmap, "dirty-bitmap")]
    public async Task MeasureAsync_OfASweepingGuest_GivesTheWorkingSetInEveryPeriod(DirtyRateMode mode, string modeName)
    {
        if (mode != DirtyRateMode.PageSampling)
        {
            KvmRequirement.Require($"the {modeName} mode counts KVM's dirty pages");
        }

        using TestDomain vm = Start(ring: 0);
        var options = new LibvirtDirtyRateProbeOptions { Mode = mode };

        IReadOnlyList<LibvirtDirtyRatePoint> points = await new LibvirtDirtyRateProbe().MeasureAsync(LibvirtHosts.SourceUri, vm.Name, options);
        IReadOnlyList<(TimeSpan Elapsed, long DistinctPages)> curve = LibvirtDirtyRateProbe.DistinctPages(points);

        foreach (LibvirtDirtyRatePoint p in points)
        {
            TestContext.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{p.Mode}: {p.Period.TotalSeconds:F0} s, {p.MiBPerSecond} MiB/s, {p.DistinctPages()} distinct pages ({p.DistinctPages() / (double)WorkingSetPages:P0} of the working set)"));
        }

        Assert.AreSequenceEqual(options.Periods.ToArray(), points.Select(p => p.Period).ToArray());
        Assert.IsTrue(points.All(p => p.Mode == modeName), string.Join(", ", points.Select(p => p.Mode)));
        (double low, double high) = mode == DirtyRateMode.PageSampling
            ? (0.4, 2.0) // 512 sampled pages per GiB: 128 in this guest, of which about a quarter are in the working set.
            : (0.85, 1.3); // Every dirty page counted; the integer MiB/s loses up to 1 MiB/s, the guest's own stack and page tables add a few.
        foreach ((TimeSpan elapsed, long pages) in curve)
        {
            Assert.IsGreaterThanOrEqualTo(low * WorkingSetPages, pages, $"{elapsed}: {pages} distinct pages");
            Assert.IsLessThanOrEqualTo(high * WorkingSetPages, pages, $"{elapsed}: {pages} distinct pages");
        }
    }

    /// <summary>
    /// What observing costs the guest: its sweeps per second over 5 s alone, then over a 5 s
    /// calculation. The probe must leave the guest most of its speed (the figures go to the test log).
    /// </summary>
    [TestMethod]
    [DataRow(DirtyRateMode.PageSampling)]
    [DataRow(DirtyRateMode.DirtyBitmap)]
    public async Task MeasureAsync_LeavesTheGuestMostOfItsSpeed(DirtyRateMode mode)
    {
        if (mode != DirtyRateMode.PageSampling)
        {
            KvmRequirement.Require("the dirty-bitmap mode counts KVM's dirty pages");
        }

        using TestDomain vm = Start(ring: 0);
        var window = TimeSpan.FromSeconds(5);
        double alone = await PassesPerSecondAsync(vm, Task.Delay(window));
        var options = new LibvirtDirtyRateProbeOptions { Mode = mode, Periods = [window] };
        double observed = await PassesPerSecondAsync(vm, new LibvirtDirtyRateProbe().MeasureAsync(LibvirtHosts.SourceUri, vm.Name, options));

        TestContext.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{mode}: {alone:F1} sweeps/s alone, {observed:F1} while observed ({(1 - observed / alone) * 100:F0} % slower)"));
        Assert.IsGreaterThan(0.5 * alone, observed, "the guest kept less than half its speed while observed");
    }

    private static async Task<double> PassesPerSecondAsync(TestDomain vm, Task during)
    {
        uint before = vm.Guest.ReadSerial().LastPass;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await during;
        return (vm.Guest.ReadSerial().LastPass - before) / clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// QEMU 7.2's dirty-ring calculation counted one ring's worth in its first period and nothing after,
    /// and the guest made no progress from then on; the probe refuses it there, and the guest runs on.
    /// </summary>
    [TestMethod]
    public async Task MeasureAsync_DirtyRing_NeverStopsTheGuest()
    {
        KvmRequirement.Require("the dirty-ring mode needs a KVM guest with the dirty-ring feature");
        using TestDomain vm = Start(ring: 4096);
        Version qemu;
        using (LibvirtConnection c = LibvirtConnection.Open(LibvirtHosts.SourceUri))
        {
            qemu = c.HypervisorVersion;
        }

        var options = new LibvirtDirtyRateProbeOptions { Mode = DirtyRateMode.DirtyRing, Periods = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2)] };
        Task<IReadOnlyList<LibvirtDirtyRatePoint>> measuring = new LibvirtDirtyRateProbe().MeasureAsync(LibvirtHosts.SourceUri, vm.Name, options);
        if (qemu < LibvirtDirtyRateProbe.QemuDirtyRingCalc)
        {
            LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(() => measuring);
            Assert.AreEqual(LibvirtDirtyRateFailure.ModeNotSupported, ex.Failure);
            TestContext.WriteLine($"QEMU {qemu}: {ex.Message}");
        }
        else
        {
            IReadOnlyList<LibvirtDirtyRatePoint> points = await measuring;
            Assert.IsTrue(points.All(p => p.MiBPerSecond > 0), string.Join(", ", points));
        }

        vm.WaitForPass(vm.Guest.ReadSerial().LastPass + 2, TimeSpan.FromSeconds(30));
    }

    [TestMethod]
    public async Task MeasureAsync_OfAPausedGuest_IsRefusedAsNotRunning()
    {
        using TestDomain vm = Start(ring: 0);
        using (LibvirtConnection c = LibvirtConnection.Open(LibvirtHosts.SourceUri))
        {
            using LibvirtDomain d = c.LookupDomain(vm.Name);
            d.Suspend();
        }

        LibvirtDirtyRateException ex = await Assert.ThrowsExactlyAsync<LibvirtDirtyRateException>(
            () => new LibvirtDirtyRateProbe().MeasureAsync(LibvirtHosts.SourceUri, vm.Name));

        Assert.AreEqual(LibvirtDirtyRateFailure.NotRunning, ex.Failure);
        StringAssert.Contains(ex.Message, "Paused");
    }

    private static TestDomain Start(int ring) =>
        TestDomain.Start(LibvirtHosts.SourceUri, () => GuestPrograms.Sweep(MiB, 65 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress), 256 * MiB, ring);
}
