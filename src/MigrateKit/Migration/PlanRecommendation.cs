using System;

namespace MigrateKit.Migration;

/// <summary>The setting <see cref="MigrationPlanner.Plan"/> recommends, and why.</summary>
/// <param name="BandwidthBytesPerSecond">The bandwidth to give the migration.</param>
/// <param name="MaxDowntime">The downtime limit to set.</param>
/// <param name="MaxThrottlePercent">The strongest throttle to allow.</param>
/// <param name="Postcopy">Whether to switch to post-copy (where the hypervisor offers it): pre-copy would need more than the link or the limit can give.</param>
/// <param name="Reason">Why, in words.</param>
public sealed record PlanRecommendation(double BandwidthBytesPerSecond, TimeSpan MaxDowntime, int MaxThrottlePercent, bool Postcopy, string Reason);
