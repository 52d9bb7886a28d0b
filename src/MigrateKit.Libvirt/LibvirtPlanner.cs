using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using MigrateKit.Memory;
using MigrateKit.Migration;

namespace MigrateKit.Libvirt;

/// <summary>A libvirt domain's plan: what libvirt measured, the curve made of it, and the plan.</summary>
/// <param name="Points">libvirt's dirty rate over each period.</param>
/// <param name="Observation">The curve of distinct pages against time and the domain's memory.</param>
/// <param name="Plan">The predicted migration and the recommended setting.</param>
public sealed record LibvirtPlan(IReadOnlyList<LibvirtDirtyRatePoint> Points, DirtyObservation Observation, MigrationPlan Plan);

/// <summary>
/// Plans a running libvirt domain's migration before it starts: measures its dirty rate with
/// libvirt's dirty-rate calculation over several periods (<see cref="LibvirtDirtyRateProbe"/>),
/// turns the rates into the curve of distinct pages dirtied against time, and runs
/// <see cref="MigrationPlanner.Plan"/> on it with the domain's memory size.
/// </summary>
/// <remarks>
/// libvirt measures over whole seconds, so the curve starts at one second (the planner takes it
/// as growing linearly below that) and carries no hot set. The model is MigrateKit's pre-copy with
/// pages sent whole, which is what QEMU's plain pre-copy does too.
/// </remarks>
public sealed class LibvirtPlanner
{
    private readonly ILibvirtHostFactory _hosts;
    private readonly LibvirtDirtyRateProbe _probe;

    /// <summary>Creates a planner over libvirt.</summary>
    /// <param name="logger">Where each measurement is logged (Debug); null for nowhere.</param>
    public LibvirtPlanner(ILogger<LibvirtDirtyRateProbe>? logger = null)
        : this(LibvirtHost.Factory, logger)
    {
    }

    internal LibvirtPlanner(ILibvirtHostFactory hosts, ILogger? logger)
    {
        _hosts = hosts;
        _probe = new LibvirtDirtyRateProbe(hosts, logger);
    }

    /// <summary>Measures <paramref name="domain"/> and plans its migration at <paramref name="bandwidthBytesPerSecond"/>.</summary>
    /// <param name="uri">The domain's host.</param>
    /// <param name="domain">The running domain.</param>
    /// <param name="bandwidthBytesPerSecond">The bandwidth the migration would get.</param>
    /// <param name="options">The migration's limits (downtime, throttle); null for the defaults.</param>
    /// <param name="probe">The periods and the mode of the measurement; null for the defaults (1, 2 and 5 s, page-sampling).</param>
    /// <param name="deadline">The time the whole migration may take, or null.</param>
    /// <param name="cancellationToken">Stops waiting for a measurement.</param>
    /// <exception cref="LibvirtDirtyRateException">The domain cannot be measured (see <see cref="LibvirtDirtyRateException.Failure"/>).</exception>
    /// <exception cref="LibvirtSharp.LibvirtException">The host could not be reached.</exception>
    /// <exception cref="ArgumentException">An empty URI or domain, invalid options, a bandwidth under 4 KiB/s or a deadline that is not positive: checked before anything is measured.</exception>
    public async Task<LibvirtPlan> PlanAsync(
        string uri,
        string domain,
        double bandwidthBytesPerSecond,
        MigrationOptions? options = null,
        LibvirtDirtyRateProbeOptions? probe = null,
        TimeSpan? deadline = null,
        CancellationToken cancellationToken = default)
    {
        // Checked before the seconds of measuring: the plan's own checks would refuse them only after.
        ArgumentException.ThrowIfNullOrWhiteSpace(uri);
        ArgumentException.ThrowIfNullOrWhiteSpace(domain);
        if (!(bandwidthBytesPerSecond >= GuestMemoryLayout.PageSize) || double.IsInfinity(bandwidthBytesPerSecond))
        {
            throw new ArgumentOutOfRangeException(nameof(bandwidthBytesPerSecond), bandwidthBytesPerSecond, "A plan needs a finite bandwidth of at least one 4 KiB page per second.");
        }

        if (deadline <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(deadline), deadline, "A deadline must be positive (or null for none).");
        }

        options?.Validate();

        long started = Environment.TickCount64;
        IReadOnlyList<LibvirtDirtyRatePoint> points = await _probe.MeasureAsync(uri, domain, probe, cancellationToken).ConfigureAwait(false);
        ulong memory;
        using (ILibvirtHost host = _hosts.Open(uri))
        {
            memory = host.GetMemoryBytes(domain);
        }

        var curve = new DirtyCurve(LibvirtDirtyRateProbe.DistinctPages(points).Select(p => new DirtyCurvePoint(p.Elapsed, p.DistinctPages)));
        var observation = new DirtyObservation
        {
            Curve = curve,
            MemoryBytes = memory,
            HarvestCost = TimeSpan.Zero,
            Duration = TimeSpan.FromMilliseconds(Environment.TickCount64 - started),
            TrackerKind = $"libvirt {points.FirstOrDefault()?.Mode ?? "page-sampling"}",
        };
        MigrationPlan plan = MigrationPlanner.Plan(new PlanInput
        {
            Curve = curve,
            MemoryBytes = memory,
            BandwidthBytesPerSecond = bandwidthBytesPerSecond,
            // A libvirt migration runs at the rate limit it is given, so its first copies and
            // re-sends move at the same speed: the policy may act on the first pass's ratio.
            Options = (options ?? new MigrationOptions()).WithBandwidthLimit((long)Math.Clamp(bandwidthBytesPerSecond, 4096, long.MaxValue)),
            Deadline = deadline,
            TrackerKind = observation.TrackerKind,
        });
        return new LibvirtPlan(points, observation, plan);
    }
}
