using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics.Metrics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using Prometheus;

namespace MigrateKit.Cli;

/// <summary>
/// <c>--metrics-listen HOST:PORT</c>: the <c>MigrateKit</c> meter on a Prometheus endpoint
/// (<c>http://HOST:PORT/metrics</c>, prometheus-net's stand-alone server) while a long-running
/// command runs, the migration figures as <c>migratekit_migration_*</c>, named like KubeVirt's
/// <c>kubevirt_vmi_migration_*</c> so existing dashboards map onto them (seconds and bytes, as
/// Prometheus wants its base units). A receiver's figures are <c>migratekit_*_received_total</c>
/// counters, <c>migratekit_receive_*</c> gauges, and <c>migratekit_migrations_received_total</c>
/// with a <c>status</c> label.
/// </summary>
internal sealed class MetricsEndpoint : IDisposable
{
    private const string MeterName = Diagnostics.MigrateKitDiagnostics.MeterName;
    private const string ReceivedName = "migratekit.migrations.received";
    private readonly MetricServer _server;
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, Action<double>> _figures;
    private readonly Counter _received;

    private MetricsEndpoint(IPEndPoint endpoint)
    {
        CollectorRegistry registry = Metrics.NewCustomRegistry();
        MetricFactory factory = Metrics.WithCustomRegistry(registry);
        Counter processed = factory.CreateCounter("migratekit_migration_data_processed_bytes", "Bytes of guest memory sent on the migration stream, all migrations of this process (KubeVirt: kubevirt_vmi_migration_data_processed_bytes).");
        Gauge total = factory.CreateGauge("migratekit_migration_data_total_bytes", "The guest memory the migration under way (or the last one) moves (KubeVirt: kubevirt_vmi_migration_data_total_bytes).");
        Gauge sent = factory.CreateGauge("migratekit_migration_memory_processed_bytes", "Bytes the migration under way (or the last one) has sent so far; the counter migratekit_migration_data_processed_bytes adds up every migration.");
        Gauge remaining = factory.CreateGauge("migratekit_migration_data_remaining_bytes", "Bytes a switchover would send now, 0 once completed (KubeVirt: kubevirt_vmi_migration_data_remaining_bytes).");
        Gauge dirtyRate = factory.CreateGauge("migratekit_migration_dirty_memory_rate_bytes", "The guest's dirtying rate after the last round, in bytes per second (KubeVirt: kubevirt_vmi_migration_dirty_memory_rate_bytes).");
        Gauge transferRate = factory.CreateGauge("migratekit_migration_memory_transfer_rate_bytes", "The transfer rate the last forecast measured, in bytes per second (KubeVirt: kubevirt_vmi_migration_memory_transfer_rate_bytes).");
        Gauge predicted = factory.CreateGauge("migratekit_migration_predicted_downtime_seconds", "The downtime forecast after the last round.");
        Gauge actual = factory.CreateGauge("migratekit_migration_downtime_seconds", "The measured downtime of the last completed migration.");
        Gauge throttle = factory.CreateGauge("migratekit_migration_throttle_percent", "The guest throttle in force during the last round.");
        Counter rounds = factory.CreateCounter("migratekit_migration_rounds_total", "Pre-copy rounds run.");
        Counter pages = factory.CreateCounter("migratekit_migration_pages_sent_total", "Pages sent with their data.");
        Counter migrations = factory.CreateCounter("migratekit_migrations_total", "Finished migrations.");
        Counter bytesReceived = factory.CreateCounter("migratekit_bytes_received_total", "Bytes received on migration streams, all migrations this process received.");
        Counter pagesReceived = factory.CreateCounter("migratekit_pages_received_total", "Pages received with their data.");
        Counter zeroPagesReceived = factory.CreateCounter("migratekit_zero_pages_received_total", "Pages received as zero runs.");
        Gauge receiveTotal = factory.CreateGauge("migratekit_receive_data_total_bytes", "The guest memory of the migration being received (or the last one).");
        Gauge receiveProcessed = factory.CreateGauge("migratekit_receive_data_processed_bytes", "Bytes the migration being received (or the last one) has read so far, at its last round's end.");
        Gauge resume = factory.CreateGauge("migratekit_receive_resume_seconds", "From the source's Complete to the VM running here, for the last completed migration received.");
        _received = factory.CreateCounter("migratekit_migrations_received_total", "Received migrations, by outcome.", "status");
        _figures = new()
        {
            ["migratekit.bytes.sent"] = processed.Inc,
            ["migratekit.migration.data.total"] = total.Set,
            ["migratekit.migration.data.processed"] = sent.Set,
            ["migratekit.migration.data.remaining"] = remaining.Set,
            ["migratekit.migration.dirty_memory_rate"] = dirtyRate.Set,
            ["migratekit.migration.memory_transfer_rate"] = transferRate.Set,
            ["migratekit.migration.downtime.predicted"] = v => predicted.Set(v / 1000),
            ["migratekit.migration.downtime.actual"] = v => actual.Set(v / 1000),
            ["migratekit.throttle"] = throttle.Set,
            ["migratekit.rounds"] = rounds.Inc,
            ["migratekit.pages.sent"] = pages.Inc,
            ["migratekit.migrations"] = migrations.Inc,
            ["migratekit.bytes.received"] = bytesReceived.Inc,
            ["migratekit.pages.received"] = pagesReceived.Inc,
            ["migratekit.zero_pages.received"] = zeroPagesReceived.Inc,
            ["migratekit.receive.data.total"] = receiveTotal.Set,
            ["migratekit.receive.data.processed"] = receiveProcessed.Set,
            ["migratekit.resume.duration"] = v => resume.Set(v / 1000),
        };
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeterName && (_figures.ContainsKey(instrument.Name) || instrument.Name == ReceivedName))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            if (i.Name == ReceivedName)
            {
                CountReceived(v, tags);
                return;
            }

            Record(i, v);
        });
        _listener.SetMeasurementEventCallback<int>((i, v, _, _) => Record(i, v));
        _listener.SetMeasurementEventCallback<double>((i, v, _, _) => Record(i, v));
        _listener.Start();
        _server = new MetricServer(Host(endpoint), endpoint.Port, "metrics/", registry);
        try
        {
            _server.Start();
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
    }

    /// <summary>The <c>--metrics-listen</c> option.</summary>
    internal static Option<string?> Option() => new("--metrics-listen")
    {
        Description = "Serve the MigrateKit meter for Prometheus at http://HOST:PORT/metrics while this runs, e.g. 127.0.0.1:9464 (scraped at that address), or 0.0.0.0:9464 for every IPv4 address. The default serves nothing.",
        HelpName = "HOST:PORT",
    };

    /// <summary>Reads <c>--metrics-listen</c>: null when not given.</summary>
    /// <exception cref="FormatException"><paramref name="listen"/> is not an IP address and port.</exception>
    internal static IPEndPoint? Parse(string? listen)
    {
        if (listen is null)
        {
            return null;
        }

        if (!IPEndPoint.TryParse(listen, out IPEndPoint? endpoint) || endpoint.Port == 0)
        {
            throw new FormatException($"--metrics-listen '{listen}': use an IP address and a port, e.g. 127.0.0.1:9464.");
        }

        // .NET's HttpListener, under prometheus-net's server, listens on IPv4 only: it cannot parse
        // an IPv6 host in its prefix, and takes all addresses as "*" (it refuses 0.0.0.0 by name).
        return endpoint.AddressFamily == AddressFamily.InterNetwork ? endpoint
            : throw new FormatException($"--metrics-listen '{listen}': the metrics server listens on IPv4 only, on one address (e.g. 127.0.0.1:{endpoint.Port}) or on all of them (0.0.0.0:{endpoint.Port}).");
    }

    /// <summary>Starts the endpoint when <paramref name="endpoint"/> is given, or returns null.</summary>
    /// <exception cref="IOException">The server cannot listen there (the port is taken, the address is not this host's).</exception>
    internal static MetricsEndpoint? StartIf(IPEndPoint? endpoint)
    {
        if (endpoint is null)
        {
            return null;
        }

        MetricsEndpoint started;
        try
        {
            started = new MetricsEndpoint(endpoint);
        }
        catch (HttpListenerException ex)
        {
            throw new IOException($"--metrics-listen {endpoint}: cannot serve metrics there ({ex.Message}).", ex);
        }

        Console.Error.WriteLine(Host(endpoint) == "*" ? $"metrics on http://HOST:{endpoint.Port}/metrics, on every IPv4 address of this host" : $"metrics on http://{endpoint}/metrics");
        return started;
    }

    // "*" listens on every address and answers whatever host name a scraper used.
    private static string Host(IPEndPoint endpoint) => endpoint.Address.Equals(IPAddress.Any) ? "*" : endpoint.Address.ToString();

    public void Dispose()
    {
        _server.Dispose();
        _listener.Dispose();
    }

    /// <summary>The received-migrations count keeps its outcome, as Prometheus' <c>status</c> label.</summary>
    private void CountReceived(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string status = "unknown";
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            if (tag.Key == "migratekit.status" && tag.Value is string named)
            {
                status = named;
            }
        }

        _received.WithLabels(status).Inc(value);
    }

    private void Record(Instrument instrument, double value)
    {
        if (_figures.TryGetValue(instrument.Name, out Action<double>? set))
        {
            set(value);
        }
    }
}
