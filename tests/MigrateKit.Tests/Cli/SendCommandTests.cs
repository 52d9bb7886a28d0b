using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Tests.Migration;

namespace MigrateKit.Tests.Cli;

/// <summary><c>migratekit send</c> against destinations that are not what it expects, run as a process.</summary>
[TestClass]
public sealed class SendCommandTests
{
    [TestMethod]
    public async Task APlainHelloThatTheDestinationResets_FailsWithExit4_AndSuggestsTls()
    {
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        int port = ((IPEndPoint)server.LocalEndpoint).Port;
        Task resetting = Task.Run(async () =>
        {
            // As a TLS listener does with a first byte that does not start a handshake.
            using Socket accepted = await server.AcceptSocketAsync();
            await accepted.ReceiveAsync(new byte[1]);
            accepted.LingerState = new LingerOption(true, 0);
        });

        (int exit, string stdout, string stderr) = await Task.Run(() => CliProcess.Run(["send", "--to", $"tcp:127.0.0.1:{port}", "--insecure", "--vm", "hostvm", "--memory", "16MiB"]));
        await resetting.WaitAsync(EngineHarness.Timeout);

        Assert.AreEqual(4, exit, stderr + stdout);
        StringAssert.Contains(stderr, "the destination dropped the connection before answering the Hello: if it runs mutual TLS, give --tls-cert, --tls-key and --tls-ca instead of --insecure.");
    }
}
