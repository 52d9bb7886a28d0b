using System;
using System.Linq;
using System.Text.Json;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.Libvirt;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// <c>bench libvirt-strategies</c> as a process on the two-host harness, at its smallest: one run of
/// each configuration on the idle guest. Skips only when the harness is not running.
/// </summary>
[TestClass]
[TestCategory("Libvirt")]
public sealed class CliStrategyBenchTests
{
    [TestInitialize]
    public void RequireHosts() => LibvirtHosts.Require();

    [TestMethod]
    public void BenchLibvirtStrategies_OneIdleRun_EveryConfigurationConverges_AndNoDomainIsLeftBehind()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["bench", "libvirt-strategies", "--from", LibvirtHosts.SourceUri, "--to", LibvirtHosts.DestinationUri, "--runs", "1", "--guests", "idle", "--memory", "256MiB", "--json"],
            TimeSpan.FromMinutes(5));

        Assert.AreEqual(0, exit, $"{stderr}\n{stdout}");
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement guest = doc.RootElement.GetProperty("guests").EnumerateArray().Single();
        Assert.AreEqual("idle", guest.GetProperty("guest").GetString());
        JsonElement[] configs = [.. guest.GetProperty("configs").EnumerateArray()];
        CollectionAssert.AreEqual(new[] { "libvirt-default", "libvirt-autoconverge", "libvirt-xbzrle", "migratekit-auto" },
            configs.Select(c => c.GetProperty("config").GetString()).ToArray(), stdout);
        foreach (JsonElement config in configs)
        {
            JsonElement run = config.GetProperty("runs").EnumerateArray().Single();
            Assert.AreEqual("converged", run.GetProperty("outcome").GetString(), config.ToString());
            Assert.AreEqual(1, config.GetProperty("converged").GetInt32(), config.ToString());
            Assert.IsGreaterThan(0.0, config.GetProperty("medianWallMs").GetDouble(), config.ToString());
            Assert.IsGreaterThan(0.0, config.GetProperty("medianDowntimeMs").GetDouble(), config.ToString());
            Assert.IsGreaterThan(0.0, config.GetProperty("medianJobMs").GetDouble(), config.ToString());
            Assert.IsGreaterThanOrEqualTo(run.GetProperty("jobMs").GetDouble(), run.GetProperty("wallMs").GetDouble(), $"the wall time holds the job: {config}");
        }

        // Back and forth: each migration leaves from where the one before arrived.
        CollectionAssert.AreEqual(new[] { true, false, true, false }, configs.Select(c => c.GetProperty("runs")[0].GetProperty("forward").GetBoolean()).ToArray());
        JsonElement auto = configs[3].GetProperty("runs")[0];
        Assert.IsFalse(string.IsNullOrEmpty(auto.GetProperty("strategy").GetString()), auto.ToString());
        Assert.AreEqual(JsonValueKind.Number, auto.GetProperty("predictedDowntimeMs").ValueKind, auto.ToString());
        Assert.AreEqual(JsonValueKind.Number, guest.GetProperty("autoVsBest").ValueKind, guest.ToString());
        foreach (string target in (string[])["wallTime", "downtime", "forecast"])
        {
            Assert.AreEqual(JsonValueKind.String, guest.GetProperty("targets").GetProperty(target).GetProperty("detail").ValueKind, target);
        }

        foreach (string uri in (string[])[LibvirtHosts.SourceUri, LibvirtHosts.DestinationUri])
        {
            using LibvirtConnection c = LibvirtConnection.Open(uri);
            string[] left = [.. c.ListAllDomains().Select(d =>
            {
                using (d)
                {
                    return d.Name;
                }
            }).Where(n => n.StartsWith("migratekit-bench-", StringComparison.Ordinal))];
            Assert.IsEmpty(left, $"{uri}: {string.Join(", ", left)}");
        }
    }
}
