using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.Linq;
using System.Text.Json;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using Spectre.Console;

namespace MigrateKit.Cli;

/// <summary><c>migratekit libvirt plan DOMAIN</c>: plans a libvirt domain's migration from libvirt's dirty-rate calculation.</summary>
internal static class LibvirtPlanCommand
{
    internal static Command Create()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "The running domain." };
        var connect = new Option<string>("--connect") { Description = "Libvirt URI of the domain's host.", DefaultValueFactory = _ => "qemu:///system" };
        var bandwidth = new Option<string>("--bandwidth") { Description = "The bandwidth the migration would get, e.g. 100MiB/s.", DefaultValueFactory = _ => "100MiB/s" };
        var maxDowntime = new Option<string>("--max-downtime") { Description = "Downtime limit, e.g. 300ms.", DefaultValueFactory = _ => "300ms" };
        var deadline = new Option<string?>("--deadline") { Description = "The time the whole migration may take, e.g. 30s." };
        var mode = new Option<string>("--mode") { Description = "How libvirt measures: page-sampling or dirty-bitmap.", DefaultValueFactory = _ => "page-sampling" };
        var json = new Option<bool>("--json") { Description = "Print exactly one JSON object and nothing else on stdout." };
        var command = new Command("plan", "Plan a running domain's migration before starting it: libvirt's dirty-rate calculation over 1, 2 and 5 s gives the curve " +
            "of distinct pages dirtied against time; the plan says whether pre-copy converges, in how many rounds, how long it takes, what it sends, the downtime, " +
            "the smallest bandwidth that converges and a recommended setting. Exit code 0 when it converges, 3 when it does not, 4 when it cannot be made (no such domain, libvirt unreachable).\n" +
            "Example: migratekit libvirt plan web1 --connect qemu:///system --bandwidth 100MiB/s --max-downtime 300ms");
        command.Arguments.Add(domain);
        foreach (Option option in (Option[])[connect, bandwidth, maxDowntime, deadline, mode, json])
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, ct) =>
        {
            double rate;
            MigrationOptions options;
            TimeSpan? limit;
            LibvirtDirtyRateProbeOptions probe;
            try
            {
                if (string.IsNullOrWhiteSpace(parse.GetValue(domain)))
                {
                    throw new FormatException("DOMAIN is empty: name the running domain to plan.");
                }

                rate = CliInput.Parse(parse, bandwidth, Units.ParseRate) is ulong r ? r : throw new FormatException($"--bandwidth {parse.GetValue(bandwidth)}: a plan needs a bandwidth, e.g. 100MiB/s.");
                rate = rate >= Memory.GuestMemoryLayout.PageSize ? rate : throw new FormatException($"--bandwidth {parse.GetValue(bandwidth)}: a plan needs at least 4KiB/s.");
                options = new MigrationOptions { MaxDowntime = CliInput.Parse(parse, maxDowntime, Units.ParseDuration) };
                CliInput.Validate(options.Validate, new Dictionary<string, Option> { [nameof(MigrationOptions.MaxDowntime)] = maxDowntime });
                if (options.MaxDowntime > TimeSpan.FromSeconds(2000))
                {
                    // As libvirt migrate refuses it: a plan for a limit QEMU cannot take is no plan.
                    throw new FormatException($"--max-downtime {parse.GetValue(maxDowntime)}: QEMU takes a limit of at most 2000 s.");
                }

                limit = CliInput.ParseDeadline(parse, deadline);

                probe = new LibvirtDirtyRateProbeOptions { Mode = LibvirtCommands.ParseMode(parse.GetValue(mode)!) };
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException)
            {
                Console.Error.WriteLine($"migratekit libvirt plan: {CliInput.WithoutParameterName(ex)}");
                return 2;
            }

            try
            {
                LibvirtPlan plan = await new LibvirtPlanner().PlanAsync(parse.GetValue(connect)!, parse.GetValue(domain)!, rate, options, probe, limit, ct).ConfigureAwait(false);
                var result = new PlanResult(plan.Observation, new ObservationCost(0, 0), plan.Plan);
                if (parse.GetValue(json))
                {
                    Console.WriteLine(JsonSerializer.Serialize(PlanJson.Of(result, "libvirt", parse.GetValue(domain)!, limit), PlanJsonContext.Default.PlanJson));
                }
                else
                {
                    Write(plan);
                }

                return plan.Plan.Converges ? 0 : 3;
            }
            catch (Exception ex) when (ex is LibvirtDirtyRateException or LibvirtSharp.LibvirtException)
            {
                Console.Error.WriteLine($"migratekit libvirt plan: {ex.Message}");
                return 4;
            }
        });
        return command;
    }

    private static void Write(LibvirtPlan p)
    {
        MigrationPlan plan = p.Plan;
        foreach (LibvirtDirtyRatePoint point in p.Points)
        {
            AnsiConsole.WriteLine(string.Create(CultureInfo.InvariantCulture, $"measured: {point.MiBPerSecond:F0} MiB/s over {point.Period.TotalSeconds:F0} s ({point.Mode}): {point.DistinctPages()} distinct pages"));
        }

        string downtime = plan.Downtime is TimeSpan d ? string.Create(CultureInfo.InvariantCulture, $"{d.TotalMilliseconds:F0} ms") : "-";
        AnsiConsole.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"plan: {plan.Verdict}; {plan.Rounds.Count} rounds, {plan.TotalTime.TotalSeconds:F1} s, {Units.FormatBytes(plan.BytesSent)}, downtime {downtime}, throttle up to {plan.MaxThrottlePercent} %"));
        AnsiConsole.WriteLine(plan.Reason);
        if (plan.MinimumBandwidthBytesPerSecond is double min)
        {
            AnsiConsole.WriteLine($"smallest bandwidth that converges: {Units.FormatRate(min)}");
        }

        AnsiConsole.WriteLine($"recommended: {Units.FormatRate(plan.Recommended.BandwidthBytesPerSecond)}, limit {plan.Recommended.MaxDowntime.TotalMilliseconds:F0} ms, throttle up to {plan.Recommended.MaxThrottlePercent} %{(plan.Recommended.Postcopy ? ", postcopy" : string.Empty)}: {plan.Recommended.Reason}");
    }
}
