namespace MigrateKit.Diagnostics;

/// <summary>
/// The names under which MigrateKit publishes its metrics and traces, for a <c>MeterListener</c>,
/// an <c>ActivityListener</c> or an OpenTelemetry exporter (<c>AddMeter</c>, <c>AddSource</c>).
/// </summary>
/// <remarks>
/// <para>
/// The meter <see cref="MeterName"/> has these instruments (tags: <c>migratekit.source</c> =
/// <c>engine</c> or <c>libvirt</c>; the engine adds <c>migratekit.vm.kind</c> and, on harvests,
/// <c>migratekit.tracker</c>):
/// </para>
/// <list type="table">
/// <listheader><term>instrument</term><description>what, unit</description></listheader>
/// <item><term><c>migratekit.pages.sent</c></term><description>Counter&lt;long&gt;: pages sent with their data, <c>{page}</c>.</description></item>
/// <item><term><c>migratekit.bytes.sent</c></term><description>Counter&lt;long&gt;: bytes on the wire, <c>By</c>.</description></item>
/// <item><term><c>migratekit.rounds</c></term><description>Counter&lt;long&gt;: pre-copy rounds (libvirt: iterations), <c>{round}</c>.</description></item>
/// <item><term><c>migratekit.harvest.duration</c></term><description>Histogram&lt;double&gt;: one dirty-log harvest, <c>ms</c>.</description></item>
/// <item><term><c>migratekit.dirty_rate</c></term><description>Histogram&lt;double&gt;: the dirtying rate measured after a round (libvirt: a poll), <c>{page}/s</c>.</description></item>
/// <item><term><c>migratekit.downtime.predicted</c></term><description>Histogram&lt;double&gt;: the downtime forecast after a round (libvirt: a poll), <c>ms</c>.</description></item>
/// <item><term><c>migratekit.downtime.actual</c></term><description>Histogram&lt;double&gt;: the measured downtime of a completed migration, <c>ms</c>.</description></item>
/// <item><term><c>migratekit.throttle</c></term><description>Histogram&lt;int&gt;: the guest throttle in force during a round (libvirt: a poll), <c>%</c>.</description></item>
/// <item><term><c>migratekit.migrations</c></term><description>Counter&lt;long&gt;: finished migrations, tagged <c>migratekit.status</c> (<c>completed</c>, <c>aborted</c>, <c>failed</c>, <c>cancelled</c>), <c>{migration}</c>.</description></item>
/// </list>
/// <para>
/// The activity source <see cref="ActivitySourceName"/> starts a <c>migratekit.migrate</c> span per
/// migration, with a <c>migratekit.round</c> child per round (and, in the engine, a
/// <c>migratekit.switchover</c> child); a receiver starts <c>migratekit.receive</c>. A span that
/// ends in an abort or a failure has the status Error with the reason as its description.
/// </para>
/// </remarks>
public static class MigrateKitDiagnostics
{
    /// <summary>The name of MigrateKit's <c>System.Diagnostics.Metrics.Meter</c>.</summary>
    public const string MeterName = "MigrateKit";

    /// <summary>The name of MigrateKit's <c>System.Diagnostics.ActivitySource</c>.</summary>
    public const string ActivitySourceName = "MigrateKit";
}
