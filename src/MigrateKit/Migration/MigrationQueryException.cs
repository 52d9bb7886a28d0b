using System;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// A Query (<see cref="MigrationRecovery.QueryAsync"/>) got no Status: the destination refused it
/// (<see cref="Refusal"/>), closed the connection, broke it or did not answer in time. Nothing about
/// the session changed on this side, and a refusal aside, asking again on a new connection may help.
/// </summary>
public sealed class MigrationQueryException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="address">The destination asked.</param>
    /// <param name="message">What happened, naming the destination.</param>
    /// <param name="refusal">The destination's Error, when it refused.</param>
    /// <param name="inner">The link's failure, when the link failed.</param>
    public MigrationQueryException(string address, string message, MigrationError? refusal = null, Exception? inner = null)
        : base(message, inner)
    {
        Address = address;
        Refusal = refusal;
    }

    /// <summary>The destination asked.</summary>
    public string Address { get; }

    /// <summary>The destination's Error when it refused the query; null when the link failed or stayed silent.</summary>
    public MigrationError? Refusal { get; }
}
