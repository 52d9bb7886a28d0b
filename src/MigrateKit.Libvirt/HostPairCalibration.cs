using System;
using System.Collections.Concurrent;

namespace MigrateKit.Libvirt;

/// <summary>
/// What a migration between two particular hosts costs regardless of the guest: the speed of QEMU's
/// stop-and-copy (which runs without the rate limit, with the guest stopped) and the fixed part of the
/// downtime (stopping the guest, device state, libvirt's hand-off to the destination, starting it there).
/// </summary>
/// <param name="StopAndCopyBytesPerSecond">How fast QEMU moves memory between the two hosts with the guest stopped.</param>
/// <param name="FixedDowntime">The downtime of a migration with nothing left to copy.</param>
/// <param name="Migrations">How many migrations the figures come from (the probe counts as one).</param>
public sealed record HostPairCalibration(double StopAndCopyBytesPerSecond, TimeSpan FixedDowntime, int Migrations = 1)
{
    private static readonly ConcurrentDictionary<(string, string), HostPairCalibration> Known = new();

    /// <summary>Nothing known: forecasts use the pre-copy bandwidth and no fixed cost (what calibration probes run with).</summary>
    internal static HostPairCalibration Uncalibrated { get; } = new(0, TimeSpan.Zero, 0);

    /// <summary>Whether this holds measured figures.</summary>
    internal bool IsMeasured => StopAndCopyBytesPerSecond > 0;

    /// <summary>The calibration known in this process for a pair of hosts, if any.</summary>
    public static HostPairCalibration? For(string sourceUri, string destinationUri) =>
        Known.TryGetValue((sourceUri, destinationUri), out HostPairCalibration? c) ? c : null;

    /// <summary>Records a calibration for a pair of hosts (used by every later migration between them in this process).</summary>
    public static void Remember(string sourceUri, string destinationUri, HostPairCalibration calibration)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        Known[(sourceUri, destinationUri)] = calibration;
    }

    /// <summary>
    /// Folds in a completed migration: the downtime not explained by <paramref name="pendingBytes"/> at the
    /// stop-and-copy speed is the fixed part (averaged with what was known).
    /// </summary>
    internal HostPairCalibration Refine(ulong pendingBytes, TimeSpan actualDowntime)
    {
        if (!IsMeasured)
        {
            return this;
        }

        TimeSpan unexplained = actualDowntime - TimeSpan.FromSeconds(pendingBytes / StopAndCopyBytesPerSecond);
        if (unexplained < TimeSpan.Zero)
        {
            unexplained = TimeSpan.Zero;
        }

        long ticks = ((FixedDowntime.Ticks * Migrations) + unexplained.Ticks) / (Migrations + 1);
        return this with { FixedDowntime = TimeSpan.FromTicks(ticks), Migrations = Migrations + 1 };
    }
}
