using System;

namespace MigrateKit.Migration;

/// <summary>One point of a <see cref="DirtyCurve"/>: how many distinct pages the guest dirtied within <paramref name="Elapsed"/>.</summary>
/// <param name="Elapsed">The length of the window, from the start of the observation.</param>
/// <param name="DistinctPages">Distinct pages written in that window (each page counted once, however often it was written).</param>
public readonly record struct DirtyCurvePoint(TimeSpan Elapsed, long DistinctPages);
