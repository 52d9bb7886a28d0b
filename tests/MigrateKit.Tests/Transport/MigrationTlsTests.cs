using System;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

/// <summary>Mutual TLS over real loopback sockets: what is accepted, what is refused and how it says so.</summary>
[TestClass]
public sealed class MigrationTlsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private static readonly X509Certificate2 Authority = MigrationTlsCertificates.CreateAuthority("test CA", Now.AddDays(-1), Now.AddDays(30));
    private static readonly X509Certificate2 OtherAuthority = MigrationTlsCertificates.CreateAuthority("other CA", Now.AddDays(-1), Now.AddDays(30));
    private static readonly X509Certificate2 Source = Issue(Authority, "source");
    private static readonly X509Certificate2 Destination = Issue(Authority, "destination");

    [TestMethod]
    public async Task MutualTls_FramesRoundTripBothWays()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", Options(Destination, allowed: "SOURCE"), null);
        Assert.IsTrue(listener.IsTls);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection client = await MigrationConnector.ConnectAsync(listener.LocalAddress, Options(Source, allowed: "destination"), null).WaitAsync(Timeout);
        await using IMigrationConnection server = await accepting.WaitAsync(Timeout);
        await MigrationConnectionTests.ExchangeAsync(client, server);
    }

    [TestMethod]
    public async Task SourceFromAnotherCa_IsRefusedByTheDestination()
    {
        MigrationTlsException refused = await AcceptFailureAsync(Options(Destination), Options(Issue(OtherAuthority, "source")));
        Assert.AreEqual(MigrationTlsFailure.UntrustedCertificate, refused.Failure);
        Assert.Contains("not signed by the trusted CA 'CN=test CA'", refused.Message);
    }

    [TestMethod]
    public async Task DestinationFromAnotherCa_IsRefusedByTheSource()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", Options(Issue(OtherAuthority, "destination")), null);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        MigrationTlsException refused = await Assert.ThrowsExactlyAsync<MigrationTlsException>(() => MigrationConnector.ConnectAsync(listener.LocalAddress, Options(Source), null).WaitAsync(Timeout));
        Assert.AreEqual(MigrationTlsFailure.UntrustedCertificate, refused.Failure);
        Assert.Contains("'CN=destination'", refused.Message);
        await AssertEndsAsync(accepting);
    }

    [TestMethod]
    public async Task ExpiredCertificate_IsRefusedSayingSo()
    {
        X509Certificate2 expired = MigrationTlsCertificates.CreateIssued(Authority, "source", Now.AddDays(-1), Now.AddMinutes(-1));
        MigrationTlsException refused = await AcceptFailureAsync(Options(Destination), Options(expired));
        Assert.AreEqual(MigrationTlsFailure.CertificateNotTimeValid, refused.Failure);
        Assert.Contains("expired or not yet valid", refused.Message);
    }

    [TestMethod]
    public async Task NameNotAllowed_IsRefusedNamingBothLists()
    {
        MigrationTlsException refused = await AcceptFailureAsync(Options(Destination, allowed: "source"), Options(Issue(Authority, "intruder")));
        Assert.AreEqual(MigrationTlsFailure.NameNotAllowed, refused.Failure);
        Assert.Contains("names intruder", refused.Message);
        Assert.Contains("allowed: source", refused.Message);
    }

    [TestMethod]
    public async Task PinnedKey_AcceptsThatKeyAndRefusesAnother()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", Options(Destination), null);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        var pinned = new MigrationTlsOptions { Certificate = Source, CertificateAuthority = Authority, PinnedPublicKeys = [MigrationTlsOptions.ComputePin(Destination)] };
        await using (await MigrationConnector.ConnectAsync(listener.LocalAddress, pinned, null).WaitAsync(Timeout))
        {
            await (await accepting.WaitAsync(Timeout)).DisposeAsync();
        }

        accepting = listener.AcceptAsync();
        var wrongPin = new MigrationTlsOptions { Certificate = Source, CertificateAuthority = Authority, PinnedPublicKeys = [MigrationTlsOptions.ComputePin(Source)] };
        MigrationTlsException refused = await Assert.ThrowsExactlyAsync<MigrationTlsException>(() => MigrationConnector.ConnectAsync(listener.LocalAddress, wrongPin, null).WaitAsync(Timeout));
        Assert.AreEqual(MigrationTlsFailure.PinMismatch, refused.Failure);
        Assert.Contains(MigrationTlsOptions.ComputePin(Destination), refused.Message);
        await AssertEndsAsync(accepting);
    }

    [TestMethod]
    public async Task ClientWithoutCertificate_IsRefused()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", Options(Destination), null);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(System.Net.IPEndPoint.Parse(listener.LocalAddress["tcp:".Length..]));
        await using var ssl = new SslStream(new NetworkStream(socket), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        Task handshake = ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "destination", EnabledSslProtocols = SslProtocols.Tls13 });

        MigrationTlsException refused = await Assert.ThrowsExactlyAsync<MigrationTlsException>(() => accepting.WaitAsync(Timeout));
        Assert.AreEqual(MigrationTlsFailure.NoCertificate, refused.Failure);
        Assert.Contains("presented no certificate", refused.Message);
        await Task.WhenAny(handshake, Task.Delay(Timeout));
    }

    [TestMethod]
    public async Task PlainPeerAgainstATlsListener_IsRefusedAsNotTls()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", Options(Destination), null);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection plain = await MigrationConnector.ConnectAsync(listener.LocalAddress).WaitAsync(Timeout);
        using (var writer = new PageStreamWriter(plain.Output))
        {
            writer.AppendComplete();
            await writer.FlushAsync();
        }

        MigrationTlsException refused = await Assert.ThrowsExactlyAsync<MigrationTlsException>(() => accepting.WaitAsync(Timeout));
        Assert.AreEqual(MigrationTlsFailure.NotTls, refused.Failure, refused.ToString());
        Assert.Contains("not speaking TLS", refused.Message);
    }

    [TestMethod]
    public async Task TlsPeerAgainstAPlainListener_FailsTheHandshakeWithoutHanging()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        Task<IMigrationConnection> connecting = MigrationConnector.ConnectAsync(listener.LocalAddress, Options(Source), null);
        await using (IMigrationConnection server = await accepting.WaitAsync(Timeout))
        {
            // The plain side reads the ClientHello as a frame, finds it malformed and hangs up.
            var reader = new PageStreamReader(server.Input);
            await Assert.ThrowsAsync<Exception>(async () => await reader.ReadAsync(new RecordingHandler()).AsTask().WaitAsync(Timeout));
        }

        MigrationTlsException refused = await Assert.ThrowsExactlyAsync<MigrationTlsException>(() => connecting.WaitAsync(Timeout));
        Assert.AreEqual(MigrationTlsFailure.HandshakeFailed, refused.Failure);
        Assert.Contains("TLS handshake failed", refused.Message);
    }

    [TestMethod]
    public async Task SilentPeer_IsRefusedWhenTheHandshakeTimeoutPasses()
    {
        var clock = new FakeTimeProvider();
        var tls = new MigrationTlsOptions { Certificate = Destination, CertificateAuthority = Authority, HandshakeTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock };
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", tls, null);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection silent = await MigrationConnector.ConnectAsync(listener.LocalAddress).WaitAsync(Timeout);

        // The timer starts once the socket is accepted; keep moving the fake clock until it fires.
        for (int i = 0; i < 2000 && !accepting.IsCompleted; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(5);
        }

        MigrationTlsException refused = await Assert.ThrowsExactlyAsync<MigrationTlsException>(() => accepting.WaitAsync(Timeout));
        Assert.AreEqual(MigrationTlsFailure.Timeout, refused.Failure);
        Assert.Contains("no TLS handshake within 10 s", refused.Message);
    }

    [TestMethod]
    public async Task PlainTcp_IsLimitedToLoopbackUnlessChosenExplicitly()
    {
        MigrationConnectionException ex = Assert.ThrowsExactly<MigrationConnectionException>(() => MigrationListener.Listen("tcp:0.0.0.0:0"));
        Assert.Contains("loopback", ex.Message);

        // The explicit choice works (here on loopback, as tests bind nothing else).
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", tls: null, null);
        Assert.IsFalse(listener.IsTls);
    }

    [TestMethod]
    public void InvalidOptions_AreRejectedUpFront()
    {
        Assert.ThrowsExactly<ArgumentException>(() => MigrationListener.Listen("tcp:127.0.0.1:0", new MigrationTlsOptions { CertificateAuthority = Authority }, null));
        Assert.ThrowsExactlyAsync<ArgumentException>(() => MigrationConnector.ConnectAsync("tcp:127.0.0.1:1", new MigrationTlsOptions { Certificate = Source }, null));
    }

    /// <summary>
    /// A client checks the server's certificate after its own TLS 1.3 handshake is done, so the
    /// refused destination sees a completed handshake and then the connection end, not a hang.
    /// </summary>
    private static async Task AssertEndsAsync(Task<IMigrationConnection> accepting)
    {
        await using IMigrationConnection server = await accepting.WaitAsync(Timeout);
        try
        {
            System.IO.Pipelines.ReadResult read = await server.Input.ReadAsync().AsTask().WaitAsync(Timeout);
            Assert.IsTrue(read.IsCompleted && read.Buffer.IsEmpty, "the refused connection carried data");
        }
        catch (System.IO.IOException)
        {
            // Ended by a TLS alert rather than a clean close.
        }
    }

    internal static X509Certificate2 Issue(X509Certificate2 authority, string name) =>
        MigrationTlsCertificates.CreateIssued(authority, name, Now.AddDays(-1), Now.AddDays(30), "localhost");

    private static MigrationTlsOptions Options(X509Certificate2 certificate, params string[] allowed) =>
        new() { Certificate = certificate, CertificateAuthority = Authority, AllowedNames = allowed };

    /// <summary>Connects with <paramref name="client"/> to a listener with <paramref name="server"/> and returns why the listener refused it.</summary>
    private static async Task<MigrationTlsException> AcceptFailureAsync(MigrationTlsOptions server, MigrationTlsOptions client)
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", server, null);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        Task<IMigrationConnection> connecting = MigrationConnector.ConnectAsync(listener.LocalAddress, client, null);
        MigrationTlsException refused = await Assert.ThrowsExactlyAsync<MigrationTlsException>(() => accepting.WaitAsync(Timeout));

        // TLS 1.3 lets the client finish before the server checks its certificate: it either fails
        // the handshake or sees the connection end; it never hangs.
        try
        {
            await using IMigrationConnection connection = await connecting.WaitAsync(Timeout);
            await connection.Input.ReadAsync().AsTask().WaitAsync(Timeout);
        }
        catch (System.IO.IOException)
        {
            // Refused during the handshake.
        }

        return refused;
    }
}
