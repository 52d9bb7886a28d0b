using System;
using System.CommandLine;
using System.IO;
using System.Text.Json;
using MigrateKit.Memory;

namespace MigrateKit.Cli;

/// <summary>The <c>bench stream</c> command: its options and its output.</summary>
internal static class StreamBenchCommand
{
    private static readonly string[] FloorModes = ["best", "fault", "map", "madvise", "thp", "ahead", "none"];

    internal static Command Create()
    {
        var memory = new Option<string>("--memory") { Description = "Guest memory, 4 MiB to 3 GiB in whole MiB, all of it non-zero.", DefaultValueFactory = _ => "1GiB" };
        var repeat = new Option<int>("--repeat") { Description = "Migrations measured, 1 to 20, each followed by one run of the floor; the figures are the medians.", DefaultValueFactory = _ => 3 };
        var floor = new Option<string>("--floor") { Description = "How the C floor backs its destination: " + string.Join(", ", FloorModes) + " (best: each mode once, then the fastest again; none: no floor).", DefaultValueFactory = _ => "best" };
        var json = new Option<bool>("--json") { Description = "Print exactly one JSON object and nothing else on stdout." };
        var verbose = new Option<bool>("--verbose") { Description = "Log what the engine and the receiver measure and decide to stderr." };
        var encodings = new Option<string>("--encodings")
        {
            Description = "The engine's page encodings: none measures the wire against the floor; all, delta or compression measure how fast the sender encodes (GB/s of pages).",
            DefaultValueFactory = _ => "none",
        };
        var command = new Command("stream", "Migrate a HostVm whose memory is all non-zero (the fill workload, run before and not timed) over loopback TCP " +
            "in this process, without a bandwidth limit, and report round 0's rate (all of memory) in GB/s; after each migration run the C floor " +
            $"({StreamBench.FloorProgram}: the same bytes over loopback TCP into fresh memory, without .NET) as a child process and report the ratio " +
            "of the medians. Exit code 0 when every migration completed and its memory arrived verified; 4 otherwise.\n" +
            "Example: migratekit bench stream\nExample: migratekit bench stream --memory 64MiB --repeat 1 --json");
        command.Options.Add(memory);
        command.Options.Add(repeat);
        command.Options.Add(floor);
        command.Options.Add(json);
        command.Options.Add(verbose);
        command.Options.Add(encodings);
        command.SetAction(async (parse, ct) =>
        {
            StreamBenchSettings settings;
            try
            {
                settings = new StreamBenchSettings
                {
                    Memory = CliInput.Parse(parse, memory, Memory),
                    Repeat = parse.GetValue(repeat) is >= 1 and <= 20 ? parse.GetValue(repeat) : throw new FormatException($"--repeat {parse.GetValue(repeat)}: use 1 to 20."),
                    FloorMode = Array.IndexOf(FloorModes, parse.GetValue(floor)) >= 0 ? parse.GetValue(floor)! : throw new FormatException($"--floor '{parse.GetValue(floor)}': use {string.Join(", ", FloorModes)}."),
                    Verbose = parse.GetValue(verbose),
                    Encodings = EncodingOptions.Parse(parse.GetValue(encodings)!, auto: false),
                };
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit bench stream: {ex.Message}");
                return 2;
            }

            bool asJson = parse.GetValue(json);
            try
            {
                if (!asJson)
                {
                    Console.WriteLine($"stream: {settings.Repeat} migration(s) of a hostvm with {Units.FormatBytes(settings.Memory)} of non-zero memory, unlimited, over loopback TCP");
                }

                StreamBenchJson result = await StreamBench.RunAsync(settings, asJson ? _ => { }
                : Console.WriteLine, ct).ConfigureAwait(false);
                Console.WriteLine(asJson ? JsonSerializer.Serialize(result, StreamBenchJsonContext.Default.StreamBenchJson) : Summary(result));
                return result.Verified ? 0 : 4;
            }
            catch (Exception ex) when (CliInput.EndsACommand(ex) || ex is IOException)
            {
                return CliInput.Fail(ex);
            }
        });
        return command;
    }

    private static string Summary(StreamBenchJson r) =>
        FormattableString.Invariant($"median: round 0 {r.MedianGBps:F3} GB/s") + (r.FloorMedianGBps is { } f ? FormattableString.Invariant($", floor {f:F3} GB/s, ratio {r.Ratio:F2}") : $"; floor {r.Floor}") +
        $"; {(r.Verified ? "every run verified" : "NOT every run verified")}";

    private static ulong Memory(string text)
    {
        ulong bytes = Units.ParseBytes(text);
        return bytes < (4UL << 20) || bytes % (1UL << 20) != 0 || bytes > (3UL << 30) || bytes % GuestMemoryLayout.PageSize != 0
            ? throw new FormatException($"'{text}': use 4 MiB to 3 GiB in whole MiB.")
            : bytes;
    }
}
