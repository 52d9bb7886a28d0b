using System;
using System.Collections.Generic;
using System.CommandLine;

namespace MigrateKit.Cli;

/// <summary>
/// Turns option text and library option checks into usage errors that name the option the user
/// typed (<c>--bandwidth 1GB/sec: …</c>), not a parser's or a C# property's name.
/// </summary>
internal static class CliInput
{
    /// <summary>Parses an option's text with one of the <see cref="Units"/> parsers.</summary>
    internal static T Parse<T>(ParseResult parse, Option<string> option, Func<string, T> parser)
    {
        string text = parse.GetValue(option)!;
        try
        {
            return parser(text);
        }
        catch (FormatException ex)
        {
            throw new FormatException($"{option.Name}: {ex.Message}", ex);
        }
    }

    /// <summary>Parses an optional option's text; null when it was not given.</summary>
    internal static T? ParseOptional<T>(ParseResult parse, Option<string?> option, Func<string, T> parser)
        where T : struct
    {
        string? text = parse.GetValue(option);
        try
        {
            return text is null ? null : parser(text);
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
            string message = ex.ParamName is { } name ? ex.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : ex.Message;
            throw new FormatException(
                ex.ParamName is { } property && optionsByProperty.TryGetValue(property, out Option? option) ? $"{option.Name}: {message}" : message, ex);
        }
    }

    /// <summary>Prints why a command failed and returns its exit code: 2 for a rejected argument, 4 otherwise.</summary>
    internal static int Fail(Exception ex)
    {
        string message = ex is DllNotFoundException
            ? $"libvirt's client library cannot be loaded ({ex.Message}). Install it (Debian/Ubuntu: apt install libvirt0) or leave out the libvirt commands."
            : ex.Message;
        Console.Error.WriteLine($"migratekit: {message}");
        return ex is ArgumentException ? 2 : 4;
    }
}
