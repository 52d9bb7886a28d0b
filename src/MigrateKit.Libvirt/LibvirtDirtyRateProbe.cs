using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MigrateKit.Memory;

namespace MigrateKit.Libvirt;

/// <summary>
/// Observes a running libvirt domain without migrating it: runs libvirt's dirty-rate calculation
/// (<c>virDomainStartDirtyRateCalc</c>, read back from the <c>dirtyrate.*</c> domain statistics) once
/// per period, one period after another, so that the distinct pages dirtied can be drawn against the
/// time they were counted over (<see cref="DistinctPages"/>).
/// </summary>
public sealed class LibvirtDirtyRateProbe
{
    /// <summary>
    /// The first QEMU whose dirty-ring calculation is let run: with QEMU 7.2 the measured guest's vCPU
    /// stopped for good after the first measurement (seen on the libvirt harness); newer QEMU is untested.
    /// </summary>
    internal static readonly Version QemuDirtyRingCalc = new(8, 0);

    private readonly ILibvirtHostFactory _hosts;
    private readonly ILogger _logger;

    /// <summary>Creates a probe over libvirt.</summary>
    /// <param name="logger">Where each measurement is logged (Debug); null for nowhere.</param>
    public LibvirtDirtyRateProbe(ILogger<LibvirtDirtyRateProbe>? logger = null)
        : this(LibvirtHost.Factory, logger)
    {
    }

    internal LibvirtDirtyRateProbe(ILibvirtHostFactory hosts, ILogger? logger)
    {
        _hosts = hosts;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// Measures <paramref name="domain"/> at <paramref name="uri"/> once for each of the options'
    /// periods, in order; each measurement is waited for (at most its period and the grace) before the
    /// next starts.
    /// </summary>
    /// <param name="uri">The host's libvirt URI.</param>
    /// <param name="domain">The running domain's name.</param>
    /// <param name="options">The periods, the mode and the waits; null for the defaults.</param>
    /// <param name="cancellationToken">Stops waiting (a calculation under way ends by itself in its period).</param>
    /// <returns>One point per period, in the order of the periods.</returns>
    /// <exception cref="LibvirtDirtyRateException">
    /// No such domain, the domain is not running or is migrating, the mode is not supported there, a
    /// calculation did not finish in time, or libvirt failed a call; <see cref="LibvirtDirtyRateException.Failure"/> says which.
    /// </exception>
    /// <exception cref="LibvirtException">The host could not be reached.</exception>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    public async Task<IReadOnlyList<LibvirtDirtyRatePoint>> MeasureAsync(
        string uri,
        string domain,
        LibvirtDirtyRateProbeOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        ArgumentException.ThrowIfNullOrEmpty(domain);
        options ??= new LibvirtDirtyRateProbeOptions();
        options.Validate();
        using ILibvirtHost host = _hosts.Open(uri);
        var run = new Run(host, domain, options);
        run.CheckMode();
        var points = new List<LibvirtDirtyRatePoint>(options.Periods.Count);
        foreach (TimeSpan period in options.Periods)
        {
            LibvirtDirtyRatePoint point = await run.MeasureAsync(period, cancellationToken).ConfigureAwait(false);
            LibvirtLog.DirtyRatePoint(_logger, domain, period.TotalSeconds, point.MiBPerSecond, point.Mode, point.DistinctPages());
            points.Add(point);
        }

        return points;
    }

    /// <summary>
    /// The curve of distinct pages dirtied against time: for each point, its period and rate × period / page size.
    /// </summary>
    /// <param name="points">Measurements, e.g. from <see cref="MeasureAsync"/>.</param>
    /// <param name="pageSize">The guest's page size in bytes; the default is <see cref="GuestMemoryLayout.PageSize"/> (4 KiB).</param>
    /// <returns>One pair per point, ordered by period.</returns>
    public static IReadOnlyList<(TimeSpan Elapsed, long DistinctPages)> DistinctPages(IEnumerable<LibvirtDirtyRatePoint> points, ulong pageSize = GuestMemoryLayout.PageSize)
    {
        ArgumentNullException.ThrowIfNull(points);
        return points.OrderBy(p => p.Period).Select(p => (p.Period, p.DistinctPages(pageSize))).ToArray();
    }

    /// <summary>The libvirt mode name QEMU reports (<c>dirtyrate.calc_mode</c>).</summary>
    internal static string ModeName(DirtyRateMode mode) => mode switch
    {
        DirtyRateMode.DirtyBitmap => "dirty-bitmap",
        DirtyRateMode.DirtyRing => "dirty-ring",
        _ => "page-sampling",
    };

    // One MeasureAsync call's host, domain and options, and libvirt's errors mapped to the probe's.
    private sealed class Run(ILibvirtHost host, string domain, LibvirtDirtyRateProbeOptions options)
    {
        private readonly TimeProvider _time = options.TimeProvider;

        // Modes known to harm the guest are refused before they start: QEMU 7.2 under TCG dies (SIGSEGV)
        // in calc-dirty-rate's dirty-bitmap mode, and its dirty-ring mode leaves the vCPU stuck.
        internal void CheckMode()
        {
            if (options.Mode == DirtyRateMode.PageSampling)
            {
                return;
            }

            // The guest's type first: on TCG neither KVM mode works, and only page-sampling is worth naming.
            string type = Call(() => host.GetVirtType(domain));
            if (type != "kvm")
            {
                throw Failed(LibvirtDirtyRateFailure.ModeNotSupported,
                    $"The {ModeName(options.Mode)} mode counts KVM's dirty pages, and '{domain}' runs on '{type}', not KVM; use page-sampling.");
            }

            Version qemu = Call(host.Versions).Qemu;
            if (options.Mode == DirtyRateMode.DirtyRing && qemu < QemuDirtyRingCalc)
            {
                throw Failed(LibvirtDirtyRateFailure.ModeNotSupported,
                    $"QEMU {qemu}'s dirty-ring calculation stops the guest's vCPU after the first measurement (QEMU {QemuDirtyRingCalc} or later is needed); use dirty-bitmap, which counts the same pages.");
            }
        }

        internal async Task<LibvirtDirtyRatePoint> MeasureAsync(TimeSpan period, CancellationToken ct)
        {
            CheckMeasurable();

            // The result of the calculation before ours stays readable until ours replaces it; the start time tells them apart.
            long? before = Call(() => host.GetDirtyRate(domain)).StartTimeSeconds;
            Call(() => host.StartDirtyRateCalc(domain, period, options.Mode));
            long started = _time.GetTimestamp();
            await Task.Delay(period, _time, ct).ConfigureAwait(false);
            while (true)
            {
                DirtyRateInfo info = Call(() => host.GetDirtyRate(domain));
                if (info.Status == DirtyRateCalcStatus.Measured && info.MegabytesPerSecond is { } rate && info.Period == period
                    && (before is null || info.StartTimeSeconds != before))
                {
                    return new LibvirtDirtyRatePoint(period, rate, info.Mode ?? ModeName(options.Mode))
                    {
                        VcpuMiBPerSecond = [.. info.VcpuMegabytesPerSecond.Select(v => (double)v)],
                    };
                }

                if (_time.GetElapsedTime(started) >= period + options.Grace)
                {
                    throw Failed(LibvirtDirtyRateFailure.TimedOut,
                        $"The {period.TotalSeconds:F0} s dirty-rate calculation of '{domain}' gave no result within {options.Grace.TotalSeconds:F0} s more (last status: {info.Status}).");
                }

                await Task.Delay(options.PollInterval, _time, ct).ConfigureAwait(false);
            }
        }

        // A migrating or stopped domain is refused before anything starts: each would spoil the other's figures.
        private void CheckMeasurable()
        {
            DomainStateInfo state = Call(() => host.GetState(domain))
                ?? throw Failed(LibvirtDirtyRateFailure.NoDomain, $"'{host.Uri}' has no domain '{domain}'.");
            if (state.State != DomainState.Running)
            {
                throw Failed(LibvirtDirtyRateFailure.NotRunning, $"The domain '{domain}' is {state.State}, not running: only a running guest dirties memory.");
            }

            DomainJobType job = Call(() => host.GetJobStats(domain, false)).Type;
            if (job is DomainJobType.Bounded or DomainJobType.Unbounded)
            {
                throw Failed(LibvirtDirtyRateFailure.JobActive, $"The domain '{domain}' has a job under way (a migration?); measuring now would disturb both.");
            }
        }

        private T Call<T>(Func<T> call)
        {
            try
            {
                return call();
            }
            catch (LibvirtException ex)
            {
                throw Map(ex);
            }
        }

        private void Call(Action call) => Call(() =>
        {
            call();
            return true;
        });

        private LibvirtDirtyRateException Map(LibvirtException ex)
        {
            (LibvirtDirtyRateFailure failure, string what) = ex.Code switch
            {
                LibvirtErrorCodes.NoDomain => (LibvirtDirtyRateFailure.NoDomain, $"'{host.Uri}' has no domain '{domain}'"),
                LibvirtErrorCodes.OperationInvalid => (LibvirtDirtyRateFailure.NotRunning, $"the domain '{domain}' is not running"),
                LibvirtErrorCodes.NoSupport or LibvirtErrorCodes.OperationUnsupported or LibvirtErrorCodes.ArgumentUnsupported =>
                    (LibvirtDirtyRateFailure.ModeNotSupported, $"the hypervisor cannot measure '{domain}' in the {ModeName(options.Mode)} mode"),

                // QEMU's own refusal comes back as a failed command: "mode dirty-ring is not enabled".
                _ when ex.LibvirtMessage.Contains("not enabled", StringComparison.OrdinalIgnoreCase)
                    || ex.LibvirtMessage.Contains("not supported", StringComparison.OrdinalIgnoreCase) =>
                    (LibvirtDirtyRateFailure.ModeNotSupported, $"QEMU cannot measure '{domain}' in the {ModeName(options.Mode)} mode"),
                _ => (LibvirtDirtyRateFailure.LibvirtError, $"libvirt failed to measure '{domain}'"),
            };
            return Failed(failure, $"{char.ToUpperInvariant(what[0])}{what[1..]}: {ex.Message}", ex);
        }

        private LibvirtDirtyRateException Failed(LibvirtDirtyRateFailure failure, string message, Exception? inner = null) =>
            new(failure, domain, options.Mode, message, inner);
    }
}
