using System;

namespace MigrateKit.Migration;

/// <summary>
/// <see cref="MigrationPlanner"/> would not observe a VM: its tracker is already tracking, or
/// the VM is being migrated or observed. Watching it would take dirty bits the other user needs
/// (and the other would disturb the curve), so the planner refuses before it starts anything.
/// </summary>
public sealed class ObservationRefusedException : InvalidOperationException
{
    /// <summary>Creates the exception with the reason.</summary>
    public ObservationRefusedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the reason and its cause.</summary>
    public ObservationRefusedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with a generic reason.</summary>
    public ObservationRefusedException()
        : base("The VM is already being tracked.")
    {
    }
}
