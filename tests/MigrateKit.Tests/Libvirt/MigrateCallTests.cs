using System;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;
using Moq;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class MigrateCallTests
{
    private const string SourceUri = "qemu:///source";
    private const string DestinationUri = "qemu:///destination";

    private readonly Mock<ILibvirtHost> _source = new();
    private readonly Mock<ILibvirtHost> _destination = new();
    private readonly Mock<ILibvirtHostFactory> _factory = new();

    private MigrateCall Open()
    {
        // The first connection to each host is the poller's own; the call opens a second.
        _factory.SetupSequence(f => f.Open(SourceUri)).Returns(new Mock<ILibvirtHost>().Object).Returns(_source.Object);
        using var source = new ResilientHost(_factory.Object, SourceUri, TimeSpan.FromSeconds(5), TimeProvider.System, NullLogger.Instance);
        using var destination = new ResilientHost(_factory.Object, DestinationUri, TimeSpan.FromSeconds(5), TimeProvider.System, NullLogger.Instance);
        return MigrateCall.Open(_factory.Object, source, destination, CancellationToken.None);
    }

    [TestMethod]
    public async Task Start_MigratesOnTheCallsOwnConnections()
    {
        _factory.SetupSequence(f => f.Open(DestinationUri)).Returns(new Mock<ILibvirtHost>().Object).Returns(_destination.Object);
        var parameters = new DomainMigrationParameters { BandwidthMiBps = 100 };
        using (MigrateCall call = Open())
        {
            await call.Start("vm", parameters, MigrationFlags.Live);
        }

        _source.Verify(h => h.Migrate("vm", _destination.Object, parameters, MigrationFlags.Live), Times.Once);
        _source.Verify(h => h.Dispose(), Times.Once);
        _destination.Verify(h => h.Dispose(), Times.Once);
    }

    [TestMethod]
    public void Open_DestinationRefuses_ClosesTheSourceConnection()
    {
        _factory.SetupSequence(f => f.Open(DestinationUri)).Returns(new Mock<ILibvirtHost>().Object).Throws(LibvirtTestErrors.Create(45, 10, "authentication failed"));

        Assert.ThrowsExactly<LibvirtException>(() => Open());

        _source.Verify(h => h.Dispose(), Times.Once);
    }

    [TestMethod]
    public void WatchIterations_EventsUnavailable_CarriesOnWithPollingOnly()
    {
        _factory.SetupSequence(f => f.Open(DestinationUri)).Returns(new Mock<ILibvirtHost>().Object).Returns(_destination.Object);
        _source.Setup(h => h.WatchIterations("vm", It.IsAny<Action<int>>())).Throws(LibvirtTestErrors.Create(3, 10, "no events"));
        using MigrateCall call = Open();

        call.WatchIterations("vm", () => { }, NullLogger.Instance);
    }

    [TestMethod]
    public void WatchIterations_AnEvent_CallsBackUntilDisposed()
    {
        _factory.SetupSequence(f => f.Open(DestinationUri)).Returns(new Mock<ILibvirtHost>().Object).Returns(_destination.Object);
        Action<int>? raise = null;
        var watch = new CountingDisposable();
        _source.Setup(h => h.WatchIterations("vm", It.IsAny<Action<int>>())).Callback<string, Action<int>>((_, a) => raise = a).Returns(watch);
        int events = 0;
        using (MigrateCall call = Open())
        {
            call.WatchIterations("vm", () => events++, NullLogger.Instance);
            raise!(2);
        }

        Assert.AreEqual(1, events);
        Assert.AreEqual(1, watch.Disposals);
    }

    [TestMethod]
    public async Task FailureOf_ReturnsWhatLibvirtThrew_OrNull()
    {
        var refused = LibvirtTestErrors.Create(1, 10, "migration refused");

        Assert.IsNull(await MigrateCall.FailureOf(Task.CompletedTask));
        Assert.AreSame(refused, await MigrateCall.FailureOf(Task.FromException(refused)));
        await Assert.ThrowsExactlyAsync<OutOfMemoryException>(() => MigrateCall.FailureOf(Task.FromException(new OutOfMemoryException())));
    }

    private sealed class CountingDisposable : IDisposable
    {
        public int Disposals { get; private set; }

        public void Dispose() => Disposals++;
    }
}
