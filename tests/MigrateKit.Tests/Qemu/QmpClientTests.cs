using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Qemu;

namespace MigrateKit.Tests.Qemu;

[TestClass]
public sealed class QmpClientTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    private static async Task<(FakeQmpServer Server, QmpClient Client)> ConnectAsync()
    {
        var server = new FakeQmpServer();
        Task handshake = server.HandshakeAsync();
        QmpClient client = await QmpClient.ConnectAsync(server.SocketPath, Limit, CancellationToken.None);
        await handshake.WaitAsync(Limit);
        return (server, client);
    }

    [TestMethod]
    public async Task Connect_ReadsTheGreeting_AndNegotiatesCapabilities()
    {
        await using var server = new FakeQmpServer();
        Task<QmpClient> connect = QmpClient.ConnectAsync(server.SocketPath, Limit, CancellationToken.None);
        await server.AcceptAsync();
        await server.SendAsync(FakeQmpServer.Greeting);
        JsonElement capabilities = await server.ReceiveAsync();
        Assert.AreEqual("qmp_capabilities", capabilities.GetProperty("execute").GetString());
        Assert.IsFalse(capabilities.TryGetProperty("arguments", out _), "no arguments are sent for a command without them");
        Assert.IsFalse(connect.IsCompleted, "the connection is ready only once qmp_capabilities is answered");
        await server.ReplyAsync(capabilities.GetProperty("id").GetInt64());

        await using QmpClient client = await connect.WaitAsync(Limit);
        Assert.AreEqual(new Version(7, 2, 1), client.QemuVersion);
        Assert.AreEqual("Debian 1:7.2+dfsg-7", client.QemuPackage);
        Assert.AreSequenceEqual(new[] { "oob" }, [.. client.OfferedCapabilities]);
    }

    [TestMethod]
    public async Task Connect_ToAPeerThatIsNotQmp_ThrowsQmpException()
    {
        await using var server = new FakeQmpServer();
        Task<QmpClient> connect = QmpClient.ConnectAsync(server.SocketPath, Limit, CancellationToken.None);
        await server.AcceptAsync();
        await server.SendAsync("""{"hello": "world"}""");
        await Assert.ThrowsExactlyAsync<QmpException>(() => connect.WaitAsync(Limit));
    }

    [TestMethod]
    public async Task Connect_WithoutAGreeting_TimesOut()
    {
        await using var server = new FakeQmpServer();
        Task<QmpClient> connect = QmpClient.ConnectAsync(server.SocketPath, TimeSpan.FromMilliseconds(200), CancellationToken.None);
        await server.AcceptAsync();
        await Assert.ThrowsExactlyAsync<TimeoutException>(() => connect.WaitAsync(Limit));
    }

    [TestMethod]
    public async Task Connect_ToAMissingSocket_ThrowsIOException()
    {
        string path = Path.Combine(Path.GetTempPath(), "mk-no-such-" + Guid.NewGuid().ToString("N")[..8] + ".sock");
        IOException e = await Assert.ThrowsExactlyAsync<IOException>(() => QmpClient.ConnectAsync(path, Limit, CancellationToken.None));
        Assert.Contains(path, e.Message);
    }

    [TestMethod]
    public async Task Execute_SendsArgumentsAndAnId_AndReturnsTheResult()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task<JsonElement> call = client.ExecuteAsync("human-monitor-command", new Dictionary<string, object> { ["command-line"] = "info status" });
            JsonElement sent = await server.ReceiveAsync();
            Assert.AreEqual("info status", sent.GetProperty("arguments").GetProperty("command-line").GetString());
            await server.ReplyAsync(sent.GetProperty("id").GetInt64(), "\"VM status: running\\r\\n\"");
            JsonElement result = await call.WaitAsync(Limit);
            Assert.AreEqual("VM status: running\r\n", result.GetString());
        }
    }

    [TestMethod]
    public async Task Execute_AnErrorReply_ThrowsQmpExceptionWithClassAndDescription()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task<JsonElement> call = client.ExecuteAsync("no-such-command");
            long id = await server.ExpectAsync("no-such-command");
            await server.SendAsync($$"""{"error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}, "id": {{id}}}""");
            QmpException e = await Assert.ThrowsExactlyAsync<QmpException>(() => call.WaitAsync(Limit));
            Assert.AreEqual("CommandNotFound", e.ErrorClass);
            Assert.AreEqual("The command no-such-command has not been found", e.Description);
            Assert.AreEqual("no-such-command", e.Command);

            // The connection is still usable after an error reply.
            Task<QemuRunState> status = client.QueryStatusAsync();
            await server.ReplyAsync(await server.ExpectAsync("query-status"), """{"status": "running", "singlestep": false, "running": true}""");
            Assert.AreEqual(new QemuRunState("running", true), await status.WaitAsync(Limit));
        }
    }

    [TestMethod]
    public async Task Execute_AnEventBeforeTheReply_IsQueued_AndTheReplyStillMatches()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task stop = client.StopAsync();
            long id = await server.ExpectAsync("stop");
            await server.SendAsync("""{"timestamp": {"seconds": 1700000000, "microseconds": 250000}, "event": "STOP"}""");
            await server.SendAsync("""{"timestamp": {"seconds": 1700000001, "microseconds": 0}, "event": "MIGRATION", "data": {"status": "setup"}}""");
            await server.ReplyAsync(id);
            await stop.WaitAsync(Limit);

            await using IAsyncEnumerator<QmpEvent> events = client.Events.GetAsyncEnumerator();
            Assert.IsTrue(await events.MoveNextAsync().AsTask().WaitAsync(Limit));
            Assert.AreEqual("STOP", events.Current.Name);
            Assert.IsNull(events.Current.Data);
            Assert.AreEqual(DateTimeOffset.FromUnixTimeSeconds(1700000000).AddMilliseconds(250), events.Current.Timestamp);
            Assert.IsTrue(await events.MoveNextAsync().AsTask().WaitAsync(Limit));
            Assert.AreEqual("MIGRATION", events.Current.Name);
            Assert.AreEqual("setup", events.Current.Data!.Value.GetProperty("status").GetString());
        }
    }

    [TestMethod]
    public async Task Execute_RepliesOutOfOrder_AreMatchedById()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task<JsonElement> first = client.ExecuteAsync("first");
            long firstId = await server.ExpectAsync("first");
            Task<JsonElement> second = client.ExecuteAsync("second");
            long secondId = await server.ExpectAsync("second");
            await server.ReplyAsync(secondId, "2");
            await server.ReplyAsync(firstId, "1");
            Assert.AreEqual(1, (await first.WaitAsync(Limit)).GetInt32());
            Assert.AreEqual(2, (await second.WaitAsync(Limit)).GetInt32());
        }
    }

    [TestMethod]
    public async Task AMalformedLine_FailsThePendingCall_AndLaterCalls_WithQmpException()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task<QemuRunState> call = client.QueryStatusAsync();
            await server.ExpectAsync("query-status");
            await server.SendAsync("""{"return": {"status": "running", """);
            QmpException e = await Assert.ThrowsExactlyAsync<QmpException>(() => call.WaitAsync(Limit));
            Assert.AreEqual(QmpException.ProtocolErrorClass, e.ErrorClass);
            Assert.Contains("malformed JSON", e.Message);
            await Assert.ThrowsExactlyAsync<QmpException>(() => client.ContAsync().WaitAsync(Limit));
        }
    }

    [TestMethod]
    public async Task AReplyWithoutAnId_FailsThePendingCall_WithQmpException()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task call = client.ContAsync();
            await server.ExpectAsync("cont");
            await server.SendAsync("""{"error": {"class": "GenericError", "desc": "JSON parse error"}}""");
            await Assert.ThrowsExactlyAsync<QmpException>(() => call.WaitAsync(Limit));
        }
    }

    [TestMethod]
    public async Task AReplyWithAnIdThisClientNeverSent_FailsThePendingCall_WithQmpException()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task call = client.ContAsync();
            await server.ExpectAsync("cont");
            await server.SendAsync("""{"return": {}, "id": "not-a-number"}""");
            await Assert.ThrowsExactlyAsync<QmpException>(() => call.WaitAsync(Limit));
        }
    }

    [TestMethod]
    public async Task ADisconnect_FailsThePendingCall_WithIOExceptionNamingTheSocket()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task call = client.MigrateCancelAsync();
            await server.ExpectAsync("migrate_cancel");
            server.Disconnect();
            IOException e = await Assert.ThrowsExactlyAsync<IOException>(() => call.WaitAsync(Limit));
            Assert.Contains(server.SocketPath, e.Message);
            await Assert.ThrowsExactlyAsync<IOException>(() => client.StopAsync().WaitAsync(Limit));

            // The event stream ends with the connection.
            await foreach (QmpEvent _ in client.Events.WithCancellation(new CancellationTokenSource(Limit).Token))
            {
                Assert.Fail("no events were sent");
            }
        }
    }

    [TestMethod]
    public async Task ADisconnectInTheMiddleOfALine_FailsThePendingCall_WithIOException()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task call = client.StopAsync();
            await server.ExpectAsync("stop");
            await server.SendRawAsync(Encoding.UTF8.GetBytes("""{"return": {}"""));
            server.Disconnect();
            await Assert.ThrowsExactlyAsync<IOException>(() => call.WaitAsync(Limit));
        }
    }

    [TestMethod]
    public async Task Dispose_FailsAPendingCall_WithIOException()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        {
            Task call = client.StopAsync();
            await server.ExpectAsync("stop");
            await client.DisposeAsync();
            await Assert.ThrowsExactlyAsync<IOException>(() => call.WaitAsync(Limit));
            await Assert.ThrowsExactlyAsync<ObjectDisposedException>(() => client.StopAsync());
        }
    }

    [TestMethod]
    public async Task Cancelling_AWait_LeavesTheConnectionUsable()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            using var cts = new CancellationTokenSource();
            Task call = client.StopAsync(cts.Token);
            long id = await server.ExpectAsync("stop");
            await cts.CancelAsync();
            await Assert.ThrowsAsync<OperationCanceledException>(() => call.WaitAsync(Limit));
            await server.ReplyAsync(id); // A late reply is dropped.

            Task cont = client.ContAsync();
            await server.ReplyAsync(await server.ExpectAsync("cont"));
            await cont.WaitAsync(Limit);
        }
    }

    [TestMethod]
    public async Task TypedHelpers_SendQmpNames()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task capabilities = client.SetMigrationCapabilitiesAsync(new Dictionary<string, bool> { ["auto-converge"] = true, ["events"] = false });
            JsonElement sent = await server.ReceiveAsync();
            Assert.AreEqual("migrate-set-capabilities", sent.GetProperty("execute").GetString());
            Assert.AreEqual(
                """[{"capability":"auto-converge","state":true},{"capability":"events","state":false}]""",
                sent.GetProperty("arguments").GetProperty("capabilities").GetRawText());
            await server.ReplyAsync(sent.GetProperty("id").GetInt64());
            await capabilities.WaitAsync(Limit);

            Task parameters = client.SetMigrationParametersAsync(new MigrationParameters { MaxBandwidthBytesPerSecond = 8 << 20, DowntimeLimitMilliseconds = 50, CpuThrottleInitialPercent = 30 });
            sent = await server.ReceiveAsync();
            Assert.AreEqual("migrate-set-parameters", sent.GetProperty("execute").GetString());
            Assert.AreEqual("""{"max-bandwidth":8388608,"downtime-limit":50,"cpu-throttle-initial":30}""", sent.GetProperty("arguments").GetRawText());
            await server.ReplyAsync(sent.GetProperty("id").GetInt64());
            await parameters.WaitAsync(Limit);

            Task migrate = client.MigrateAsync("tcp:127.0.0.1:4444");
            sent = await server.ReceiveAsync();
            Assert.AreEqual("migrate", sent.GetProperty("execute").GetString());
            Assert.AreEqual("tcp:127.0.0.1:4444", sent.GetProperty("arguments").GetProperty("uri").GetString());
            await server.ReplyAsync(sent.GetProperty("id").GetInt64());
            await migrate.WaitAsync(Limit);
        }
    }

    [TestMethod]
    public async Task QueryMigrate_ParsesACompletedMigration()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task<QemuMigrationStatus> query = client.QueryMigrateAsync();
            await server.ReplyAsync(await server.ExpectAsync("query-migrate"), """
                {"blocked": false, "status": "completed", "setup-time": 3, "downtime": 42, "total-time": 1500,
                 "ram": {"total": 68288512, "postcopy-requests": 0, "dirty-sync-count": 4, "multifd-bytes": 0,
                         "pages-per-second": 2000, "downtime-bytes": 123, "page-size": 4096, "remaining": 0,
                         "postcopy-bytes": 0, "mbps": 268.4, "transferred": 12345678, "dirty-sync-missed-zero-copy": 0,
                         "precopy-bytes": 1000, "duplicate": 15000, "dirty-pages-rate": 0, "skipped": 0,
                         "normal-bytes": 4096000, "normal": 1000}}
                """.ReplaceLineEndings(" "));
            QemuMigrationStatus status = await query.WaitAsync(Limit);
            Assert.AreEqual("completed", status.Status);
            Assert.AreEqual(1500L, status.TotalTimeMilliseconds);
            Assert.AreEqual(42L, status.DowntimeMilliseconds);
            Assert.IsNull(status.ExpectedDowntimeMilliseconds);
            Assert.AreEqual(3L, status.SetupTimeMilliseconds);
            Assert.IsNull(status.CpuThrottlePercentage);
            Assert.AreEqual(new QemuRamStatus
            {
                TransferredBytes = 12345678,
                RemainingBytes = 0,
                TotalBytes = 68288512,
                DuplicatePages = 15000,
                NormalPages = 1000,
                DirtySyncCount = 4,
                Mbps = 268.4,
                DirtyPagesRate = 0,
            }, status.Ram);
        }
    }

    [TestMethod]
    public async Task QueryMigrate_CompletedBeforeQemuComputedItsFigures_AsksAgainUntilTheyAreIn()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            // QEMU 7.2 answered this between setting the status and computing the times (seen in CI).
            Task<QemuMigrationStatus> query = client.QueryMigrateAsync();
            await server.ReplyAsync(await server.ExpectAsync("query-migrate"), """{"status": "completed", "total-time": 0, "downtime": 0, "setup-time": 1}""");
            await server.ReplyAsync(await server.ExpectAsync("query-migrate"), """{"status": "completed", "total-time": 0, "downtime": 0, "setup-time": 1}""");
            await server.ReplyAsync(await server.ExpectAsync("query-migrate"), """{"status": "completed", "total-time": 231, "downtime": 12, "setup-time": 1}""");
            QemuMigrationStatus status = await query.WaitAsync(Limit);
            Assert.AreEqual(231L, status.TotalTimeMilliseconds);
            Assert.AreEqual(12L, status.DowntimeMilliseconds);
        }
    }

    [TestMethod]
    public void QueryMigrate_BeforeAnyMigration_HasNoFields()
    {
        using JsonDocument empty = JsonDocument.Parse("{}");
        Assert.AreEqual(new QemuMigrationStatus(), QemuMigrationStatus.Parse(empty.RootElement));
    }

    [TestMethod]
    public async Task QueryMigrate_WithXbzrle_ParsesItsCacheFigures()
    {
        (FakeQmpServer server, QmpClient client) = await ConnectAsync();
        await using (server)
        await using (client)
        {
            Task<QemuMigrationStatus> query = client.QueryMigrateAsync();
            await server.ReplyAsync(await server.ExpectAsync("query-migrate"), """
                {"status": "completed", "total-time": 2100, "downtime": 7,
                 "xbzrle-cache": {"cache-size": 268435456, "bytes": 1267200, "pages": 126720, "cache-miss": 25344,
                                  "cache-miss-rate": 0.125, "encoding-rate": 398.5, "overflow": 3}}
                """.ReplaceLineEndings(" "));
            QemuMigrationStatus status = await query.WaitAsync(Limit);
            Assert.AreEqual(new QemuXbzrleStatus
            {
                CacheSizeBytes = 268435456,
                EncodedBytes = 1267200,
                EncodedPages = 126720,
                CacheMisses = 25344,
                CacheMissRate = 0.125,
                EncodingRate = 398.5,
                Overflows = 3,
            }, status.Xbzrle);
            Assert.IsNull(status.Ram);
        }
    }

    [TestMethod]
    public void QueryMigrate_WithoutXbzrle_HasNoXbzrleSection()
    {
        using JsonDocument plain = JsonDocument.Parse("""{"status": "active", "xbzrle-cache": 5}""");
        Assert.IsNull(QemuMigrationStatus.Parse(plain.RootElement).Xbzrle, "a section that is not an object is left out, like ram");
    }
}
