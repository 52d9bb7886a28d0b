namespace MigrateKit.Migration;

/// <summary>Which of a destination's <see cref="MigrationReceiverOptions"/> a Hello went beyond.</summary>
public enum MigrationLimit
{
    /// <summary>The total memory is above <see cref="MigrationReceiverOptions.MaxMemory"/>.</summary>
    Memory,

    /// <summary>The region count is above <see cref="MigrationReceiverOptions.MaxRegions"/>.</summary>
    Regions,

    /// <summary>The vCPU count is above <see cref="MigrationReceiverOptions.MaxVcpus"/>.</summary>
    Vcpus,

    /// <summary>The total memory differs from <see cref="MigrationReceiverOptions.ExpectedMemory"/>.</summary>
    ExpectedMemory,

    /// <summary>The vCPU count differs from <see cref="MigrationReceiverOptions.ExpectedVcpus"/>.</summary>
    ExpectedVcpus,
}
