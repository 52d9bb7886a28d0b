using System;
using LibvirtSharp;
using MigrateKit.Migration;

namespace MigrateKit.Libvirt;

/// <summary>What a libvirt migration came to, decided from the domain's state on both hosts.</summary>
internal sealed record MigrationOutcome
{
    /// <summary>Completed, aborted or failed.</summary>
    internal required MigrationStatus Status { get; init; }

    /// <summary>Why, in words (null for a plain completion).</summary>
    internal string? Reason { get; init; }

    /// <summary>Where a failed migration failed; null unless <see cref="Status"/> is Failed.</summary>
    internal MigrationPhase? FailedPhase { get; init; }

    /// <summary>Whether neither host can be said to run the guest alone.</summary>
    internal bool Unknown { get; init; }

    /// <summary>The destination's statistics of the completed job, when it gave them.</summary>
    internal JobStats? Final { get; init; }

    /// <summary>The migrate call's failure, unless the migration completed anyway.</summary>
    internal Exception? Error { get; init; }
}
