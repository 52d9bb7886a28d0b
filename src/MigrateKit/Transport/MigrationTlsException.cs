using System;

namespace MigrateKit.Transport;

/// <summary>What made a TLS handshake fail.</summary>
public enum MigrationTlsFailure
{
    /// <summary>The handshake failed for a reason TLS reported (see the message and inner exception).</summary>
    HandshakeFailed,

    /// <summary>The peer sent bytes that are not a TLS handshake, or closed before one.</summary>
    NotTls,

    /// <summary>The handshake did not finish within <see cref="MigrationTlsOptions.HandshakeTimeout"/>.</summary>
    Timeout,

    /// <summary>The peer presented no certificate.</summary>
    NoCertificate,

    /// <summary>The peer's certificate does not chain to the trusted CA.</summary>
    UntrustedCertificate,

    /// <summary>The peer's certificate is expired or not yet valid.</summary>
    CertificateNotTimeValid,

    /// <summary>The peer's certificate carries none of <see cref="MigrationTlsOptions.AllowedNames"/>.</summary>
    NameNotAllowed,

    /// <summary>The peer's public key is not among <see cref="MigrationTlsOptions.PinnedPublicKeys"/>.</summary>
    PinMismatch,
}

/// <summary>A TLS handshake on a migration connection failed; the message says why.</summary>
public sealed class MigrationTlsException : MigrationConnectionException
{
    /// <summary>Creates the exception.</summary>
    public MigrationTlsException(string address, MigrationTlsFailure failure, string message, Exception? inner = null)
        : base(address, message, inner)
    {
        Failure = failure;
    }

    /// <summary>What was wrong.</summary>
    public MigrationTlsFailure Failure { get; }
}
