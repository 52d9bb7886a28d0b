using System;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// <c>bench soak</c> as a process: a HostVm migrated back and forth over loopback TCP with mutual
/// TLS must leave the process holding what it held before: the same descriptors, no thread it did
/// not have (compared by name), the same mappings give or take the runtime's own layout noise, RSS grown less than 64 MiB.
/// The same run serves <c>--metrics-listen</c>: a scraper reads the migration figures while it
/// migrates (one soak for both: most of a soak is its 70 warm-up migrations and its two settling waits).
/// </summary>
[TestClass]
public sealed class CliSoakTests
{
    [TestInitialize]
    public void RequireWriteTracking() => WriteTrackingRequirement.Require();

    [TestMethod]
    public void BenchSoak_TenMigrations_AllVerified_NothingLeaks_AndServesItsFiguresWhileItRuns()
    {
        // 70 warm-up migrations, 10 measured, and two waits for the thread pool to retire its idle workers.
        int port = CliMetricsEndpointTests.FreePort();
        using Process soak = CliProcess.Start(["bench", "soak", "--count", "10", "--json", "--metrics-listen", $"127.0.0.1:{port}"]);
        var output = soak.StandardOutput.ReadToEndAsync();
        var errors = soak.StandardError.ReadToEndAsync();

        // Scraped during the warm-up, and the client closed before the start figures: what the
        // endpoint holds for a scrape is part of what the process holds at the start and the end.
        string? scraped = CliMetricsEndpointTests.ScrapeAFinishedMigration(soak, port);
        if (!soak.WaitForExit(TimeSpan.FromMinutes(8)))
        {
            soak.Kill(entireProcessTree: true);
            Assert.Fail("bench soak did not finish within 8 minutes");
        }

        int exit = soak.ExitCode;
        string stdout = output.Result;
        string stderr = errors.Result;
        Assert.IsNotNull(scraped, $"no scrape showed a finished migration; stderr: {stderr}");
        CliMetricsEndpointTests.AssertMigrationFigures(scraped);
        StringAssert.Contains(stderr, $"metrics on http://127.0.0.1:{port}/metrics");

        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement root = doc.RootElement;
        JsonElement start = root.GetProperty("start");
        JsonElement end = root.GetProperty("end");
        string figures = $"start {start}, end {end}; stderr: {stderr}";
        Assert.AreEqual(10, root.GetProperty("count").GetInt32());
        Assert.AreEqual(10, root.GetProperty("verified").GetInt32(), figures);
        Assert.AreEqual(start.GetProperty("fds").GetInt32(), end.GetProperty("fds").GetInt32(), figures);

        // Threads by name: none added. One fewer is no leak (a thread present through the start's
        // settling wait may have ended by the end's: a CI run ended 12 -> 11). The runtime's own
        // on-demand threads come and go with its GC and JIT (a CI run ended with a .NET BGC), and
        // the pool's workers are compared by how many are busy, below.
        Assert.AreEqual(0, root.GetProperty("threadsAdded").GetArrayLength(), figures);
        foreach (JsonProperty name in end.GetProperty("threadNames").EnumerateObject())
        {
            if (name.Name is ".NET BGC" or ".NET Tiered Com" or ".NET TP Worker")
            {
                continue;
            }

            int before = start.GetProperty("threadNames").TryGetProperty(name.Name, out JsonElement b) ? b.GetInt32() : 0;
            Assert.IsLessThanOrEqualTo(before, name.Value.GetInt32(), $"{name.Name}: {figures}");
        }

        Assert.AreEqual(start.GetProperty("threads").GetInt32(), SumOf(start.GetProperty("threadNames")), figures);

        // The pool's workers by how many run a work item: one a migration left blocked stays busy.
        Assert.IsLessThanOrEqualTo(start.GetProperty("busyPoolThreads").GetInt32(), end.GetProperty("busyPoolThreads").GetInt32(), figures);

        // The runtime's own heaps move the mapping count by a few lines either way (measured 0 to 3,
        // see docs/BENCHMARKS.md, "Soak"); a leak of one mapping per migration would add 10.
        Assert.IsLessThanOrEqualTo(4, Math.Abs(end.GetProperty("mappings").GetInt32() - start.GetProperty("mappings").GetInt32()), figures);
        Assert.IsLessThan(64L << 20, end.GetProperty("rssBytes").GetInt64() - start.GetProperty("rssBytes").GetInt64(), figures);
        Assert.IsTrue(root.GetProperty("targetsMet").GetBoolean(), figures);
        Assert.AreEqual(0, exit, figures);
    }

    private static int SumOf(JsonElement names)
    {
        int sum = 0;
        foreach (JsonProperty name in names.EnumerateObject())
        {
            sum += name.Value.GetInt32();
        }

        return sum;
    }
}
