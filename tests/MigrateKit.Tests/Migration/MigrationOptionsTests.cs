using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>MigrationOptions: documented defaults, and validation messages that name the bad option.</summary>
[TestClass]
public sealed class MigrationOptionsTests
{
    [TestMethod]
    public void Defaults_AreTheDocumentedOnes()
    {
        var o = new MigrationOptions();
        Assert.AreEqual(TimeSpan.FromMilliseconds(300), o.MaxDowntime);
        Assert.IsNull(o.BandwidthLimit);
        Assert.AreEqual(30, o.MaxRounds);
        Assert.AreEqual(3.0, o.MaxBytesFactor);
        Assert.AreEqual(4, o.HotPageWindow);
        Assert.AreEqual(2, o.HotPageThreshold);
        Assert.AreEqual(0.5, o.DeferBudgetFraction);
        Assert.IsTrue(o.AllowThrottling);
        Assert.AreEqual(95, o.MaxThrottlePercent);
        Assert.AreEqual(0.5, o.ConvergenceTarget);
        Assert.IsNull(o.Deadline);
        Assert.AreEqual(TimeSpan.FromSeconds(30), o.ResponseTimeout);
        Assert.IsTrue(o.VerifySourceMemory);
        Assert.AreSame(TimeProvider.System, o.TimeProvider);
        Assert.IsNull(o.Encodings);
        Assert.AreEqual(PageEncodings.Delta, o.EffectiveEncodings, "no limit: deltas, without the compression that would cap a fast link");
        Assert.AreEqual(PageEncodings.All, new MigrationOptions { BandwidthLimit = 100L << 20 }.EffectiveEncodings);
        Assert.AreEqual(PageEncodings.None, new MigrationOptions { BandwidthLimit = 100L << 20, Encodings = PageEncodings.None }.EffectiveEncodings);
        Assert.IsNull(o.SentPageCacheBytes);
        Assert.AreEqual(0, o.CompressionLevel);
    }

    [TestMethod]
    [DataRow(32UL << 20, 32L << 20)]
    [DataRow(128UL << 20, 64L << 20)]
    [DataRow(1UL << 30, 256L << 20)]
    [DataRow(8UL << 30, 1L << 30)]
    public void SentPageCache_IsAQuarterOfGuestMemory_Within64MiBAnd1GiB_NeverMoreThanTheGuest_UnlessSet(ulong memory, long expected)
    {
        Assert.AreEqual(expected, new MigrationOptions().SentPageCacheSize(memory));
        Assert.AreEqual(8192L, new MigrationOptions { SentPageCacheBytes = 8192 }.SentPageCacheSize(memory));
    }

    [TestMethod]
    public void Defaults_AreValid() => new MigrationOptions().Validate();

    [TestMethod]
    public void EdgeValues_AreValid()
    {
        new MigrationOptions
        {
            MaxDowntime = TimeSpan.FromTicks(1),
            BandwidthLimit = 4096,
            MaxRounds = 1,
            MaxBytesFactor = 1,
            HotPageWindow = 8,
            HotPageThreshold = 8,
            DeferBudgetFraction = 0,
            MaxThrottlePercent = 0,
            ConvergenceTarget = 0.99,
            Deadline = TimeSpan.FromTicks(1),
            ResponseTimeout = TimeSpan.FromTicks(1),
        }.Validate();

        new MigrationOptions { ResponseTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1) }.Validate();

        new MigrationOptions { HotPageWindow = 1, HotPageThreshold = 1, MaxThrottlePercent = 99, DeferBudgetFraction = 0.99 }.Validate();
    }

    [TestMethod]
    [DataRow(nameof(MigrationOptions.MaxDowntime), "zero", "MaxDowntime must be positive")]
    [DataRow(nameof(MigrationOptions.MaxDowntime), "negative", "MaxDowntime must be positive")]
    [DataRow(nameof(MigrationOptions.BandwidthLimit), "zero", "BandwidthLimit must be at least 4096 bytes/s (one 4 KiB page per second) or null (got 0)")]
    [DataRow(nameof(MigrationOptions.BandwidthLimit), "negative", "BandwidthLimit must be at least 4096 bytes/s (one 4 KiB page per second) or null (got -1)")]
    [DataRow(nameof(MigrationOptions.BandwidthLimit), "below a page", "BandwidthLimit must be at least 4096 bytes/s (one 4 KiB page per second) or null (got 4095)")]
    [DataRow(nameof(MigrationOptions.MaxRounds), "zero", "MaxRounds must be at least 1 (got 0)")]
    [DataRow(nameof(MigrationOptions.MinRounds), "zero", "MinRounds must be at least 1 (got 0)")]
    [DataRow(nameof(MigrationOptions.MaxBytesFactor), "low", "MaxBytesFactor must be at least 1")]
    [DataRow(nameof(MigrationOptions.MaxBytesFactor), "nan", "MaxBytesFactor must be at least 1")]
    [DataRow(nameof(MigrationOptions.HotPageWindow), "zero", "HotPageWindow must be 1 to 8 (got 0)")]
    [DataRow(nameof(MigrationOptions.HotPageWindow), "high", "HotPageWindow must be 1 to 8 (got 9)")]
    [DataRow(nameof(MigrationOptions.HotPageThreshold), "zero", "HotPageThreshold must be 1 to HotPageWindow (4) (got 0)")]
    [DataRow(nameof(MigrationOptions.HotPageThreshold), "high", "HotPageThreshold must be 1 to HotPageWindow (4) (got 5)")]
    [DataRow(nameof(MigrationOptions.DeferBudgetFraction), "one", "DeferBudgetFraction must be in [0, 1)")]
    [DataRow(nameof(MigrationOptions.DeferBudgetFraction), "negative", "DeferBudgetFraction must be in [0, 1)")]
    [DataRow(nameof(MigrationOptions.MaxThrottlePercent), "high", "MaxThrottlePercent must be 0 to 99 (got 100)")]
    [DataRow(nameof(MigrationOptions.MaxThrottlePercent), "negative", "MaxThrottlePercent must be 0 to 99 (got -1)")]
    [DataRow(nameof(MigrationOptions.ConvergenceTarget), "zero", "ConvergenceTarget must be in (0, 1)")]
    [DataRow(nameof(MigrationOptions.ConvergenceTarget), "one", "ConvergenceTarget must be in (0, 1)")]
    [DataRow(nameof(MigrationOptions.Deadline), "zero", "Deadline must be positive")]
    [DataRow(nameof(MigrationOptions.ResponseTimeout), "zero", "ResponseTimeout must be positive")]
    [DataRow(nameof(MigrationOptions.ResponseTimeout), "negative", "ResponseTimeout must be positive")]
    [DataRow(nameof(MigrationOptions.ResponseTimeout), "over a timer's range", "ResponseTimeout must be positive and at most 4294967294 ms")]
    [DataRow(nameof(MigrationOptions.ReconnectAttempts), "negative", "ReconnectAttempts must be 0 to 100 (got -1)")]
    [DataRow(nameof(MigrationOptions.ReconnectAttempts), "high", "ReconnectAttempts must be 0 to 100 (got 101)")]
    [DataRow(nameof(MigrationOptions.ReconnectDelay), "zero", "ReconnectDelay must be positive and at most 1 minute")]
    [DataRow(nameof(MigrationOptions.ReconnectDelay), "negative", "ReconnectDelay must be positive and at most 1 minute")]
    [DataRow(nameof(MigrationOptions.ReconnectDelay), "high", "ReconnectDelay must be positive and at most 1 minute")]
    [DataRow(nameof(MigrationOptions.Encodings), "unknown", "Encodings has unknown flags")]
    [DataRow(nameof(MigrationOptions.SentPageCacheBytes), "below a page", "SentPageCacheBytes must be 4096 to")]
    [DataRow(nameof(MigrationOptions.SentPageCacheBytes), "too large", "SentPageCacheBytes must be 4096 to")]
    [DataRow(nameof(MigrationOptions.CompressionLevel), "negative", "CompressionLevel must be 0 to 12 (got -1)")]
    [DataRow(nameof(MigrationOptions.CompressionLevel), "high", "CompressionLevel must be 0 to 12 (got 13)")]
    public void BadOption_IsNamed(string option, string variant, string message)
    {
        MigrationOptions options = Bad(option, variant);
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);
        Assert.AreEqual(option, ex.ParamName);
        Assert.StartsWith(message, ex.Message);
    }

    [TestMethod]
    public void ReconnectEdgeValues_AreValid()
    {
        new MigrationOptions { ReconnectAttempts = 0 }.Validate();
        new MigrationOptions { ReconnectAttempts = 100, ReconnectDelay = TimeSpan.FromMinutes(1) }.Validate();
        new MigrationOptions { ReconnectDelay = TimeSpan.FromTicks(1) }.Validate();
        Assert.AreEqual(5, new MigrationOptions().ReconnectAttempts);
        Assert.AreEqual(TimeSpan.FromMilliseconds(200), new MigrationOptions().ReconnectDelay);
    }

    [TestMethod]
    public void NullTimeProvider_IsNamed()
    {
        var options = new MigrationOptions { TimeProvider = null! };
        ArgumentNullException ex = Assert.ThrowsExactly<ArgumentNullException>(options.Validate);
        Assert.AreEqual(nameof(MigrationOptions.TimeProvider), ex.ParamName);
    }

    [TestMethod]
    public void TheFirstProblem_IsReported()
    {
        var options = new MigrationOptions { MaxRounds = 0, MaxThrottlePercent = 100 };
        Assert.AreEqual(nameof(MigrationOptions.MaxRounds), Assert.ThrowsExactly<ArgumentException>(options.Validate).ParamName);
    }

    [TestMethod]
    [DataRow(4095L)]
    [DataRow(4096L)]
    [DataRow(1L << 20)]
    public void BandwidthLimit_IsAcceptedExactlyWhenThePageStreamAcceptsIt(long limit)
    {
        Assert.AreEqual(Accepts(new PageStreamOptions { BandwidthLimit = limit }.Validate), Accepts(new MigrationOptions { BandwidthLimit = limit }.Validate));
    }

    [TestMethod]
    public void HotPageThreshold_IsCheckedAgainstTheConfiguredWindow()
    {
        new MigrationOptions { HotPageWindow = 6, HotPageThreshold = 6 }.Validate();
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(new MigrationOptions { HotPageWindow = 3, HotPageThreshold = 4 }.Validate);
        Assert.Contains("HotPageWindow (3)", ex.Message);
    }

    private static bool Accepts(Action validate)
    {
        try
        {
            validate();
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static MigrationOptions Bad(string option, string variant) => (option, variant) switch
    {
        ("Encodings", _) => new MigrationOptions { Encodings = (PageEncodings)4 },
        ("SentPageCacheBytes", "below a page") => new MigrationOptions { SentPageCacheBytes = 4095 },
        ("SentPageCacheBytes", _) => new MigrationOptions { SentPageCacheBytes = (256L << 30) + 1 },
        ("CompressionLevel", "negative") => new MigrationOptions { CompressionLevel = -1 },
        ("CompressionLevel", _) => new MigrationOptions { CompressionLevel = 13 },
        ("MaxDowntime", "zero") => new MigrationOptions { MaxDowntime = TimeSpan.Zero },
        ("MaxDowntime", _) => new MigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(-1) },
        ("BandwidthLimit", "zero") => new MigrationOptions { BandwidthLimit = 0 },
        ("BandwidthLimit", "negative") => new MigrationOptions { BandwidthLimit = -1 },
        ("BandwidthLimit", _) => new MigrationOptions { BandwidthLimit = 4095 },
        ("MaxRounds", _) => new MigrationOptions { MaxRounds = 0 },
        ("MinRounds", _) => new MigrationOptions { MinRounds = 0 },
        ("MaxBytesFactor", "low") => new MigrationOptions { MaxBytesFactor = 0.99 },
        ("MaxBytesFactor", _) => new MigrationOptions { MaxBytesFactor = double.NaN },
        ("HotPageWindow", "zero") => new MigrationOptions { HotPageWindow = 0, HotPageThreshold = 1 },
        ("HotPageWindow", _) => new MigrationOptions { HotPageWindow = 9 },
        ("HotPageThreshold", "zero") => new MigrationOptions { HotPageThreshold = 0 },
        ("HotPageThreshold", _) => new MigrationOptions { HotPageThreshold = 5 },
        ("DeferBudgetFraction", "one") => new MigrationOptions { DeferBudgetFraction = 1 },
        ("DeferBudgetFraction", _) => new MigrationOptions { DeferBudgetFraction = -0.1 },
        ("MaxThrottlePercent", "high") => new MigrationOptions { MaxThrottlePercent = 100 },
        ("MaxThrottlePercent", _) => new MigrationOptions { MaxThrottlePercent = -1 },
        ("ConvergenceTarget", "zero") => new MigrationOptions { ConvergenceTarget = 0 },
        ("ConvergenceTarget", _) => new MigrationOptions { ConvergenceTarget = 1 },
        ("Deadline", _) => new MigrationOptions { Deadline = TimeSpan.Zero },
        ("ResponseTimeout", "zero") => new MigrationOptions { ResponseTimeout = TimeSpan.Zero },
        ("ResponseTimeout", "negative") => new MigrationOptions { ResponseTimeout = TimeSpan.FromSeconds(-1) },
        ("ResponseTimeout", _) => new MigrationOptions { ResponseTimeout = TimeSpan.FromMilliseconds(uint.MaxValue) },
        ("ReconnectAttempts", "negative") => new MigrationOptions { ReconnectAttempts = -1 },
        ("ReconnectAttempts", _) => new MigrationOptions { ReconnectAttempts = 101 },
        ("ReconnectDelay", "zero") => new MigrationOptions { ReconnectDelay = TimeSpan.Zero },
        ("ReconnectDelay", "negative") => new MigrationOptions { ReconnectDelay = TimeSpan.FromMilliseconds(-1) },
        ("ReconnectDelay", _) => new MigrationOptions { ReconnectDelay = TimeSpan.FromMinutes(1) + TimeSpan.FromTicks(1) },
        _ => throw new ArgumentOutOfRangeException(nameof(option), option, "unknown option"),
    };
}
