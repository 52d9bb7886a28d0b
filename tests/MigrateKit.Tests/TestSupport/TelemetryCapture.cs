using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Linq;
using Microsoft.Extensions.Logging;

namespace MigrateKit.Tests.TestSupport;

/// <summary>One measurement of a MigrateKit instrument.</summary>
internal sealed record Measured(string Instrument, string? Unit, double Value, IReadOnlyDictionary<string, object?> Tags);

/// <summary>
/// Listens to the <c>MigrateKit</c> meter and activity source for one test. The test runs under a
/// root activity of its own, and only spans of that trace, and measurements recorded while one of
/// its spans is current, are kept: the meter and the source are static, and whatever else runs in
/// the process at the same time is left out.
/// </summary>
internal sealed class TelemetryCapture : IDisposable
{
    private const string TestSourceName = "MigrateKit.Tests.Telemetry";

    private static readonly ActivitySource TestSource = new(TestSourceName);

    private readonly ActivityListener _activities;
    private readonly MeterListener _meters = new();
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly ConcurrentQueue<Measured> _measured = new();
    private readonly ActivityTraceId _trace;

    public TelemetryCapture()
    {
        _activities = new ActivityListener
        {
            ShouldListenTo = s => s.Name is "MigrateKit" or TestSourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.TraceId == _trace && a.Source.Name == "MigrateKit")
                {
                    _stopped.Enqueue(a);
                }
            },
        };
        ActivitySource.AddActivityListener(_activities);

        // Current from here on in the test's flow: everything the library starts descends from it.
        Root = TestSource.StartActivity("test") ?? throw new InvalidOperationException("The test activity was not sampled.");
        _trace = Root.TraceId;

        _meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "MigrateKit")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _meters.SetMeasurementEventCallback<long>((i, value, tags, _) => Record(i, value, tags));
        _meters.SetMeasurementEventCallback<int>((i, value, tags, _) => Record(i, value, tags));
        _meters.SetMeasurementEventCallback<double>((i, value, tags, _) => Record(i, value, tags));
        _meters.Start();
    }

    public Activity Root { get; }

    /// <summary>The MigrateKit spans of this test that ended, in the order they ended.</summary>
    public Activity[] Spans(string name) => _stopped.Where(a => a.OperationName == name).ToArray();

    public Measured[] Measurements(string instrument) => _measured.Where(m => m.Instrument == instrument).ToArray();

    public double Sum(string instrument) => Measurements(instrument).Sum(m => m.Value);

    public Measured[] All => _measured.ToArray();

    public void Dispose()
    {
        _meters.Dispose();
        Root.Dispose();
        _activities.Dispose();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (Activity.Current?.TraceId != _trace)
        {
            return;
        }

        var copy = new Dictionary<string, object?>();
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            copy[tag.Key] = tag.Value;
        }

        _measured.Enqueue(new Measured(instrument.Name, instrument.Unit, value, copy));
    }
}

/// <summary>One log entry.</summary>
internal sealed record Logged(LogLevel Level, EventId EventId, string Message, IReadOnlyDictionary<string, object?> State, Exception? Exception = null);

/// <summary>A logger that keeps what it is given, with the structured values.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    private readonly ConcurrentQueue<Logged> _entries = new();

    public Logged[] Entries => _entries.ToArray();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var values = new Dictionary<string, object?>();
        if (state is IEnumerable<KeyValuePair<string, object?>> pairs)
        {
            foreach (KeyValuePair<string, object?> pair in pairs)
            {
                values[pair.Key] = pair.Value;
            }
        }

        _entries.Enqueue(new Logged(logLevel, eventId, formatter(state, exception), values, exception));
    }
}
