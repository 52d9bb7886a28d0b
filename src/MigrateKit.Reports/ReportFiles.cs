using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using MigrateKit.Migration;

namespace MigrateKit.Reports;

/// <summary>What a report file holds, chosen by its extension.</summary>
public enum ReportFormat
{
    /// <summary>The report as JSON (<see cref="MigrationReport.ToJson"/>).</summary>
    Json,

    /// <summary>The picture (<see cref="ReportRenderer.RenderPng"/>).</summary>
    Png,

    /// <summary>The page with the picture and the tables (<see cref="ReportRenderer.RenderHtml"/>).</summary>
    Html,
}

/// <summary>A report file could not be read, or is not a migration report; the message names the file and the problem.</summary>
public sealed class ReportFileException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="path">The file.</param>
    /// <param name="message">What is wrong with it.</param>
    /// <param name="inner">The underlying error.</param>
    public ReportFileException(string path, string message, Exception? inner = null)
        : base(message, inner)
    {
        Path = path;
    }

    /// <summary>The file.</summary>
    public string Path { get; }
}

/// <summary>Reads and writes report files: JSON, PNG or HTML by extension.</summary>
public static class ReportFiles
{
    /// <summary>The format a file name asks for: <c>.png</c>, <c>.html</c> or <c>.htm</c> (any case), else <see langword="null"/>.</summary>
    /// <param name="path">A file name.</param>
    /// <returns>The picture format, or <see langword="null"/> for any other extension.</returns>
    public static ReportFormat? PictureFormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".png" => ReportFormat.Png,
        ".html" or ".htm" => ReportFormat.Html,
        _ => null,
    };

    /// <summary>Where the JSON goes when a picture is written to <paramref name="picturePath"/>: the same name with the extension <c>.json</c>.</summary>
    /// <param name="picturePath">The picture's file name.</param>
    /// <returns><c>run.png</c> gives <c>run.json</c>.</returns>
    public static string JsonPathFor(string picturePath) => Path.ChangeExtension(picturePath, ".json");

    /// <summary>
    /// Saves a report: a <c>.png</c> or <c>.html</c> path gets the picture or the page and the JSON
    /// next to it (<see cref="JsonPathFor"/>); any other path gets the JSON.
    /// </summary>
    /// <param name="report">The report.</param>
    /// <param name="path">Where to write it.</param>
    /// <returns>The files written, the one named by <paramref name="path"/> first.</returns>
    /// <exception cref="IOException">A file could not be written.</exception>
    /// <exception cref="UnauthorizedAccessException">A file may not be written.</exception>
    public static IReadOnlyList<string> Save(MigrationReport report, string path)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrEmpty(path);
        switch (PictureFormatOf(path))
        {
            case ReportFormat.Png:
                ReportRenderer.RenderPng(report, path);
                break;
            case ReportFormat.Html:
                ReportRenderer.RenderHtml(report, path);
                break;
            default:
                File.WriteAllText(path, report.ToJson());
                return [path];
        }

        string json = JsonPathFor(path);
        File.WriteAllText(json, report.ToJson());
        return [path, json];
    }

    /// <summary>Reads a report written by <see cref="MigrationReport.ToJson"/>.</summary>
    /// <param name="path">The JSON file.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ReportFileException">The file is missing, unreadable, not JSON, or not a migration report.</exception>
    public static MigrationReport Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            throw new ReportFileException(path, $"{path}: a folder, not a report file.");
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ReportFileException(path, $"{path}: no such file.", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new ReportFileException(path, $"{path}: cannot be read ({ex.Message}).", ex);
        }

        try
        {
            using (JsonDocument document = JsonDocument.Parse(text))
            {
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new ReportFileException(path, $"{path}: not a migration report (the JSON is {Article(document.RootElement.ValueKind)}, not an object).");
                }

                if (!document.RootElement.TryGetProperty("status", out _))
                {
                    throw new ReportFileException(path, $"{path}: not a migration report (no \"status\" field).");
                }
            }

            return MigrationReport.FromJson(text);
        }
        catch (JsonException ex)
        {
            string where = ex.LineNumber is long line ? $" at line {line + 1}" : "";
            throw new ReportFileException(path, $"{path}: not a migration report: malformed JSON{where} ({FirstSentence(ex.Message)}).", ex);
        }
    }

    private static string Article(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.Null => "null",
        _ => "a " + kind.ToString().ToLowerInvariant(),
    };

    private static string FirstSentence(string message)
    {
        int dot = message.IndexOf(". ", StringComparison.Ordinal);
        return (dot > 0 ? message[..dot] : message).TrimEnd('.');
    }
}
