using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>MigrationReceiverOptions: documented defaults, validation that names the bad option, and the refusals a Hello beyond them gets.</summary>
[TestClass]
public sealed class MigrationReceiverOptionsTests
{
    internal const ulong GiB = 1UL << 30;
    internal const ulong TiB = 1UL << 40;

    [TestMethod]
    public void Defaults_AreTheDocumentedOnes()
    {
        var o = new MigrationReceiverOptions();
        Assert.AreEqual(64 * GiB, o.MaxMemory);
        Assert.AreEqual(MigrationReceiverOptions.DefaultMaxMemory, o.MaxMemory);
        Assert.AreEqual(64, o.MaxRegions);
        Assert.AreEqual(64, o.MaxVcpus);
        Assert.IsNull(o.ExpectedMemory);
        Assert.IsNull(o.ExpectedVcpus);
        Assert.AreEqual(TimeSpan.FromSeconds(30), o.HandshakeTimeout);
        Assert.AreEqual(TimeSpan.FromSeconds(120), o.IdleTimeout);
        Assert.AreSame(TimeProvider.System, o.TimeProvider);
        o.Validate();
    }

    [TestMethod]
    [DataRow(0, 120, nameof(MigrationReceiverOptions.HandshakeTimeout))]
    [DataRow(-1, 120, nameof(MigrationReceiverOptions.HandshakeTimeout))]
    [DataRow(30, 0, nameof(MigrationReceiverOptions.IdleTimeout))]
    [DataRow(30, 4_294_968, nameof(MigrationReceiverOptions.IdleTimeout))]
    public void Timeouts_OutOfRange_AreNamed(int handshakeSeconds, int idleSeconds, string name)
    {
        var o = new MigrationReceiverOptions { HandshakeTimeout = TimeSpan.FromSeconds(handshakeSeconds), IdleTimeout = TimeSpan.FromSeconds(idleSeconds) };
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(o.Validate);
        Assert.AreEqual(name, ex.ParamName);
        StringAssert.Contains(ex.Message, name);
    }

    [TestMethod]
    [DataRow(-1.0)]
    [DataRow(4_294_968.0)]
    public void ReconnectTimeout_OutOfRange_IsNamed(double seconds)
    {
        var o = new MigrationReceiverOptions { ReconnectTimeout = TimeSpan.FromSeconds(seconds) };
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(o.Validate);
        Assert.AreEqual(nameof(MigrationReceiverOptions.ReconnectTimeout), ex.ParamName);
        StringAssert.StartsWith(ex.Message, "ReconnectTimeout must be positive");
    }

    [TestMethod]
    public void ReconnectTimeout_DefaultsTo60s_AndZeroKeepsNoSession()
    {
        Assert.AreEqual(TimeSpan.FromSeconds(60), new MigrationReceiverOptions().ReconnectTimeout);
        new MigrationReceiverOptions { ReconnectTimeout = TimeSpan.Zero }.Validate();
        new MigrationReceiverOptions { ReconnectTimeout = TimeSpan.FromMilliseconds(1) }.Validate();
    }

    [TestMethod]
    public void EdgeValues_AreValid()
    {
        new MigrationReceiverOptions { MaxMemory = GuestMemoryLayout.PageSize, MaxRegions = 1, MaxVcpus = 1, ExpectedMemory = GuestMemoryLayout.PageSize, ExpectedVcpus = 1 }.Validate();
        new MigrationReceiverOptions { MaxMemory = ulong.MaxValue - (GuestMemoryLayout.PageSize - 1), MaxRegions = 1024, MaxVcpus = int.MaxValue, ExpectedVcpus = int.MaxValue }.Validate();
    }

    private static readonly Dictionary<string, MigrationReceiverOptions> Invalid = new()
    {
        ["max memory zero"] = new() { MaxMemory = 0 },
        ["max memory unaligned"] = new() { MaxMemory = GiB + 1 },
        ["regions zero"] = new() { MaxRegions = 0 },
        ["regions over the protocol"] = new() { MaxRegions = 1025 },
        ["vcpus zero"] = new() { MaxVcpus = 0 },
        ["expected memory zero"] = new() { ExpectedMemory = 0 },
        ["expected memory unaligned"] = new() { ExpectedMemory = 1000 },
        ["expected memory over the limit"] = new() { MaxMemory = 8 * GiB, ExpectedMemory = 16 * GiB },
        ["expected vcpus zero"] = new() { ExpectedVcpus = 0 },
        ["expected vcpus over the limit"] = new() { MaxVcpus = 4, ExpectedVcpus = 8 },
    };

    [TestMethod]
    [DataRow("max memory zero", nameof(MigrationReceiverOptions.MaxMemory), "MaxMemory must be a positive multiple of the 4096-byte page size (got 0 B)")]
    [DataRow("max memory unaligned", nameof(MigrationReceiverOptions.MaxMemory), "MaxMemory must be a positive multiple of the 4096-byte page size (got 1.0 GiB)")]
    [DataRow("regions zero", nameof(MigrationReceiverOptions.MaxRegions), "MaxRegions must be 1 to 1024 (got 0)")]
    [DataRow("regions over the protocol", nameof(MigrationReceiverOptions.MaxRegions), "MaxRegions must be 1 to 1024 (got 1025)")]
    [DataRow("vcpus zero", nameof(MigrationReceiverOptions.MaxVcpus), "MaxVcpus must be at least 1 (got 0)")]
    [DataRow("expected memory zero", nameof(MigrationReceiverOptions.ExpectedMemory), "ExpectedMemory must be a positive multiple of the 4096-byte page size and at most MaxMemory (64 GiB) (got 0 B)")]
    [DataRow("expected memory unaligned", nameof(MigrationReceiverOptions.ExpectedMemory), "(got 1000 B)")]
    [DataRow("expected memory over the limit", nameof(MigrationReceiverOptions.ExpectedMemory), "at most MaxMemory (8 GiB) (got 16 GiB)")]
    [DataRow("expected vcpus zero", nameof(MigrationReceiverOptions.ExpectedVcpus), "ExpectedVcpus must be 1 to MaxVcpus (64) (got 0)")]
    [DataRow("expected vcpus over the limit", nameof(MigrationReceiverOptions.ExpectedVcpus), "ExpectedVcpus must be 1 to MaxVcpus (4) (got 8)")]
    public void Validate_NamesTheBadOption(string @case, string property, string message)
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(Invalid[@case].Validate);
        Assert.AreEqual(property, ex.ParamName);
        StringAssert.Contains(ex.Message, message);
    }

    [TestMethod]
    public void Receiver_ValidatesItsOptionsUpFront()
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => new MigrationReceiver(_ => throw new AssertFailedException("never built"), new MigrationReceiverOptions { MaxRegions = 0 }));
        Assert.AreEqual(nameof(MigrationReceiverOptions.MaxRegions), ex.ParamName);
    }

    [TestMethod]
    public void Check_AcceptsAHelloWithinTheLimits() =>
        new MigrationReceiverOptions { ExpectedMemory = 2 * GiB, ExpectedVcpus = 2 }.Check(Hello(2, 2, GiB));

    [TestMethod]
    [DataRow(8, 1, TiB, MigrationLimit.Memory, "Hello announces 8 TiB; this destination accepts at most 64 GiB")]
    [DataRow(65, 1, GiB / 1024, MigrationLimit.Regions, "Hello announces 65 memory regions; this destination accepts at most 64")]
    [DataRow(1, 65, GiB, MigrationLimit.Vcpus, "Hello announces 65 vCPUs; this destination accepts at most 64")]
    public void Check_RefusesAHelloBeyondALimit_NamingIt(int regions, int vcpus, ulong regionSize, MigrationLimit limit, string message)
    {
        MigrationLimitException ex = Assert.ThrowsExactly<MigrationLimitException>(() => new MigrationReceiverOptions().Check(Hello(regions, vcpus, regionSize)));
        Assert.AreEqual(limit, ex.Limit);
        Assert.AreEqual(message, ex.Message);
    }

    [TestMethod]
    public void Check_RefusesAnotherShapeThanExpected()
    {
        var options = new MigrationReceiverOptions { ExpectedMemory = GiB, ExpectedVcpus = 1 };
        MigrationLimitException memory = Assert.ThrowsExactly<MigrationLimitException>(() => options.Check(Hello(3, 1, GiB / 2)));
        Assert.AreEqual(MigrationLimit.ExpectedMemory, memory.Limit);
        Assert.AreEqual("Hello announces 1.5 GiB; this destination expects exactly 1 GiB", memory.Message);
        Assert.AreEqual(3 * GiB / 2, memory.Announced);
        Assert.AreEqual(GiB, memory.Accepted);

        MigrationLimitException vcpus = Assert.ThrowsExactly<MigrationLimitException>(() => options.Check(Hello(1, 2, GiB)));
        Assert.AreEqual(MigrationLimit.ExpectedVcpus, vcpus.Limit);
        Assert.AreEqual("Hello announces 2 vCPUs; this destination expects exactly 1", vcpus.Message);
    }

    [TestMethod]
    public void Check_DoesNotLetRegionSizesWrapToASmallTotal()
    {
        // Two regions of 2^63 bytes sum to 2^64, which a plain ulong sum would report as 0.
        var hello = new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, 1UL << 63), new GuestMemoryRegionSpec(0, 1UL << 63)], 1, "wrap");
        MigrationLimitException ex = Assert.ThrowsExactly<MigrationLimitException>(() => new MigrationReceiverOptions().Check(hello));
        Assert.AreEqual(MigrationLimit.Memory, ex.Limit);
        Assert.AreEqual(ulong.MaxValue, ex.Announced);
    }

    internal static MigrationHello Hello(int regions, int vcpus, ulong regionSize) =>
        new(MigrationProtocol.Version, Enumerable.Range(0, regions).Select(i => new GuestMemoryRegionSpec((ulong)i * regionSize, regionSize)).ToList(), vcpus, "test-source");
}
