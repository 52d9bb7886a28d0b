using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.LibvirtSharp;

/// <summary>Connections against libvirt's built-in test driver (test:///default), which needs no daemon.</summary>
[TestClass]
[TestCategory("Libvirt")]
public sealed class LibvirtConnectionTests
{
    [TestMethod]
    public void LibraryVersion_IsTheLoadedLibvirt()
    {
        LibvirtRequirement.Require();

        Version version = global::LibvirtSharp.Libvirt.LibraryVersion;

        Assert.IsGreaterThanOrEqualTo(new Version(7, 0, 0), version);
    }

    [TestMethod]
    public void Open_ReadWrite_ReportsUriVersionsAndDriver()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();

        Assert.AreEqual("test:///default", connection.Uri);
        Assert.IsFalse(connection.IsReadOnly);
        Assert.IsTrue(connection.IsAlive);
        Assert.AreEqual("TEST", connection.HypervisorType);
        Assert.AreEqual(global::LibvirtSharp.Libvirt.LibraryVersion, connection.LibraryVersion);
        Assert.AreEqual(new Version(0, 0, 2), connection.HypervisorVersion);
        Assert.IsTrue(LibvirtEventLoop.IsStarted);
    }

    [TestMethod]
    public void Open_ReadOnly_IsReadOnlyAndAlive()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest(readOnly: true);

        Assert.IsTrue(connection.IsReadOnly);
        Assert.IsTrue(connection.IsAlive);
        using LibvirtDomain test = connection.LookupDomain("test");
        Assert.AreEqual(DomainState.Running, test.GetState().State);
    }

    [TestMethod]
    public void HostName_IsThisMachine_AndTestDriverHasNoHostUuid()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();

        // The test driver reports the local host name and capabilities without <host><uuid>.
        Assert.AreEqual(Environment.MachineName, connection.HostName, ignoreCase: true);
        Assert.AreEqual(Guid.Empty, connection.HostUuid);
    }

    [TestMethod]
    public void LookupDomain_ByNameAndByUuid_FindTheSameDomain()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();

        using LibvirtDomain byName = connection.LookupDomain("test");
        using LibvirtDomain byUuid = connection.LookupDomain(byName.Uuid);

        Assert.AreEqual("test", byName.Name);
        Assert.AreEqual(Guid.Parse("6695eb01-f6a4-8304-79aa-97f2502e193f"), byName.Uuid);
        Assert.AreEqual("test", byUuid.Name);
        Assert.AreSame(connection, byUuid.Connection);
        Assert.AreEqual("test", byName.ToString());
    }

    [TestMethod]
    public void LookupDomain_Unknown_ThrowsNoDomain_WithLibvirtsMessage()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(() => connection.LookupDomain("no-such-domain"));

        Assert.IsTrue(ex.IsNoDomain);
        Assert.AreEqual(42, ex.Code);
        Assert.IsFalse(ex.IsConnectionFault);
        Assert.AreEqual("Domain not found", ex.LibvirtMessage);
        Assert.AreEqual("virDomainLookupByName(no-such-domain)", ex.Operation);
        StringAssert.StartsWith(ex.Message, "virDomainLookupByName(no-such-domain): " + ex.LibvirtMessage);
        Assert.IsNull(connection.TryLookupDomain("no-such-domain"));
        Assert.IsTrue(Assert.ThrowsExactly<LibvirtException>(() => connection.LookupDomain(Guid.NewGuid())).IsNoDomain);
    }

    [TestMethod]
    public void DefineDomain_MalformedXml_ThrowsWithLibvirtsParserMessage()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(() => connection.DefineDomain("<domain type='test'><name>x"));

        // libxml2's parser error, passed through as VIR_ERR_XML_DETAIL.
        Assert.AreEqual(LibvirtErrorCodes.XmlDetail, ex.Code);
        StringAssert.Contains(ex.LibvirtMessage, "Premature end of data");
        Assert.AreEqual("virDomainDefineXML", ex.Operation);
    }

    [TestMethod]
    public void DefineDomain_WithoutName_ThrowsWithLibvirtsMessage()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(
            () => connection.DefineDomain("<domain type='test'><memory>8192</memory><os><type>hvm</type></os></domain>"));

        StringAssert.Contains(ex.LibvirtMessage, "missing name information");
    }

    [TestMethod]
    public void Open_UnreachableUri_FailsQuickly_NamingTheUri()
    {
        LibvirtRequirement.Require();
        const string uri = "qemu+tcp://127.0.0.1:1/system";
        var elapsed = Stopwatch.StartNew();

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(() => LibvirtConnection.Open(uri));

        Assert.IsLessThan(TimeSpan.FromSeconds(10), elapsed.Elapsed);
        StringAssert.Contains(ex.Message, uri);
        Assert.AreEqual($"virConnectOpenAuth({uri})", ex.Operation);
        StringAssert.Contains(ex.LibvirtMessage, "127.0.0.1");
        Assert.IsTrue(ex.IsConnectionFault, ex.Message);
    }

    [TestMethod]
    public void Open_UnknownScheme_Fails_NamingTheUri()
    {
        LibvirtRequirement.Require();

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(() => LibvirtConnection.Open("nosuchdriver:///x"));

        StringAssert.Contains(ex.Message, "nosuchdriver:///x");
    }

    [TestMethod]
    public void ReadOnlyConnection_RefusesDestroy()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest(readOnly: true);
        using LibvirtDomain test = connection.LookupDomain("test");

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(test.Destroy);

        Assert.AreEqual(LibvirtErrorCodes.OperationDenied, ex.Code);
        StringAssert.Contains(ex.LibvirtMessage, "read only");
        Assert.AreEqual("virDomainDestroy(test)", ex.Operation);
        Assert.AreEqual(DomainState.Running, test.GetState().State);
    }

    [TestMethod]
    public void ListAllDomains_IncludesActiveAndInactive_AndFilters()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        string xml = LibvirtRequirement.DomainXml(out string name);
        using LibvirtDomain defined = connection.DefineDomain(xml);
        try
        {
            IReadOnlyList<LibvirtDomain> all = connection.ListAllDomains();
            IReadOnlyList<LibvirtDomain> active = connection.ListAllDomains(ListDomainsFlags.Active);
            IReadOnlyList<LibvirtDomain> inactive = connection.ListAllDomains(ListDomainsFlags.Inactive);
            try
            {
                CollectionAssert.IsSubsetOf(new[] { "test", name }, all.Select(d => d.Name).ToList());
                Assert.IsTrue(active.Any(d => d.Name == "test"));
                Assert.IsFalse(active.Any(d => d.Name == name));
                Assert.IsTrue(inactive.Any(d => d.Name == name));
            }
            finally
            {
                foreach (LibvirtDomain domain in all.Concat(active).Concat(inactive))
                {
                    domain.Dispose();
                }
            }
        }
        finally
        {
            defined.Undefine();
        }
    }

    [TestMethod]
    public void GetDomainStats_ReturnsStateOfTheDomain()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        using LibvirtDomain test = connection.LookupDomain("test");

        DomainStatsRecord record = connection.GetDomainStats(test, DomainStatsTypes.State);

        Assert.AreEqual("test", record.DomainName);
        Assert.AreEqual((int)DomainState.Running, record.Parameters["state.state"]);
        Assert.IsTrue(record.Parameters.ContainsKey("state.reason"));
    }

    [TestMethod]
    public void GetDomainStats_OfAnotherConnectionsDomain_IsRejected()
    {
        using LibvirtConnection first = LibvirtRequirement.OpenTest();
        using LibvirtConnection second = LibvirtRequirement.OpenTest();
        using LibvirtDomain test = first.LookupDomain("test");

        Assert.ThrowsExactly<ArgumentException>(() => second.GetDomainStats(test, DomainStatsTypes.State));
    }

    [TestMethod]
    public void SetKeepAlive_OnTheLocalTestDriver_IsUnsupported()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(() => connection.SetKeepAlive(5, 3));

        Assert.AreEqual(LibvirtErrorCodes.NoSupport, ex.Code);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => connection.SetKeepAlive(5, -1));
    }

    [TestMethod]
    public void Dispose_ReleasesEveryReference_SoCloseLeavesNone()
    {
        LibvirtConnection connection = LibvirtRequirement.OpenTest();
        string xml = LibvirtRequirement.DomainXml(out _);

        // Domains of every origin, statistics and a failed lookup: each must give its reference back.
        using (LibvirtDomain test = connection.LookupDomain("test"))
        using (LibvirtDomain byUuid = connection.LookupDomain(test.Uuid))
        using (LibvirtDomain created = connection.CreateDomain(xml))
        {
            _ = connection.GetDomainStats(test, DomainStatsTypes.State);
            Assert.IsNull(connection.TryLookupDomain("no-such-domain"));
            foreach (LibvirtDomain listed in connection.ListAllDomains())
            {
                listed.Dispose();
            }

            created.Destroy();
        }

        connection.Dispose();
        connection.Dispose();

        Assert.AreEqual(0, connection.Handle.CloseResult, "virConnectClose reports references still held");
        Assert.ThrowsExactly<ObjectDisposedException>(() => _ = connection.IsAlive);
    }

    [TestMethod]
    public void DomainsOutliveTheirConnection()
    {
        LibvirtConnection connection = LibvirtRequirement.OpenTest();
        using LibvirtDomain test = connection.LookupDomain("test");

        connection.Dispose();

        // libvirt keeps the connection object alive while a domain references it.
        Assert.AreEqual(1, connection.Handle.CloseResult);
        Assert.AreEqual(DomainState.Running, test.GetState().State);
    }
}
