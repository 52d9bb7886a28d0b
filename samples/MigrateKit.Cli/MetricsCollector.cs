using System;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.IO;
using System.Linq;
using MigrateKit.Diagnostics;

namespace MigrateKit.Cli;

/// <summary>
/// <c>--metrics</c>: listens to the <c>MigrateKit</c> meter while a command runs and prints every
/// instrument at the end: a counter's total, a histogram's last value with count, min, mean and max.
/// </summary>
internal sealed class MetricsCollector : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<Series> _series = [];
    private readonly object _gate = new();
    private string? _version;

    private MetricsCollector()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name != MigrateKitDiagnostics.MeterName)
            {
                return;
            }

            var series = new Series(instrument);
            lock (_gate)
            {
                _version ??= instrument.Meter.Version;
                _series.Add(series);
            }

            listener.EnableMeasurementEvents(instrument, series);
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, state) => Record(state, value, tags));
        _listener.SetMeasurementEventCallback<int>((_, value, tags, state) => Record(state, value, tags));
        _listener.SetMeasurementEventCallback<double>((_, value, tags, state) => Record(state, value, tags));
        _listener.Start();
    }

    /// <summary>Starts listening when <paramref name="enabled"/>; null otherwise.</summary>
    internal static MetricsCollector? StartIf(bool enabled) => enabled ? new MetricsCollector() : null;

    /// <summary>Stops listening and prints what was measured: to stderr when stdout is JSON.</summary>
    internal void Print(bool json)
    {
        _listener.Dispose();
        Write(json ? Console.Error : Console.Out);
    }

    public void Dispose() => _listener.Dispose();

    private void Record(object? state, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (state is not Series series)
        {
            return;
        }

        lock (_gate)
        {
            series.Add(value, tags);
        }
    }

    private void Write(TextWriter w)
    {
        lock (_gate)
        {
            // Tags every measured instrument carries are printed once; the rest next to their instrument.
            HashSet<string>[] measured = _series.Where(s => s.Count > 0).Select(s => s.Tags).ToArray();
            HashSet<string> common = measured.Length == 0 ? [] : measured.Skip(1).Aggregate(new HashSet<string>(measured[0]), (all, t) =>
            {
                all.IntersectWith(t);
                return all;
            });
            string shared = common.Count == 0 ? "" : $" {{{string.Join(", ", common.Order(StringComparer.Ordinal))}}}";
            if (_series.Count == 0)
            {
                // The run failed before anything created the meter's instruments.
                w.WriteLine($"metrics ({MigrateKitDiagnostics.MeterName}): nothing was measured");
                return;
            }

            w.WriteLine($"metrics ({MigrateKitDiagnostics.MeterName} {_version}){shared}:");
            int width = _series.Count == 0 ? 0 : _series.Max(s => s.Instrument.Name.Length);
            foreach (Series s in _series)
            {
                string extra = string.Join(", ", s.Tags.Where(t => !common.Contains(t)).Order(StringComparer.Ordinal));
                string line = string.Create(CultureInfo.InvariantCulture, $"  {s.Instrument.Name.PadRight(width)}  {Describe(s)}");
                w.WriteLine(extra.Length == 0 ? line : $"{line}  {{{extra}}}");
            }
        }
    }

    private static string Describe(Series s)
    {
        string unit = s.Instrument.Unit ?? "";
        if (s.Count == 0)
        {
            return $"-  (no measurement, {unit})";
        }

        if (s.IsCounter)
        {
            return $"total {Format(s.Sum, unit)}";
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"last {Format(s.Last, unit)}  (n {s.Count}, min {Format(s.Min, unit)}, mean {Format(s.Sum / s.Count, unit)}, max {Format(s.Max, unit)})");
    }

    private static string Format(double value, string unit) => unit switch
    {
        "By" => $"{Units.FormatBytes(value)} ({value.ToString("F0", CultureInfo.InvariantCulture)} By)",
        "ms" => value.ToString("F2", CultureInfo.InvariantCulture) + " ms",
        "%" => value.ToString("F0", CultureInfo.InvariantCulture) + " %",
        _ => (value == Math.Floor(value) && Math.Abs(value) < 1e15 ? value.ToString("F0", CultureInfo.InvariantCulture) : value.ToString("F1", CultureInfo.InvariantCulture)) + " " + unit,
    };

    /// <summary>Everything measured by one instrument.</summary>
    private sealed class Series(Instrument instrument)
    {
        internal Instrument Instrument { get; } = instrument;

        internal bool IsCounter { get; } = instrument is Counter<long> or Counter<int> or Counter<double>;

        internal HashSet<string> Tags { get; } = [];

        internal long Count { get; private set; }

        internal double Sum { get; private set; }

        internal double Min { get; private set; } = double.PositiveInfinity;

        internal double Max { get; private set; } = double.NegativeInfinity;

        internal double Last { get; private set; }

        internal void Add(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            Count++;
            Sum += value;
            Min = Math.Min(Min, value);
            Max = Math.Max(Max, value);
            Last = value;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                Tags.Add(string.Create(CultureInfo.InvariantCulture, $"{tag.Key}={tag.Value}"));
            }
        }
    }
}
