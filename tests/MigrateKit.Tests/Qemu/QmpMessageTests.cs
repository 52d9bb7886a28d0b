using System;
using System.Text;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Qemu;

namespace MigrateKit.Tests.Qemu;

[TestClass]
public sealed class QmpMessageTests
{
    private const string Socket = "/run/qmp.sock";

    private static byte[] Line(string text) => Encoding.UTF8.GetBytes(text);

    [TestMethod]
    public void ParseGreeting_ReadsTheVersionPackageAndCapabilities()
    {
        QmpGreeting greeting = QmpMessage.ParseGreeting(Line(FakeQmpServer.Greeting), Socket);

        Assert.AreEqual(new Version(7, 2, 1), greeting.Version);
        Assert.AreEqual("Debian 1:7.2+dfsg-7", greeting.Package);
        Assert.AreSequenceEqual(new[] { "oob" }, greeting.Capabilities);
    }

    [TestMethod]
    public void ParseGreeting_AnyOtherMessage_IsAProtocolErrorNamingTheSocket()
    {
        var e = Assert.ThrowsExactly<QmpException>(() => QmpMessage.ParseGreeting(Line("""{"return": {}}"""), Socket));

        Assert.Contains("not a QMP greeting", e.Message);
        Assert.Contains(Socket, e.Message);
    }

    [TestMethod]
    public void Parse_NotAnObject_IsAProtocolError()
    {
        Assert.Contains("not a JSON object", Assert.ThrowsExactly<QmpException>(() => QmpMessage.Parse(Line("[1]"), Socket)).Message);
        Assert.Contains("malformed JSON", Assert.ThrowsExactly<QmpException>(() => QmpMessage.Parse(Line("{"), Socket)).Message);
    }

    [TestMethod]
    public void Timestamp_IsSecondsAndMicroseconds_OrNullWhenUnusable()
    {
        using JsonDocument ok = JsonDocument.Parse("""{"timestamp": {"seconds": 1700000000, "microseconds": 5}}""");
        using JsonDocument missing = JsonDocument.Parse("""{"event": "STOP"}""");
        using JsonDocument huge = JsonDocument.Parse("""{"timestamp": {"seconds": 9223372036854775807}}""");

        Assert.AreEqual(DateTimeOffset.FromUnixTimeSeconds(1700000000).AddTicks(50), QmpMessage.Timestamp(ok.RootElement));
        Assert.IsNull(QmpMessage.Timestamp(missing.RootElement));
        Assert.IsNull(QmpMessage.Timestamp(huge.RootElement));
    }

    [TestMethod]
    public void Excerpt_CutsLongLinesAndSaysHowLongTheyWere()
    {
        string excerpt = QmpMessage.Excerpt(Line(new string('x', 300)));

        Assert.StartsWith(new string('x', 200) + "…", excerpt);
        Assert.EndsWith("(300 bytes)", excerpt);
    }
}
