using System;
using System.Collections.Generic;
using System.IO;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MigrateKit.Transport;

/// <summary>
/// Mutual TLS for a TCP migration connection: TLS 1.3 only, both sides present a certificate,
/// and each side accepts the other's only if it chains to <see cref="CertificateAuthority"/>
/// (that CA alone, not the system store), is within its validity period and, when given,
/// carries an allowed name and a pinned public key.
/// </summary>
/// <remarks>
/// The CA is the trust anchor: with no <see cref="AllowedNames"/> and no
/// <see cref="PinnedPublicKeys"/>, any certificate that CA issued is accepted. Unix domain
/// sockets are always plain (file permissions guard them).
/// </remarks>
public sealed class MigrationTlsOptions
{
    /// <summary>
    /// This side's certificate, with its private key. Required.
    /// </summary>
    /// <value>The default is <see langword="null"/>, which <see cref="Validate"/> rejects.</value>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>
    /// The CA the peer's certificate must chain to; the only root trusted.
    /// </summary>
    /// <value>The default is <see langword="null"/>, which <see cref="Validate"/> rejects.</value>
    public X509Certificate2? CertificateAuthority { get; init; }

    /// <summary>
    /// Names the peer's certificate must carry (as a DNS subject alternative name or the
    /// subject's common name, compared without regard to case); empty accepts any name.
    /// </summary>
    /// <value>The default is empty: any certificate the CA issued.</value>
    public IReadOnlyList<string> AllowedNames { get; init; } = [];

    /// <summary>
    /// SHA-256 digests of the subject public key info the peer's certificate may carry, in
    /// base64 (as <see cref="ComputePin"/> gives them); empty accepts any key.
    /// </summary>
    /// <value>The default is empty: no pinning.</value>
    public IReadOnlyList<string> PinnedPublicKeys { get; init; } = [];

    /// <summary>
    /// How long the TLS handshake may take before the connection is refused, so a silent peer
    /// cannot hold a connect or an accept forever.
    /// </summary>
    /// <value>The default is 10 seconds.</value>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The clock for the handshake timeout and for checking certificate validity periods.
    /// </summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Loads the options from PEM files, as <c>migratekit certs create</c> writes them.
    /// </summary>
    /// <param name="certificatePath">This side's certificate.</param>
    /// <param name="keyPath">Its private key (PKCS#8, PKCS#1 or SEC1 PEM).</param>
    /// <param name="authorityPath">The CA certificate to trust.</param>
    /// <param name="allowedNames">Names the peer's certificate must carry; <see langword="null"/> or empty for any.</param>
    /// <exception cref="ArgumentException">A file is missing or is not the PEM it should be.</exception>
    public static MigrationTlsOptions FromPemFiles(string certificatePath, string keyPath, string authorityPath, IReadOnlyList<string>? allowedNames = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(certificatePath);
        ArgumentException.ThrowIfNullOrWhiteSpace(keyPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(authorityPath);
        // Each file is checked for what it must hold first: a key path that names a certificate was
        // reported as a certificate that cannot be loaded, blaming the other file.
        Holds(certificatePath, "-----BEGIN CERTIFICATE-----", "certificate", nameof(certificatePath));
        Holds(keyPath, "PRIVATE KEY-----", "private key", nameof(keyPath));
        Holds(authorityPath, "-----BEGIN CERTIFICATE-----", "CA certificate", nameof(authorityPath));
        X509Certificate2 certificate = Load(certificatePath, "certificate", () => X509Certificate2.CreateFromPemFile(certificatePath, keyPath));
        X509Certificate2 authority = Load(authorityPath, "CA certificate", () => X509Certificate2.CreateFromPem(File.ReadAllText(authorityPath)));
        return new MigrationTlsOptions { Certificate = certificate, CertificateAuthority = authority, AllowedNames = allowedNames ?? [] };
    }

    /// <summary>The pin of a certificate's public key: base64 of the SHA-256 of its subject public key info.</summary>
    public static string ComputePin(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Convert.ToBase64String(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));
    }

    /// <summary>Checks the options and throws an <see cref="ArgumentException"/> naming the first bad one.</summary>
    public void Validate()
    {
        if (Certificate is null || !Certificate.HasPrivateKey)
        {
            throw new ArgumentException("Certificate must be set and include its private key.", nameof(Certificate));
        }

        if (CertificateAuthority is null)
        {
            throw new ArgumentException("CertificateAuthority must be set: it is the only CA the peer's certificate may chain to.", nameof(CertificateAuthority));
        }

        ArgumentNullException.ThrowIfNull(AllowedNames);
        foreach (string name in AllowedNames)
        {
            if (string.IsNullOrWhiteSpace(name))
            {
                throw new ArgumentException("AllowedNames may not contain an empty name.", nameof(AllowedNames));
            }
        }

        ArgumentNullException.ThrowIfNull(PinnedPublicKeys);
        Span<byte> digest = stackalloc byte[48];
        foreach (string pin in PinnedPublicKeys)
        {
            if (pin is null || !Convert.TryFromBase64String(pin, digest, out int length) || length != SHA256.HashSizeInBytes)
            {
                throw new ArgumentException($"PinnedPublicKeys: '{pin}' is not the base64 of a SHA-256 digest (44 characters, as ComputePin gives).", nameof(PinnedPublicKeys));
            }
        }

        if (HandshakeTimeout <= TimeSpan.Zero || HandshakeTimeout == System.Threading.Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentException($"HandshakeTimeout must be positive and finite (got {HandshakeTimeout}).", nameof(HandshakeTimeout));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
    }

    private static void Holds(string path, string marker, string what, string paramName)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"Cannot read the {what} from '{path}': {ex.Message}", paramName, ex);
        }

        if (!text.Contains(marker, StringComparison.Ordinal))
        {
            string instead = text.Contains("PRIVATE KEY-----", StringComparison.Ordinal) ? ": it holds a private key"
                : text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal) ? ": it holds a certificate"
                : " in PEM form";
            throw new ArgumentException($"'{path}' holds no {what}{instead}.", paramName);
        }
    }

    private static X509Certificate2 Load(string path, string what, Func<X509Certificate2> load)
    {
        try
        {
            return load();
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"Cannot load the {what} from '{path}': {ex.Message}", nameof(path), ex);
        }
    }
}
