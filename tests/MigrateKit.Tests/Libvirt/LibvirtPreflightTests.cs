using System;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class LibvirtPreflightTests
{
    private const string Vm = "web1";

    private static readonly MigrationRoute Route = new(FakeHosts.Source, Vm, FakeHosts.Destination);

    private static FakeHosts Hosts(DomainState onSource = DomainState.Running)
    {
        var hosts = new FakeHosts();
        hosts.SourceDomains[Vm] = onSource;
        return hosts;
    }

    private static ulong Check(FakeHosts hosts, LibvirtMigrationOptions? options = null) =>
        LibvirtPreflight.Check(hosts, Route, options ?? new LibvirtMigrationOptions(), NullLogger.Instance, CancellationToken.None);

    [TestMethod]
    public void Check_RunningDomainAndAFreeDestination_ReturnsTheMemorySize()
    {
        Assert.AreEqual(256UL << 20, Check(Hosts()));
    }

    [TestMethod]
    public void Check_DomainNotRunning_SaysWhatItIs()
    {
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => Check(Hosts(DomainState.Paused)));

        StringAssert.Contains(ex.Message, "paused, not running");
    }

    [TestMethod]
    public void Check_DestinationHasTheDomain_SaysSo()
    {
        FakeHosts hosts = Hosts();
        hosts.DestinationDomains[Vm] = DomainState.Shutoff;

        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => Check(hosts));

        StringAssert.Contains(ex.Message, "already has a domain 'web1' (shutoff)");
    }

    [TestMethod]
    public void Check_UnknownDomain_IsLibvirtsNoDomainError()
    {
        var ex = Assert.ThrowsExactly<LibvirtException>(() =>
            LibvirtPreflight.Check(Hosts(), Route with { Domain = "nope" }, new LibvirtMigrationOptions(), NullLogger.Instance, CancellationToken.None));

        Assert.IsTrue(ex.IsNoDomain);
        StringAssert.Contains(ex.Message, $" on '{FakeHosts.Source}': ");
        StringAssert.Contains(ex.Message, "'nope'");
    }

    [TestMethod]
    public async Task Check_UnreachableDestination_GivesUpAfterTheConnectTimeoutWithLibvirtsError()
    {
        var time = new FakeTimeProvider();
        FakeHosts hosts = Hosts();
        hosts.DestinationUnreachable = true;
        var options = new LibvirtMigrationOptions { ConnectTimeout = TimeSpan.FromSeconds(5), ReconnectTimeout = TimeSpan.FromMinutes(10), TimeProvider = time };
        DateTimeOffset started = time.GetUtcNow();

        Task<Exception?> checking = Task.Run(() =>
        {
            try
            {
                Check(hosts, options);
                return null;
            }
            catch (LibvirtException ex)
            {
                return (Exception?)ex;
            }
        });
        Exception? failure = await time.AdvanceUntilDoneAsync(checking, TimeSpan.FromMilliseconds(500));

        Assert.IsInstanceOfType<LibvirtException>(failure);
        StringAssert.Contains(failure.Message, "Connection refused");
        TimeSpan waited = time.GetUtcNow() - started;
        Assert.IsTrue(waited >= TimeSpan.FromSeconds(5) && waited < TimeSpan.FromMinutes(1), $"gave up after {waited}, not the connect timeout");
    }
}
