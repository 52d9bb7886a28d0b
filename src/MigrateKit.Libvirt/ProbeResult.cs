using System.Globalization;

namespace MigrateKit.Libvirt;

/// <summary>One calibration probe's migration: what its switchover had to send, and the downtime libvirt measured.</summary>
/// <param name="PendingBytes">The bytes the stop-and-copy sent, as the forecaster saw them.</param>
/// <param name="DowntimeMs">The downtime, milliseconds.</param>
internal readonly record struct ProbeResult(double PendingBytes, double DowntimeMs)
{
    /// <summary>As the calibration log line shows it: "8.0 MiB in 12 ms".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{PendingBytes / (1 << 20):F1} MiB in {DowntimeMs} ms");
}
