using System;

namespace MigrateKit.Migration;

/// <summary>
/// A destination refused a source's Hello because it announces more (or another shape) than the
/// destination's <see cref="MigrationReceiverOptions"/> accept. The message is the one sent to
/// the source in the Error frame, for example
/// <c>Hello announces 8 TiB; this destination accepts at most 64 GiB</c>.
/// </summary>
public sealed class MigrationLimitException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="limit">The limit the Hello went beyond.</param>
    /// <param name="announced">What the Hello announced (bytes, regions or vCPUs).</param>
    /// <param name="accepted">The limit or the expected value, in the same unit.</param>
    /// <param name="message">The refusal, naming both.</param>
    public MigrationLimitException(MigrationLimit limit, ulong announced, ulong accepted, string message)
        : base(message)
    {
        Limit = limit;
        Announced = announced;
        Accepted = accepted;
    }

    /// <summary>The limit the Hello went beyond.</summary>
    public MigrationLimit Limit { get; }

    /// <summary>What the Hello announced: bytes for the memory limits, else a count of regions or vCPUs.</summary>
    public ulong Announced { get; }

    /// <summary>The destination's limit or expected value, in the unit of <see cref="Announced"/>.</summary>
    public ulong Accepted { get; }
}
