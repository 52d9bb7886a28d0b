using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Memory;

namespace MigrateKit.Cli;

/// <summary>The <c>bench</c> command and its subcommands (<c>soak</c>, <c>forecast</c>, <c>libvirt-strategies</c>, <c>vs-qemu</c>, <c>stream</c>).</summary>
internal static class BenchCommands
{
    internal static Command Create()
    {
        var command = new Command("bench", "Long-running measurements of this process.\nExample: migratekit bench soak --count 100\nExample: migratekit bench forecast --quick\nExample: migratekit bench libvirt-strategies --to qemu+ssh://host2/system\nExample: migratekit bench vs-qemu --scenario all --repeat 3");
        command.Subcommands.Add(SoakCommand());
        command.Subcommands.Add(ForecastBenchCommand.Create());
        command.Subcommands.Add(StrategyBenchCommand.Create());
        command.Subcommands.Add(VsQemuCommand.Create());
        command.Subcommands.Add(StreamBenchCommand.Create());
        command.Subcommands.Add(PlanBenchCommand.Create());
        return command;
    }

    private static Command SoakCommand()
    {
        var count = new Option<int>("--count") { Description = "Migrations measured (1 to 100000).", DefaultValueFactory = _ => 100 };
        var vm = new Option<string>("--vm") { Description = "host (a HostVm: no KVM needed) or micro (a MicroVm on /dev/kvm).", DefaultValueFactory = _ => "host" };
        var memory = new Option<string>("--memory") { Description = "Guest memory, 4 MiB to 3 GiB in whole pages.", DefaultValueFactory = _ => "32MiB" };
        var warmUp = new Option<int>("--warm-up") { Description = "Migrations before the start figures are taken (the runtime's first-use allocations and thread pool growth are not leaks).", DefaultValueFactory = _ => SoakWarmUp };
        var json = new Option<bool>("--json") { Description = "Print exactly one JSON object and nothing else on stdout." };
        var verbose = new Option<bool>("--verbose") { Description = "Log what the engine and the receiver measure and decide to stderr." };
        var command = new Command("soak", "Migrate one VM back and forth --count times in this process over loopback TCP with mutual TLS (throwaway certificates " +
            "in a temporary directory), each migration from the VM the previous one built, each verified (digests and the guest's own self-checks); " +
            "prints the open descriptors, threads, mappings and RSS at the start (after --warm-up migrations) and the end, and one line per migration. " +
            $"Exit code 0 when every migration verified, descriptors are unchanged, no thread was added (threads are compared by name: one that ended is no leak; the thread pool's workers by how many are busy), mappings within {SoakRun.MappingsNoise} lines " +
            $"(the runtime's own heaps move them a little) and RSS grew less than {SoakRun.RssGrowthLimit >> 20} MiB; 4 otherwise.\n" +
            "Example: migratekit bench soak --count 100\nExample: migratekit bench soak --count 10 --vm micro --memory 64MiB --json");
        command.Options.Add(count);
        command.Options.Add(vm);
        command.Options.Add(memory);
        command.Options.Add(warmUp);
        command.Options.Add(json);
        command.Options.Add(verbose);
        Option<string?> metricsListen = MetricsEndpoint.Option();
        command.Options.Add(metricsListen);
        command.SetAction(async (parse, ct) =>
        {
            SoakSettings settings;
            System.Net.IPEndPoint? metricsAt;
            try
            {
                settings = ReadSoak(parse, count, vm, memory, warmUp);
                metricsAt = MetricsEndpoint.Parse(parse.GetValue(metricsListen));
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit bench soak: {ex.Message}");
                return 2;
            }

            settings = settings with { Verbose = parse.GetValue(verbose) };
            bool asJson = parse.GetValue(json);
            try
            {
                using MetricsEndpoint? metrics = MetricsEndpoint.StartIf(metricsAt);
                SoakResult result = await SoakRun.RunAsync(settings, asJson ? _ => { }
                : Console.WriteLine, ct).ConfigureAwait(false);
                if (asJson)
                {
                    Console.WriteLine(JsonSerializer.Serialize(SoakJson.Of(result), SoakJsonContext.Default.SoakJson));
                }
                else
                {
                    Console.WriteLine(Summary(result));
                }

                return result.TargetsMet ? 0 : 4;
            }
            catch (Exception ex) when (CliInput.EndsACommand(ex) || ex is Transport.MigrationTlsException)
            {
                return CliInput.Fail(ex);
            }
        });
        return command;
    }

    /// <summary>Warm-up migrations by default (see docs/BENCHMARKS.md, "Soak").</summary>
    internal const int SoakWarmUp = 70;

    private static SoakSettings ReadSoak(ParseResult p, Option<int> count, Option<string> vm, Option<string> memory, Option<int> warmUp)
    {
        int n = p.GetValue(count);
        if (n is < 1 or > 100_000)
        {
            throw new FormatException($"--count {n}: use 1 to 100000.");
        }

        int w = p.GetValue(warmUp);
        if (w is < 0 or > 100)
        {
            throw new FormatException($"--warm-up {w}: use 0 to 100.");
        }

        string kind = p.GetValue(vm)! switch
        {
            "host" or VmKind.Host => VmKind.Host,
            "micro" or VmKind.Micro => VmKind.Micro,
            string other => throw new FormatException($"--vm '{other}': use host or micro."),
        };
        ulong bytes = CliInput.Parse(p, memory, Units.ParseBytes);
        if (bytes < (4UL << 20) || bytes % GuestMemoryLayout.PageSize != 0 || bytes > (3UL << 30))
        {
            throw new FormatException($"--memory {p.GetValue(memory)}: the VM has 4 MiB to 3 GiB of memory, in whole pages.");
        }

        return new SoakSettings { Count = n, WarmUp = w, Vm = kind, Memory = bytes };
    }

    private static string Summary(SoakResult r)
    {
        static string Delta(long d) => d >= 0 ? $"+{d}" : d.ToString(System.Globalization.CultureInfo.InvariantCulture);
        double rssMiB = (r.End.RssBytes - r.Start.RssBytes) / 1048576.0;
        return $"{r.Verified}/{r.Settings.Count} verified in {r.Elapsed.TotalSeconds:F1} s; fds {Delta(r.End.Fds - r.Start.Fds)}, threads {Delta(r.End.Threads - r.Start.Threads)}" +
            (r.ThreadsAdded.Count > 0 ? $" (added: {string.Join(", ", r.ThreadsAdded)})" : "") + ", " +
            $"mappings {Delta(r.End.Mappings - r.Start.Mappings)}, RSS {(rssMiB >= 0 ? "+" : "")}{rssMiB:F1} MiB: " +
            (r.TargetsMet ? "targets met" : $"TARGETS MISSED (all verified, fds unchanged, no thread added, mappings within {SoakRun.MappingsNoise}, RSS growth < {SoakRun.RssGrowthLimit >> 20} MiB)");
    }
}

/// <summary>The one object <c>bench soak --json</c> prints.</summary>
internal sealed record SoakJson
{
    public required int Count { get; init; }

    public required int Verified { get; init; }

    public required bool TargetsMet { get; init; }

    /// <summary>Migrations made before <see cref="Start"/> was taken.</summary>
    public required int WarmUp { get; init; }

    public required string Vm { get; init; }

    public required ulong MemoryBytes { get; init; }

    public required double Seconds { get; init; }

    public required ProcessStats Start { get; init; }

    public required ProcessStats End { get; init; }

    /// <summary>Threads at the end not there at the start, by name ("hostvm worker +1"); empty when none.</summary>
    public required IReadOnlyList<string> ThreadsAdded { get; init; }

    public required IReadOnlyList<SoakMigration> Migrations { get; init; }

    internal static SoakJson Of(SoakResult r) => new()
    {
        Count = r.Settings.Count,
        Verified = r.Verified,
        TargetsMet = r.TargetsMet,
        WarmUp = r.Settings.WarmUp,
        Vm = r.Settings.Vm,
        MemoryBytes = r.Settings.Memory,
        Seconds = Math.Round(r.Elapsed.TotalSeconds, 1),
        Start = r.Start,
        End = r.End,
        ThreadsAdded = r.ThreadsAdded,
        Migrations = r.Migrations,
    };
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(SoakJson))]
internal sealed partial class SoakJsonContext : JsonSerializerContext
{
}
