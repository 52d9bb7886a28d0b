using System;
using System.Text.Json;

namespace MigrateKit.Qemu;

/// <summary>An asynchronous QMP event, such as <c>STOP</c>, <c>RESUME</c> or <c>MIGRATION</c>.</summary>
/// <param name="Name">The event name (<c>"event"</c>).</param>
/// <param name="Data">The event's <c>"data"</c> object, if it has one (a clone, valid after the message is gone).</param>
/// <param name="Timestamp">When QEMU emitted the event, from its <c>"timestamp"</c>, if present.</param>
public sealed record QmpEvent(string Name, JsonElement? Data, DateTimeOffset? Timestamp);
