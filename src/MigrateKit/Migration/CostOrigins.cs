namespace MigrateKit.Migration;

/// <summary>Where the fixed part of a downtime forecast and the speed of its transfer part came from.</summary>
/// <param name="FixedDowntime">The source of the fixed costs (stopping, device state, hand-off, starting).</param>
/// <param name="SwitchoverSpeed">The source of the stop-and-copy's speed.</param>
/// <param name="StoreSamples">How many earlier migrations the stored figures combine; 0 when none were used.</param>
public sealed record CostOrigins(CostSource FixedDowntime, CostSource SwitchoverSpeed, int StoreSamples);
