using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MigrateKit.Qemu;

/// <summary>Reads the messages QEMU sends on a QMP socket: one JSON object per line.</summary>
internal static class QmpMessage
{
    /// <summary>Parses one line into a JSON object (an independent clone).</summary>
    /// <exception cref="QmpException">The line is not JSON, or not an object.</exception>
    internal static JsonElement Parse(byte[] line, string socketPath)
    {
        JsonElement root;
        try
        {
            using JsonDocument document = JsonDocument.Parse(line);
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new QmpException($"QEMU sent malformed JSON on {socketPath}: {Excerpt(line)}", e);
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new QmpException($"a QMP message on {socketPath} is not a JSON object: {Excerpt(line)}");
        }

        return root;
    }

    /// <summary>Reads the greeting, the first message: <c>{"QMP": {"version": …, "capabilities": […]}}</c>.</summary>
    /// <exception cref="QmpException">The line is not a QMP greeting.</exception>
    internal static QmpGreeting ParseGreeting(byte[] line, string socketPath)
    {
        JsonElement root = Parse(line, socketPath);
        if (!root.TryGetProperty("QMP", out JsonElement qmp) || qmp.ValueKind != JsonValueKind.Object)
        {
            throw new QmpException($"the first message on {socketPath} is not a QMP greeting: {Excerpt(line)}");
        }

        var greeting = new QmpGreeting();
        if (qmp.TryGetProperty("version", out JsonElement version) && version.ValueKind == JsonValueKind.Object)
        {
            if (version.TryGetProperty("qemu", out JsonElement qemu) && qemu.ValueKind == JsonValueKind.Object)
            {
                greeting = greeting with
                {
                    Version = new Version(
                        (int)(Json.Int64(qemu, "major") ?? 0),
                        (int)(Json.Int64(qemu, "minor") ?? 0),
                        (int)(Json.Int64(qemu, "micro") ?? 0)),
                };
            }

            greeting = greeting with { Package = Json.String(version, "package") ?? string.Empty };
        }

        var offered = new List<string>();
        if (qmp.TryGetProperty("capabilities", out JsonElement capabilities) && capabilities.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement capability in capabilities.EnumerateArray())
            {
                if (capability.ValueKind == JsonValueKind.String)
                {
                    offered.Add(capability.GetString()!);
                }
            }
        }

        return greeting with { Capabilities = offered };
    }

    /// <summary>An event's <c>timestamp</c>, or null when it is missing or out of range.</summary>
    internal static DateTimeOffset? Timestamp(JsonElement message)
    {
        if (!message.TryGetProperty("timestamp", out JsonElement timestamp) || timestamp.ValueKind != JsonValueKind.Object
            || Json.Int64(timestamp, "seconds") is not long seconds)
        {
            return null;
        }

        long microseconds = Json.Int64(timestamp, "microseconds") ?? 0;
        try
        {
            return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(microseconds * 10);
        }
        catch (ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>The start of a line, for an error message.</summary>
    internal static string Excerpt(byte[] line)
    {
        const int Max = 200;
        string text = Encoding.UTF8.GetString(line, 0, Math.Min(line.Length, Max));
        return line.Length > Max ? string.Create(CultureInfo.InvariantCulture, $"{text}… ({line.Length} bytes)") : text;
    }
}
