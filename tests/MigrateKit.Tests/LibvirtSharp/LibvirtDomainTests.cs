using System;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.LibvirtSharp;

/// <summary>Domain life cycles and migration controls against the test driver (test:///default).</summary>
[TestClass]
[TestCategory("Libvirt")]
public sealed class LibvirtDomainTests
{
    [TestMethod]
    public void DefinedDomain_StartsSuspendsResumesStops_AndIsUndefined()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        string xml = LibvirtRequirement.DomainXml(out string name);

        using LibvirtDomain domain = connection.DefineDomain(xml);
        try
        {
            Assert.AreEqual(name, domain.Name);
            Assert.AreNotEqual(Guid.Empty, domain.Uuid);
            Assert.IsTrue(domain.IsPersistent);
            Assert.IsFalse(domain.IsActive);
            Assert.IsNull(domain.Id);
            Assert.AreEqual(DomainState.Shutoff, domain.GetState().State);

            domain.Create();
            Assert.IsTrue(domain.IsActive);
            Assert.IsNotNull(domain.Id);
            Assert.AreEqual(DomainState.Running, domain.GetState().State);

            domain.Suspend();
            Assert.AreEqual(new DomainStateInfo(DomainState.Paused, 1), domain.GetState(), "paused by the user (VIR_DOMAIN_PAUSED_USER)");

            domain.Resume();
            Assert.AreEqual(DomainState.Running, domain.GetState().State);

            domain.Destroy();
            Assert.AreEqual(new DomainStateInfo(DomainState.Shutoff, 2), domain.GetState(), "shut off by destroy (VIR_DOMAIN_SHUTOFF_DESTROYED)");
            Assert.IsFalse(domain.IsActive);
            Assert.IsNull(domain.Id);
        }
        finally
        {
            domain.Undefine();
        }

        Assert.IsNull(connection.TryLookupDomain(name));
        Assert.IsTrue(Assert.ThrowsExactly<LibvirtException>(domain.Create).IsNoDomain);
    }

    [TestMethod]
    public void CreatedDomain_IsTransient_AndDisappearsWhenDestroyed()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        string xml = LibvirtRequirement.DomainXml(out string name);

        using LibvirtDomain domain = connection.CreateDomain(xml);

        Assert.IsTrue(domain.IsActive);
        Assert.IsFalse(domain.IsPersistent);
        using (LibvirtDomain found = connection.LookupDomain(name))
        {
            Assert.AreEqual(domain.Uuid, found.Uuid);
        }

        domain.Destroy();
        Assert.IsNull(connection.TryLookupDomain(name));
    }

    [TestMethod]
    public void CreateDomain_PassesItsFlags_WhichTheTestDriverRejects()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        string xml = LibvirtRequirement.DomainXml(out string name);

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(() => connection.CreateDomain(xml, DomainCreateFlags.Paused));

        Assert.AreEqual(LibvirtErrorCodes.InvalidArgument, ex.Code);
        StringAssert.Contains(ex.LibvirtMessage, "unsupported flags (0x1)");
        Assert.IsNull(connection.TryLookupDomain(name));
    }

    [TestMethod]
    public void InvalidTransitions_ThrowWithLibvirtsMessage()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        using LibvirtDomain domain = connection.DefineDomain(LibvirtRequirement.DomainXml(out string name));
        try
        {
            LibvirtException notRunning = Assert.ThrowsExactly<LibvirtException>(domain.Suspend);
            Assert.AreEqual($"virDomainSuspend({name})", notRunning.Operation);
            StringAssert.Contains(notRunning.LibvirtMessage, $"domain '{name}' not running");

            domain.Create();
            LibvirtException alreadyRunning = Assert.ThrowsExactly<LibvirtException>(domain.Create);
            StringAssert.Contains(alreadyRunning.LibvirtMessage, $"Domain '{name}' is already running");

            LibvirtException notPaused = Assert.ThrowsExactly<LibvirtException>(domain.Resume);
            StringAssert.Contains(notPaused.LibvirtMessage, "not paused");
            domain.Destroy();
        }
        finally
        {
            domain.Undefine();
        }
    }

    [TestMethod]
    public void GetXml_DescribesTheDomain()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        using LibvirtDomain domain = connection.DefineDomain(LibvirtRequirement.DomainXml(out string name));
        try
        {
            string xml = domain.GetXml();
            string inactive = domain.GetXml(DomainXmlFlags.Inactive);

            StringAssert.Contains(xml, $"<name>{name}</name>");
            StringAssert.Contains(xml, $"<uuid>{domain.Uuid}</uuid>");
            StringAssert.Contains(inactive, $"<name>{name}</name>");
        }
        finally
        {
            domain.Undefine();
        }
    }

    [TestMethod]
    public void DisposedDomain_RefusesCalls()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        LibvirtDomain domain = connection.LookupDomain("test");

        domain.Dispose();
        domain.Dispose();

        Assert.ThrowsExactly<ObjectDisposedException>(() => domain.GetState());
        Assert.AreEqual("test", domain.Name);
    }

    [TestMethod]
    public void GetJobStats_OnTheTestDriver_IsUnsupported()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        using LibvirtDomain test = connection.LookupDomain("test");

        // The test driver implements no job statistics; a driver that did would report no job (Type None).
        try
        {
            Assert.AreEqual(DomainJobType.None, test.GetJobStats().Type);
        }
        catch (LibvirtException ex)
        {
            Assert.AreEqual(LibvirtErrorCodes.NoSupport, ex.Code, ex.Message);
            StringAssert.Contains(ex.LibvirtMessage, "virDomainGetJobStats");
            Assert.AreEqual("virDomainGetJobStats(test)", ex.Operation);
        }

        Assert.AreEqual(LibvirtErrorCodes.NoSupport, Assert.ThrowsExactly<LibvirtException>(() => test.GetJobStats(completed: true)).Code);
    }

    [TestMethod]
    public void MigrationControls_OnTheTestDriver_ReportNoSupport()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        using LibvirtDomain test = connection.LookupDomain("test");

        AssertNoSupport(() => test.SetMaxDowntime(TimeSpan.FromMilliseconds(300)), "virDomainMigrateSetMaxDowntime");

        // Zero and 1 ms are passed on, not refused by the argument check.
        AssertNoSupport(() => test.SetMaxDowntime(TimeSpan.Zero), "virDomainMigrateSetMaxDowntime");
        AssertNoSupport(() => test.SetMaxDowntime(TimeSpan.FromMilliseconds(1)), "virDomainMigrateSetMaxDowntime");
        AssertNoSupport(() => test.GetMaxDowntime(), "virDomainMigrateGetMaxDowntime");
        AssertNoSupport(() => test.SetMaxSpeed(100), "virDomainMigrateSetMaxSpeed");
        AssertNoSupport(() => test.GetMaxSpeed(postcopy: true), "virDomainMigrateGetMaxSpeed");
        AssertNoSupport(test.StartPostCopy, "virDomainMigrateStartPostCopy");
        AssertNoSupport(() => test.SetCompressionCache(256UL << 20), "virDomainMigrateSetCompressionCache");
        AssertNoSupport(() => test.GetCompressionCache(), "virDomainMigrateGetCompressionCache");
        AssertNoSupport(() => test.StartDirtyRateCalc(TimeSpan.FromSeconds(1), DirtyRateMode.DirtyRing), "virDomainStartDirtyRateCalc");
    }

    [TestMethod]
    public void Migrate_WithParameters_ReachesTheDriver_WhichRefusesIt()
    {
        using LibvirtConnection source = LibvirtRequirement.OpenTest();
        using LibvirtConnection destination = LibvirtRequirement.OpenTest();
        using LibvirtDomain test = source.LookupDomain("test");
        var parameters = new DomainMigrationParameters { BandwidthMiBps = 100, DestinationName = "test-migrated", ParallelConnections = 2 };

        LibvirtException direct = Assert.ThrowsExactly<LibvirtException>(() => test.Migrate(destination, parameters, MigrationFlags.Live));
        LibvirtException peerToPeer = Assert.ThrowsExactly<LibvirtException>(
            () => test.MigrateToUri("test:///default", parameters, MigrationFlags.Live | MigrationFlags.PeerToPeer));

        Assert.AreEqual("virDomainMigrate3(test)", direct.Operation);
        // libvirt inspected the parameter list before finding the driver lacks extensible migration.
        Assert.AreEqual(LibvirtErrorCodes.ArgumentUnsupported, direct.Code, direct.Message);
        StringAssert.Contains(direct.LibvirtMessage, "extended parameters were passed");
        LibvirtException withoutParameters = Assert.ThrowsExactly<LibvirtException>(
            () => test.Migrate(destination, DomainMigrationParameters.Default, MigrationFlags.Live));
        Assert.AreEqual(LibvirtErrorCodes.NoSupport, withoutParameters.Code, withoutParameters.Message);
        Assert.AreEqual("virDomainMigrateToURI3(test -> test:///default)", peerToPeer.Operation);
        Assert.AreEqual(LibvirtErrorCodes.ArgumentUnsupported, peerToPeer.Code, peerToPeer.Message);
        StringAssert.Contains(peerToPeer.LibvirtMessage, "p2p migration is not supported");
        Assert.AreEqual(DomainState.Running, test.GetState().State);
    }

    [TestMethod]
    public void GetDirtyRate_OnADriverWithoutDirtyRateStatistics_Fails()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        using LibvirtDomain test = connection.LookupDomain("test");

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(() => test.GetDirtyRate());

        Assert.AreEqual(LibvirtErrorCodes.ArgumentUnsupported, ex.Code, ex.Message);
        Assert.AreEqual("virDomainListGetStats(test)", ex.Operation);
    }

    [TestMethod]
    public void ArgumentChecks_HappenBeforeLibvirt()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        using LibvirtDomain test = connection.LookupDomain("test");

        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => test.SetMaxDowntime(TimeSpan.FromMilliseconds(-1)));
        ArgumentOutOfRangeException subMillisecond = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => test.SetMaxDowntime(TimeSpan.FromMilliseconds(0.5)));
        Assert.AreEqual("downtime", subMillisecond.ParamName);
        Assert.Contains("would become 0 ms", subMillisecond.Message);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => test.StartDirtyRateCalc(TimeSpan.FromMilliseconds(500), DirtyRateMode.PageSampling));
        Assert.ThrowsExactly<ArgumentNullException>(() => test.Migrate(null!, DomainMigrationParameters.Default, MigrationFlags.Live));
        Assert.ThrowsExactly<ArgumentNullException>(() => connection.DefineDomain(null!));
    }

    private static void AssertNoSupport(Action action, string function)
    {
        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(action);
        Assert.AreEqual(LibvirtErrorCodes.NoSupport, ex.Code, ex.Message);
        Assert.AreEqual($"{function}(test)", ex.Operation);
        StringAssert.Contains(ex.LibvirtMessage, function);
    }
}
