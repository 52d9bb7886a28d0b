using System;
using System.Collections.Generic;
using System.CommandLine;
using System.IO;
using MigrateKit.Migration;
using MigrateKit.Reports;

namespace MigrateKit.Cli;

/// <summary><c>migratekit report</c>, and the <c>--report FILE</c> option of the migrating commands.</summary>
internal static class ReportCommands
{
    /// <summary>A new <c>--report</c> option (each command needs its own instance).</summary>
    internal static Option<string?> CreateOption() => new("--report")
    {
        Description = "Also save the report. FILE.png or FILE.html gets the picture or the page, with the JSON next to it as FILE.json; any other name gets the JSON.",
        HelpName = "FILE",
    };

    /// <summary>Checks a <c>--report</c> path (or a bench's <c>--out</c>) before the work starts, not after it.</summary>
    /// <exception cref="FormatException">Its folder does not exist, or it names a folder.</exception>
    internal static void Check(string? path, string option = "--report")
    {
        if (path is null)
        {
            return;
        }

        if (path.Length == 0 || Directory.Exists(path))
        {
            throw new FormatException(option == "--report"
                ? $"--report '{path}': name a file, e.g. run.json, run.png or run.html."
                : $"{option} '{path}': name a file, e.g. bench.json.");
        }

        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(folder))
        {
            throw new FormatException($"{option} {path}: the folder {folder} does not exist.");
        }
    }

    /// <summary>
    /// Saves the report when <c>--report</c> was given. Says where on stdout, or on stderr when
    /// <paramref name="json"/> (stdout then holds the one JSON object). Returns the exit code: the
    /// migration's, or 4 if it was 0 and the report could not be written.
    /// </summary>
    internal static int Save(MigrationReport report, string? path, bool json, int exitCode)
    {
        if (path is null)
        {
            return exitCode;
        }

        try
        {
            IReadOnlyList<string> written = ReportFiles.Save(report, path);
            TextWriter say = json ? Console.Error : Console.Out;
            say.WriteLine(written.Count == 1 ? $"report: {written[0]}" : $"report: {written[0]} (JSON: {written[1]})");
            return exitCode;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"migratekit: could not write the report to {path}: {ex.Message}");
            return exitCode == 0 ? 4 : exitCode;
        }
    }

    /// <summary><c>migratekit report REPORT.json [--out FILE.png|FILE.html]</c>.</summary>
    internal static Command Create()
    {
        var input = new Argument<string>("REPORT") { Description = "A report saved as JSON (by --report FILE.json, or next to a picture)." };
        var output = new Option<string?>("--out")
        {
            Description = "The picture (.png) or page (.html) to write. The default is the report's name with .png, next to it.",
            HelpName = "FILE",
        };
        var width = new Option<int>("--width") { Description = "Picture width in pixels.", DefaultValueFactory = _ => 1400 };
        var height = new Option<int>("--height") { Description = "Picture height in pixels.", DefaultValueFactory = _ => 1000 };
        var command = new Command("report", "Draw a saved migration report: stacked charts of every round (bytes sent, dirty and hot pages, bandwidth and dirty rate, " +
            "the downtime forecast against the actual downtime and the limit, the throttle) as a PNG, or an HTML page with the picture and tables.\n" +
            "Example: migratekit report run.json --out run.html");
        command.Arguments.Add(input);
        command.Options.Add(output);
        command.Options.Add(width);
        command.Options.Add(height);
        command.SetAction(parse =>
        {
            string from = parse.GetValue(input)!;
            if (string.IsNullOrWhiteSpace(from))
            {
                // Before --out is derived from it, which would be blamed instead.
                return Usage("REPORT is empty: name a report saved as JSON, e.g. run.json.");
            }

            string to = parse.GetValue(output) ?? Path.ChangeExtension(from, ".png");
            int w = parse.GetValue(width);
            int h = parse.GetValue(height);
            if (ReportFiles.PictureFormatOf(to) is not { } format)
            {
                return Usage($"--out {to}: the extension '{Path.GetExtension(to)}' is not one the report command writes; use FILE.png or FILE.html.");
            }

            if (w is < ReportRenderer.MinimumWidth or > ReportRenderer.MaximumSize || h is < ReportRenderer.MinimumHeight or > ReportRenderer.MaximumSize)
            {
                return Usage($"--width {w} --height {h}: use {ReportRenderer.MinimumWidth} to {ReportRenderer.MaximumSize} by {ReportRenderer.MinimumHeight} to {ReportRenderer.MaximumSize} pixels.");
            }

            MigrationReport report;
            try
            {
                report = ReportFiles.Load(from);
                Check(to);
            }
            catch (ReportFileException ex)
            {
                return Usage(ex.Message);
            }
            catch (FormatException ex)
            {
                return Usage(ex.Message.Replace("--report", "--out", StringComparison.Ordinal).Replace("run.json, run.png or run.html", "run.png or run.html", StringComparison.Ordinal));
            }

            try
            {
                if (format == ReportFormat.Png)
                {
                    ReportRenderer.RenderPng(report, to, w, h);
                }
                else
                {
                    ReportRenderer.RenderHtml(report, to, w, h);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"migratekit report: could not write {to}: {ex.Message}");
                return 4;
            }

            Console.WriteLine(to);
            return 0;
        });
        return command;
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"migratekit report: {message}");
        return 2;
    }
}
