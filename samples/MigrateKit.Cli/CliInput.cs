using System;
using System.Collections.Generic;
using System.CommandLine;
using System.IO;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using LibvirtSharp;
using MigrateKit.Kvm;
using MigrateKit.Tracking;

namespace MigrateKit.Cli;

/// <summary>
/// Turns option text and library option checks into usage errors that name the option the user
/// typed (<c>--bandwidth 1GB/sec: …</c>), not a parser's or a C# property's name.
/// </summary>
internal static class CliInput
{
    /// <summary>Parses an option's text with one of the <see cref="Units"/> parsers.</summary>
    internal static T Parse<T>(ParseResult parse, Option<string> option, Func<string, T> parser) =>
        Named(option, () => parser(parse.GetValue(option)!));

    /// <summary>Parses an optional option's text; null when it was not given.</summary>
    internal static T? ParseOptional<T>(ParseResult parse, Option<string?> option, Func<string, T> parser)
        where T : struct =>
        Named<T?>(option, () => parse.GetValue(option) is { } text ? parser(text) : null);

    /// <summary>Reads a plan's <c>--deadline</c>: null when not given.</summary>
    /// <exception cref="FormatException">It is not a duration, or not positive.</exception>
    internal static TimeSpan? ParseDeadline(ParseResult parse, Option<string?> deadline) =>
        ParseOptional(parse, deadline, Units.ParseDuration) is not { } limit ? null
        : limit > TimeSpan.Zero ? limit
        : throw new FormatException($"--deadline {parse.GetValue(deadline)}: the deadline must be positive.");

    private static T Named<T>(Option option, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (FormatException ex)
        {
            throw new FormatException($"{option.Name}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Runs a library options object's <c>Validate</c> before anything starts; a rejected property
    /// is reported under the option it came from.
    /// </summary>
    internal static void Validate(Action validate, IReadOnlyDictionary<string, Option> optionsByProperty)
    {
        try
        {
            validate();
        }
        catch (ArgumentException ex)
        {
            // "BandwidthLimit must be at least …" reads "--bandwidth must be at least …": every
            // property the message names becomes the option the user typed.
            string message = WithoutParameterName(ex);
            foreach ((string property, Option option) in optionsByProperty)
            {
                message = Regex.Replace(message, $@"\b{property}\b", option.Name);
            }

            bool named = ex.ParamName is { } p && optionsByProperty.TryGetValue(p, out Option? rejected) && message.Contains(rejected.Name, StringComparison.Ordinal);
            throw new FormatException(named || ex.ParamName is null || !optionsByProperty.TryGetValue(ex.ParamName, out Option? o) ? message : $"{o.Name}: {message}", ex);
        }
    }

    /// <summary>
    /// The failures a command reports with <see cref="Fail"/> rather than a stack trace: what the
    /// host, the peer, libvirt or the arguments refused. Anything else is a bug and shows as one.
    /// </summary>
    internal static bool EndsACommand(Exception ex) =>
        ex is ArgumentException or FormatException or InvalidOperationException or TimeoutException or IOException
            or UnauthorizedAccessException or DllNotFoundException or KvmException or DirtyTrackingException or LibvirtException;

    /// <summary>
    /// A bench's result: printed as <paramref name="json"/> when <paramref name="printJson"/>, else by
    /// <paramref name="writeText"/>, then saved as that JSON to <paramref name="outFile"/> when given.
    /// </summary>
    /// <exception cref="IOException">The file could not be written (after the result was printed).</exception>
    internal static void Emit(string json, string? outFile, bool printJson, Action writeText)
    {
        // Printed first: a file that cannot be written must not lose a bench's hours of results.
        if (printJson)
        {
            Console.WriteLine(json);
        }
        else
        {
            writeText();
        }

        if (outFile is not null)
        {
            try
            {
                File.WriteAllText(outFile, json + Environment.NewLine);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"--out {outFile}: the results above could not be saved ({ex.Message})", ex);
            }
        }
    }

    /// <summary>
    /// Reads a bench's saved JSON for <c>--from</c> or <c>--summarize</c>. A missing file, a folder or
    /// JSON of another shape is a rejected argument naming the option and the file (exit code 2), not
    /// a serializer's message about C# types.
    /// </summary>
    internal static T LoadSaved<T>(string option, string file, JsonTypeInfo<T> type, string what)
        where T : class
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException(Directory.Exists(file) ? $"{option} {file}: a folder, not a saved {what}." : $"{option} {file}: cannot be read ({ex.Message})", ex);
        }

        try
        {
            return JsonSerializer.Deserialize(text, type) ?? throw new ArgumentException($"{option} {file}: holds null, not a {what}.");
        }
        catch (JsonException ex)
        {
            string line = ex.LineNumber is { } l ? $"line {l + 1}" : "its end";
            string where = ex.Path is { Length: > 1 } path ? $"{path}, {line}" : line;
            throw new ArgumentException($"{option} {file}: not a {what} as --out saves it (it does not fit at {where}).", ex);
        }
    }

    /// <summary>Prints why a command failed and returns its exit code: 2 for a rejected argument, 4 otherwise.</summary>
    internal static int Fail(Exception ex)
    {
        string message = ex switch
        {
            DllNotFoundException when ex.Message.Contains("libvirt", StringComparison.Ordinal) =>
                $"libvirt's client library cannot be loaded ({ex.Message}). Install it (Debian/Ubuntu: apt install libvirt0) or leave out the libvirt commands.",
            ArgumentException a => WithoutParameterName(a),
            _ => ex.Message,
        };
        Console.Error.WriteLine($"migratekit: {message}");
        return ex is ArgumentException ? 2 : 4;
    }

    // ArgumentException appends " (Parameter 'name')", a C# name that means nothing at a prompt.
    internal static string WithoutParameterName(Exception ex) =>
        ex is ArgumentException { ParamName: { } name } ? ex.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : ex.Message;
}
