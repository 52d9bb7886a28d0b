using System;
using System.Collections.Generic;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Qemu;

namespace MigrateKit.Tests.Qemu;

/// <summary>QEMU's command line as <see cref="QemuProcess"/> builds it, and the options it refuses, without starting QEMU.</summary>
[TestClass]
public sealed class QemuProcessTests
{
    [TestMethod]
    public void MemoryFiles_AreLoaderDevicesAtTheirAddresses_LoadedRaw()
    {
        var options = new QemuProcessOptions { Accelerator = "tcg", MemoryFiles = [new QemuMemoryFile("/tmp/a.bin", 0x10_0000), new QemuMemoryFile("/tmp/b.bin", 0x200_0000)] };

        List<string> arguments = QemuProcess.Arguments(options, "/tmp/q");

        int first = arguments.IndexOf("loader,file=/tmp/a.bin,addr=0x100000,force-raw=on");
        Assert.IsGreaterThan(0, first, string.Join(' ', arguments));
        Assert.AreEqual("-device", arguments[first - 1]);
        Assert.Contains("loader,file=/tmp/b.bin,addr=0x2000000,force-raw=on", arguments);
    }

    [TestMethod]
    public void NoMemoryFiles_AddNoDevice()
    {
        CollectionAssert.DoesNotContain(QemuProcess.Arguments(new QemuProcessOptions { Accelerator = "tcg" }, "/tmp/q"), "-device");
    }

    [TestMethod]
    [DataRow("")]
    [DataRow("/tmp/a,b.bin")]
    public void MemoryFiles_WithAnEmptyPathOrAComma_AreRejectedNamingTheOption(string path)
    {
        var options = new QemuProcessOptions { MemoryFiles = [new QemuMemoryFile(path, 0x10_0000)] };

        ArgumentException e = Assert.ThrowsExactly<ArgumentException>(options.Validate);

        Assert.AreEqual(nameof(QemuProcessOptions.MemoryFiles), e.ParamName);
    }
}
