using System;
using System.Collections.Generic;

namespace MigrateKit.Estimation;

/// <summary>Named figures measured for one key of an <see cref="ICalibrationStore"/>, with how many measurements they combine.</summary>
/// <param name="Values">The figures by name (finite numbers; each user of the store documents its names and units).</param>
/// <param name="Samples">How many measurements the figures combine (at least 1).</param>
/// <param name="Updated">When the figures were last changed.</param>
public sealed record CalibrationEntry(IReadOnlyDictionary<string, double> Values, int Samples, DateTimeOffset Updated)
{
    /// <summary>The figure called <paramref name="name"/>, or null when the entry has none.</summary>
    public double? Get(string name) => Values.TryGetValue(name, out double value) ? value : null;

    /// <summary>Checks the entry and names the first problem.</summary>
    /// <exception cref="ArgumentException">No values, a value that is not a finite number, an empty name, or fewer than one sample.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Values);
        if (Samples < 1)
        {
            throw new ArgumentException($"A calibration entry combines at least one sample (got {Samples}).", nameof(Samples));
        }

        foreach ((string name, double value) in Values)
        {
            if (string.IsNullOrEmpty(name) || !double.IsFinite(value))
            {
                throw new ArgumentException($"Calibration values have names and finite values (got '{name}' = {value}).", nameof(Values));
            }
        }
    }
}
