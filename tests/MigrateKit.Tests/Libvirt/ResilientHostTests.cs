using System;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;
using MigrateKit.Tests.TestSupport;
using Moq;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class ResilientHostTests
{
    private const string Uri = "qemu:///system";

    // Retries wait on the fake clock: it moves on in steps shorter than the first back-off.
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(50);

    private static LibvirtException ConnectionReset() => LibvirtTestErrors.Create(38, 7, "Cannot recv data: Connection reset by peer");

    [TestMethod]
    public async Task Run_ConnectionFault_ReconnectsAndRetries()
    {
        var first = new Mock<ILibvirtHost>();
        first.Setup(h => h.GetJobStats("vm", false)).Throws(ConnectionReset());
        var second = new Mock<ILibvirtHost>();
        second.Setup(h => h.GetJobStats("vm", false)).Returns(new JobStats { Type = DomainJobType.Unbounded, MemoryIteration = 4 });
        var factory = new Mock<ILibvirtHostFactory>();
        factory.SetupSequence(f => f.Open(Uri)).Returns(first.Object).Returns(second.Object);
        var time = new FakeTimeProvider();
        using var host = new ResilientHost(factory.Object, Uri, TimeSpan.FromSeconds(10), time, NullLogger.Instance);

        JobStats stats = await time.AdvanceUntilDoneAsync(Task.Run(() => host.Run(h => h.GetJobStats("vm", false))), Step);

        Assert.AreEqual(4UL, stats.MemoryIteration);
        Assert.AreEqual(1, host.Reconnects);
        first.Verify(h => h.Dispose(), Times.Once);
        factory.Verify(f => f.Open(Uri), Times.Exactly(2));
    }

    [TestMethod]
    public async Task Run_ConnectFails_RetriesTheConnect()
    {
        var live = new Mock<ILibvirtHost>();
        live.Setup(h => h.GetState("vm")).Returns(new DomainStateInfo(DomainState.Running, 1));
        var factory = new Mock<ILibvirtHostFactory>();
        factory.SetupSequence(f => f.Open(Uri)).Throws(ConnectionReset()).Throws(ConnectionReset()).Returns(live.Object);
        var time = new FakeTimeProvider();
        using var host = new ResilientHost(factory.Object, Uri, TimeSpan.FromSeconds(10), time, NullLogger.Instance);

        DomainStateInfo? state = await time.AdvanceUntilDoneAsync(Task.Run(() => host.Run(h => h.GetState("vm"))), Step);
        Assert.AreEqual(DomainState.Running, state!.Value.State);
        factory.Verify(f => f.Open(Uri), Times.Exactly(3));
    }

    [TestMethod]
    public void Run_NotAConnectionFault_FailsAtOnce()
    {
        var h1 = new Mock<ILibvirtHost>();
        h1.Setup(h => h.AbortJob("vm")).Throws(LibvirtTestErrors.Create(55, 10, "Requested operation is not valid: no job is active on the domain"));
        var factory = new Mock<ILibvirtHostFactory>();
        factory.Setup(f => f.Open(Uri)).Returns(h1.Object);
        using var host = new ResilientHost(factory.Object, Uri, TimeSpan.FromSeconds(10), TimeProvider.System, NullLogger.Instance);

        var ex = Assert.ThrowsExactly<LibvirtException>(() => host.Run(h => h.AbortJob("vm")));

        StringAssert.Contains(ex.Message, "no job is active");
        factory.Verify(f => f.Open(Uri), Times.Once);
    }

    [TestMethod]
    public async Task Run_DaemonGoneForGood_GivesUpAfterTheTimeoutWithLibvirtsLastError()
    {
        var factory = new Mock<ILibvirtHostFactory>();
        factory.Setup(f => f.Open(Uri)).Throws(ConnectionReset());
        var time = new FakeTimeProvider();
        using var host = new ResilientHost(factory.Object, Uri, TimeSpan.FromMilliseconds(600), time, NullLogger.Instance);

        var ex = await Assert.ThrowsExactlyAsync<LibvirtException>(() => time.AdvanceUntilDoneAsync(Task.Run(() => host.Run(h => h.GetState("vm"))), Step));

        StringAssert.Contains(ex.Message, "Connection reset by peer");
        factory.Verify(f => f.Open(Uri), Times.AtLeast(2));
    }
}
