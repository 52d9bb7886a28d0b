using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using MigrateKit.Guests;
using MigrateKit.Libvirt;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>
/// Runs <c>bench libvirt-strategies</c>: per guest one transient boot-sector domain, migrated back
/// and forth between the two hosts by each configuration in turn (no reboot between runs), each
/// migration checked on the host it should run on; the domain is destroyed on both hosts at the end.
/// </summary>
internal static class StrategyBench
{
    private static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(90);

    /// <summary>How long a guest may take to report its next pass after a migration, or three of its passes timed at boot when longer.</summary>
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The longest pass the bench waits for when it times the guest's second pass.</summary>
    private static readonly TimeSpan LongestPass = TimeSpan.FromSeconds(180);

    /// <summary>Runs the schedule; <paramref name="ended"/> sees each row as its migration ends (with its guest's name).</summary>
    internal static async Task<IReadOnlyList<StrategyBenchGuestRuns>> RunAsync(StrategyBenchSettings s,
        Action<string, StrategyBenchRun> ended, CancellationToken ct)
    {
        var results = new List<StrategyBenchGuestRuns>();
        foreach (StrategyBenchGuest guest in s.Guests)
        {
            results.Add(await RunGuestAsync(s, guest, row => ended(guest.Name, row), ct).ConfigureAwait(false));
        }

        return results;
    }

    private static async Task<StrategyBenchGuestRuns> RunGuestAsync(StrategyBenchSettings s, StrategyBenchGuest guest, Action<StrategyBenchRun> ended, CancellationToken ct)
    {
        string name = $"migratekit-bench-{guest.Name}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";
        string dir = Path.Combine(LibvirtDemo.WorkRoot, name);
        Directory.CreateDirectory(dir);
        var domain = new BootSectorDomain(name, s.Memory, Path.Combine(dir, "boot.img"), Path.Combine(dir, "com1.log"), BootSectorDomain.KvmAvailable);
        var rows = new List<StrategyBenchRun>();
        try
        {
            await File.WriteAllBytesAsync(domain.ImagePath, BootSector.Build(guest.Program()), ct).ConfigureAwait(false);
            (string here, TimeSpan pass) = await BootAsync(domain, s, ct).ConfigureAwait(false);

            // A slow vCPU (nested virtualization, a busy host) can take longer than the check's 30 s for one pass of a large set.
            TimeSpan check = pass * 3 > CheckTimeout ? pass * 3 : CheckTimeout;
            foreach (StrategyBenchSlot slot in s.Schedule().Where(x => x.Guest == guest.Name))
            {
                ct.ThrowIfCancellationRequested();
                string there = here == s.From ? s.To : s.From;
                var row = new StrategyBenchRun { Run = slot.Run, Position = slot.Position, Config = slot.Config.Name(), Forward = here == s.From };
                row = await MigrateOnceAsync(row, s, slot.Config, domain, (name, here, there), check, ct).ConfigureAwait(false);
                rows.Add(row);
                ended(row);

                // The next migration starts wherever the domain runs now; a guest lost on the way boots again on --from.
                here = Where(name, s) ?? (await BootAsync(domain, s, ct).ConfigureAwait(false)).Host;
            }

            return new StrategyBenchGuestRuns(guest, rows, pass.TotalMilliseconds);
        }
        finally
        {
            LibvirtDemo.Remove(s.From, s.To, name, dir);
        }
    }

    /// <summary>
    /// Starts the domain on <c>--from</c> (after removing what is left of it on either host) and waits
    /// until its program has made two whole passes: its working set exists before the first migration,
    /// and the second pass times how fast the guest runs on this machine.
    /// </summary>
    private static async Task<(string Host, TimeSpan Pass)> BootAsync(BootSectorDomain domain, StrategyBenchSettings s, CancellationToken ct)
    {
        TransientDomains.Destroy(s.From, domain.Name);
        TransientDomains.Destroy(s.To, domain.Name);

        // A guest booted again counts from 1: start a fresh log.
        File.Delete(domain.SerialPath);
        using (LibvirtConnection connection = LibvirtConnection.Open(s.From))
        {
            using LibvirtDomain created = connection.CreateDomain(domain.ToXml());
        }

        await domain.WaitForPassAsync(1, BootTimeout, ct).ConfigureAwait(false);
        long first = Stopwatch.GetTimestamp();
        await domain.WaitForPassAsync(2, LongestPass, ct).ConfigureAwait(false);
        return (s.From, Stopwatch.GetElapsedTime(first));
    }

    /// <summary>Migrates once with <paramref name="config"/>, then checks the guest goes on where it should run.</summary>
    private static async Task<StrategyBenchRun> MigrateOnceAsync(StrategyBenchRun row, StrategyBenchSettings s, StrategyBenchConfig config, BootSectorDomain domain,
        (string Name, string Here, string There) move, TimeSpan checkTimeout, CancellationToken ct)
    {
        try
        {
            row = config.IsPlain()
                ? await StrategyBenchPlain.RunAsync(row, s, config, move, ct).ConfigureAwait(false)
                : await MigrateKitAsync(row, s, move, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (CliInput.EndsACommand(ex) || ex is MigrationException)
        {
            return row with { Outcome = StrategyBenchOutcome.Failed, Reason = ex.Message };
        }

        if (row.Outcome == StrategyBenchOutcome.Failed)
        {
            return row;
        }

        string host = row.Outcome == StrategyBenchOutcome.Converged ? move.There : move.Here;
        if (LibvirtDemo.StateOn(host, move.Name) != DomainState.Running)
        {
            return row with { Outcome = StrategyBenchOutcome.Failed, Reason = $"{Prefix(row.Reason)}the domain is not running on {host}" };
        }

        try
        {
            uint last = domain.ReadSerial().LastPass;
            await domain.WaitForPassAsync(last + 1, checkTimeout, ct).ConfigureAwait(false);
            return row;
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            return row with { Outcome = StrategyBenchOutcome.Failed, Reason = $"{Prefix(row.Reason)}the guest did not go on on {host}: {ex.Message}" };
        }
    }

    private static string Prefix(string? reason) => reason is null ? "" : reason + "; ";

    /// <summary>MigrateKit's <c>auto</c>, uncalibrated and with no store, under the same limits as the plain runs.</summary>
    private static async Task<StrategyBenchRun> MigrateKitAsync(StrategyBenchRun row, StrategyBenchSettings s, (string Name, string Here, string There) move, CancellationToken ct)
    {
        LibvirtMigrationOptions options = MigrateKitOptions(s);
        long started = Stopwatch.GetTimestamp();
        MigrationReport report = await new LibvirtMigrator().MigrateAsync(move.Here, move.Name, move.There, options, null, ct).ConfigureAwait(false);
        double wall = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return (row with
        {
            Outcome = report.Status switch
            {
                MigrationStatus.Completed => StrategyBenchOutcome.Converged,
                MigrationStatus.Aborted => StrategyBenchOutcome.NotConverged,
                _ => StrategyBenchOutcome.Failed,
            },
            Reason = report.Reason,
            WallMs = wall,
            JobMs = report.TotalMs,
            DowntimeMs = report.DowntimeMs,
            Bytes = report.BytesSent,
            Strategy = report.Strategy,
            PredictedDowntimeMs = report.PredictedDowntimeMs,
            Decisions = [.. report.Decisions.Select(d => $"{d.Action}: {d.Reason}")],
        }).WithForecastError();
    }

    /// <summary>The options of the MigrateKit runs: <c>auto</c>, the bench's limits, no calibration probe, the bench's store.</summary>
    internal static LibvirtMigrationOptions MigrateKitOptions(StrategyBenchSettings s) => new()
    {
        Strategy = LibvirtStrategy.Auto,
        BandwidthLimit = s.Bandwidth,
        MaxDowntime = s.MaxDowntime,
        Deadline = s.Deadline,
        MigrationUri = StrategyBenchSettings.MigrationUri,
        Unsafe = true,
        CalibrationStore = s.Store,
    };

    /// <summary>The host the domain runs on, or null when it runs on neither.</summary>
    private static string? Where(string name, StrategyBenchSettings s) =>
        LibvirtDemo.StateOn(s.From, name) == DomainState.Running ? s.From : LibvirtDemo.StateOn(s.To, name) == DomainState.Running ? s.To : null;
}

/// <summary>One guest's migrations.</summary>
/// <param name="Guest">The guest.</param>
/// <param name="Runs">Every migration, in the order made.</param>
/// <param name="PassMs">How long the guest's second pass took after it booted: how fast the guest dirties on this machine.</param>
internal sealed record StrategyBenchGuestRuns(StrategyBenchGuest Guest, IReadOnlyList<StrategyBenchRun> Runs, double PassMs);
