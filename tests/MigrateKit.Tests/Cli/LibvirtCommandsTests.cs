using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Tests.LibvirtSharp;

namespace MigrateKit.Tests.Cli;

/// <summary>The calibration-store options of <c>migratekit libvirt migrate|demo</c>, checked before any host is contacted, and a plan that cannot be made.</summary>
[TestClass]
public sealed class LibvirtCommandsTests
{
    [TestMethod]
    [DataRow("migrate", "web1")]
    [DataRow("demo", null)]
    public void CalibrationStoreAndNoCalibrationStore_ExcludeEachOther_AUsageError(string command, string? domain)
    {
        string[] args = domain is null
            ? ["libvirt", command, "--from", "qemu:///a", "--to", "qemu:///b", "--calibration-store", "/tmp/x.json", "--no-calibration-store"]
            : ["libvirt", command, domain, "--from", "qemu:///a", "--to", "qemu:///b", "--calibration-store", "/tmp/x.json", "--no-calibration-store"];

        (int exit, _, string stderr) = CliProcess.Run(args);

        Assert.AreEqual(2, exit, stderr);
        StringAssert.Contains(stderr, "--calibration-store and --no-calibration-store exclude each other");
    }

    [TestMethod]
    public void Plan_OfADomainTheHostDoesNotHave_FailsWithExit4_NamingIt()
    {
        // libvirt's test driver runs in the client library: no daemon needed.
        LibvirtRequirement.Require();
        (int exit, string stdout, string stderr) = CliProcess.Run(["libvirt", "plan", "nodomain", "--connect", "test:///default"]);

        Assert.AreEqual(4, exit, stderr);
        Assert.AreEqual(string.Empty, stdout);
        StringAssert.Contains(stderr, "migratekit libvirt plan: 'test:///default' has no domain 'nodomain'.");
    }

    [TestMethod]
    public void CalibrationStore_ABlankPath_IsAUsageError()
    {
        (int exit, _, string stderr) = CliProcess.Run(["libvirt", "migrate", "web1", "--from", "qemu:///a", "--to", "qemu:///b", "--calibration-store", " "]);

        Assert.AreEqual(2, exit, stderr);
        StringAssert.Contains(stderr, "--calibration-store needs a file path");
    }
}
