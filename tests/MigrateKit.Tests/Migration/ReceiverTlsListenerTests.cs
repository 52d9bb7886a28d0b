using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>A listening receive on mutual TLS, with peers that never finish their handshake.</summary>
[TestClass]
public sealed class ReceiverTlsListenerTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private static readonly X509Certificate2 Authority = MigrationTlsCertificates.CreateAuthority("receiver test CA", Now.AddDays(-1), Now.AddDays(30));

    private static X509Certificate2 Issue(string name) => MigrationTlsCertificates.CreateIssued(Authority, name, Now.AddDays(-1), Now.AddDays(30));

    [TestMethod]
    public async Task PeersThatStallTheirHandshake_DoNotDelayASourceThatCompletesIts()
    {
        // The listener ran each handshake inside its one accept: two idle sockets, each holding it for the
        // handshake timeout, made a source with the right certificate time out its own.
        var stalled = new FakeTimeProvider(DateTimeOffset.UtcNow); // certificates are checked at its time
        var serverTls = new MigrationTlsOptions { Certificate = Issue("destination"), CertificateAuthority = Authority, AllowedNames = ["source"], TimeProvider = stalled };
        var clientTls = new MigrationTlsOptions { Certificate = Issue("source"), CertificateAuthority = Authority, AllowedNames = ["destination"], HandshakeTimeout = TimeSpan.FromSeconds(10) };
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", serverTls, null);
        var targets = new BuiltTargets();
        var receiver = new MigrationReceiver(targets.Create);
        using var stop = new CancellationTokenSource();
        Task<ReceiveResult> receiving = Task.Run(() => receiver.ReceiveAsync(listener, stop.Token));
        var idle = new List<Socket>();
        try
        {
            IPEndPoint at = IPEndPoint.Parse(listener.LocalAddress["tcp:".Length..]);
            for (int i = 0; i < 3; i++)
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(at);
                idle.Add(socket);
            }

            using var vm = new ScriptedVm();
            await using var source = new ScriptedSource(await MigrationConnector.ConnectAsync(listener.LocalAddress, clientTls, null).WaitAsync(EngineHarness.Timeout), vm);
            await source.ReadyAsync();
            await source.SendAsync(w => w.AppendCommit());
            Assert.IsInstanceOfType<AckFrame>(await source.NextAsync());
            await source.SendAsync(w => w.AppendDone());
            await source.DisposeAsync();

            ReceiveResult result = await receiving.WaitAsync(EngineHarness.Timeout);
            Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
            Assert.IsTrue(vm.SameMemory(targets.Started().Single()));
        }
        finally
        {
            idle.ForEach(s => s.Dispose());
            await stop.CancelAsync();
            await Task.WhenAny(receiving);
            targets.DisposeAll();
        }
    }
}
