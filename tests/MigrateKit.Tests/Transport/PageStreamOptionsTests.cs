using System;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class PageStreamOptionsTests
{
    [TestMethod]
    [DataRow(2 << 20, (2 << 20) + 8)]
    [DataRow(2 << 20, 2 << 20)]
    [DataRow(64 << 10, (64 << 10) + 8)]
    public void Validate_RejectsAPauseThresholdAtOrBelowTheLargestFrame_NamingBothNumbers(int maxPayload, int pause)
    {
        var options = new PageStreamOptions { MaxFramePayload = maxPayload, MaxPagesPerFrame = 8, PauseWriterThreshold = pause, ResumeWriterThreshold = 0 };

        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);

        Assert.AreEqual(nameof(PageStreamOptions.PauseWriterThreshold), ex.ParamName);
        Assert.Contains($"PauseWriterThreshold ({pause} bytes)", ex.Message);
        Assert.Contains($"largest frame ({maxPayload + MigrationProtocol.FrameHeaderSize} bytes", ex.Message);
    }

    [TestMethod]
    [DataRow(0.0)]
    [DataRow(0.5)]
    [DataRow(-1.0)]
    [DataRow(1.5)]
    [DataRow(32768.0)]
    public void Validate_RejectsAPeerTimeoutThatIsNotWholeSecondsFrom1To32767(double seconds)
    {
        var options = new PageStreamOptions { PeerTimeout = TimeSpan.FromSeconds(seconds) };

        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);

        Assert.AreEqual(nameof(PageStreamOptions.PeerTimeout), ex.ParamName);
        Assert.Contains("PeerTimeout must be whole seconds from 1 s to 32767 s", ex.Message);
    }

    [TestMethod]
    public void PeerTimeout_Is30SecondsByDefault_AndAcceptsItsRange()
    {
        Assert.AreEqual(TimeSpan.FromSeconds(30), new PageStreamOptions().PeerTimeout);
        new PageStreamOptions { PeerTimeout = TimeSpan.FromSeconds(1) }.Validate();
        new PageStreamOptions { PeerTimeout = TimeSpan.FromSeconds(32767) }.Validate();
    }

    [TestMethod]
    public void Validate_AcceptsAPauseThresholdOneByteAboveTheLargestFrame()
    {
        new PageStreamOptions { PauseWriterThreshold = (2 << 20) + MigrationProtocol.FrameHeaderSize + 1, ResumeWriterThreshold = 1 << 20 }.Validate();
        new PageStreamOptions().Validate();
    }

    [TestMethod]
    public void Connections_RefuseStallProneOptionsUpFront()
    {
        var stallProne = new PageStreamOptions { PauseWriterThreshold = 2 << 20, ResumeWriterThreshold = 1 << 20 };

        Assert.ThrowsExactly<ArgumentException>(() => MigrationConnector.CreateInMemoryPair(stallProne));
        Assert.ThrowsExactly<ArgumentException>(() => MigrationListener.Listen("tcp:127.0.0.1:0", stallProne));
    }

    [TestMethod]
    public async Task Connections_CarryTheOptionsTheyWereOpenedWith()
    {
        var options = new PageStreamOptions { MaxFramePayload = 64 << 10, MaxPagesPerFrame = 8, PauseWriterThreshold = 128 << 10, ResumeWriterThreshold = 64 << 10 };
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair(options);
        await using (source)
        await using (destination)
        {
            Assert.AreSame(options, source.Options);
            Assert.AreSame(options, destination.Options);
        }

        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", options);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection client = await MigrationConnector.ConnectAsync(listener.LocalAddress, options).WaitAsync(TimeSpan.FromSeconds(30));
        await using IMigrationConnection server = await accepting.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.AreSame(options, client.Options);
        Assert.AreSame(options, server.Options);
    }
}
