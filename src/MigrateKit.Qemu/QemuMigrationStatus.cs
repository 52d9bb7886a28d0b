using System.Text.Json;

namespace MigrateKit.Qemu;

/// <summary>
/// QEMU's answer to <c>query-migrate</c>. Every figure is nullable because QEMU omits fields
/// depending on the status (no <c>downtime</c> before completion, no <c>ram</c> before setup…).
/// </summary>
public sealed record QemuMigrationStatus
{
    /// <summary>The migration status: <c>none</c>, <c>setup</c>, <c>active</c>, <c>completed</c>, <c>failed</c>, <c>cancelled</c>…; <see langword="null"/> if no migration was ever started.</summary>
    public string? Status { get; init; }

    /// <summary>Time since the migration started (<c>total-time</c>), in ms.</summary>
    public long? TotalTimeMilliseconds { get; init; }

    /// <summary>The measured downtime once completed (<c>downtime</c>), in ms.</summary>
    public long? DowntimeMilliseconds { get; init; }

    /// <summary>QEMU's estimate while active (<c>expected-downtime</c>), in ms.</summary>
    public long? ExpectedDowntimeMilliseconds { get; init; }

    /// <summary>Time spent in setup (<c>setup-time</c>), in ms.</summary>
    public long? SetupTimeMilliseconds { get; init; }

    /// <summary>The RAM section (<c>ram</c>), if present.</summary>
    public QemuRamStatus? Ram { get; init; }

    /// <summary>The <c>xbzrle-cache</c> section, present while the <c>xbzrle</c> capability is on.</summary>
    public QemuXbzrleStatus? Xbzrle { get; init; }

    /// <summary>The auto-converge throttle (<c>cpu-throttle-percentage</c>), if active.</summary>
    public long? CpuThrottlePercentage { get; init; }

    /// <summary>Why the migration failed (<c>error-desc</c>), if it did.</summary>
    public string? ErrorDescription { get; init; }

    /// <summary>Reads the <c>return</c> value of <c>query-migrate</c>.</summary>
    /// <param name="result">The object QEMU returned.</param>
    /// <returns>The status; missing fields are <see langword="null"/>.</returns>
    public static QemuMigrationStatus Parse(JsonElement result)
    {
        if (result.ValueKind != JsonValueKind.Object)
        {
            throw new QmpException($"query-migrate returned {result.ValueKind}, not an object");
        }

        return new QemuMigrationStatus
        {
            Status = Json.String(result, "status"),
            TotalTimeMilliseconds = Json.Int64(result, "total-time"),
            DowntimeMilliseconds = Json.Int64(result, "downtime"),
            ExpectedDowntimeMilliseconds = Json.Int64(result, "expected-downtime"),
            SetupTimeMilliseconds = Json.Int64(result, "setup-time"),
            Ram = result.TryGetProperty("ram", out JsonElement ram) && ram.ValueKind == JsonValueKind.Object ? QemuRamStatus.Parse(ram) : null,
            Xbzrle = result.TryGetProperty("xbzrle-cache", out JsonElement xbzrle) && xbzrle.ValueKind == JsonValueKind.Object ? QemuXbzrleStatus.Parse(xbzrle) : null,
            CpuThrottlePercentage = Json.Int64(result, "cpu-throttle-percentage"),
            ErrorDescription = Json.String(result, "error-desc"),
        };
    }
}

/// <summary>The <c>ram</c> section of <c>query-migrate</c>; every figure is nullable.</summary>
public sealed record QemuRamStatus
{
    /// <summary>Bytes sent so far (<c>transferred</c>).</summary>
    public long? TransferredBytes { get; init; }

    /// <summary>Bytes still to send (<c>remaining</c>).</summary>
    public long? RemainingBytes { get; init; }

    /// <summary>Guest RAM size (<c>total</c>).</summary>
    public long? TotalBytes { get; init; }

    /// <summary>Pages sent as a single repeated byte (<c>duplicate</c>).</summary>
    public long? DuplicatePages { get; init; }

    /// <summary>Pages sent whole (<c>normal</c>).</summary>
    public long? NormalPages { get; init; }

    /// <summary>Dirty-bitmap synchronisations, i.e. passes (<c>dirty-sync-count</c>).</summary>
    public long? DirtySyncCount { get; init; }

    /// <summary>The throughput QEMU measured, in megabits per second (<c>mbps</c>).</summary>
    public double? Mbps { get; init; }

    /// <summary>Pages dirtied per second (<c>dirty-pages-rate</c>).</summary>
    public long? DirtyPagesRate { get; init; }

    internal static QemuRamStatus Parse(JsonElement ram) => new()
    {
        TransferredBytes = Json.Int64(ram, "transferred"),
        RemainingBytes = Json.Int64(ram, "remaining"),
        TotalBytes = Json.Int64(ram, "total"),
        DuplicatePages = Json.Int64(ram, "duplicate"),
        NormalPages = Json.Int64(ram, "normal"),
        DirtySyncCount = Json.Int64(ram, "dirty-sync-count"),
        Mbps = Json.Double(ram, "mbps"),
        DirtyPagesRate = Json.Int64(ram, "dirty-pages-rate"),
    };
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
