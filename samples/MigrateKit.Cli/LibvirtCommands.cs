using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using MigrateKit.Vmm;

namespace MigrateKit.Cli;

/// <summary>The dirty-rate command's JSON output.</summary>
internal sealed record JsonDirtyRate(string Domain, string Mode, double PeriodSeconds, ulong? BytesPerSecond, ulong[] VcpuBytesPerSecond);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(JsonDirtyRate))]
internal sealed partial class LibvirtJsonContext : JsonSerializerContext
{
}

/// <summary><c>migratekit libvirt …</c>: libvirt migrations under MigrateKit's forecasts and policy.</summary>
internal static class LibvirtCommands
{
    internal static Command Create()
    {
        var command = new Command("libvirt", "Migrate libvirt domains with MigrateKit's dirty-rate sizing, downtime forecasts and policy.\n" +
            "Example: migratekit libvirt migrate web1 --from qemu:///system --to qemu+ssh://host2/system --bandwidth 100MiB/s --calibrate");
        command.Subcommands.Add(MigrateCommand());
        command.Subcommands.Add(DemoCommand());
        command.Subcommands.Add(DirtyRateCommand());
        command.Subcommands.Add(LibvirtPlanCommand.Create());
        return command;
    }

    /// <summary>The options every migrating subcommand shares.</summary>
    private sealed class MigrationOptionSet
    {
        internal Option<string> From { get; } = new("--from") { Description = "Source libvirt URI, e.g. qemu:///system.", Required = true };
        internal Option<string> To { get; } = new("--to") { Description = "Destination libvirt URI, e.g. qemu+ssh://host2/system.", Required = true };
        internal Option<string> Bandwidth { get; } = new("--bandwidth") { Description = "Bandwidth limit, e.g. 100MiB/s, or 'unlimited'.", DefaultValueFactory = _ => "unlimited" };
        internal Option<string> MaxDowntime { get; } = new("--max-downtime") { Description = "Downtime limit, e.g. 300ms.", DefaultValueFactory = _ => "300ms" };
        internal Option<string?> DowntimeBudget { get; } = new("--downtime-budget") { Description = "The most downtime to accept if the migration would not converge otherwise, e.g. 1s." };
        internal Option<bool> Postcopy { get; } = new("--postcopy") { Description = "Allow switching to postcopy when pre-copy cannot converge." };
        internal Option<string> Strategy { get; } = new Option<string>("--strategy")
        {
            Description = "QEMU's tools to use: auto (chosen from the measured dirty rate, hot set and bandwidth), precopy, xbzrle, multifd or postcopy.",
            DefaultValueFactory = _ => "auto",
        }.AcceptOnlyFromAmong("auto", "precopy", "xbzrle", "multifd", "postcopy");
        internal Option<string> Deadline { get; } = new("--deadline") { Description = "Abort when not completed after this long, e.g. 60s; the source keeps running.", DefaultValueFactory = _ => "60s" };
        internal Option<string?> MigrateUri { get; } = new("--migrate-uri") { Description = "URI of the migration stream, e.g. tcp://10.0.0.2 (default: libvirt's choice)." };
        internal Option<bool> Tls { get; } = new("--tls") { Description = "Encrypt the migration stream with TLS (VIR_MIGRATE_TLS); both hosts' qemu.conf need x509 certificates (see README)." };
        internal Option<bool> Json { get; } = new("--json") { Description = "Print exactly one JSON object and nothing else on stdout." };
        internal Option<bool> Verbose { get; } = new("--verbose") { Description = "Log what the migrator measures and decides to stderr." };
        internal Option<bool> Metrics { get; } = new("--metrics") { Description = "Listen to the MigrateKit meter during the run and print every instrument at the end (to stderr with --json)." };
        internal Option<bool> Calibrate { get; } = new("--calibrate") { Description = "First measure the two hosts' stop-and-copy speed and fixed downtime by migrating two small probe guests (in /var/tmp/migratekit-probe, visible to both hosts)." };
        internal Option<string?> Report { get; } = ReportCommands.CreateOption();
        internal CalibrationStoreOptions CalibrationStore { get; } = new("each host pair's stop-and-copy speed and fixed downtime");

        internal void AddTo(Command command)
        {
            command.Options.Add(Calibrate);
            CalibrationStore.AddTo(command);
            command.Options.Add(Verbose);
            command.Options.Add(Metrics);
            command.Options.Add(From);
            command.Options.Add(To);
            command.Options.Add(Bandwidth);
            command.Options.Add(MaxDowntime);
            command.Options.Add(DowntimeBudget);
            command.Options.Add(Postcopy);
            command.Options.Add(Strategy);
            command.Options.Add(Deadline);
            command.Options.Add(MigrateUri);
            command.Options.Add(Tls);
            command.Options.Add(Json);
            command.Options.Add(Report);
        }

        internal LibvirtMigrator Migrator(ParseResult p) => new(CliLogging.For<LibvirtMigrator>(p.GetValue(Verbose)));

        internal LibvirtMigrationOptions Read(ParseResult p, bool unsafeDisks, string? defaultMigrateUri = null)
        {
            ReportCommands.Check(p.GetValue(Report));
            if (string.Equals(p.GetValue(From), p.GetValue(To), StringComparison.Ordinal))
            {
                throw new FormatException($"--from and --to are the same URI ('{p.GetValue(From)}'): a domain migrates between two hosts.");
            }

            ulong? bandwidth = CliInput.Parse(p, Bandwidth, Units.ParseRate);
            var options = new LibvirtMigrationOptions
            {
                MaxDowntime = CliInput.Parse(p, MaxDowntime, Units.ParseDuration),
                DowntimeBudget = CliInput.ParseOptional(p, DowntimeBudget, Units.ParseDuration),
                BandwidthLimit = bandwidth is { } b ? (b <= long.MaxValue ? (long)b : throw new FormatException($"--bandwidth {p.GetValue(Bandwidth)} is too large.")) : null,
                AllowPostcopy = p.GetValue(Postcopy),
                Strategy = Enum.Parse<LibvirtStrategy>(p.GetValue(Strategy) ?? "auto", ignoreCase: true),
                Deadline = CliInput.Parse(p, Deadline, Units.ParseDuration),
                MigrationUri = p.GetValue(MigrateUri) ?? defaultMigrateUri,
                Unsafe = unsafeDisks,
                Tls = p.GetValue(Tls),
                CalibrateHostPair = p.GetValue(Calibrate),
                CalibrationStore = CalibrationStore.Store(p, p.GetValue(Verbose)),
            };
            CliInput.Validate(options.Validate, new Dictionary<string, Option>
            {
                [nameof(LibvirtMigrationOptions.MaxDowntime)] = MaxDowntime,
                [nameof(LibvirtMigrationOptions.DowntimeBudget)] = DowntimeBudget,
                [nameof(LibvirtMigrationOptions.BandwidthLimit)] = Bandwidth,
                [nameof(LibvirtMigrationOptions.Deadline)] = Deadline,
                [nameof(LibvirtMigrationOptions.MigrationUri)] = MigrateUri,
            });
            if (bandwidth is { } rate && rate % (1UL << 20) > 0)
            {
                // libvirt's bandwidth parameter is whole MiB/s: say what the migration will really get.
                Console.Error.WriteLine($"migratekit: libvirt takes whole MiB/s: --bandwidth {p.GetValue(Bandwidth)} runs at {(rate + (1UL << 20) - 1) >> 20} MiB/s.");
            }

            return options;
        }

        /// <summary>What the status line says while the migrator works before its first iteration.</summary>
        internal void Starting(ParseResult p, LiveStatus status) =>
            status.Set(p.GetValue(Calibrate)
                ? "calibrating the host pair (two probe migrations), measuring the dirty rate, then migrating"
                : "measuring the dirty rate, then migrating", LiveStatus.Rounds.Libvirt);

        /// <summary>Runs a migrating command's work (see <see cref="Output.RunMigrationAsync"/>).</summary>
        internal Task<int> RunAsync(ParseResult p, Func<LiveStatus, IProgress<MigrationProgress>?, Task<RunOutcome>> work) =>
            Output.RunMigrationAsync(p.GetValue(Json), p.GetValue(Verbose), p.GetValue(Metrics), p.GetValue(Report), work);
    }

    private static Command MigrateCommand()
    {
        var set = new MigrationOptionSet();
        var domain = new Argument<string>("DOMAIN") { Description = "The running domain to migrate." };
        var unsafeDisks = new Option<bool>("--unsafe") { Description = "Migrate even if libvirt deems the disk setup unsafe (shared disks without cache=none)." };
        var command = new Command("migrate", "Live-migrate a running libvirt domain under MigrateKit's policy, with live progress and the final report.\n" +
            "Example: migratekit libvirt migrate web1 --from qemu:///system --to qemu+ssh://host2/system --bandwidth 100MiB/s --max-downtime 300ms");
        command.Arguments.Add(domain);
        set.AddTo(command);
        command.Options.Add(unsafeDisks);
        command.SetAction(async (parse, ct) =>
        {
            LibvirtMigrationOptions options;
            try
            {
                options = set.Read(parse, parse.GetValue(unsafeDisks));
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit: {ex.Message}");
                return 2;
            }

            return await set.RunAsync(parse, async (status, progress) =>
            {
                set.Starting(parse, status);
                MigrationReport report = await set.Migrator(parse).MigrateAsync(parse.GetValue(set.From)!, parse.GetValue(domain)!, parse.GetValue(set.To)!, options, progress, ct).ConfigureAwait(false);
                return new RunOutcome(report, report.Status == MigrationStatus.Completed, null, 0, "libvirt", report.DowntimeMs);
            }).ConfigureAwait(false);
        });
        return command;
    }

    private static Command DemoCommand()
    {
        var set = new MigrationOptionSet();
        var memory = new Option<string>("--memory") { Description = "Guest memory, e.g. 1GiB.", DefaultValueFactory = _ => "1GiB" };
        var workload = new Option<string>("--workload") { Description = "Guest program: sweep, hotcold, random, verify or fill.", DefaultValueFactory = _ => "verify" };
        var hot = new Option<string>("--hot") { Description = "Size of the set the workload rewrites, e.g. 99MiB; by default 64 MiB, or half the memory above its first MiB where that is less.", DefaultValueFactory = _ => "64MiB" };
        var command = new Command("demo", "Define a transient domain running a guest program on the source host, migrate it under MigrateKit's policy, check the guest on the destination and clean up.\n" +
            "Example: migratekit libvirt demo --from qemu:///system --to 'qemu:///system?socket=/var/lib/migratekit-harness/host2/run/libvirt-sock' --memory 1GiB --workload sweep --hot 99MiB --bandwidth 100MiB/s --max-downtime 300ms");
        set.AddTo(command);
        command.Options.Add(memory);
        command.Options.Add(workload);
        command.Options.Add(hot);
        command.SetAction(async (parse, ct) =>
        {
            LibvirtMigrationOptions options;
            ulong mem, hotBytes;
            string name = parse.GetValue(workload)!;
            try
            {
                options = set.Read(parse, unsafeDisks: true, defaultMigrateUri: "tcp://127.0.0.1");
                mem = CliInput.Parse(parse, memory, Units.ParseBytes);
                hotBytes = parse.GetResult(hot) is { Implicit: false } ? CliInput.Parse(parse, hot, Units.ParseBytes) : Workloads.DefaultHot(mem);
                if (Array.IndexOf(Workloads.Names, name) < 0)
                {
                    throw new FormatException($"--workload '{name}': use {string.Join(", ", Workloads.Names)}.");
                }

                if (mem < (16UL << 20) || mem % (1UL << 20) != 0 || mem > (3UL << 30))
                {
                    throw new FormatException($"--memory {parse.GetValue(memory)}: the guest has 16 MiB to 3 GiB of memory, in whole MiB.");
                }

                Workloads.Check(name, mem, hotBytes);
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException)
            {
                Console.Error.WriteLine($"migratekit: {ex.Message}");
                return 2;
            }

            return await set.RunAsync(parse, (status, progress) =>
                LibvirtDemo.RunAsync(set.Migrator(parse), new LibvirtDemoPlan(parse.GetValue(set.From)!, parse.GetValue(set.To)!, mem, name, hotBytes), options,
                    status, () => set.Starting(parse, status), progress, ct)).ConfigureAwait(false);
        });
        return command;
    }

    private static Command DirtyRateCommand()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "The running domain." };
        var connect = new Option<string>("--connect") { Description = "Libvirt URI of the domain's host.", DefaultValueFactory = _ => "qemu:///system" };
        var mode = new Option<string>("--mode") { Description = "page-sampling, dirty-bitmap or dirty-ring. The last two count KVM's dirty pages, so a TCG guest is refused; dirty-ring needs the kvm dirty-ring feature and QEMU 8.0 or later.", DefaultValueFactory = _ => "page-sampling" };
        var periodOption = new Option<string>("--period") { Description = "Sampling period, whole seconds from 1s to 60s.", DefaultValueFactory = _ => "1s" };
        var json = new Option<bool>("--json") { Description = "Print exactly one JSON object and nothing else on stdout." };
        var command = new Command("dirtyrate", "Measure a running domain's dirty rate with libvirt's dirty-rate calculation.\n" +
            "Example: migratekit libvirt dirtyrate web1 --connect qemu:///system --mode dirty-bitmap --period 2s");
        command.Arguments.Add(domain);
        command.Options.Add(connect);
        command.Options.Add(mode);
        command.Options.Add(periodOption);
        command.Options.Add(json);
        command.SetAction(async (parse, ct) =>
        {
            DirtyRateMode m;
            TimeSpan period;
            try
            {
                m = ParseMode(parse.GetValue(mode)!);
                period = CliInput.Parse(parse, periodOption, Units.ParseDuration);
                if (period < TimeSpan.FromSeconds(1) || period > TimeSpan.FromSeconds(60) || period.Ticks % TimeSpan.TicksPerSecond != 0)
                {
                    // libvirt's calc_time is whole seconds; QEMU takes 1 to 60.
                    throw new FormatException($"--period {parse.GetValue(periodOption)}: use whole seconds from 1s to 60s.");
                }
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit: {ex.Message}");
                return 2;
            }

            string name = parse.GetValue(domain)!;
            var options = new LibvirtDirtyRateProbeOptions { Mode = m, Periods = [period] };
            try
            {
                // The probe's checks come first: a mode that harms this guest is refused before it starts
                // (QEMU 7.2 under TCG dies in the dirty-bitmap calculation), as is a migrating or paused domain.
                Task<IReadOnlyList<LibvirtDirtyRatePoint>> Measure() => new LibvirtDirtyRateProbe().MeasureAsync(parse.GetValue(connect)!, name, options, ct);
                LibvirtDirtyRatePoint point = (parse.GetValue(json)
                    ? await Measure().ConfigureAwait(false)
                    : await Spectre.Console.AnsiConsole.Status().StartAsync($"measuring the dirty rate of {Spectre.Console.Markup.Escape(name)} for {period.TotalSeconds:F0} s",
                        _ => Measure()).ConfigureAwait(false))[0];
                if (parse.GetValue(json))
                {
                    Console.Out.WriteLine(JsonSerializer.Serialize(
                        // libvirt's "megabytes" are MiB; JSON carries bytes like every other figure the CLI prints.
                        new JsonDirtyRate(name, point.Mode, point.Period.TotalSeconds, (ulong)point.MiBPerSecond << 20, [.. point.VcpuMiBPerSecond.Select(v => (ulong)v << 20)]),
                        LibvirtJsonContext.Default.JsonDirtyRate));
                }
                else
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{name}: {point.MiBPerSecond} MiB/s over {point.Period.TotalSeconds:F0} s ({point.Mode})"));
                    for (int i = 0; i < point.VcpuMiBPerSecond.Count; i++)
                    {
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  vcpu {i}: {point.VcpuMiBPerSecond[i]} MiB/s"));
                    }
                }

                return 0;
            }
            catch (LibvirtDirtyRateException ex)
            {
                Console.Error.WriteLine($"migratekit libvirt dirtyrate: {ex.Message}");
                return 4;
            }
            catch (Exception ex) when (CliInput.EndsACommand(ex))
            {
                return CliInput.Fail(ex);
            }
        });
        return command;
    }

    /// <summary>Parses a dirty-rate mode name.</summary>
    internal static DirtyRateMode ParseMode(string text) => text switch
    {
        "page-sampling" => DirtyRateMode.PageSampling,
        "dirty-bitmap" => DirtyRateMode.DirtyBitmap,
        "dirty-ring" => DirtyRateMode.DirtyRing,
        _ => throw new FormatException($"--mode '{text}': use page-sampling, dirty-bitmap or dirty-ring."),
    };
}
