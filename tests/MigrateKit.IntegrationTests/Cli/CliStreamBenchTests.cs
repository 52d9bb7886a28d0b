using System;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// <c>bench stream</c> as a process, small: one HostVm of 64 MiB of non-zero memory migrated over
/// loopback TCP, its memory verified, round 0's rate next to the C floor's from the same run.
/// </summary>
[TestClass]
public sealed class CliStreamBenchTests
{
    [TestInitialize]
    public void RequireWriteTracking() => WriteTrackingRequirement.Require();

    [TestMethod]
    public void BenchStream_64MiB_PrintsRound0RateNextToTheFloor_AndTheMemoryArrivedVerified()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "stream", "--memory", "64MiB", "--repeat", "2", "--floor", "map", "--json"], TimeSpan.FromMinutes(3));

        Assert.AreEqual(0, exit, stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement root = doc.RootElement;
        string figures = $"{root}; stderr: {stderr}";
        Assert.AreEqual(64L << 20, root.GetProperty("memoryBytes").GetInt64(), figures);
        Assert.IsTrue(root.GetProperty("verified").GetBoolean(), figures);
        Assert.IsGreaterThan(0.0, root.GetProperty("medianGBps").GetDouble(), figures);

        // The floor is built with the library and copied next to the CLI.
        Assert.IsGreaterThan(0.0, root.GetProperty("floorMedianGBps").GetDouble(), figures);
        Assert.IsGreaterThan(0.0, root.GetProperty("ratio").GetDouble(), figures);
        JsonElement[] runs = [.. root.GetProperty("runs").EnumerateArray()];
        Assert.HasCount(2, runs, figures);
        foreach (JsonElement run in runs)
        {
            Assert.AreEqual("completed", run.GetProperty("status").GetString(), figures);
            Assert.IsTrue(run.GetProperty("verified").GetBoolean(), figures);

            // Round 0 carries all non-zero memory but the first MiB the workload leaves alone, framed.
            Assert.IsGreaterThanOrEqualTo(63L << 20, run.GetProperty("round0Bytes").GetInt64(), figures);
            Assert.IsGreaterThan(0.0, run.GetProperty("round0GBps").GetDouble(), figures);
            Assert.AreEqual("map", run.GetProperty("floorMode").GetString(), figures);
            Assert.IsGreaterThan(0.0, run.GetProperty("floorGBps").GetDouble(), figures);
        }
    }
}
