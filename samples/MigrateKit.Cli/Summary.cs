using System;
using System.Collections.Generic;
using Spectre.Console;

namespace MigrateKit.Cli;

/// <summary>
/// A result as name/value rows: a rounded table in a terminal, or plain <c>name: value</c> lines
/// (no markup, no box drawing) when stdout is a file or a pipe, so a script can read it.
/// </summary>
internal sealed class Summary(string title)
{
    private readonly List<(string Name, string Value, string? PlainName)> _rows = [];

    /// <summary>Adds a row; <paramref name="value"/> is Spectre markup. <paramref name="plainName"/> replaces the name in plain lines (a decision's time and action move into its value).</summary>
    internal void AddRow(string name, string value, string? plainName = null) => _rows.Add((name, value, plainName));

    /// <summary>Writes the rows in the form that suits stdout.</summary>
    internal void Write()
    {
        if (RoundsView.Plain)
        {
            Console.Out.WriteLine(Markup.Remove(title));
            foreach ((string name, string value, string? plainName) in _rows)
            {
                Console.Out.WriteLine(Line(name, Markup.Remove(value), plainName));
            }

            return;
        }

        Table table = new Table().Border(TableBorder.Rounded).Title($"[bold]{title}[/]").AddColumn("").AddColumn("").HideHeaders();
        foreach ((string name, string value, _) in _rows)
        {
            table.AddRow(name, value);
        }

        AnsiConsole.Write(table);
    }

    /// <summary>One row as a plain line: "name: value", or "plain name: name: value" when the row has a plain name.</summary>
    internal static string Line(string name, string value, string? plainName) => (name.Trim(), plainName) switch
    {
        ("", { } p) => $"{p}: {value}",
        (var n, { } p) => $"{p}: {n}: {value}",
        (var n, _) => $"{n}: {value}",
    };
}
