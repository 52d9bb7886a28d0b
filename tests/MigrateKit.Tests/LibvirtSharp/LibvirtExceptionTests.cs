using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.LibvirtSharp;

/// <summary>How a libvirt error is presented and classified. Needs no libvirt.</summary>
[TestClass]
public sealed class LibvirtExceptionTests
{
    [TestMethod]
    public void Message_NamesOperationLibvirtMessageCodeAndDomain()
    {
        var ex = new LibvirtException("virDomainLookupByName(web01)", 42, 12, "Domain not found: no domain with matching name 'web01'");

        Assert.AreEqual("virDomainLookupByName(web01): Domain not found: no domain with matching name 'web01' (code 42, domain 12)", ex.Message);
        Assert.AreEqual("virDomainLookupByName(web01)", ex.Operation);
        Assert.AreEqual(42, ex.Code);
        Assert.AreEqual(12, ex.ErrorDomain);
        Assert.IsTrue(ex.IsNoDomain);
        Assert.IsFalse(ex.IsConnectionFault);
    }

    [TestMethod]
    [DataRow(LibvirtErrorCodes.NoConnect, LibvirtErrorDomains.Remote)]
    [DataRow(LibvirtErrorCodes.InvalidConnection, 0)]
    [DataRow(LibvirtErrorCodes.Rpc, LibvirtErrorDomains.Rpc)]
    [DataRow(LibvirtErrorCodes.Rpc, LibvirtErrorDomains.Remote)]
    [DataRow(LibvirtErrorCodes.SystemError, LibvirtErrorDomains.Rpc)]
    [DataRow(LibvirtErrorCodes.SystemError, LibvirtErrorDomains.Remote)]
    [DataRow(LibvirtErrorCodes.InternalError, LibvirtErrorDomains.Rpc)]
    [DataRow(LibvirtErrorCodes.Ssh, 50)]
    [DataRow(LibvirtErrorCodes.LibSsh, 66)]
    public void ConnectionFault_ForTransportFailures(int code, int domain) =>
        Assert.IsTrue(new LibvirtException("op", code, domain, "m").IsConnectionFault, $"code {code}, domain {domain}");

    [TestMethod]
    [DataRow(LibvirtErrorCodes.SystemError, LibvirtErrorDomains.Qemu)]
    [DataRow(LibvirtErrorCodes.InternalError, LibvirtErrorDomains.Qemu)]
    [DataRow(LibvirtErrorCodes.OperationInvalid, LibvirtErrorDomains.Qemu)]
    [DataRow(LibvirtErrorCodes.OperationTimeout, LibvirtErrorDomains.Qemu)]
    [DataRow(LibvirtErrorCodes.AuthFailed, LibvirtErrorDomains.Remote)]
    [DataRow(LibvirtErrorCodes.NoSupport, LibvirtErrorDomains.Test)]
    [DataRow(LibvirtErrorCodes.NoDomain, LibvirtErrorDomains.Qemu)]
    [DataRow(LibvirtErrorCodes.OperationDenied, LibvirtErrorDomains.Domain)]
    public void NoConnectionFault_ForHostOrDomainFailures(int code, int domain) =>
        Assert.IsFalse(new LibvirtException("op", code, domain, "m").IsConnectionFault, $"code {code}, domain {domain}");
}
