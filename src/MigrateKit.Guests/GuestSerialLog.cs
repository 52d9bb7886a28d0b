using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace MigrateKit.Guests;

/// <summary>
/// What a guest program built with <see cref="GuestPorts.Com1"/> printed: one line of eight hex digits
/// per report, the pass number, or <see cref="GuestPorts.FailureFlag"/> | page index for a failed check.
/// </summary>
/// <param name="Passes">Pass numbers, in order.</param>
/// <param name="FailedPages">Page indexes whose check failed, in order.</param>
/// <param name="Garbage">Complete lines that are not a report (a BIOS message, a disk error).</param>
public sealed record GuestSerialLog(IReadOnlyList<uint> Passes, IReadOnlyList<uint> FailedPages, IReadOnlyList<string> Garbage)
{
    /// <summary>The last pass reported, 0 before the first.</summary>
    public uint LastPass => Passes.Count == 0 ? 0 : Passes[^1];

    /// <summary>Parses serial text; an unfinished last line is ignored.</summary>
    public static GuestSerialLog Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var passes = new List<uint>();
        var failed = new List<uint>();
        var garbage = new List<string>();
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length - 1; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.Length == 8 && uint.TryParse(line, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint value))
            {
                if ((value & GuestPorts.FailureFlag) != 0)
                {
                    failed.Add(value & ~GuestPorts.FailureFlag);
                }
                else
                {
                    passes.Add(value);
                }
            }
            else if (line.Length > 0)
            {
                garbage.Add(line);
            }
        }

        return new GuestSerialLog(passes, failed, garbage);
    }

    /// <summary>Reads and parses a serial file another process is still writing; empty if it does not exist yet.</summary>
    public static GuestSerialLog Read(string path)
    {
        if (!File.Exists(path))
        {
            return Parse(string.Empty);
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd());
    }
}
