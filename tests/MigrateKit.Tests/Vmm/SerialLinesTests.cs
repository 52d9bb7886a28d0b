using System.Collections.Generic;
using System.Text;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>SerialLines: a UART's characters into parsed report lines.</summary>
[TestClass]
public sealed class SerialLinesTests
{
    [TestMethod]
    public void Add_ReturnsNothingUntilTheNewline_ThenTheParsedLine()
    {
        var lines = new SerialLines();
        foreach (byte c in Encoding.ASCII.GetBytes("0000002a"))
        {
            Assert.IsNull(lines.Add(c));
        }

        GuestSerialLog? log = lines.Add((byte)'\n');
        Assert.IsNotNull(log);
        CollectionAssert.AreEqual(new uint[] { 42 }, (List<uint>)log.Passes);
    }

    [TestMethod]
    public void Add_ParsesPassesFailuresAndGarbageLineByLine()
    {
        var lines = new SerialLines();
        List<GuestSerialLog> logs = Feed(lines, "00000001\n80000007\nboot: disk read failed\n00000002\n");
        Assert.HasCount(4, logs);
        CollectionAssert.AreEqual(new uint[] { 1 }, (List<uint>)logs[0].Passes);
        CollectionAssert.AreEqual(new uint[] { 7 }, (List<uint>)logs[1].FailedPages);
        Assert.HasCount(1, logs[2].Garbage);
        Assert.AreEqual(2u, logs[3].LastPass);
    }

    [TestMethod]
    public void Add_CutsAnEndlessLine_AndStillParsesTheNextOne()
    {
        var lines = new SerialLines();
        List<GuestSerialLog> logs = Feed(lines, new string('x', 100_000) + "\n00000003\n");
        Assert.HasCount(2, logs);
        Assert.AreEqual(SerialLines.MaxLineLength, logs[0].Garbage[0].Length);
        Assert.AreEqual(3u, logs[1].LastPass);
    }

    private static List<GuestSerialLog> Feed(SerialLines lines, string text)
    {
        var logs = new List<GuestSerialLog>();
        foreach (byte c in Encoding.ASCII.GetBytes(text))
        {
            if (lines.Add(c) is { } log)
            {
                logs.Add(log);
            }
        }

        return logs;
    }
}
