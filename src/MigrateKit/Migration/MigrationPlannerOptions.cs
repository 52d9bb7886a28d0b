using System;
using System.Collections.Generic;
using System.Linq;

namespace MigrateKit.Migration;

/// <summary>How <see cref="MigrationPlanner"/> observes a guest.</summary>
public sealed class MigrationPlannerOptions
{
    /// <summary>The longest observation accepted.</summary>
    public static readonly TimeSpan LongestObservation = TimeSpan.FromMinutes(10);

    /// <summary>
    /// When to harvest, from the start of tracking: each mark gives one point of the curve, and
    /// the windows between marks decide the hot set. Positive and increasing, at most 10 minutes.
    /// </summary>
    /// <value>The default is 0.1, 0.2, 0.5, 1, 2 and 5 s: a pre-copy round lasts from a fraction of a second to seconds.</value>
    public IReadOnlyList<TimeSpan> Marks { get; init; } = [.. new[] { 0.1, 0.2, 0.5, 1, 2, 5 }.Select(TimeSpan.FromSeconds)];

    /// <summary>The clock the marks are kept on; a test passes a fake one.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Checks the options and names the first problem.</summary>
    /// <exception cref="ArgumentException">The marks are missing, not increasing, or too long.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
        if (Marks is null || Marks.Count == 0)
        {
            throw new ArgumentException("Marks must hold at least one time to harvest at.", nameof(Marks));
        }

        for (int i = 0; i < Marks.Count; i++)
        {
            if (Marks[i] <= (i == 0 ? TimeSpan.Zero : Marks[i - 1]))
            {
                throw new ArgumentException($"Marks must be positive and increasing (mark {i} is {Marks[i].TotalMilliseconds} ms).", nameof(Marks));
            }
        }

        if (Marks[^1] > LongestObservation)
        {
            throw new ArgumentException($"Marks must end within {LongestObservation.TotalMinutes} minutes (the last is {Marks[^1]}).", nameof(Marks));
        }
    }
}
