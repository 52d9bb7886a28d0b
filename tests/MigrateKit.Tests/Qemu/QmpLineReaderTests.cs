using System;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Qemu;

namespace MigrateKit.Tests.Qemu;

[TestClass]
public sealed class QmpLineReaderTests
{
    [TestMethod]
    public async Task Lines_EndWithCrLfOrLf_AndTheTerminatorIsRemoved()
    {
        var reader = new QmpLineReader(new MemoryStream(Encoding.UTF8.GetBytes("{\"a\":1}\r\n{\"b\":2}\n\r\n")));
        Assert.AreEqual("{\"a\":1}", Encoding.UTF8.GetString((await reader.ReadLineAsync(CancellationToken.None))!));
        Assert.AreEqual("{\"b\":2}", Encoding.UTF8.GetString((await reader.ReadLineAsync(CancellationToken.None))!));
        Assert.AreEqual(string.Empty, Encoding.UTF8.GetString((await reader.ReadLineAsync(CancellationToken.None))!));
        Assert.IsNull(await reader.ReadLineAsync(CancellationToken.None));
    }

    [TestMethod]
    public async Task ALineLongerThanTheBuffer_IsReadWhole()
    {
        string line = new('x', 100_000);
        var reader = new QmpLineReader(new MemoryStream(Encoding.UTF8.GetBytes("short\r\n" + line + "\r\nlast\r\n")));
        Assert.AreEqual("short", Encoding.UTF8.GetString((await reader.ReadLineAsync(CancellationToken.None))!));
        Assert.AreEqual(line, Encoding.UTF8.GetString((await reader.ReadLineAsync(CancellationToken.None))!));
        Assert.AreEqual("last", Encoding.UTF8.GetString((await reader.ReadLineAsync(CancellationToken.None))!));
    }

    [TestMethod]
    public async Task ALineOverTheMaximum_IsAProtocolError()
    {
        var reader = new QmpLineReader(new MemoryStream(new byte[40_000]), maxLineBytes: 10_000);
        await Assert.ThrowsExactlyAsync<QmpException>(async () => await reader.ReadLineAsync(CancellationToken.None));
    }

    [TestMethod]
    public async Task TheStreamEndingInsideALine_IsAnIOException()
    {
        var reader = new QmpLineReader(new MemoryStream(Encoding.UTF8.GetBytes("{\"a\":1}\r\n{\"b\"")));
        Assert.IsNotNull(await reader.ReadLineAsync(CancellationToken.None));
        await Assert.ThrowsExactlyAsync<IOException>(async () => await reader.ReadLineAsync(CancellationToken.None));
    }
}
