using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MigrateKit.Transport;

/// <summary>
/// Makes a small private CA and the certificates it issues, for trying mutual TLS out and for
/// tests. A deployment should issue certificates from its own PKI, with keys that never leave
/// the hosts that use them.
/// </summary>
public static class MigrationTlsCertificates
{
    /// <summary>Creates a self-signed CA certificate (ECDSA P-256) with its private key.</summary>
    /// <param name="name">The CA's common name.</param>
    /// <param name="notBefore">Start of validity.</param>
    /// <param name="notAfter">End of validity.</param>
    public static X509Certificate2 CreateAuthority(string name, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        return request.CreateSelfSigned(notBefore, notAfter);
    }

    /// <summary>
    /// Creates a certificate (ECDSA P-256, with its private key) issued by <paramref name="authority"/>,
    /// usable by either side of a migration: its common name is <paramref name="name"/> and its DNS
    /// names are <paramref name="name"/> plus <paramref name="extraDnsNames"/>.
    /// </summary>
    /// <param name="authority">The issuing CA, with its private key.</param>
    /// <param name="name">The common name and first DNS name (<c>source</c>, <c>destination</c>).</param>
    /// <param name="notBefore">Start of validity.</param>
    /// <param name="notAfter">End of validity; clamped to the CA's.</param>
    /// <param name="extraDnsNames">More DNS names, such as <c>localhost</c>.</param>
    public static X509Certificate2 CreateIssued(X509Certificate2 authority, string name, DateTimeOffset notBefore, DateTimeOffset notAfter, params IReadOnlyList<string> extraDnsNames)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        foreach (string extra in extraDnsNames)
        {
            names.AddDnsName(extra);
        }

        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        DateTimeOffset end = notAfter < authority.NotAfter ? notAfter : new DateTimeOffset(authority.NotAfter);
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using X509Certificate2 issued = request.Create(authority, notBefore, end, serial);
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>
    /// Writes <c>ca.pem</c> (the CA certificate, the file for <c>--tls-ca</c>), <c>ca-key.pem</c>,
    /// and <c>source.pem</c>/<c>source-key.pem</c>, <c>destination.pem</c>/<c>destination-key.pem</c>
    /// valid for <paramref name="lifetime"/> from now, named <c>source</c> / <c>destination</c> and
    /// <c>localhost</c>. Key files are created readable by their owner only.
    /// </summary>
    /// <param name="directory">Created if missing.</param>
    /// <param name="lifetime">How long the certificates are valid.</param>
    /// <param name="timeProvider">The clock for the validity period; <see langword="null"/> for the system clock.</param>
    /// <returns>The paths written.</returns>
    /// <exception cref="IOException">One of the six files exists already (then none is written), the directory is a file, or it cannot be written.</exception>
    /// <exception cref="ArgumentException"><paramref name="directory"/> is empty.</exception>
    public static IReadOnlyList<string> WriteTrial(string directory, TimeSpan lifetime, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lifetime, TimeSpan.Zero);
        DateTimeOffset now = (timeProvider ?? TimeProvider.System).GetUtcNow();
        if (File.Exists(directory))
        {
            throw new IOException($"{directory} is a file, not a directory.");
        }

        // All six names are checked before any is written: a set of files from two runs would not match.
        if (new[] { "ca", "source", "destination" }.SelectMany(s => new[] { s + ".pem", s + "-key.pem" }).Select(f => Path.Combine(directory, f)).FirstOrDefault(File.Exists) is { } existing)
        {
            throw new IOException($"The file '{existing}' already exists; nothing was written.");
        }

        Directory.CreateDirectory(directory);
        var written = new List<string>();
        // Each trial CA has a name of its own, so "not signed by the trusted CA" names two different ones.
        using X509Certificate2 authority = CreateAuthority(string.Create(CultureInfo.InvariantCulture, $"MigrateKit trial CA {now:yyyy-MM-dd} {Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}"), now.AddMinutes(-5), now + lifetime);
        Write(directory, "ca", authority, written);
        foreach (string side in new[] { "source", "destination" })
        {
            using X509Certificate2 issued = CreateIssued(authority, side, now.AddMinutes(-5), now + lifetime, "localhost");
            Write(directory, side, issued, written);
        }

        return written;
    }

    private static void Write(string directory, string stem, X509Certificate2 certificate, List<string> written)
    {
        string certificatePath = Path.Combine(directory, stem + ".pem");
        string keyPath = Path.Combine(directory, stem + "-key.pem");
        using ECDsa key = certificate.GetECDsaPrivateKey()!;
        WriteNew(keyPath, key.ExportPkcs8PrivateKeyPem(), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        WriteNew(certificatePath, certificate.ExportCertificatePem(), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        written.Add(certificatePath);
        written.Add(keyPath);
    }

    private static void WriteNew(string path, string pem, UnixFileMode mode)
    {
        // CreateNew: never overwrite an operator's existing key or certificate.
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode;
        }

        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(pem);
        writer.Write('\n');
    }
}
