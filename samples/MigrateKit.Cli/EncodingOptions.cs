using System;
using System.CommandLine;
using MigrateKit.Transport;

namespace MigrateKit.Cli;

/// <summary>The options that choose the engine's page encodings: <c>--encodings</c> and <c>--sent-page-cache</c>.</summary>
internal sealed class EncodingOptions
{
    internal Option<string> Encodings { get; } = new("--encodings")
    {
        Description = "Page encodings beyond raw and zero pages: auto (all with a --bandwidth limit, delta without), all (deltas against the copy sent last, and LZ4), delta, compression or none.",
        DefaultValueFactory = _ => "auto",
    };

    internal Option<string> SentPageCache { get; } = new("--sent-page-cache")
    {
        Description = "Memory for the copies deltas are made against, e.g. 256MiB, or auto (a quarter of guest memory, 64 MiB to 1 GiB).",
        DefaultValueFactory = _ => "auto",
    };

    internal void AddTo(Command command)
    {
        command.Options.Add(Encodings);
        command.Options.Add(SentPageCache);
    }

    /// <summary>The encodings asked for; null for auto.</summary>
    /// <exception cref="FormatException">The value is none of the four names.</exception>
    internal PageEncodings? Read(ParseResult p) => p.GetValue(Encodings) is "auto" ? null : Parse(p.GetValue(Encodings)!);

    /// <summary>The cache size asked for, or null for the engine's default.</summary>
    /// <exception cref="FormatException">The value is neither a size nor auto.</exception>
    internal long? ReadCache(ParseResult p)
    {
        string value = p.GetValue(SentPageCache)!;
        return value == "auto" ? null : (long)Math.Min(CliInput.Parse(p, SentPageCache, Units.ParseBytes), long.MaxValue);
    }

    /// <param name="value">The option's text.</param>
    /// <param name="auto">Whether the command also takes <c>auto</c> (read by <see cref="Read"/>), so the message names it.</param>
    internal static PageEncodings Parse(string value, bool auto = true) => value switch
    {
        "all" => PageEncodings.All,
        "delta" => PageEncodings.Delta,
        "compression" => PageEncodings.Compression,
        "none" => PageEncodings.None,
        _ => throw new FormatException($"--encodings '{value}': use {(auto ? "auto, " : "")}all, delta, compression or none."),
    };
}
