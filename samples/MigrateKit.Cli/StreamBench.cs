using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Serialization;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.Cli;

/// <summary>What <c>bench stream</c> runs.</summary>
internal sealed record StreamBenchSettings
{
    /// <summary>Guest memory in bytes, all of it non-zero before the migration starts.</summary>
    internal required ulong Memory { get; init; }

    /// <summary>Migrations measured, each followed by one run of the floor.</summary>
    internal required int Repeat { get; init; }

    /// <summary>The floor's populate mode (see native/bench/stream_floor.c), or "none" to skip it.</summary>
    internal required string FloorMode { get; init; }

    /// <summary>Whether the engine and the receiver log to stderr.</summary>
    internal bool Verbose { get; init; }

    /// <summary>The engine's page encodings: none (the default) measures the wire; with them round 0 measures the encoder.</summary>
    internal PageEncodings Encodings { get; init; } = PageEncodings.None;

    /// <summary>A HostVm filled by the fill workload (untimed), sent unlimited over loopback TCP.</summary>
    internal SourceSettings Source() => new()
    {
        Memory = Memory,
        Workload = "fill",
        Hot = 0,
        MaxDowntime = TimeSpan.FromMilliseconds(300),
        Tracker = "bitmap",
        Vm = VmKind.Host,
        Pace = 0,
        Verbose = Verbose,
        Encodings = Encodings,
    };
}

/// <summary>One migration of <c>bench stream</c>, and the floor measured after it.</summary>
internal sealed record StreamBenchRun
{
    public required int Run { get; init; }

    public required string Status { get; init; }

    public required bool Verified { get; init; }

    public string? Detail { get; init; }

    /// <summary>Bytes round 0 sent (all of memory, framed).</summary>
    public required ulong Round0Bytes { get; init; }

    public required double Round0Ms { get; init; }

    /// <summary>Round 0's bytes over its duration, 10⁹ bytes per second.</summary>
    public required double Round0GBps { get; init; }

    /// <summary>Guest memory over round 0's duration, 10⁹ bytes per second: the sender's rate in page data, whatever the encodings made of it.</summary>
    public double Round0PageGBps { get; init; }

    public required double TotalMs { get; init; }

    /// <summary>The C floor's figure in this run, 10⁹ bytes per second (null: skipped or not found).</summary>
    public double? FloorGBps { get; init; }

    /// <summary>The populate mode the floor used.</summary>
    public string? FloorMode { get; init; }
}

/// <summary>The result of <c>bench stream</c>: every run and the medians.</summary>
internal sealed record StreamBenchJson
{
    public required ulong MemoryBytes { get; init; }

    public required double MedianGBps { get; init; }

    public double? FloorMedianGBps { get; init; }

    /// <summary>The managed median over the floor's median.</summary>
    public double? Ratio { get; init; }

    /// <summary>Every run completed and its memory arrived verified (digests matched).</summary>
    public required bool Verified { get; init; }

    /// <summary>The floor binary that ran, or why none did.</summary>
    public required string Floor { get; init; }

    public required IReadOnlyList<StreamBenchRun> Runs { get; init; }

    internal static StreamBenchJson Of(StreamBenchSettings settings, IReadOnlyList<StreamBenchRun> runs, string floor)
    {
        double median = Math.Round(ForecastSummary.Median(runs.Select(r => r.Round0GBps)) ?? 0, 3);
        double? floorMedian = ForecastSummary.Median(runs.Where(r => r.FloorGBps.HasValue).Select(r => r.FloorGBps!.Value)) is { } f ? Math.Round(f, 3) : null;
        return new StreamBenchJson
        {
            MemoryBytes = settings.Memory,
            MedianGBps = median,
            FloorMedianGBps = floorMedian,
            Ratio = floorMedian is > 0 ? Math.Round(median / floorMedian.Value, 3) : null,
            Verified = runs.All(r => r.Verified),
            Floor = floor,
            Runs = runs,
        };
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.Never, WriteIndented = false)]
[JsonSerializable(typeof(StreamBenchJson))]
internal sealed partial class StreamBenchJsonContext : JsonSerializerContext
{
}

/// <summary>
/// <c>bench stream</c>: migrates a HostVm whose memory is all non-zero over loopback TCP in this
/// process, takes round 0's rate (all of memory, the workload's fill done and not counted), and
/// after each migration runs the C floor (<c>mk_stream_floor</c>, next to this program) as a
/// child process, so both figures come from the same minute on the same machine.
/// </summary>
internal static class StreamBench
{
    /// <summary>The floor program's file name, copied next to the CLI by the build.</summary>
    internal const string FloorProgram = "mk_stream_floor";

    private static readonly TimeSpan FloorTimeout = TimeSpan.FromMinutes(3);

    internal static async Task<StreamBenchJson> RunAsync(StreamBenchSettings settings, Action<string> line, CancellationToken ct)
    {
        string floorPath = Path.Combine(AppContext.BaseDirectory, FloorProgram);
        bool runFloor = settings.FloorMode != "none" && File.Exists(floorPath);
        string floor = settings.FloorMode == "none" ? "skipped (--floor none)" : runFloor ? floorPath : $"not found ({floorPath})";
        var runs = new List<StreamBenchRun>();
        for (int i = 1; i <= settings.Repeat; i++)
        {
            StreamBenchRun run = await MigrateOnceAsync(settings, i, ct).ConfigureAwait(false);
            if (runFloor)
            {
                (double gbps, string mode) = await RunFloorAsync(floorPath, settings, ct).ConfigureAwait(false);
                run = run with { FloorGBps = gbps, FloorMode = mode };
            }

            runs.Add(run);
            line(Describe(run));
        }

        return StreamBenchJson.Of(settings, runs, floor);
    }

    internal static string Describe(StreamBenchRun r) =>
        FormattableString.Invariant($"run {r.Run}: {r.Status}, {(r.Verified ? "verified" : "NOT VERIFIED")}, round 0 {Units.FormatBytes(r.Round0Bytes)} in {r.Round0Ms:F0} ms = {r.Round0GBps:F3} GB/s on the wire, {r.Round0PageGBps:F3} GB/s of pages") +
        (r.FloorGBps is { } f ? FormattableString.Invariant($"; floor ({r.FloorMode}) {f:F3} GB/s, ratio {r.Round0GBps / f:F2}") : "") + (r.Detail is null ? "" : $" ({r.Detail})");

    private static async Task<StreamBenchRun> MigrateOnceAsync(StreamBenchSettings settings, int index, CancellationToken ct)
    {
        RunOutcome outcome = await MigrationRunner.DemoAsync(settings.Source(), LiveStatus.Lines(false), null, null, ct).ConfigureAwait(false);
        MigrationReport report = outcome.Report;
        RoundReport? first = report.RoundsDetail.FirstOrDefault(r => r.Round == 0);
        double ms = first?.DurationMs ?? 0;
        ulong bytes = first?.BytesSent ?? 0;
        return new StreamBenchRun
        {
            Run = index,
            Status = report.Status.ToString().ToLowerInvariant(),
            Verified = outcome.Verified,
            Detail = outcome.Verified ? null : outcome.VerifyDetail ?? report.Reason,
            Round0Bytes = bytes,
            Round0Ms = Math.Round(ms, 1),
            Round0GBps = ms > 0 ? Math.Round(bytes / ms / 1e6, 3) : 0,
            Round0PageGBps = ms > 0 ? Math.Round(settings.Memory / ms / 1e6, 3) : 0,
            TotalMs = Math.Round(report.TotalMs, 1),
        };
    }

    /// <summary>Runs the floor once over the same amount of memory; its last line is the figure.</summary>
    private static async Task<(double GBps, string Mode)> RunFloorAsync(string path, StreamBenchSettings settings, CancellationToken ct)
    {
        var start = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add((settings.Memory >> 20).ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add(settings.FloorMode);
        using Process process = Process.Start(start) ?? throw new IOException($"{path} did not start.");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(FloorTimeout);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        Task<string> stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new IOException($"{path} did not finish within {FloorTimeout.TotalMinutes} minutes.");
        }

        string output = await stdout.ConfigureAwait(false);
        string last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
        Dictionary<string, string> fields = last.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
        if (process.ExitCode != 0 || !fields.TryGetValue("gbps", out string? gbps) || fields.GetValueOrDefault("verified") != "yes")
        {
            throw new IOException($"{path} failed (exit {process.ExitCode}): {last} {await stderr.ConfigureAwait(false)}".Trim());
        }

        return (double.Parse(gbps, CultureInfo.InvariantCulture), fields.GetValueOrDefault("mode") ?? settings.FloorMode);
    }
}
