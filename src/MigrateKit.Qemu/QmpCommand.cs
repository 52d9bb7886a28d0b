using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace MigrateKit.Qemu;

/// <summary>
/// Encodes QMP commands: one JSON object per line, <c>{"execute": NAME, "arguments": {…}, "id": N}</c>,
/// and the arguments of the migration commands with QEMU's dashed names.
/// </summary>
internal static class QmpCommand
{
    private static readonly byte[] LineEnd = "\r\n"u8.ToArray();

    /// <summary>The line that runs <paramref name="command"/> with <paramref name="arguments"/> (serialised with System.Text.Json; null for none) under <paramref name="id"/>.</summary>
    internal static byte[] Encode(string command, object? arguments, long id)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("execute", command);
            if (arguments is not null)
            {
                writer.WritePropertyName("arguments");
                JsonSerializer.Serialize(writer, arguments, arguments.GetType());
            }

            writer.WriteNumber("id", id);
            writer.WriteEndObject();
        }

        buffer.Write(LineEnd);
        return buffer.ToArray();
    }

    /// <summary>The arguments of <c>migrate-set-capabilities</c>.</summary>
    internal static Dictionary<string, object> Capabilities(IReadOnlyDictionary<string, bool> capabilities)
    {
        var list = new List<Dictionary<string, object>>(capabilities.Count);
        foreach (KeyValuePair<string, bool> capability in capabilities)
        {
            list.Add(new Dictionary<string, object> { ["capability"] = capability.Key, ["state"] = capability.Value });
        }

        return new Dictionary<string, object> { ["capabilities"] = list };
    }

    /// <summary>The arguments of <c>migrate-set-parameters</c>: only the parameters that are set.</summary>
    internal static Dictionary<string, object> Parameters(MigrationParameters parameters)
    {
        var arguments = new Dictionary<string, object>();
        if (parameters.MaxBandwidthBytesPerSecond is long bandwidth)
        {
            arguments["max-bandwidth"] = bandwidth;
        }

        if (parameters.DowntimeLimitMilliseconds is long downtime)
        {
            arguments["downtime-limit"] = downtime;
        }

        if (parameters.CpuThrottleInitialPercent is int initial)
        {
            arguments["cpu-throttle-initial"] = initial;
        }

        if (parameters.CpuThrottleIncrementPercent is int increment)
        {
            arguments["cpu-throttle-increment"] = increment;
        }

        if (parameters.XbzrleCacheSizeBytes is long cache)
        {
            arguments["xbzrle-cache-size"] = cache;
        }

        if (parameters.MultifdChannels is int channels)
        {
            arguments["multifd-channels"] = channels;
        }

        if (parameters.MultifdCompression is QemuMultifdCompression compression)
        {
            arguments["multifd-compression"] = Name(compression);
        }

        return arguments;
    }

    /// <summary>QEMU's name for a multifd compression method.</summary>
    internal static string Name(QemuMultifdCompression compression) => compression switch
    {
        QemuMultifdCompression.None => "none",
        QemuMultifdCompression.Zlib => "zlib",
        QemuMultifdCompression.Zstd => "zstd",
        _ => throw new ArgumentOutOfRangeException(nameof(compression), compression, "Not a multifd compression method QEMU knows."),
    };
}
