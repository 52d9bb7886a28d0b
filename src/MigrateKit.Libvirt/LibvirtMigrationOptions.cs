using System;
using LibvirtSharp;
using MigrateKit.Estimation;

namespace MigrateKit.Libvirt;

/// <summary>How <see cref="LibvirtMigrator"/> migrates a libvirt domain.</summary>
public sealed class LibvirtMigrationOptions
{
    /// <summary>
    /// The downtime limit handed to QEMU at the start, from 1 ms to 2000 s (QEMU's maximum). libvirt
    /// takes whole milliseconds, so QEMU gets it rounded to the nearest one (durations computed in
    /// floating point, such as 1.001 s from 1.001 × 1000 ms, do not always come out whole).
    /// </summary>
    /// <value>The default is 300 ms.</value>
    public TimeSpan MaxDowntime { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>
    /// The most downtime the caller accepts if the migration would not converge otherwise. When the
    /// forecast says the guest outruns the link, the limit is raised step by step up to this budget.
    /// From <see cref="MaxDowntime"/> to 2000 s (QEMU's maximum).
    /// </summary>
    /// <value>The default is <see langword="null"/>: the limit stays at <see cref="MaxDowntime"/>.</value>
    public TimeSpan? DowntimeBudget { get; init; }

    /// <summary>
    /// Bandwidth limit in bytes per second. libvirt takes whole MiB/s: the limit is rounded up, so
    /// a small one becomes 1 MiB/s and never 0 (which libvirt would take as no limit). At most
    /// 8796093022207 MiB/s (QEMU's maximum, a signed 64-bit count of bytes per second).
    /// </summary>
    /// <value>The default is <see langword="null"/>: unlimited.</value>
    public long? BandwidthLimit { get; init; }

    /// <summary>
    /// The bandwidth of QEMU's stop-and-copy, bytes per second. QEMU lifts its rate limit once the
    /// guest is stopped, so the last pages go at the link's full speed.
    /// </summary>
    /// <value>The default is <see langword="null"/>: from a calibration of the two hosts, else from the
    /// <see cref="CalibrationStore"/>, else learned within the run (the peak pre-copy bandwidth when
    /// unlimited, the speed of the rate-limited pre-copy's bursts otherwise, the rate limit until they are timed).</value>
    public long? SwitchoverBandwidth { get; init; }

    /// <summary>Which of QEMU's migration tools to use.</summary>
    /// <value>The default is <see cref="LibvirtStrategy.Auto"/>: chosen per migration from what is measured before it starts.</value>
    public LibvirtStrategy Strategy { get; init; } = LibvirtStrategy.Auto;

    /// <summary>The xbzrle page cache on the source, bytes (QEMU rounds it down to a power of two pages); memory the source's QEMU allocates for the migration.</summary>
    /// <value>The default is <see langword="null"/>: twice the measured hot set as a power of two, from 64 MiB up to half the guest's
    /// memory; without a measured rate, half the guest's memory up to 4 GiB (QEMU fills it only with the pages it re-sends). Grown while the migration runs when it misses too often.</value>
    public ulong? XbzrleCacheBytes { get; init; }

    /// <summary>The number of connections under <see cref="LibvirtStrategy.Multifd"/>, from 1 to 255.</summary>
    /// <value>The default is 2, QEMU's own.</value>
    public int ParallelConnections { get; init; } = 2;

    /// <summary>Whether the migrator may switch to postcopy when pre-copy cannot converge.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool AllowPostcopy { get; init; }

    /// <summary>Whether the migrator may turn on QEMU's auto-converge, with a throttle sized from the measured dirty rate.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool AllowAutoConverge { get; init; } = true;

    /// <summary>Abort the migration when it has not completed after this long; the source keeps running.</summary>
    /// <value>The default is 60 seconds.</value>
    public TimeSpan? Deadline { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Measure the guest's dirty rate (libvirt's dirty-rate calculation, <see cref="DirtyRatePeriod"/>) before starting.</summary>
    /// <value>
    /// The default is <see langword="null"/>: measured when the start depends on it, that is when auto-converge is
    /// sized for a rate-limited <see cref="LibvirtStrategy.Precopy"/>, <see cref="LibvirtStrategy.Multifd"/> or
    /// <see cref="LibvirtStrategy.Postcopy"/>. <see cref="LibvirtStrategy.Auto"/> does not wait for it: under a rate limit
    /// it starts with xbzrle whatever the rate (deltas cost nothing where they do not help), and sizes the cache from
    /// the rate only when it was measured.
    /// </value>
    public bool? MeasureDirtyRate { get; init; }

    /// <summary>Whether the dirty rate is measured before starting (<see cref="MeasureDirtyRate"/>, or what the strategy needs).</summary>
    internal bool MeasuresDirtyRate => MeasureDirtyRate ?? (Strategy is not (LibvirtStrategy.Auto or LibvirtStrategy.Xbzrle) && AllowAutoConverge && BandwidthLimit is not null);

    /// <summary>How long the dirty-rate calculation samples.</summary>
    /// <value>The default is 1 second.</value>
    public TimeSpan DirtyRatePeriod { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The dirty-rate calculation's mode.</summary>
    /// <value>The default is <see cref="DirtyRateMode.PageSampling"/>, which works on every domain.</value>
    public DirtyRateMode DirtyRateMode { get; init; } = DirtyRateMode.PageSampling;

    /// <summary>The migration stream's URI (libvirt's <c>migrate_uri</c>), for example <c>tcp://127.0.0.1</c>.</summary>
    /// <value>The default is <see langword="null"/>: libvirt picks the destination host name.</value>
    public string? MigrationUri { get; init; }

    /// <summary>Define the domain on the destination (persistent) after the migration.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool PersistOnDestination { get; init; }

    /// <summary>Undefine the domain on the source after the migration.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool UndefineSource { get; init; }

    /// <summary>
    /// Migrate even when libvirt thinks it unsafe (disks without cache='none' on shared storage).
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool Unsafe { get; init; }

    /// <summary>
    /// Encrypt the migration stream with TLS (<c>VIR_MIGRATE_TLS</c>). Both hosts' QEMU drivers need
    /// x509 certificates set up (<c>migrate_tls_x509_cert_dir</c> in qemu.conf); without them libvirt
    /// fails the migration rather than sending in the clear.
    /// </summary>
    /// <value>The default is <see langword="false"/>: the stream is plain TCP, as libvirt's own default.</value>
    public bool Tls { get; init; }

    /// <summary>How often job statistics are read while the migration runs.</summary>
    /// <value>The default is 50 ms.</value>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How long to keep trying to reach both hosts before the migration starts.</summary>
    /// <value>The default is 5 seconds.</value>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long to keep reconnecting to a daemon that went away while a migration runs.</summary>
    /// <value>The default is 30 seconds.</value>
    public TimeSpan ReconnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The measured costs of migrating between the two hosts (from <see cref="LibvirtMigrator.CalibrateAsync"/>).</summary>
    /// <value>The default is <see langword="null"/>: what this process learned for the pair, if anything.</value>
    public HostPairCalibration? Calibration { get; init; }

    /// <summary>
    /// Where the pair of hosts' stop-and-copy speed and fixed downtime are kept across migrations and
    /// processes (<see cref="FileCalibrationStore"/>, or an orchestrator's own <see cref="ICalibrationStore"/>).
    /// Each completed migration whose stop-and-copy sent whole pages adds what its job statistics showed
    /// (the speed of the rate-limited pre-copy's bursts, or its peak without a limit, and QEMU's downtime
    /// less the transfer at that speed; one that sent xbzrle deltas adds nothing); the next migration between the same two hosts forecasts with the stored figures instead
    /// of the pause probe, and a calibration (<see cref="CalibrateHostPair"/>) replaces them.
    /// </summary>
    /// <value>The default is <see langword="null"/>: nothing is loaded or saved; each migration learns the
    /// speed within its own run, and the fixed costs from the pause probe (<see cref="CalibratePause"/>).</value>
    public ICalibrationStore? CalibrationStore { get; init; }

    /// <summary>
    /// When nothing is known about the pair of hosts, run <see cref="LibvirtMigrator.CalibrateAsync"/> first
    /// (two small probe guests in <c>/var/tmp/migratekit-probe</c>, a few seconds).
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool CalibrateHostPair { get; init; }

    /// <summary>
    /// Without a calibration of the pair: pause and resume the source once before starting, to measure what stopping and starting the
    /// guest costs (part of every downtime). The guest stops for about a millisecond.
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool CalibratePause { get; init; } = true;

    /// <summary>
    /// The limit QEMU starts with when it differs from <see cref="MaxDowntime"/>. Calibration probes start
    /// with a tiny one so that QEMU never switches during the first full copy, when the destination's
    /// memory is still untouched and a switchover would measure first-touch costs instead of the link.
    /// </summary>
    internal TimeSpan? InitialQemuDowntimeLimit { get; init; }

    /// <summary>The clock.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The shortest downtime limit: one whole millisecond, the unit libvirt takes.</summary>
    internal static readonly TimeSpan MinQemuDowntime = TimeSpan.FromMilliseconds(1);

    /// <summary>The longest downtime limit QEMU accepts (its <c>downtime-limit</c> is at most 2000 s).</summary>
    internal static readonly TimeSpan MaxQemuDowntime = TimeSpan.FromSeconds(2000);

    /// <summary>The highest bandwidth limit libvirt's QEMU driver accepts: <c>INT64_MAX</c> bytes/s in whole MiB/s.</summary>
    internal const long MaxBandwidthMiBps = long.MaxValue >> 20;

    /// <summary>Checks the options and names the first problem.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        CheckQemuDowntime(MaxDowntime, nameof(MaxDowntime));
        if (DowntimeBudget is { } budget)
        {
            CheckQemuDowntime(budget, nameof(DowntimeBudget));
            if (budget < MaxDowntime)
            {
                throw new ArgumentException($"DowntimeBudget ({budget.TotalMilliseconds} ms) must not be below MaxDowntime ({MaxDowntime.TotalMilliseconds} ms).", nameof(DowntimeBudget));
            }
        }

        // Above QEMU's maximum libvirt refuses the migration only once it starts.
        if (BandwidthLimit is <= 0 or > MaxBandwidthMiBps << 20)
        {
            throw new ArgumentException(
                $"BandwidthLimit must be positive and at most {MaxBandwidthMiBps} MiB/s (QEMU's maximum), or null for unlimited (got {BandwidthLimit}).",
                nameof(BandwidthLimit));
        }

        if (!Enum.IsDefined(Strategy))
        {
            throw new ArgumentException($"Strategy {(int)Strategy} is not one of auto, precopy, xbzrle, multifd or postcopy.", nameof(Strategy));
        }

        if (XbzrleCacheBytes is < 1UL << 20)
        {
            throw new ArgumentException($"XbzrleCacheBytes must be at least 1 MiB or null (got {XbzrleCacheBytes}).", nameof(XbzrleCacheBytes));
        }

        if (ParallelConnections is < 1 or > 255)
        {
            throw new ArgumentException($"ParallelConnections must be from 1 to 255, QEMU's range (got {ParallelConnections}).", nameof(ParallelConnections));
        }

        if (SwitchoverBandwidth is <= 0)
        {
            throw new ArgumentException($"SwitchoverBandwidth must be positive or null (got {SwitchoverBandwidth}).", nameof(SwitchoverBandwidth));
        }

        if (Deadline is { } deadline && deadline <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Deadline must be positive or null (got {deadline}).", nameof(Deadline));
        }

        if (DirtyRatePeriod < TimeSpan.FromSeconds(1) || DirtyRatePeriod > TimeSpan.FromSeconds(60) || DirtyRatePeriod.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            throw new ArgumentException($"DirtyRatePeriod must be whole seconds from 1 to 60 (got {DirtyRatePeriod}).", nameof(DirtyRatePeriod));
        }

        if (PollInterval < TimeSpan.FromMilliseconds(5) || PollInterval > TimeSpan.FromSeconds(5))
        {
            throw new ArgumentException($"PollInterval must be from 5 ms to 5 s (got {PollInterval}).", nameof(PollInterval));
        }

        // The range Polly's timeout strategy accepts.
        foreach ((TimeSpan value, string name) in new[] { (ConnectTimeout, nameof(ConnectTimeout)), (ReconnectTimeout, nameof(ReconnectTimeout)) })
        {
            if (value < TimeSpan.FromMilliseconds(10) || value > TimeSpan.FromHours(24))
            {
                throw new ArgumentException($"{name} must be from 10 ms to 24 h (got {value}).", name);
            }
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
    }

    /// <summary>
    /// The bandwidth limit in whole MiB/s as libvirt wants it, rounded up so that it never becomes 0
    /// (no limit to libvirt), or null for unlimited.
    /// </summary>
    internal ulong? BandwidthMiBps => BandwidthLimit is { } b ? ((ulong)b >> 20) + ((b & ((1L << 20) - 1)) == 0 ? 0UL : 1UL) : null;

    /// <summary>
    /// A downtime limit as QEMU gets it: rounded to the nearest whole millisecond, where libvirt
    /// itself would drop the fraction (1000.9999 ms, from 1.001 s in floating point, would be 1000 ms).
    /// </summary>
    internal static TimeSpan ToWholeMilliseconds(TimeSpan value) =>
        TimeSpan.FromMilliseconds(Math.Round(value.TotalMilliseconds, MidpointRounding.AwayFromZero));

    /// <summary>
    /// Checks a downtime limit against <see cref="MinQemuDowntime"/> and <see cref="MaxQemuDowntime"/>:
    /// QEMU refuses more, but only once the migration runs, and under 1 ms libvirt would make it 0.
    /// </summary>
    private static void CheckQemuDowntime(TimeSpan value, string name)
    {
        if (value < MinQemuDowntime || value > MaxQemuDowntime)
        {
            throw new ArgumentException(
                $"{name} must be from {MinQemuDowntime.TotalMilliseconds} ms to {MaxQemuDowntime.TotalSeconds} s, QEMU's range (got {value.TotalMilliseconds} ms).",
                name);
        }
    }
}
