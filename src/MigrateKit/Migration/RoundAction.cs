using System.Text.Json.Serialization;

namespace MigrateKit.Migration;

/// <summary>What a round of a migration report ended with (<see cref="RoundReport.Action"/>).</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<RoundAction>))]
public enum RoundAction
{
    /// <summary>Another pre-copy round as planned.</summary>
    Continue,

    /// <summary>Another round, with more hot pages held back for the switchover.</summary>
    Defer,

    /// <summary>Another round, with a stronger throttle on the guest.</summary>
    Throttle,

    /// <summary>The switchover: on the last pre-copy round, the decision to switch over; on the report's last row, the switchover itself.</summary>
    Switchover,

    /// <summary>The migration was given up; the source keeps running.</summary>
    Abort,

    /// <summary>libvirt: QEMU's downtime limit was raised so that its own switchover can come.</summary>
    RaiseLimit,

    /// <summary>libvirt: the migration was switched to post-copy.</summary>
    Postcopy,
}
