namespace MigrateKit.Diagnostics;

/// <summary>
/// The names under which MigrateKit publishes its metrics and traces, for a <c>MeterListener</c>,
/// an <c>ActivityListener</c> or an OpenTelemetry exporter (<c>AddMeter</c>, <c>AddSource</c>).
/// </summary>
/// <remarks>
/// The instruments, spans and tags, with their units and when each is recorded, are listed once,
/// in the README's "Logs, metrics and traces" section (a test checks that list against the
/// instruments the library creates).
/// </remarks>
public static class MigrateKitDiagnostics
{
    /// <summary>The name of MigrateKit's <c>System.Diagnostics.Metrics.Meter</c>.</summary>
    public const string MeterName = "MigrateKit";

    /// <summary>The name of MigrateKit's <c>System.Diagnostics.ActivitySource</c>.</summary>
    public const string ActivitySourceName = "MigrateKit";
}
