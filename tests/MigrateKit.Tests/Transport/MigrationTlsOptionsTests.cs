using System;
using System.IO;
using System.Security.Cryptography.X509Certificates;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class MigrationTlsOptionsTests
{
    [TestMethod]
    public void Defaults_AreDocumentedValues()
    {
        var options = new MigrationTlsOptions();
        Assert.AreEqual(TimeSpan.FromSeconds(10), options.HandshakeTimeout);
        Assert.IsEmpty(options.AllowedNames);
        Assert.IsEmpty(options.PinnedPublicKeys);
        Assert.AreSame(TimeProvider.System, options.TimeProvider);
    }

    [TestMethod]
    [DataRow("Certificate")]
    [DataRow("CertificateAuthority")]
    [DataRow("AllowedNames")]
    [DataRow("PinnedPublicKeys")]
    [DataRow("HandshakeTimeout")]
    public void Validate_NamesTheBadOption(string bad)
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 authority = MigrationTlsCertificates.CreateAuthority("ca", now.AddDays(-1), now.AddDays(1));
        using X509Certificate2 certificate = MigrationTlsCertificates.CreateIssued(authority, "source", now.AddDays(-1), now.AddDays(1));
        var options = new MigrationTlsOptions
        {
            Certificate = bad == "Certificate" ? null : certificate,
            CertificateAuthority = bad == "CertificateAuthority" ? null : authority,
            AllowedNames = bad == "AllowedNames" ? [" "] : ["destination"],
            PinnedPublicKeys = bad == "PinnedPublicKeys" ? ["not a pin"] : [MigrationTlsOptions.ComputePin(certificate)],
            HandshakeTimeout = bad == "HandshakeTimeout" ? TimeSpan.Zero : TimeSpan.FromSeconds(1),
        };
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);
        Assert.AreEqual(bad, ex.ParamName);
    }

    [TestMethod]
    public void FromPemFiles_LoadsWhatWriteTrialWrote()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"mk-certs-{Guid.NewGuid():N}");
        try
        {
            Assert.HasCount(6, MigrationTlsCertificates.WriteTrial(dir, TimeSpan.FromDays(1)));
            MigrationTlsOptions options = MigrationTlsOptions.FromPemFiles(Path.Combine(dir, "source.pem"), Path.Combine(dir, "source-key.pem"), Path.Combine(dir, "ca.pem"), ["destination"]);
            options.Validate();
            Assert.AreEqual("CN=source", options.Certificate!.Subject);
            StringAssert.Matches(options.CertificateAuthority!.Subject, new System.Text.RegularExpressions.Regex(@"^CN=MigrateKit trial CA \d{4}-\d{2}-\d{2} [0-9a-f]{6}$"));
            if (!OperatingSystem.IsWindows())
            {
                Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dir, "destination-key.pem")));
            }

            Assert.ThrowsExactly<IOException>(() => MigrationTlsCertificates.WriteTrial(dir, TimeSpan.FromDays(1)));
            ArgumentException missing = Assert.ThrowsExactly<ArgumentException>(() => MigrationTlsOptions.FromPemFiles(Path.Combine(dir, "nope.pem"), Path.Combine(dir, "source-key.pem"), Path.Combine(dir, "ca.pem")));
            Assert.Contains("nope.pem", missing.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void FromPemFiles_WithFilesSwapped_NamesTheFileAndWhatItHolds()
    {
        // A key path naming a certificate was reported as "Cannot load the certificate from 'source.pem'".
        string dir = Path.Combine(Path.GetTempPath(), $"mk-certs-{Guid.NewGuid():N}");
        try
        {
            MigrationTlsCertificates.WriteTrial(dir, TimeSpan.FromDays(1));
            string cert = Path.Combine(dir, "source.pem"), key = Path.Combine(dir, "source-key.pem"), ca = Path.Combine(dir, "ca.pem");

            ArgumentException keyIsACertificate = Assert.ThrowsExactly<ArgumentException>(() => MigrationTlsOptions.FromPemFiles(cert, cert, ca));
            Assert.AreEqual("keyPath", keyIsACertificate.ParamName);
            StringAssert.StartsWith(keyIsACertificate.Message, $"'{cert}' holds no private key: it holds a certificate.");

            ArgumentException certificateIsAKey = Assert.ThrowsExactly<ArgumentException>(() => MigrationTlsOptions.FromPemFiles(key, key, ca));
            Assert.AreEqual("certificatePath", certificateIsAKey.ParamName);
            StringAssert.StartsWith(certificateIsAKey.Message, $"'{key}' holds no certificate: it holds a private key.");

            Assert.AreEqual("authorityPath", Assert.ThrowsExactly<ArgumentException>(() => MigrationTlsOptions.FromPemFiles(cert, key, key)).ParamName);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void WriteTrial_IntoADirectoryWithOneOfItsFiles_WritesNothing_AndNamesTheFile()
    {
        string dir = Directory.CreateTempSubdirectory("mk-certs-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "destination.pem"), "an operator's own");

            IOException ex = Assert.ThrowsExactly<IOException>(() => MigrationTlsCertificates.WriteTrial(dir, TimeSpan.FromDays(1)));

            Assert.Contains("destination.pem' already exists; nothing was written", ex.Message);
            Assert.AreSequenceEqual(new[] { Path.Combine(dir, "destination.pem") }, Directory.GetFiles(dir));
            string file = Path.Combine(dir, "destination.pem");
            Assert.Contains("is a file, not a directory", Assert.ThrowsExactly<IOException>(() => MigrationTlsCertificates.WriteTrial(file, TimeSpan.FromDays(1))).Message);
            Assert.ThrowsExactly<ArgumentException>(() => MigrationTlsCertificates.WriteTrial("", TimeSpan.FromDays(1)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
