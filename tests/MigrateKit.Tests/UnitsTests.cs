using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests;

/// <summary>Units: sizes with binary suffixes, rates, durations, and their formatting.</summary>
[TestClass]
public sealed class UnitsTests
{
    [TestMethod]
    [DataRow("1GiB", 1UL << 30)]
    [DataRow("99MiB", 99UL << 20)]
    [DataRow("512KiB", 512UL << 10)]
    [DataRow("2TiB", 2UL << 40)]
    [DataRow("4096", 4096UL)]
    [DataRow("4096B", 4096UL)]
    [DataRow("0", 0UL)]
    [DataRow("1.5GiB", 3UL << 29)]
    [DataRow("0.5KiB", 512UL)]
    [DataRow("  64 MiB  ", 64UL << 20)]
    [DataRow("18446744073709551615", ulong.MaxValue)]
    [DataRow("16777215TiB", 16777215UL << 40)]
    public void ParseBytes_AcceptsBinarySizes(string text, ulong expected) =>
        Assert.AreEqual(expected, Units.ParseBytes(text));

    [TestMethod]
    [DataRow("1GB", "GiB")]
    [DataRow("1gb", "GiB")]
    [DataRow("512MB", "MiB")]
    [DataRow("4K", "KiB")]
    [DataRow("2T", "TiB")]
    [DataRow("8m", "MiB")]
    public void ParseBytes_DecimalSuffix_NamesTheBinaryOne(string text, string binary)
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseBytes(text));
        Assert.Contains($"'{text}'", ex.Message);
        Assert.Contains($"({binary})", ex.Message);
    }

    [TestMethod]
    [DataRow("abc")]
    [DataRow("")]
    [DataRow("GiB")]
    [DataRow("-1")]
    [DataRow("-1MiB")]
    [DataRow("1Kib")]
    public void ParseBytes_NotASize_Throws(string text)
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseBytes(text));
        Assert.Contains($"'{text}' is not a size", ex.Message);
    }

    [TestMethod]
    [DataRow("1,5MiB")]
    [DataRow("6,4MiB")]
    [DataRow("1,024KiB")]
    [DataRow("1,5")]
    public void ParseBytes_AComma_IsRefused_NotReadAsAThousandsSeparator(string text)
    {
        // "1,5MiB" was 15 MiB: a European decimal comma read as a thousands separator, silently.
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseBytes(text));
        Assert.AreEqual($"'{text}' is not a size: write a decimal point, not a comma (e.g. 1.5GiB), and no thousands separators.", ex.Message);
        Assert.Contains("not a comma", Assert.ThrowsExactly<FormatException>(() => Units.ParseRate(text + "/s")).Message);
    }

    [TestMethod]
    [DataRow("0.1KiB")]
    [DataRow("1.5")]
    [DataRow("0.5B")]
    public void ParseBytes_FractionOfAByte_Throws(string text)
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseBytes(text));
        Assert.Contains("not a whole number of bytes", ex.Message);
    }

    [TestMethod]
    [DataRow("18446744073709551616")]
    [DataRow("16777216TiB")]
    [DataRow("17179869184GiB")]
    [DataRow("100000000000000000000000000TiB")]
    [DataRow("79228162514264337593543950335KiB")]
    public void ParseBytes_Overflow_ThrowsFormatException(string text)
    {
        // Documented: FormatException for anything that is not a size (not OverflowException).
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseBytes(text));
        Assert.Contains($"'{text}'", ex.Message);
    }

    [TestMethod]
    public void ParseBytes_Null_Throws() =>
        Assert.ThrowsExactly<ArgumentNullException>(() => Units.ParseBytes(null!));

    [TestMethod]
    [DataRow("100MiB/s", 100UL << 20)]
    [DataRow("1GiB/s", 1UL << 30)]
    [DataRow("4096/s", 4096UL)]
    [DataRow(" 10 MiB/s ", 10UL << 20)]
    public void ParseRate_AcceptsPerSecondSizes(string text, ulong expected) =>
        Assert.AreEqual(expected, Units.ParseRate(text));

    [TestMethod]
    [DataRow("unlimited")]
    [DataRow("Unlimited")]
    [DataRow("UNLIMITED")]
    [DataRow("0")]
    public void ParseRate_Unlimited_IsNull(string text) =>
        Assert.IsNull(Units.ParseRate(text));

    [TestMethod]
    [DataRow("1GB/sec")]
    [DataRow("100MiB")]
    [DataRow("abc")]
    [DataRow("100MiB/min")]
    public void ParseRate_NotPerSecond_Throws(string text)
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseRate(text));
        Assert.Contains($"'{text}' is not a rate", ex.Message);
        Assert.Contains("size per second", ex.Message);
    }

    [TestMethod]
    [DataRow("1GB/sec", "'1GiB/s'")]
    [DataRow("100MiB/sec", "'100MiB/s'")]
    [DataRow("100M", "'100MiB/s'")]
    [DataRow("512kb/min", "'512KiB/s'")]
    [DataRow("100MiB", "'100MiB/s'")]
    public void ParseRate_NotPerSecond_SuggestsTheCorrectSpelling(string text, string suggestion)
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseRate(text));
        Assert.Contains(suggestion, ex.Message);
    }

    [TestMethod]
    public void ParseRate_BitsPerSecond_AreNotSupported()
    {
        // "Gbit" is neither a binary nor a refused decimal suffix: it is not a size at all.
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseRate("1Gbit/s"));
        Assert.Contains("'1Gbit' is not a size", ex.Message);
    }

    [TestMethod]
    public void ParseRate_DecimalSuffix_NamesTheBinaryOne()
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseRate("1GB/s"));
        Assert.Contains("(GiB)", ex.Message);
    }

    [TestMethod]
    [DataRow("0MiB/s")]
    [DataRow("0/s")]
    public void ParseRate_ZeroWithUnit_MustBePositive(string text)
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseRate(text));
        Assert.Contains("must be positive", ex.Message);
    }

    [TestMethod]
    [DataRow("-1MiB/s")]
    [DataRow("18446744073709551616/s")]
    public void ParseRate_NegativeOrOverflow_ThrowsFormatException(string text) =>
        Assert.ThrowsExactly<FormatException>(() => Units.ParseRate(text));

    [TestMethod]
    [DataRow("300ms", 300 * TimeSpan.TicksPerMillisecond)]
    [DataRow("1.5s", 1500 * TimeSpan.TicksPerMillisecond)]
    [DataRow("2s", 2 * TimeSpan.TicksPerSecond)]
    [DataRow("2m", 2 * TimeSpan.TicksPerMinute)]
    [DataRow("1h", TimeSpan.TicksPerHour)]
    [DataRow("250us", 250 * TimeSpan.TicksPerMicrosecond)]
    [DataRow("0ms", 0L)]
    [DataRow("1.5ms", 15_000L)]
    [DataRow(" 30 s ", 30 * TimeSpan.TicksPerSecond)]
    public void ParseDuration_AcceptsUnits(string text, long expectedTicks) =>
        Assert.AreEqual(TimeSpan.FromTicks(expectedTicks), Units.ParseDuration(text));

    [TestMethod]
    [DataRow("abc")]
    [DataRow("300")]
    [DataRow("-1s")]
    [DataRow("-300ms")]
    [DataRow("1.5 sec")]
    [DataRow("NaNs")]
    [DataRow("Infinityms")]
    [DataRow("")]
    public void ParseDuration_NotADuration_Throws(string text)
    {
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseDuration(text));
        Assert.Contains($"'{text}' is not a duration", ex.Message);
        Assert.Contains("300ms", ex.Message);
    }

    [TestMethod]
    [DataRow("1e300s")]
    [DataRow("999999999999h")]
    [DataRow("1e20ms")]
    public void ParseDuration_Overflow_ThrowsFormatException(string text)
    {
        // Documented: FormatException (a duration TimeSpan cannot hold is not a duration).
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => Units.ParseDuration(text));
        Assert.Contains($"'{text}'", ex.Message);
    }

    [TestMethod]
    [DataRow(0d, "0 B")]
    [DataRow(1023d, "1023 B")]
    [DataRow(1024d, "1.0 KiB")]
    [DataRow(1536d, "1.5 KiB")]
    [DataRow(99d * 1024 * 1024, "99.0 MiB")]
    [DataRow(1024d * 1024 * 1024, "1.0 GiB")]
    [DataRow(1.5d * 1024 * 1024 * 1024 * 1024, "1.5 TiB")]
    [DataRow(4096d * 1024 * 1024 * 1024 * 1024, "4096.0 TiB")]
    [DataRow(-2048d, "-2.0 KiB")]
    public void FormatBytes_UsesBinarySuffixes(double bytes, string expected) =>
        Assert.AreEqual(expected, Units.FormatBytes(bytes));

    [TestMethod]
    public void FormatRate_AppendsPerSecond()
    {
        Assert.AreEqual("100.0 MiB/s", Units.FormatRate(100d * 1024 * 1024));
        Assert.AreEqual("512 B/s", Units.FormatRate(512));
    }

    [TestMethod]
    [DataRow(0UL)]
    [DataRow(4096UL)]
    [DataRow(99UL << 20)]
    [DataRow(3UL << 29)]
    [DataRow(1UL << 30)]
    [DataRow(5UL << 40)]
    public void FormatBytes_ParseBytes_RoundTrips(ulong bytes) =>
        Assert.AreEqual(bytes, Units.ParseBytes(Units.FormatBytes(bytes)));

    [TestMethod]
    [DataRow(100UL << 20)]
    [DataRow(1UL << 30)]
    [DataRow(8192UL)]
    public void FormatRate_ParseRate_RoundTrips(ulong bytesPerSecond) =>
        Assert.AreEqual(bytesPerSecond, Units.ParseRate(Units.FormatRate(bytesPerSecond)));

    [TestMethod]
    public void ParseBytes_ThenFormat_GivesTheCanonicalText() =>
        Assert.AreEqual("99.0 MiB", Units.FormatBytes(Units.ParseBytes("99MiB")));
}
