using System;
using System.Globalization;

namespace MigrateKit;

/// <summary>
/// Parses and formats the units MigrateKit's options use: sizes in bytes with binary suffixes
/// (<c>1GiB</c>, <c>99MiB</c>, <c>4096</c>), rates (<c>100MiB/s</c>) and durations (<c>300ms</c>,
/// <c>2s</c>). Decimal suffixes such as <c>GB</c> are refused with a message that names the
/// binary one, because a migration that is off by 7 % is a migration that misses its budget.
/// </summary>
public static class Units
{
    private static readonly string[] DecimalSuffixes = ["KB", "MB", "GB", "TB", "K", "M", "G", "T", "kb", "mb", "gb", "k", "m", "g"];

    /// <summary>Parses a size such as <c>1GiB</c>, <c>512KiB</c>, <c>99MiB</c> or a plain byte count.</summary>
    /// <exception cref="FormatException">The text is not a size; the message says what is expected.</exception>
    public static ulong ParseBytes(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim();
        (string suffix, ulong scale)[] suffixes = [("KiB", 1UL << 10), ("MiB", 1UL << 20), ("GiB", 1UL << 30), ("TiB", 1UL << 40)];
        foreach ((string suffix, ulong scale) in suffixes)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal))
            {
                return Scale(t[..^suffix.Length], scale, text);
            }
        }

        foreach (string wrong in DecimalSuffixes)
        {
            if (t.EndsWith(wrong, StringComparison.Ordinal))
            {
                string unit = wrong.ToUpperInvariant().TrimEnd('B');
                throw new FormatException($"'{text}': use binary units ({unit}iB), e.g. 1GiB, 512MiB.");
            }
        }

        return t.EndsWith('B') ? Scale(t[..^1], 1, text) : Scale(t, 1, text);
    }

    /// <summary>Parses a rate such as <c>100MiB/s</c>; <c>unlimited</c> gives null.</summary>
    /// <exception cref="FormatException">The text is not a rate.</exception>
    public static ulong? ParseRate(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim();
        if (t.Equals("unlimited", StringComparison.OrdinalIgnoreCase) || t == "0")
        {
            return null;
        }

        int slash = t.LastIndexOf('/');
        string size = slash < 0 ? t : t[..slash];
        if (slash < 0 || t[(slash + 1)..] != "s")
        {
            // Name the whole correction at once ("1GB/sec" -> "1GiB/s"), not one mistake per try.
            string hint = Corrected(size) is { } fixedSize ? $"'{fixedSize}/s'" : "e.g. 100MiB/s";
            throw new FormatException($"'{text}' is not a rate: write a binary size per second, {hint} (or 'unlimited').");
        }

        ulong value = ParseBytes(size);
        return value == 0 ? throw new FormatException($"'{text}': a rate must be positive (or 'unlimited').") : value;
    }

    /// <summary>Parses a duration such as <c>300ms</c>, <c>2s</c>, <c>1.5s</c>, <c>2m</c>.</summary>
    /// <exception cref="FormatException">The text is not a duration.</exception>
    public static TimeSpan ParseDuration(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim();
        (string suffix, double ms)[] suffixes = [("ms", 1), ("us", 0.001), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach ((string suffix, double ms) in suffixes)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal) &&
                double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value >= 0 && double.IsFinite(value))
            {
                double milliseconds = value * ms;
                return milliseconds <= TimeSpan.MaxValue.TotalMilliseconds
                    ? TimeSpan.FromMilliseconds(milliseconds)
                    : throw new FormatException($"'{text}' is longer than a duration can be.");
            }
        }

        throw new FormatException($"'{text}' is not a duration: use ms, s, m or h, e.g. 300ms or 2s.");
    }

    /// <summary>Formats a byte count with a binary suffix: <c>99.0 MiB</c>.</summary>
    public static string FormatBytes(double bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int i = 0;
        while (Math.Abs(bytes) >= 1024 && i < units.Length - 1)
        {
            bytes /= 1024;
            i++;
        }

        return i == 0 ? string.Create(CultureInfo.InvariantCulture, $"{bytes:F0} B") : string.Create(CultureInfo.InvariantCulture, $"{bytes:F1} {units[i]}");
    }

    /// <summary>Formats a rate: <c>100.0 MiB/s</c>.</summary>
    public static string FormatRate(double bytesPerSecond) => FormatBytes(bytesPerSecond) + "/s";

    // The size as it should have been written, when it is one with a decimal or bare suffix.
    private static string? Corrected(string size)
    {
        string t = size.Trim();
        foreach (string wrong in DecimalSuffixes)
        {
            if (t.EndsWith(wrong, StringComparison.Ordinal))
            {
                t = t[..^wrong.Length] + wrong.ToUpperInvariant().TrimEnd('B') + "iB";
                break;
            }
        }

        try
        {
            ParseBytes(t);
            return t;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static ulong Scale(string number, ulong scale, string original)
    {
        if (number.Contains(','))
        {
            // "1,5MiB" read with thousands separators is 15 MiB: a decimal comma must not pass for one.
            throw new FormatException($"'{original}' is not a size: write a decimal point, not a comma (e.g. 1.5GiB), and no thousands separators.");
        }

        if (!decimal.TryParse(number.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal value) || value < 0)
        {
            throw new FormatException($"'{original}' is not a size: use a number with KiB, MiB, GiB or TiB, e.g. 1GiB.");
        }

        if (value > ulong.MaxValue / (decimal)scale)
        {
            throw new FormatException($"'{original}' is too large: a size is at most {ulong.MaxValue} bytes.");
        }

        decimal bytes = value * scale;
        if (bytes > ulong.MaxValue || bytes != decimal.Truncate(bytes))
        {
            throw new FormatException($"'{original}' is not a whole number of bytes.");
        }

        return (ulong)bytes;
    }
}
