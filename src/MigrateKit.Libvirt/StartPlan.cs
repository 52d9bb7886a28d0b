using System;
using System.Globalization;
using LibvirtSharp;

namespace MigrateKit.Libvirt;

/// <summary>The parameters a libvirt migration starts with, chosen from the measured dirty rate.</summary>
/// <param name="AutoConverge">Whether QEMU's auto-converge is on.</param>
/// <param name="ThrottleInitial">Auto-converge's first throttle step, percent (null: QEMU's default, 20).</param>
/// <param name="ThrottleIncrement">Auto-converge's later steps, percent (null: QEMU's default, 10).</param>
/// <param name="BandwidthMiBps">The speed limit, MiB/s (null: unlimited).</param>
/// <param name="MaxDowntime">The downtime limit handed to QEMU, in whole milliseconds.</param>
/// <param name="Postcopy">Whether postcopy is enabled (switched to only when the policy says so).</param>
/// <param name="Reason">Why, in words.</param>
public sealed record StartPlan(bool AutoConverge, int? ThrottleInitial, int? ThrottleIncrement, ulong? BandwidthMiBps, TimeSpan MaxDowntime, bool Postcopy, string Reason)
{
    /// <summary>QEMU engages auto-converge once the guest dirties more than half of what was sent in a period.</summary>
    internal const double QemuThrottleTrigger = 0.5;

    /// <summary>The ratio of throttled dirty rate to bandwidth the first throttle step aims at.</summary>
    internal const double ConvergenceTarget = 0.4;

    /// <summary>
    /// Chooses the start parameters. QEMU's auto-converge starts at 20 % and adds 10 % per dirty sync,
    /// whatever the guest does; a guest dirtying at the link's speed needs ~7 syncs (and the bytes sent
    /// in them) before it converges. Instead the first step is sized so the throttled rate is
    /// <see cref="ConvergenceTarget"/> of the bandwidth, and the increment reaches QEMU's 99 % cap in
    /// three further steps if the guest still outruns it.
    /// </summary>
    /// <param name="options">The caller's options.</param>
    /// <param name="dirtyBytesPerSecond">The measured dirty rate, or null when it was not measured.</param>
    public static StartPlan Choose(LibvirtMigrationOptions options, double? dirtyBytesPerSecond)
    {
        ArgumentNullException.ThrowIfNull(options);
        ulong? speed = options.BandwidthMiBps;
        TimeSpan downtime = LibvirtMigrationOptions.ToWholeMilliseconds(options.MaxDowntime);
        if (!options.AllowAutoConverge)
        {
            return new StartPlan(false, null, null, speed, downtime, options.AllowPostcopy, "auto-converge not allowed");
        }

        if (dirtyBytesPerSecond is not { } dirty || options.BandwidthLimit is not { } bandwidth)
        {
            // Unknown rate or an unlimited link: auto-converge only engages if QEMU itself sees
            // the guest outrun what it sends, so it costs nothing to leave on with QEMU's steps.
            string why = dirtyBytesPerSecond is null ? "dirty rate not measured" : "unlimited bandwidth";
            return new StartPlan(true, null, null, speed, downtime, options.AllowPostcopy, why + ": auto-converge on with QEMU's steps");
        }

        double q = dirty / bandwidth;
        if (q <= QemuThrottleTrigger)
        {
            return new StartPlan(true, null, null, speed, downtime, options.AllowPostcopy,
                Invariant($"dirty rate is {q * 100:F0}% of bandwidth: converges unthrottled; auto-converge on as a safety net"));
        }

        // A throttled guest runs (100 - t) % of the time and dirties in proportion.
        int initial = Math.Clamp((int)Math.Ceiling(100 * (1 - (ConvergenceTarget / q))), 1, 99);
        int increment = Math.Max(5, (int)Math.Ceiling((99 - initial) / 3.0));
        return new StartPlan(true, initial, increment, speed, downtime, options.AllowPostcopy,
            Invariant($"dirty rate is {q * 100:F0}% of bandwidth: throttle starts at {initial}% (+{increment}% per sync) to bring it to {ConvergenceTarget * 100:F0}%"));
    }

    /// <summary>The migrate call's parameters for this plan.</summary>
    /// <param name="migrationUri">The migration stream's URI, or null for libvirt's choice.</param>
    internal DomainMigrationParameters Parameters(string? migrationUri) => new()
    {
        MigrationUri = migrationUri,
        BandwidthMiBps = BandwidthMiBps,
        AutoConvergeInitial = ThrottleInitial,
        AutoConvergeIncrement = ThrottleIncrement,
    };

    /// <summary>The migrate call's flags for this plan and the caller's options.</summary>
    internal MigrationFlags Flags(LibvirtMigrationOptions options) => MigrationFlags.Live
        | (AutoConverge ? MigrationFlags.AutoConverge : 0)
        | (Postcopy ? MigrationFlags.Postcopy : 0)
        | (options.Unsafe ? MigrationFlags.Unsafe : 0)
        | (options.PersistOnDestination ? MigrationFlags.PersistDestination : 0)
        | (options.UndefineSource ? MigrationFlags.UndefineSource : 0)
        | (options.Tls ? MigrationFlags.Tls : 0);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
