using System;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

/// <summary>The socket options every TCP migration connection carries, read back from real loopback sockets.</summary>
[TestClass]
public sealed class SocketMigrationConnectionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private static readonly X509Certificate2 Authority = MigrationTlsCertificates.CreateAuthority("test CA", Now.AddDays(-1), Now.AddDays(30));

    [TestMethod]
    [DataRow(false, 30)]
    [DataRow(true, 30)]
    [DataRow(false, 7)]
    public async Task BothEndsOfATcpConnection_FindADeadPeerWithinThePeerTimeout(bool tls, int seconds)
    {
        var options = new PageStreamOptions { PeerTimeout = TimeSpan.FromSeconds(seconds) };
        await using MigrationListener listener = tls
            ? MigrationListener.Listen("tcp:127.0.0.1:0", Tls("destination", "source"), options)
            : MigrationListener.Listen("tcp:127.0.0.1:0", options);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection connector = await (tls
            ? MigrationConnector.ConnectAsync(listener.LocalAddress, Tls("source", "destination"), options)
            : MigrationConnector.ConnectAsync(listener.LocalAddress, options)).WaitAsync(Timeout);
        await using IMigrationConnection accepted = await accepting.WaitAsync(Timeout);

        foreach ((string end, IMigrationConnection connection) in new[] { ("connector", connector), ("accepted", accepted) })
        {
            Socket socket = ((SocketMigrationConnection)connection).Socket;
            int idle = (int)socket.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime)!;
            int interval = (int)socket.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval)!;
            int probes = (int)socket.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount)!;
            Assert.AreEqual(1, (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!, $"{end}: SO_KEEPALIVE");
            Assert.AreEqual(seconds / 2, idle, $"{end}: TCP_KEEPIDLE");
            Assert.AreEqual(SocketMigrationConnection.KeepAliveProbes, probes, $"{end}: TCP_KEEPCNT");
            Assert.IsLessThanOrEqualTo(seconds, idle + (interval * probes), $"{end}: keepalive gives up within the peer timeout");
            Assert.IsGreaterThanOrEqualTo(seconds - SocketMigrationConnection.KeepAliveProbes, idle + (interval * probes), $"{end}: and not much sooner");
            Assert.IsTrue(socket.NoDelay, $"{end}: TCP_NODELAY");
            if (OperatingSystem.IsLinux())
            {
                byte[] userTimeout = new byte[sizeof(int)];
                Assert.AreEqual(sizeof(int), socket.GetRawSocketOption(SocketMigrationConnection.IpProtocolTcp, SocketMigrationConnection.TcpUserTimeout, userTimeout));
                Assert.AreEqual(seconds * 1000, BinaryPrimitives.ReadInt32LittleEndian(userTimeout), $"{end}: TCP_USER_TIMEOUT");
            }
        }
    }

    [TestMethod]
    public async Task ByDefault_ThePeerTimeoutIs30Seconds()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection connector = await MigrationConnector.ConnectAsync(listener.LocalAddress).WaitAsync(Timeout);
        await using IMigrationConnection accepted = await accepting.WaitAsync(Timeout);

        Socket socket = ((SocketMigrationConnection)accepted).Socket;
        Assert.AreEqual(15, (int)socket.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime)!);
        Assert.AreEqual(5, (int)socket.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval)!);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public async Task BytesSent_CountsWhatTheSocketTook_WithOrWithoutTls(bool tls)
    {
        await using MigrationListener listener = tls
            ? MigrationListener.Listen("tcp:127.0.0.1:0", Tls("destination", "source"), null)
            : MigrationListener.Listen("tcp:127.0.0.1:0");
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection connector = await (tls
            ? MigrationConnector.ConnectAsync(listener.LocalAddress, Tls("source", "destination"), null)
            : MigrationConnector.ConnectAsync(listener.LocalAddress)).WaitAsync(Timeout);
        await using IMigrationConnection accepted = await accepting.WaitAsync(Timeout);
        var connection = (SocketMigrationConnection)connector;
        Assert.AreEqual(0L, connection.BytesSent);

        using var writer = new PageStreamWriter(connector.Output);
        writer.AppendDeviceState(new byte[100_000]);
        await writer.FlushAsync();

        Assert.IsTrue(SpinWait.SpinUntil(() => connection.BytesSent == writer.BytesWritten, Timeout), $"{connection.BytesSent} of {writer.BytesWritten} bytes counted");
    }

    [TestMethod]
    public async Task ASmallFlush_IsOnTheSocketWhenItReturns_WhileTheSendLoopIsIdle()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection connector = await MigrationConnector.ConnectAsync(listener.LocalAddress).WaitAsync(Timeout);
        await using IMigrationConnection accepted = await accepting.WaitAsync(Timeout);
        var connection = (SocketMigrationConnection)connector;
        using var writer = new PageStreamWriter(connector.Output);

        // The first frame starts the send loop on a pool thread. The peer may have it before that
        // thread has counted it (a busy host preempts it in between): once it has, and a moment
        // after, the loop waits for more.
        writer.AppendCommit();
        await writer.FlushAsync();
        ReadResult first = await accepted.Input.ReadAtLeastAsync((int)writer.BytesWritten).AsTask().WaitAsync(Timeout);
        accepted.Input.AdvanceTo(first.Buffer.End);
        Assert.IsTrue(SpinWait.SpinUntil(() => connection.BytesSent == writer.BytesWritten, Timeout), "the first frame is counted as sent");
        await Task.Delay(50);

        // A switchover's frames leave on the flushing thread: no pool thread has to wake for them.
        for (int i = 0; i < 20; i++)
        {
            writer.AppendReady(new DestinationReady(TimeSpan.FromMilliseconds(i)));
            await writer.FlushAsync();
            Assert.AreEqual(writer.BytesWritten, connection.BytesSent, $"flush {i}");
        }
    }

    [TestMethod]
    public async Task DisposingRightAfterTheTlsHandshake_ClosesBothEndsWithoutThrowing()
    {
        // The server may still be sending TLS 1.3 session tickets when both ends close, and each
        // end's receive pump is decrypting while its own dispose runs. A close_notify sent then
        // raced the pump inside OpenSSL and crashed the process on a corrupted heap, in about
        // half of the runs of 500 rounds; 1,000 rounds take some 6-8 s.
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", Tls("destination", "source"), null);
        for (int i = 0; i < 1000; i++)
        {
            Task<IMigrationConnection> accepting = listener.AcceptAsync();
            IMigrationConnection connector = await MigrationConnector.ConnectAsync(listener.LocalAddress, Tls("source", "destination"), null).WaitAsync(Timeout);
            IMigrationConnection accepted = await accepting.WaitAsync(Timeout);
            await Task.WhenAll(connector.DisposeAsync().AsTask(), accepted.DisposeAsync().AsTask()).WaitAsync(Timeout);
        }
    }

    private static MigrationTlsOptions Tls(string name, string peer) => new()
    {
        Certificate = MigrationTlsCertificates.CreateIssued(Authority, name, Now.AddDays(-1), Now.AddDays(30), "localhost"),
        CertificateAuthority = Authority,
        AllowedNames = [peer],
    };
}
