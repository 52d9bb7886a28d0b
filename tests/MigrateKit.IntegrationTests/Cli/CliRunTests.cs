using System;
using System.IO;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// Whole CLI runs of a HostVm migration (userfaultfd write-protection, no KVM needed): what a
/// script that parses the output gets, and what an operator gets when a run fails.
/// </summary>
[TestClass]
public sealed class CliRunTests
{
    [TestInitialize]
    public void RequireWriteTracking() => WriteTrackingRequirement.Require();

    [TestMethod]
    public void Demo_Json_PrintsExactlyOneObject_AndMetricsGoToStderr()
    {
        string report = Path.Combine(Path.GetTempPath(), $"migratekit-cli-{Guid.NewGuid():N}.json");
        try
        {
            (int exit, string stdout, string stderr) = CliProcess.Run(
                ["demo", "--vm", "hostvm", "--memory", "64MiB", "--workload", "verify", "--hot", "8MiB", "--bandwidth", "200MiB/s", "--json", "--metrics", "--report", report],
                TimeSpan.FromMinutes(2));
            Assert.AreEqual(0, exit, stderr);

            // The whole of stdout is one JSON document: no table, spinner or metrics mixed in.
            using JsonDocument doc = JsonDocument.Parse(stdout);
            JsonElement root = doc.RootElement;
            Assert.AreEqual("completed", root.GetProperty("status").GetString());
            Assert.IsTrue(root.GetProperty("verified").GetBoolean());
            Assert.AreEqual("hostvm", root.GetProperty("vm").GetString());
            Assert.AreEqual(64UL << 20, root.GetProperty("memoryBytes").GetUInt64());
            Assert.IsGreaterThan(0.0, root.GetProperty("downtimeMs").GetDouble());
            Assert.IsGreaterThan(0, root.GetProperty("roundsDetail").GetArrayLength());

            // Encodings are on by default: each row has its mix, and some pages went encoded.
            ulong encoded = 0;
            foreach (JsonElement row in root.GetProperty("roundsDetail").EnumerateArray())
            {
                ulong delta = row.GetProperty("deltaPages").GetUInt64();
                ulong compressed = row.GetProperty("compressedPages").GetUInt64();
                Assert.IsLessThanOrEqualTo(row.GetProperty("pagesSent").GetUInt64(), delta + compressed);
                Assert.IsGreaterThan(0.0, row.GetProperty("harvestMs").GetDouble(), "every row, the switchover's too, was harvested");
                encoded += delta + compressed;
            }

            Assert.IsGreaterThan(0UL, encoded);

            StringAssert.Contains(stderr, "migratekit.pages.sent");
            Assert.IsTrue(File.Exists(report), "--report FILE.json was not written");
            Assert.AreEqual("completed", JsonDocument.Parse(File.ReadAllText(report)).RootElement.GetProperty("status").GetString());
        }
        finally
        {
            File.Delete(report);
        }
    }

    [TestMethod]
    public void Send_ToAnAddressNobodyListensOn_Fails_AndStillPrintsMetrics()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["send", "--to", "tcp:127.0.0.1:9", "--insecure", "--vm", "hostvm", "--memory", "16MiB", "--workload", "sweep", "--hot", "4MiB", "--json", "--metrics"],
            TimeSpan.FromMinutes(2));
        Assert.AreEqual(4, exit, stderr);
        Assert.AreEqual("", stdout);
        StringAssert.Contains(stderr, "127.0.0.1:9");
        StringAssert.Contains(stderr, "metrics (MigrateKit");
    }
}
