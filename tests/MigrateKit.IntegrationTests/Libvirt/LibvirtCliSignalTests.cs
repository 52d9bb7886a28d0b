using System;
using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Tests.Cli;
using static MigrateKit.IntegrationTests.TestSupport.CliSignals;

namespace MigrateKit.IntegrationTests.Libvirt;

/// <summary>
/// Ctrl-C during <c>migratekit libvirt migrate</c> on the harness's two hosts: the CLI aborts
/// QEMU's migration job before its switchover, the domain keeps running on the source alone with
/// its memory intact, and the CLI exits 130 with the report's reason.
/// </summary>
[TestClass]
[TestCategory("Libvirt")]
[SupportedOSPlatform("linux")]
public sealed class LibvirtCliSignalTests
{
    private const ulong MiB = 1UL << 20;

    [TestInitialize]
    public void RequireHosts() => LibvirtHosts.Require();

    [TestMethod]
    public void Migrate_InterruptedDuringPreCopy_AbortsTheJob_Exits130_AndTheDomainRunsOnTheSourceAlone()
    {
        // A 64 MiB sweep in 256 MiB at 1 MiB/s: pre-copy is still under way when the signal comes.
        // The stream goes to 127.0.0.1 (the harness's second host has a name of its own only in its
        // namespace), and --unsafe: libvirt deems the host-cached boot image unsafe to migrate.
        using TestDomain vm = TestDomain.Start(LibvirtHosts.SourceUri, () => GuestPrograms.Sweep(MiB, 65 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress), 256 * MiB);
        using Process cli = CliProcess.Start(
            ["libvirt", "migrate", vm.Name, "--from", LibvirtHosts.SourceUri, "--to", LibvirtHosts.DestinationUri, "--bandwidth", "1MiB/s", "--deadline", "300s", "--migrate-uri", "tcp://127.0.0.1", "--unsafe", "--verbose"],
            defaultSignals: true);
        StringBuilder output = Collect(cli);
        try
        {
            WaitFor(() => PreCopySent(vm) >= 1 * MiB, cli, output, "QEMU's job to send its first MiB");

            AssertStopsOn(cli, Sigint, TimeSpan.FromSeconds(30), output, $"Migration of {vm.Name} aborted: cancelled by the caller");
            StringAssert.Contains(Text(output), "reason: cancelled by the caller");
        }
        finally
        {
            KillIfRunning(cli);
        }

        // libvirt's job was aborted, not left to its supervisor's absence: one copy, on the source.
        Assert.AreEqual(DomainState.Running, vm.StateOn(LibvirtHosts.SourceUri));
        Assert.IsNull(vm.StateOn(LibvirtHosts.DestinationUri), "the destination keeps no copy of the domain");
        vm.WaitForPass(vm.Guest.ReadSerial().LastPass + 1, TimeSpan.FromSeconds(60));
    }

    /// <summary>The memory QEMU's running migration job of the domain has sent so far; 0 without one.</summary>
    private static ulong PreCopySent(TestDomain vm)
    {
        using LibvirtConnection c = LibvirtConnection.Open(LibvirtHosts.SourceUri);
        using LibvirtDomain? d = c.TryLookupDomain(vm.Name);
        JobStats? job = d?.GetJobStats();
        return job is { Type: DomainJobType.Unbounded, MemoryProcessed: ulong sent } ? sent : 0;
    }
}
