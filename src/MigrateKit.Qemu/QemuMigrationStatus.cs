using System.Text.Json;

namespace MigrateKit.Qemu;

/// <summary>
/// QEMU's answer to <c>query-migrate</c>. Every figure is nullable because QEMU omits fields
/// depending on the status (no <c>downtime</c> before completion, no <c>ram</c> before setup…).
/// </summary>
/// <param name="Status">The migration status: <c>none</c>, <c>setup</c>, <c>active</c>, <c>completed</c>, <c>failed</c>, <c>cancelled</c>…; <see langword="null"/> if no migration was ever started.</param>
/// <param name="TotalTimeMilliseconds">Time since the migration started (<c>total-time</c>), in ms.</param>
/// <param name="DowntimeMilliseconds">The measured downtime once completed (<c>downtime</c>), in ms.</param>
/// <param name="ExpectedDowntimeMilliseconds">QEMU's estimate while active (<c>expected-downtime</c>), in ms.</param>
/// <param name="SetupTimeMilliseconds">Time spent in setup (<c>setup-time</c>), in ms.</param>
/// <param name="Ram">The RAM section (<c>ram</c>), if present.</param>
/// <param name="CpuThrottlePercentage">The auto-converge throttle (<c>cpu-throttle-percentage</c>), if active.</param>
/// <param name="ErrorDescription">Why the migration failed (<c>error-desc</c>), if it did.</param>
public sealed record QemuMigrationStatus(
    string? Status,
    long? TotalTimeMilliseconds,
    long? DowntimeMilliseconds,
    long? ExpectedDowntimeMilliseconds,
    long? SetupTimeMilliseconds,
    QemuRamStatus? Ram,
    long? CpuThrottlePercentage,
    string? ErrorDescription)
{
    /// <summary>Reads the <c>return</c> value of <c>query-migrate</c>.</summary>
    /// <param name="result">The object QEMU returned.</param>
    /// <returns>The status; missing fields are <see langword="null"/>.</returns>
    public static QemuMigrationStatus Parse(JsonElement result)
    {
        if (result.ValueKind != JsonValueKind.Object)
        {
            throw new QmpException($"query-migrate returned {result.ValueKind}, not an object");
        }

        return new QemuMigrationStatus(
            Json.String(result, "status"),
            Json.Int64(result, "total-time"),
            Json.Int64(result, "downtime"),
            Json.Int64(result, "expected-downtime"),
            Json.Int64(result, "setup-time"),
            result.TryGetProperty("ram", out JsonElement ram) && ram.ValueKind == JsonValueKind.Object ? QemuRamStatus.Parse(ram) : null,
            Json.Int64(result, "cpu-throttle-percentage"),
            Json.String(result, "error-desc"));
    }
}

/// <summary>The <c>ram</c> section of <c>query-migrate</c>; every figure is nullable.</summary>
/// <param name="TransferredBytes">Bytes sent so far (<c>transferred</c>).</param>
/// <param name="RemainingBytes">Bytes still to send (<c>remaining</c>).</param>
/// <param name="TotalBytes">Guest RAM size (<c>total</c>).</param>
/// <param name="DuplicatePages">Pages sent as a single repeated byte (<c>duplicate</c>).</param>
/// <param name="NormalPages">Pages sent whole (<c>normal</c>).</param>
/// <param name="DirtySyncCount">Dirty-bitmap synchronisations, i.e. passes (<c>dirty-sync-count</c>).</param>
/// <param name="Mbps">The throughput QEMU measured, in megabits per second (<c>mbps</c>).</param>
/// <param name="DirtyPagesRate">Pages dirtied per second (<c>dirty-pages-rate</c>).</param>
public sealed record QemuRamStatus(
    long? TransferredBytes,
    long? RemainingBytes,
    long? TotalBytes,
    long? DuplicatePages,
    long? NormalPages,
    long? DirtySyncCount,
    double? Mbps,
    long? DirtyPagesRate)
{
    internal static QemuRamStatus Parse(JsonElement ram) => new(
        Json.Int64(ram, "transferred"),
        Json.Int64(ram, "remaining"),
        Json.Int64(ram, "total"),
        Json.Int64(ram, "duplicate"),
        Json.Int64(ram, "normal"),
        Json.Int64(ram, "dirty-sync-count"),
        Json.Double(ram, "mbps"),
        Json.Int64(ram, "dirty-pages-rate"));
}

/// <summary>Lenient readers for optional QMP fields.</summary>
internal static class Json
{
    public static string? String(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static long? Int64(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long n) ? n : null;

    public static double? Double(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
}
