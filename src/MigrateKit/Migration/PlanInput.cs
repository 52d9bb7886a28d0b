using System;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>What <see cref="MigrationPlanner.Plan"/> models a pre-copy migration from: the guest's dirty curve, its memory, the link and the engine's options.</summary>
public sealed record PlanInput
{
    /// <summary>Distinct pages the guest dirties against time.</summary>
    public required DirtyCurve Curve { get; init; }

    /// <summary>Guest memory size; a multiple of 4 KiB.</summary>
    public required ulong MemoryBytes { get; init; }

    /// <summary>
    /// The bandwidth the migration gets, bytes per second: the link's, or the limit set on it.
    /// The value of <see cref="MigrationOptions.BandwidthLimit"/> in <see cref="Options"/> is not read: this is the
    /// bandwidth. Whether one is set decides, as in the engine, whether round 0's dirty rate may raise the throttle.
    /// </summary>
    public required double BandwidthBytesPerSecond { get; init; }

    /// <summary>Pages round 0 reads and sends; the others were never touched and go as zero runs, at next to no cost.</summary>
    /// <value>The default is <see langword="null"/>: every page of the memory.</value>
    public ulong? PopulatedPages { get; init; }

    /// <summary>The engine's options: the downtime limit, rounds, bytes, hot-page deferral and throttle rules the model applies.</summary>
    /// <value>The default is <c>new MigrationOptions()</c> (a 300 ms limit).</value>
    public MigrationOptions Options { get; init; } = new();

    /// <summary>
    /// The destination's address (tcp:HOST:PORT, HOST:PORT or unix:PATH): the forecast is
    /// corrected by <see cref="MigrationOptions.DowntimeHistory"/>'s switchovers to that host, as
    /// the engine's is, or by every destination's while it has none. The engine keeps a TCP
    /// destination under the IP address it connected to, so name the host by its address
    /// (<see cref="MigrationPlanner.ResolveDestinationAsync"/> resolves a name as a connection would).
    /// </summary>
    /// <value>The default is <see langword="null"/>: every destination's switchovers.</value>
    public string? Destination { get; init; }

    /// <summary>The time the whole migration should take at most: the bandwidth search and the recommendation keep within it.</summary>
    /// <value>The default is <see langword="null"/>: no deadline.</value>
    public TimeSpan? Deadline { get; init; }

    /// <summary>How long pausing the guest takes.</summary>
    /// <value>The default is 1 ms (a MicroVm's pause on the reference machine is well under it).</value>
    public TimeSpan PauseCost { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>How long the destination takes to start the guest.</summary>
    /// <value>The default is 1 ms.</value>
    public TimeSpan ResumeCost { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>How long one harvest of all of the memory takes (the observation measures it).</summary>
    /// <value>The default is 1 ms.</value>
    public TimeSpan HarvestCost { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// How long the switchover's harvest takes, where it differs from <see cref="HarvestCost"/>
    /// (<see cref="DirtyObservation.FinalHarvestCost"/>); null: <see cref="HarvestCost"/>.
    /// </summary>
    /// <value>The default is null.</value>
    public TimeSpan? FinalHarvestCost { get; init; }

    /// <summary>One exchange with the destination: each round waits for its acknowledgement.</summary>
    /// <value>The default is 1 ms (loopback or a LAN).</value>
    public TimeSpan RoundTrip { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Time before round 0: the connection, the handshake and the engine's calibration.</summary>
    /// <value>The default is zero.</value>
    public TimeSpan SetupCost { get; init; }

    /// <summary>
    /// The tracker the migration will use (<see cref="Tracking.IDirtyPageTracker.Kind"/>): with
    /// <see cref="MigrationOptions.DowntimeHistory"/>, it picks the machine's past switchovers of
    /// the same kind, which correct the forecast as they correct the engine's.
    /// </summary>
    /// <value>The default is the empty string: no kind.</value>
    public string TrackerKind { get; init; } = string.Empty;

    /// <summary>
    /// The share of its time the guest runs, unthrottled: 1 for a guest that runs flat out, whose
    /// writes a throttle of p % slows to 100 - p % of their speed; less for a guest held to a pace
    /// (it waits the rest), which a throttle slows only once it allows less run time than this
    /// share. Measured on MigrateKit's VMs from <c>VcpuStatus.Held</c> over a window.
    /// </summary>
    /// <value>The default is 1.</value>
    public double GuestRunShare { get; init; } = 1;

    /// <summary>Size of the device state sent during the downtime.</summary>
    /// <value>The default is 4096 bytes.</value>
    public ulong DeviceStateBytes { get; init; } = 4096;

    /// <summary>Pages of the memory.</summary>
    internal double TotalPages => MemoryBytes / (double)GuestMemoryLayout.PageSize;

    /// <summary>Checks the input and names the first problem.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Curve, nameof(Curve));
        ArgumentNullException.ThrowIfNull(Options, nameof(Options));
        ArgumentNullException.ThrowIfNull(TrackerKind, nameof(TrackerKind));
        if (MemoryBytes == 0 || MemoryBytes % GuestMemoryLayout.PageSize != 0)
        {
            throw new ArgumentException($"MemoryBytes must be a positive multiple of 4 KiB (got {MemoryBytes}).", nameof(MemoryBytes));
        }

        if (!(BandwidthBytesPerSecond >= GuestMemoryLayout.PageSize) || double.IsInfinity(BandwidthBytesPerSecond))
        {
            throw new ArgumentException($"BandwidthBytesPerSecond must be a finite rate of at least one 4 KiB page per second (got {BandwidthBytesPerSecond}).", nameof(BandwidthBytesPerSecond));
        }

        if (PopulatedPages > MemoryBytes / GuestMemoryLayout.PageSize)
        {
            throw new ArgumentException($"PopulatedPages ({PopulatedPages}) is more than the memory holds ({MemoryBytes / GuestMemoryLayout.PageSize}).", nameof(PopulatedPages));
        }

        if (Deadline <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Deadline must be positive or null (got {Deadline?.TotalMilliseconds:0.###} ms).", nameof(Deadline));
        }

        if (!(GuestRunShare > 0 && GuestRunShare <= 1))
        {
            throw new ArgumentException($"GuestRunShare must be above 0 and at most 1 (got {GuestRunShare}).", nameof(GuestRunShare));
        }

        foreach ((TimeSpan cost, string name) in (ReadOnlySpan<(TimeSpan, string)>)[(PauseCost, nameof(PauseCost)), (ResumeCost, nameof(ResumeCost)), (HarvestCost, nameof(HarvestCost)), (FinalHarvestCost ?? TimeSpan.Zero, nameof(FinalHarvestCost)), (RoundTrip, nameof(RoundTrip)), (SetupCost, nameof(SetupCost))])
        {
            if (cost < TimeSpan.Zero)
            {
                throw new ArgumentException($"{name} cannot be negative (got {cost}).", name);
            }
        }

        if (Destination is not null)
        {
            _ = MigrationAddress.Parse(Destination, nameof(Destination));
        }

        Options.Validate();
    }
}
