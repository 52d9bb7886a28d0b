using System;
using System.Collections.Generic;
using System.Text;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Qemu;

namespace MigrateKit.Tests.Qemu;

[TestClass]
public sealed class QmpCommandTests
{
    [TestMethod]
    public void Encode_WritesOneLineWithTheCommandItsArgumentsAndTheId()
    {
        byte[] line = QmpCommand.Encode("migrate", new Dictionary<string, object> { ["uri"] = "tcp:127.0.0.1:4444" }, 7);

        string text = Encoding.UTF8.GetString(line);
        Assert.AreEqual("""{"execute":"migrate","arguments":{"uri":"tcp:127.0.0.1:4444"},"id":7}""" + "\r\n", text);
    }

    [TestMethod]
    public void Encode_WithoutArguments_LeavesThemOut()
    {
        using JsonDocument sent = JsonDocument.Parse(QmpCommand.Encode("stop", null, 2));

        Assert.IsFalse(sent.RootElement.TryGetProperty("arguments", out _));
        Assert.AreEqual(2, sent.RootElement.GetProperty("id").GetInt32());
    }

    [TestMethod]
    public void Capabilities_AreAListOfNamesAndStates()
    {
        string json = JsonSerializer.Serialize(QmpCommand.Capabilities(new Dictionary<string, bool> { ["auto-converge"] = true }));

        Assert.AreEqual("""{"capabilities":[{"capability":"auto-converge","state":true}]}""", json);
    }

    [TestMethod]
    public void Parameters_UseQemusDashedNames_AndOnlyTheOnesSet()
    {
        var parameters = new MigrationParameters { DowntimeLimitMilliseconds = 300, CpuThrottleInitialPercent = 40 };

        Dictionary<string, object> arguments = QmpCommand.Parameters(parameters);

        Assert.HasCount(2, arguments);
        Assert.AreEqual(300L, arguments["downtime-limit"]);
        Assert.AreEqual(40, arguments["cpu-throttle-initial"]);
    }

    [TestMethod]
    public void Parameters_XbzrleCacheAndMultifd_UseQemusDashedNamesAndValues()
    {
        var parameters = new MigrationParameters { XbzrleCacheSizeBytes = 256L << 20, MultifdChannels = 2, MultifdCompression = QemuMultifdCompression.Zstd };

        string json = JsonSerializer.Serialize(QmpCommand.Parameters(parameters));

        Assert.AreEqual("""{"xbzrle-cache-size":268435456,"multifd-channels":2,"multifd-compression":"zstd"}""", json);
    }

    [TestMethod]
    [DataRow(QemuMultifdCompression.None, "none")]
    [DataRow(QemuMultifdCompression.Zlib, "zlib")]
    [DataRow(QemuMultifdCompression.Zstd, "zstd")]
    public void MultifdCompression_IsSentByQemusName(QemuMultifdCompression compression, string name)
    {
        Assert.AreEqual(name, QmpCommand.Parameters(new MigrationParameters { MultifdCompression = compression })["multifd-compression"]);
    }

    [TestMethod]
    public void MultifdCompression_OutsideTheEnum_IsRejectedNamingIt()
    {
        var parameters = new MigrationParameters { MultifdCompression = (QemuMultifdCompression)7 };

        Assert.AreEqual("compression", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => QmpCommand.Parameters(parameters)).ParamName);
    }
}
