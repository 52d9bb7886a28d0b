using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>A HostVm migration between two CLI processes over mutual TLS, with the certificates 'certs create' made.</summary>
[TestClass]
public sealed class CliTlsRunTests
{
    [TestInitialize]
    public void RequireWriteTracking() => WriteTrackingRequirement.Require();

    [TestMethod]
    public async Task SendAndReceive_WithCertsCreateCertificates_MigrateOverMutualTls()
    {
        await WithTlsPairAsync(async (port, receiving, send) =>
        {
            (int exit, _, string stderr) = send();
            Assert.AreEqual(0, exit, stderr);
            (int receiveExit, string receiveOut, string receiveErr) = await receiving.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.AreEqual(0, receiveExit, receiveErr);
            StringAssert.Contains(receiveErr, "(mutual TLS)");
            StringAssert.Contains(receiveOut, "received");
        });
    }

    [TestMethod]
    public async Task Receive_RefusesAPeerThatFailsTheHandshake_AndServesTheNextSource()
    {
        await WithTlsPairAsync(async (port, receiving, send) =>
        {
            // A peer that does not speak TLS at all: refused, and receive goes on listening.
            using (var plain = new TcpClient())
            {
                await plain.ConnectAsync(IPAddress.Loopback, port);
                await plain.GetStream().WriteAsync("MKIT not a TLS ClientHello\n"u8.ToArray());
                byte[] buffer = new byte[256];
                try
                {
                    while (await plain.GetStream().ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30)) > 0)
                    {
                    }
                }
                catch (IOException)
                {
                    // Reset by the listener: as much a refusal as a close.
                }
            }

            Assert.IsFalse(receiving.IsCompleted, "receive ended after a peer failed the handshake");
            (int exit, _, string stderr) = send();
            Assert.AreEqual(0, exit, stderr);
            (int receiveExit, _, string receiveErr) = await receiving.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.AreEqual(0, receiveExit, receiveErr);
            StringAssert.Contains(receiveErr, "refused a peer");
            StringAssert.Contains(receiveErr, "still listening on tcp:127.0.0.1:" + port);
        });
    }

    /// <summary>
    /// Makes certificates with 'certs create', starts 'receive' over mutual TLS on a free loopback
    /// port, and hands the test the port, the running receive and a 'send' of a HostVm to it.
    /// </summary>
    private static async Task WithTlsPairAsync(Func<int, Task<(int Exit, string Stdout, string Stderr)>, Func<(int Exit, string Stdout, string Stderr)>, Task> test)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"mk-cli-tls-{Guid.NewGuid():N}");
        try
        {
            Assert.AreEqual(0, CliProcess.Run(["certs", "create", dir]).Exit);
            string Pem(string name) => Path.Combine(dir, name + ".pem");
            int port = FreeLoopbackPort();
            Task<(int Exit, string Stdout, string Stderr)> receiving = Task.Run(() => CliProcess.Run(
                ["receive", "--listen", $"tcp:127.0.0.1:{port}", "--vm", "hostvm", "--tls-cert", Pem("destination"), "--tls-key", Pem("destination-key"), "--tls-ca", Pem("ca"), "--tls-allow", "source", "--verbose", "--verify-passes", "1"],
                TimeSpan.FromMinutes(2)));
            await WaitForListenerAsync(port, receiving);
            await test(port, receiving, () => CliProcess.Run(
                ["send", "--to", $"tcp:127.0.0.1:{port}", "--vm", "hostvm", "--memory", "32MiB", "--workload", "verify", "--hot", "4MiB",
                    "--tls-cert", Pem("source"), "--tls-key", Pem("source-key"), "--tls-ca", Pem("ca"), "--tls-allow", "destination", "--json"],
                TimeSpan.FromMinutes(2)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void DemoWithTls_MigratesOverMutualTlsInOneProcess()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(
            ["demo", "--vm", "hostvm", "--memory", "32MiB", "--workload", "verify", "--hot", "4MiB", "--tls", "--json"],
            TimeSpan.FromMinutes(2));
        Assert.AreEqual(0, exit, stderr);
        StringAssert.Contains(stdout, "\"verified\": true");
    }

    private static int FreeLoopbackPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>
    /// Waits for the port to be in LISTEN state in /proc/net/tcp: a probe connection would be a
    /// peer failing the handshake.
    /// </summary>
    private static async Task WaitForListenerAsync(int port, Task receiving)
    {
        string local = $"0100007F:{port:X4} 00000000:0000 0A";
        var clock = Stopwatch.StartNew();
        while (!File.ReadAllText("/proc/net/tcp").Contains(local, StringComparison.Ordinal))
        {
            Assert.IsFalse(receiving.IsCompleted, "receive ended before it listened");
            Assert.IsLessThan(60.0, clock.Elapsed.TotalSeconds, $"nothing listens on 127.0.0.1:{port}");
            await Task.Delay(50, CancellationToken.None);
        }
    }
}
