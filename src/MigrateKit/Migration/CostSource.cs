using System.Text.Json.Serialization;

namespace MigrateKit.Migration;

/// <summary>Where a figure behind a downtime forecast came from.</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<CostSource>))]
public enum CostSource
{
    /// <summary>Nothing was measured: the forecast assumes none (fixed costs) or the bandwidth limit (speed).</summary>
    Assumed,

    /// <summary>Pausing and resuming the guest once before the migration.</summary>
    PauseProbe,

    /// <summary>Earlier migrations between the same hosts, kept in a calibration store.</summary>
    Store,

    /// <summary>This migration's own statistics while it ran.</summary>
    LearnedInRun,

    /// <summary>An explicit calibration: probe migrations between the two hosts.</summary>
    Calibration,

    /// <summary>Given by the caller in the options.</summary>
    Options,
}
