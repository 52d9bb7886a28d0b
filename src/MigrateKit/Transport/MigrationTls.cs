using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.Transport;

/// <summary>
/// The mutual-TLS handshake of a migration connection and the check of the peer's certificate
/// against <see cref="MigrationTlsOptions"/>. The system trust store plays no part: the chain
/// is built with the operator's CA as its only root.
/// </summary>
internal static class MigrationTls
{
    /// <summary>The first byte of a TLS record that carries a handshake message.</summary>
    private const byte HandshakeRecord = 0x16;

    /// <summary>
    /// Runs the handshake over <paramref name="transport"/> (on <paramref name="socket"/>); the
    /// stream it returns owns nothing but the TLS state.
    /// </summary>
    /// <exception cref="MigrationTlsException">The handshake failed, timed out, or the peer was refused.</exception>
    public static async Task<SslStream> AuthenticateAsync(Socket socket, CoalescingSocketStream transport, string address, bool asServer, MigrationTlsOptions tls, CancellationToken cancellationToken)
    {
        var peer = new PeerCheck(tls);
        var stream = new SslStream(transport, leaveInnerStreamOpen: false, peer.Validate);
        using var timeout = new CancellationTokenSource(tls.HandshakeTimeout, tls.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            if (asServer)
            {
                await ExpectTlsAsync(socket, address, linked.Token).ConfigureAwait(false);
                await stream.AuthenticateAsServerAsync(ServerOptions(tls), linked.Token).ConfigureAwait(false);
            }
            else
            {
                await stream.AuthenticateAsClientAsync(ClientOptions(tls, address), linked.Token).ConfigureAwait(false);
            }

            return stream;
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw new MigrationTlsException(address, MigrationTlsFailure.Timeout, $"no TLS handshake within {tls.HandshakeTimeout.TotalSeconds:0.###} s", ex);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException && ex is not MigrationTlsException)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw peer.Refusal is { } refusal
                ? new MigrationTlsException(address, refusal.Failure, refusal.Message, ex)
                : new MigrationTlsException(address, MigrationTlsFailure.HandshakeFailed, $"the TLS handshake failed ({ex.Message}); is the peer using TLS 1.3 with a certificate?", ex);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Peeks at the client's first byte: a peer writing plain frames gets a refusal that says so,
    /// rather than the TLS library's "corrupted frame".
    /// </summary>
    private static async Task ExpectTlsAsync(Socket socket, string address, CancellationToken cancellationToken)
    {
        byte[] first = new byte[1];
        int read = await socket.ReceiveAsync(first, SocketFlags.Peek, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            throw new MigrationTlsException(address, MigrationTlsFailure.NotTls, "the peer closed the connection before a TLS handshake");
        }

        if (first[0] != HandshakeRecord)
        {
            throw new MigrationTlsException(address, MigrationTlsFailure.NotTls, $"the peer is not speaking TLS (its first byte is 0x{first[0]:X2}; a TLS handshake starts with 0x{HandshakeRecord:X2}); is it connecting in plain text?");
        }
    }

    private static SslServerAuthenticationOptions ServerOptions(MigrationTlsOptions tls) => new()
    {
        ServerCertificateContext = SslStreamCertificateContext.Create(tls.Certificate!, additionalCertificates: null, offline: true),
        ClientCertificateRequired = true,
        EnabledSslProtocols = SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
    };

    private static SslClientAuthenticationOptions ClientOptions(MigrationTlsOptions tls, string address) => new()
    {
        // The name only goes into SNI: the peer is checked against the CA, names and pins below.
        TargetHost = TargetHost(address),
        ClientCertificateContext = SslStreamCertificateContext.Create(tls.Certificate!, additionalCertificates: null, offline: true),
        EnabledSslProtocols = SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
    };

    private static string TargetHost(string address)
    {
        string rest = address.StartsWith("tcp:", StringComparison.Ordinal) ? address[4..] : address;
        int colon = rest.LastIndexOf(':');
        return (colon > 0 ? rest[..colon] : rest).Trim('[', ']');
    }

    /// <summary>Decides on the peer's certificate and keeps the reason for a refusal.</summary>
    private sealed class PeerCheck(MigrationTlsOptions tls)
    {
        public (MigrationTlsFailure Failure, string Message)? Refusal { get; private set; }

        public bool Validate(object sender, X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
        {
            Refusal = certificate is null
                ? (MigrationTlsFailure.NoCertificate, "the peer presented no certificate (mutual TLS requires one on both sides)")
                : Check(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            return Refusal is null;
        }

        private (MigrationTlsFailure, string)? Check(X509Certificate2 certificate)
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(tls.CertificateAuthority!);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.VerificationTime = tls.TimeProvider.GetLocalNow().DateTime;
            chain.ChainPolicy.VerificationTimeIgnored = false;
            string subject = certificate.Subject;
            if (!chain.Build(certificate))
            {
                X509ChainStatusFlags flags = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (all, s) => all | s.Status);
                if ((flags & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain | X509ChainStatusFlags.NotSignatureValid)) != 0)
                {
                    return (MigrationTlsFailure.UntrustedCertificate, $"the peer's certificate '{subject}' (issued by '{certificate.Issuer}') is not signed by the trusted CA '{tls.CertificateAuthority!.Subject}'");
                }

                if ((flags & X509ChainStatusFlags.NotTimeValid) != 0)
                {
                    return (MigrationTlsFailure.CertificateNotTimeValid, $"the peer's certificate '{subject}' is expired or not yet valid (valid from {certificate.NotBefore.ToUniversalTime():u} to {certificate.NotAfter.ToUniversalTime():u})");
                }

                string statuses = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()));
                return (MigrationTlsFailure.UntrustedCertificate, $"the peer's certificate '{subject}' does not validate against the trusted CA: {statuses}");
            }

            if (tls.AllowedNames.Count > 0)
            {
                List<string> names = NamesOf(certificate);
                if (!names.Any(n => tls.AllowedNames.Contains(n, StringComparer.OrdinalIgnoreCase)))
                {
                    return (MigrationTlsFailure.NameNotAllowed, $"the peer's certificate names {string.Join(", ", names)}; none is allowed (allowed: {string.Join(", ", tls.AllowedNames)})");
                }
            }

            if (tls.PinnedPublicKeys.Count > 0)
            {
                string pin = MigrationTlsOptions.ComputePin(certificate);
                if (!tls.PinnedPublicKeys.Contains(pin, StringComparer.Ordinal))
                {
                    return (MigrationTlsFailure.PinMismatch, $"the peer's public key (sha256 pin {pin}) is not one of the {tls.PinnedPublicKeys.Count} pinned keys");
                }
            }

            return null;
        }

        /// <summary>The DNS subject alternative names, then the common name.</summary>
        private static List<string> NamesOf(X509Certificate2 certificate)
        {
            var names = new List<string>();
            foreach (X509Extension extension in certificate.Extensions)
            {
                if (extension.Oid?.Value == "2.5.29.17")
                {
                    names.AddRange(new X509SubjectAlternativeNameExtension(extension.RawData).EnumerateDnsNames());
                }
            }

            string common = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
            if (common.Length > 0)
            {
                names.Add(common);
            }

            return names;
        }
    }
}
