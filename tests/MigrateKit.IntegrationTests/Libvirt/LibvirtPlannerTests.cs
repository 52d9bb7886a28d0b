using System;
using System.Text.Json;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Libvirt;

/// <summary>
/// <see cref="LibvirtPlanner"/> and <c>migratekit libvirt plan</c> on a real QEMU guest of the
/// harness's source host that sweeps a 64 MiB working set: at 100 MiB/s its pre-copy converges.
/// </summary>
[TestClass]
[TestCategory("Libvirt")]
public sealed class LibvirtPlannerTests
{
    private const ulong MiB = 1UL << 20;

    [TestInitialize]
    public void RequireHosts() => LibvirtHosts.Require();

    [TestMethod]
    public async Task PlanAsync_OfASweepingGuest_MeasuresThreePeriods_AndPlansItsMemory()
    {
        using TestDomain vm = Start();
        LibvirtPlan plan = await new LibvirtPlanner().PlanAsync(LibvirtHosts.SourceUri, vm.Name, 100 * MiB);

        Assert.HasCount(3, plan.Points);
        Assert.AreEqual(256 * MiB, plan.Observation.MemoryBytes);
        Assert.IsGreaterThan(0L, plan.Observation.Curve.Points[^1].DistinctPages);
        Assert.IsTrue(plan.Plan.Converges, plan.Plan.Reason);
        Assert.IsGreaterThan(0, plan.Plan.Rounds.Count);
    }

    [TestMethod]
    public void Cli_LibvirtPlan_PrintsOneJsonObject_WithTheVerdictAndTheCurve()
    {
        using TestDomain vm = Start();
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["libvirt", "plan", vm.Name, "--connect", LibvirtHosts.SourceUri, "--bandwidth", "100MiB/s", "--max-downtime", "300ms", "--json"], TimeSpan.FromMinutes(2));

        Assert.AreEqual(0, exit, $"{stderr}\n{stdout}");
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement root = doc.RootElement;
        Assert.IsTrue(root.GetProperty("converges").GetBoolean());
        Assert.IsGreaterThan(0.0, root.GetProperty("predictedTotalMs").GetDouble());
        Assert.IsGreaterThan(0UL, root.GetProperty("predictedBytes").GetUInt64());
        Assert.IsGreaterThan(0, root.GetProperty("predictedRounds").GetInt32());
        Assert.AreEqual(JsonValueKind.Object, root.GetProperty("recommended").ValueKind);
        Assert.AreEqual(3, root.GetProperty("curve").GetArrayLength());
        Assert.AreEqual((double)(256 * MiB), root.GetProperty("memoryBytes").GetDouble());
    }

    private static TestDomain Start() =>
        TestDomain.Start(LibvirtHosts.SourceUri, () => GuestPrograms.Sweep(MiB, 65 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress), 256 * MiB, 0);
}
