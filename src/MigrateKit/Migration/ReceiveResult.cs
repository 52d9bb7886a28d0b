using System;

namespace MigrateKit.Migration;

/// <summary>What a receiver ended with.</summary>
public sealed class ReceiveResult
{
    /// <summary>Completed (the target runs), Aborted (the source gave up) or Failed.</summary>
    public MigrationStatus Status { get; init; }

    /// <summary>The VM built from the stream. When completed it runs and the caller owns it; otherwise it was disposed.</summary>
    public IMigrationTarget? Target { get; init; }

    /// <summary>Why it did not complete.</summary>
    public string? Reason { get; init; }

    /// <summary>The typed failure, when failed.</summary>
    public Exception? Error { get; init; }

    /// <summary>The session the source's Hello opened; null when none arrived.</summary>
    public Guid? SessionId { get; init; }

    /// <summary>The address of the source's last connection, when one carried a session.</summary>
    public string? SourceAddress { get; init; }

    /// <summary>How often the source reconnected and continued the session after a lost link.</summary>
    public int Reconnections { get; init; }

    /// <summary>Rounds seen (RoundEnd frames).</summary>
    public int Rounds { get; init; }

    /// <summary>Pages received with data.</summary>
    public ulong PagesReceived { get; init; }

    /// <summary>Pages received as zero runs.</summary>
    public ulong ZeroPagesReceived { get; init; }

    /// <summary>Bytes read from the wire.</summary>
    public long BytesReceived { get; init; }

    /// <summary>How long starting the VM took (the target's Start, on Commit): the part of the commit step that is not the round trip.</summary>
    public TimeSpan? StartDuration { get; init; }

    /// <summary>From the Complete frame to the vCPUs running (the source's Commit included).</summary>
    public TimeSpan? ResumeDuration { get; init; }
}
