using MigrateKit.Diagnostics;
using MigrateKit.Tracking;

namespace MigrateKit.Migration;

/// <summary>The tag values of migration types (the names themselves are in <see cref="MigrateKitTelemetry"/>).</summary>
internal static class MigrationTelemetry
{
    /// <summary>The <see cref="MigrateKitTelemetry.Tags.Status"/> value of a migration status.</summary>
    internal static string StatusName(MigrationStatus status) => status switch
    {
        MigrationStatus.Completed => "completed",
        MigrationStatus.Aborted => "aborted",
        _ => "failed",
    };

    /// <summary>The <see cref="MigrateKitTelemetry.Tags.Tracker"/> value of a tracker (a mock may have no kind).</summary>
    internal static string TrackerKind(IDirtyPageTracker tracker) => tracker.Kind ?? tracker.GetType().Name;
}
