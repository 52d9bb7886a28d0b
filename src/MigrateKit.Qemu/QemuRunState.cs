namespace MigrateKit.Qemu;

/// <summary>The answer to <c>query-status</c>.</summary>
/// <param name="Status">The run state: <c>running</c>, <c>paused</c>, <c>inmigrate</c>, <c>postmigrate</c>, <c>finish-migrate</c>…</param>
/// <param name="Running">Whether the vCPUs run.</param>
public sealed record QemuRunState(string Status, bool Running);
