using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Libvirt;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class DomainXmlTests
{
    [TestMethod]
    [DataRow("<domain><memory unit='KiB'>1048576</memory></domain>", 1UL << 30)]
    [DataRow("<domain><memory>262144</memory></domain>", 256UL << 20)]
    [DataRow("<domain><memory unit='GiB'>2</memory></domain>", 2UL << 30)]
    [DataRow("<domain><memory unit='MB'>5</memory></domain>", 5_000_000UL)]
    public void MemoryBytes_ReadsEveryUnit(string xml, ulong expected) => Assert.AreEqual(expected, DomainXml.MemoryBytes(xml));

    [TestMethod]
    public void MemoryBytes_NoMemoryOrUnknownUnit_SaysWhat()
    {
        StringAssert.Contains(Assert.ThrowsExactly<FormatException>(() => DomainXml.MemoryBytes("<domain/>")).Message, "<memory>");
        StringAssert.Contains(Assert.ThrowsExactly<FormatException>(() => DomainXml.MemoryBytes("<domain><memory unit='parsec'>1</memory></domain>")).Message, "parsec");
    }

    [TestMethod]
    [DataRow("<domain type='kvm'><name>a</name></domain>", "kvm")]
    [DataRow("<domain type='qemu'><name>a</name></domain>", "qemu")]
    public void VirtType_ReadsTheRootsType(string xml, string expected) => Assert.AreEqual(expected, DomainXml.VirtType(xml));

    [TestMethod]
    public void VirtType_Missing_SaysWhat() =>
        StringAssert.Contains(Assert.ThrowsExactly<FormatException>(() => DomainXml.VirtType("<domain/>")).Message, "type");
}
