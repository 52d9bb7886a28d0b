using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// <c>--metrics-listen</c>: what a <c>receive</c> received, in Prometheus' text format, and the
/// option's errors. The migration figures <c>bench soak</c> serves while it migrates are checked
/// by <see cref="CliSoakTests"/> in its soak, with these helpers.
/// </summary>
[TestClass]
public sealed class CliMetricsEndpointTests
{
    [TestInitialize]
    public void RequireWriteTracking() => WriteTrackingRequirement.Require();

    [TestMethod]
    public async Task Receive_WithMetricsListen_ServesWhatItReceived()
    {
        string dir = Directory.CreateTempSubdirectory("mk-cli-receive-metrics-").FullName;
        string socket = Path.Combine(dir, "receive.sock");
        int port = FreePort();

        // More passes than the guest runs in the check's minute: receive stays up after the migration until killed.
        using Process receive = CliProcess.Start(["receive", "--listen", "unix:" + socket, "--vm", "hostvm", "--verify-passes", "1000000", "--verbose", "--metrics-listen", $"127.0.0.1:{port}"]);
        var receiveErr = receive.StandardError.ReadToEndAsync();
        var receiveOut = receive.StandardOutput.ReadToEndAsync();
        try
        {
            var waited = Stopwatch.StartNew();
            while (!File.Exists(socket))
            {
                Assert.IsFalse(receive.HasExited, "receive exited before it listened");
                Assert.IsLessThan(TimeSpan.FromMinutes(1), waited.Elapsed, "receive did not listen");
                await Task.Delay(50);
            }

            Task<(int Exit, string Stdout, string Stderr)> sending = Task.Run(() => CliProcess.Run(
                ["send", "--to", "unix:" + socket, "--vm", "hostvm", "--memory", "64MiB", "--workload", "verify", "--hot", "8MiB", "--json"],
                TimeSpan.FromMinutes(2)));

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            const string Completed = "migratekit_migrations_received_total{status=\"completed\"}";
            string? scraped = null;
            waited.Restart();
            while (scraped is null && !receive.HasExited && waited.Elapsed < TimeSpan.FromMinutes(3))
            {
                string text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
                if (Value(text, Completed) > 0)
                {
                    scraped = text;
                }

                await Task.Delay(50);
            }

            (int sendExit, string sendOut, string sendErr) = await sending.WaitAsync(TimeSpan.FromMinutes(3));
            Assert.AreEqual(0, sendExit, sendErr);
            Assert.IsNotNull(scraped, $"no scrape showed a completed received migration; receive's stderr: {(receive.HasExited ? receiveErr.Result : "(still running)")}");

            Assert.AreEqual(1.0, Value(scraped, Completed), scraped);
            using JsonDocument sent = JsonDocument.Parse(sendOut);
            Assert.IsGreaterThan(0.0, Value(scraped, "migratekit_bytes_received_total"), scraped);
            Assert.IsGreaterThanOrEqualTo(sent.RootElement.GetProperty("bytesSent").GetDouble(), Value(scraped, "migratekit_bytes_received_total"), "the receiver read at least what the source sent as pages");
            Assert.IsGreaterThan(0.0, Value(scraped, "migratekit_pages_received_total"), scraped);
            Assert.IsGreaterThanOrEqualTo(0.0, Value(scraped, "migratekit_zero_pages_received_total"), scraped);
            Assert.AreEqual(64.0 * 1024 * 1024, Value(scraped, "migratekit_receive_data_total_bytes"), scraped);
            Assert.AreEqual(Value(scraped, "migratekit_bytes_received_total"), Value(scraped, "migratekit_receive_data_processed_bytes"), "one migration received: its bytes are the process's");
            Assert.IsGreaterThan(0.0, Value(scraped, "migratekit_receive_resume_seconds"), scraped);
            StringAssert.Contains(scraped, "# TYPE migratekit_bytes_received_total counter");
            StringAssert.Contains(scraped, "# TYPE migratekit_migrations_received_total counter");
        }
        finally
        {
            if (!receive.HasExited)
            {
                receive.Kill(entireProcessTree: true);
            }

            await receive.WaitForExitAsync();
            _ = await receiveOut;
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void MetricsListen_WithoutAPort_IsAUsageError()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "soak", "--count", "1", "--metrics-listen", "localhost"]);
        Assert.AreEqual(2, exit, stderr);
        Assert.AreEqual("", stdout);
        StringAssert.Contains(stderr, "--metrics-listen 'localhost': use an IP address and a port");
    }

    [TestMethod]
    public void MetricsListen_OnAnIPv6Address_IsAUsageError_NotACrash()
    {
        // HttpListener cannot parse an IPv6 host in its prefix: this was "unexpected error" with a stack trace.
        (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "soak", "--count", "1", "--metrics-listen", "[::1]:9464"]);
        Assert.AreEqual(2, exit, stderr);
        Assert.AreEqual("", stdout);
        StringAssert.Contains(stderr, "--metrics-listen '[::1]:9464': the metrics server listens on IPv4 only, on one address (e.g. 127.0.0.1:9464) or on all of them (0.0.0.0:9464).");
    }

    [TestMethod]
    public void MetricsListen_OnAPortTaken_FailsNamingIt_BeforeAnythingRuns()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        string dir = Directory.CreateTempSubdirectory("mk-cli-metrics-taken-").FullName;
        try
        {
            string socket = Path.Combine(dir, "receive.sock");
            (int exit, _, string stderr) = CliProcess.Run(["receive", "--listen", "unix:" + socket, "--vm", "hostvm", "--metrics-listen", $"127.0.0.1:{port}"]);
            Assert.AreEqual(4, exit, stderr);
            StringAssert.StartsWith(stderr, $"migratekit receive: --metrics-listen 127.0.0.1:{port}: cannot serve metrics there (");
            Assert.IsFalse(stderr.Contains("   at ", StringComparison.Ordinal), stderr);
            Assert.IsFalse(File.Exists(socket), "nothing listened");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public async Task MetricsListen_OnEveryAddress_IsScrapedAtLoopback()
    {
        // HttpListener refuses 0.0.0.0 by name ("The request is not supported"); it means every IPv4 address.
        string dir = Directory.CreateTempSubdirectory("mk-cli-metrics-any-").FullName;
        string socket = Path.Combine(dir, "receive.sock");
        int port = FreePort();
        using Process receive = CliProcess.Start(["receive", "--listen", "unix:" + socket, "--vm", "hostvm", "--verbose", "--metrics-listen", $"0.0.0.0:{port}"]);
        Task<string> stderr = receive.StandardError.ReadToEndAsync();
        try
        {
            var waited = Stopwatch.StartNew();
            while (!File.Exists(socket))
            {
                Assert.IsFalse(receive.HasExited, $"receive exited: {await stderr}");
                Assert.IsLessThan(TimeSpan.FromMinutes(1), waited.Elapsed, "receive did not listen");
                await Task.Delay(50);
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            string text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
            StringAssert.Contains(text, "# TYPE migratekit_migrations_received_total counter");
        }
        finally
        {
            receive.Kill(entireProcessTree: true);
            await receive.WaitForExitAsync();
            Directory.Delete(dir, recursive: true);
        }

        StringAssert.Contains(await stderr, $"metrics on http://HOST:{port}/metrics, on every IPv4 address of this host");
    }

    /// <summary>
    /// Scrapes <c>http://127.0.0.1:<paramref name="port"/>/metrics</c> every 200 ms until a scrape
    /// shows a finished migration (a downtime), <paramref name="running"/> exits or three minutes
    /// pass; returns that scrape or null. The client is closed when it returns.
    /// </summary>
    internal static string? ScrapeAFinishedMigration(Process running, int port)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var waited = Stopwatch.StartNew();
        while (!running.HasExited && waited.Elapsed < TimeSpan.FromMinutes(3))
        {
            try
            {
                string text = http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics")).Result;
                if (Value(text, "migratekit_migration_downtime_seconds") > 0)
                {
                    return text;
                }
            }
            catch (AggregateException ex) when (ex.InnerException is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet: the endpoint starts with the command.
            }

            Thread.Sleep(200);
        }

        return null;
    }

    /// <summary>
    /// The figures of a scrape taken after a migration of a 32 MiB guest finished: counters of the
    /// process and gauges of the migration under way (or of the last one until the next starts),
    /// under the KubeVirt-like names and types.
    /// </summary>
    internal static void AssertMigrationFigures(string scraped)
    {
        Assert.IsGreaterThan(0.0, Value(scraped, "migratekit_migration_data_processed_bytes"), scraped);
        Assert.IsGreaterThan(0.0, Value(scraped, "migratekit_migration_pages_sent_total"), scraped);
        Assert.IsGreaterThan(0.0, Value(scraped, "migratekit_migration_rounds_total"), scraped);
        Assert.IsGreaterThan(0.0, Value(scraped, "migratekit_migration_predicted_downtime_seconds"), scraped);
        Assert.IsGreaterThanOrEqualTo(0.0, Value(scraped, "migratekit_migration_dirty_memory_rate_bytes"), scraped);
        StringAssert.Contains(scraped, "# TYPE migratekit_migration_data_processed_bytes counter");

        double total = Value(scraped, "migratekit_migration_data_total_bytes");
        Assert.AreEqual(32.0 * 1024 * 1024, total, scraped);
        double sent = Value(scraped, "migratekit_migration_memory_processed_bytes");
        Assert.IsGreaterThanOrEqualTo(0.0, sent, scraped);
        Assert.IsLessThanOrEqualTo(Value(scraped, "migratekit_migration_data_processed_bytes"), sent, "one migration's bytes are part of the process's");
        double remaining = Value(scraped, "migratekit_migration_data_remaining_bytes");
        Assert.IsGreaterThanOrEqualTo(0.0, remaining, scraped);
        Assert.IsLessThanOrEqualTo(total * 1.1, remaining, "at most the memory and its framing");
        Assert.IsGreaterThan(0.0, Value(scraped, "migratekit_migration_memory_transfer_rate_bytes"), scraped);
        Assert.IsGreaterThan(0.0, Value(scraped, "migratekit_migration_downtime_seconds"), scraped);
        Assert.IsLessThan(10.0, Value(scraped, "migratekit_migration_downtime_seconds"), scraped);
        foreach (string gauge in new[] { "data_total_bytes", "memory_processed_bytes", "data_remaining_bytes", "dirty_memory_rate_bytes", "memory_transfer_rate_bytes", "downtime_seconds" })
        {
            StringAssert.Contains(scraped, $"# TYPE migratekit_migration_{gauge} gauge");
        }
    }

    internal static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static double Value(string scraped, string name)
    {
        string? line = scraped.Split('\n').FirstOrDefault(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return line is null ? -1 : double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
    }
}
