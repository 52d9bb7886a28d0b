using System;
using System.Text.Json;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Libvirt;

/// <summary>
/// <c>migratekit libvirt dirtyrate</c> on real QEMU guests of the harness's source host: it measures
/// through the same checks as <see cref="MigrateKit.Libvirt.LibvirtDirtyRateProbe"/>, so a mode that
/// harms the guest is refused before it starts and a missing domain is named with its host.
/// </summary>
[TestClass]
[TestCategory("Libvirt")]
public sealed class LibvirtDirtyRateCliTests
{
    private const ulong MiB = 1UL << 20;

    [TestInitialize]
    public void RequireHosts() => LibvirtHosts.Require();

    [TestMethod]
    public void PageSampling_PrintsOneJsonObject_WithTheRateInBytes()
    {
        using TestDomain vm = Start(kvm: null);
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["libvirt", "dirtyrate", vm.Name, "--connect", LibvirtHosts.SourceUri, "--period", "2s", "--json"], TimeSpan.FromMinutes(1));

        Assert.AreEqual(0, exit, $"{stderr}\n{stdout}");
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement root = doc.RootElement;
        Assert.AreEqual(vm.Name, root.GetProperty("domain").GetString());
        Assert.AreEqual("page-sampling", root.GetProperty("mode").GetString());
        Assert.AreEqual(2.0, root.GetProperty("periodSeconds").GetDouble());

        // A sweep of 64 MiB over and over: page sampling sees a share of it in every period, in whole MiB/s.
        Assert.IsGreaterThan(0UL, root.GetProperty("bytesPerSecond").GetUInt64(), stdout);
        Assert.AreEqual(0UL, root.GetProperty("bytesPerSecond").GetUInt64() % MiB, stdout);
        Assert.AreEqual(JsonValueKind.Array, root.GetProperty("vcpuBytesPerSecond").ValueKind, stdout);
    }

    /// <summary>QEMU 7.2 under TCG dies in the dirty-bitmap calculation; the command must refuse it and leave the guest running.</summary>
    [TestMethod]
    public void DirtyBitmap_OfATcgGuest_IsRefused_AndTheGuestRunsOn()
    {
        using TestDomain vm = Start(kvm: false);
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["libvirt", "dirtyrate", vm.Name, "--connect", LibvirtHosts.SourceUri, "--mode", "dirty-bitmap", "--json"], TimeSpan.FromMinutes(1));

        Assert.AreEqual(4, exit, $"{stderr}\n{stdout}");
        Assert.AreEqual(string.Empty, stdout);
        StringAssert.Contains(stderr, "not KVM; use page-sampling");
        Assert.AreEqual(DomainState.Running, vm.StateOn(LibvirtHosts.SourceUri));
        vm.WaitForPass(vm.Guest.ReadSerial().LastPass + 1, TimeSpan.FromSeconds(60));
    }

    [TestMethod]
    public void MissingDomain_IsNamedWithItsHost()
    {
        string name = $"mk-test-missing-{Guid.NewGuid().ToString("N")[..8]}";
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["libvirt", "dirtyrate", name, "--connect", LibvirtHosts.SourceUri], TimeSpan.FromMinutes(1));

        Assert.AreEqual(4, exit, $"{stderr}\n{stdout}");
        StringAssert.Contains(stderr, $"'{LibvirtHosts.SourceUri}' has no domain '{name}'");
    }

    private static TestDomain Start(bool? kvm) =>
        TestDomain.Start(LibvirtHosts.SourceUri, () => GuestPrograms.Sweep(MiB, 65 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress), 256 * MiB, 0, kvm: kvm);
}
