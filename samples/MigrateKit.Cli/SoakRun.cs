using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.Cli;

/// <summary>What <c>bench soak</c> runs.</summary>
internal sealed record SoakSettings
{
    /// <summary>Measured migrations.</summary>
    internal required int Count { get; init; }

    /// <summary>Migrations before the start figures are taken.</summary>
    internal required int WarmUp { get; init; }

    /// <summary>"hostvm" or "microvm".</summary>
    internal required string Vm { get; init; }

    /// <summary>Guest memory in bytes.</summary>
    internal required ulong Memory { get; init; }

    /// <summary>Whether the engine and the receiver log to stderr.</summary>
    internal bool Verbose { get; init; }

    /// <summary>
    /// The first VM: the self-checking workload over half of memory above 1 MiB, paced like
    /// <c>demo</c> (25,000 pages/s on a HostVm, unpaced on a MicroVm), no bandwidth limit.
    /// </summary>
    internal SourceSettings Source() => new()
    {
        Memory = Memory,
        Workload = "verify",
        Hot = Math.Max(GuestMemoryLayout.PageSize, (Memory - Workloads.Base) / 2 / GuestMemoryLayout.PageSize * GuestMemoryLayout.PageSize),
        MaxDowntime = TimeSpan.FromMilliseconds(300),
        Tracker = "bitmap",
        Vm = Vm,
        Pace = Vm == VmKind.Host ? 25_000 : 0,
        Verbose = Verbose,
    };
}

/// <summary>One migration of the soak: which way, whether it was verified, what it cost and what the process held after it.</summary>
internal sealed record SoakMigration
{
    public required int Index { get; init; }

    public required string Direction { get; init; }

    public required bool Verified { get; init; }

    public required string Detail { get; init; }

    public double? DowntimeMs { get; init; }

    public required double MigrateMs { get; init; }

    public required int Rounds { get; init; }

    public required ulong BytesSent { get; init; }

    public required ProcessStats After { get; init; }
}

/// <summary>
/// <c>bench soak</c>: migrates one VM back and forth over loopback TCP with mutual TLS, each
/// migration from the VM the previous one built, disposing the side left behind, and compares
/// what the process holds (descriptors, threads, mappings, RSS) before and after.
/// </summary>
internal sealed class SoakRun
{
    /// <summary>Self-checking passes the destination guest must complete after each migration.</summary>
    internal const int Passes = 2;

    /// <summary>The RSS growth allowed between the start and the end.</summary>
    internal const long RssGrowthLimit = 64L << 20;

    /// <summary>
    /// How far the mapping count may move between the start and the end without a leak: measured
    /// here, settled runs of 10 to 100 migrations ended 0 to 3 lines above or below their start
    /// (the GC's and the JIT's commit splits, stacks placed next to other neighbours). A VM, a
    /// tracker or a thread left behind by every migration adds at least one line each time.
    /// </summary>
    internal const int MappingsNoise = 4;

    private readonly SoakSettings _settings;
    private readonly SourceSettings _source;
    private readonly MigrationTlsOptions _sending;
    private readonly MigrationTlsOptions _receiving;
    private readonly Action<string> _line;

    private SoakRun(SoakSettings settings, MigrationTlsOptions sending, MigrationTlsOptions receiving, Action<string> line)
    {
        _settings = settings;
        _source = settings.Source();
        _sending = sending;
        _receiving = receiving;
        _line = line;
    }

    /// <summary>
    /// Runs the soak with certificates 'certs create' would make, in a temporary directory removed
    /// at the end; <paramref name="line"/> gets one line per step (nothing with --json).
    /// </summary>
    internal static async Task<SoakResult> RunAsync(SoakSettings settings, Action<string> line, CancellationToken ct)
    {
        DirectoryInfo dir = Directory.CreateTempSubdirectory("migratekit-soak-");
        try
        {
            MigrationTlsCertificates.WriteTrial(dir.FullName, TimeSpan.FromDays(1));
            string Pem(string name) => Path.Combine(dir.FullName, name + ".pem");
            MigrationTlsOptions sending = MigrationTlsOptions.FromPemFiles(Pem("source"), Pem("source-key"), Pem("ca"), ["destination"]);
            MigrationTlsOptions receiving = MigrationTlsOptions.FromPemFiles(Pem("destination"), Pem("destination-key"), Pem("ca"), ["source"]);
            return await new SoakRun(settings, sending, receiving, line).RunAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private async Task<SoakResult> RunAsync(CancellationToken ct)
    {
        _line($"soak: {_settings.Count} migrations of a {_settings.Vm} with {Units.FormatBytes(_settings.Memory)} running the verify workload, " +
            $"back and forth over loopback TCP with mutual TLS (certificates made in a temporary directory)");
        long started = Stopwatch.GetTimestamp();
        var migrations = new List<SoakMigration>();
        IWorkloadVm vm = MigrationRunner.StartSource(_source, LiveStatus.Lines(_settings.Verbose), ct);
        try
        {
            for (int i = 1; i <= _settings.WarmUp; i++)
            {
                (vm, SoakMigration warm) = await MigrateOnceAsync(vm, -i, ct).ConfigureAwait(false);
                _line($"warm-up {i}/{_settings.WarmUp}: {Describe(warm)}");
                if (!warm.Verified)
                {
                    // Reported like a measured migration (with a negative index): it is why none was measured.
                    migrations.Add(warm);
                    return new SoakResult(_settings, migrations, ProcessStats.Take(), ProcessStats.Take(), Stopwatch.GetElapsedTime(started));
                }
            }

            ProcessStats.LoadReferencedAssemblies();
            ProcessStats start = ProcessStats.Settle(ct);
            _line($"start{(_settings.WarmUp > 0 ? $" (after {_settings.WarmUp} warm-up migration{(_settings.WarmUp == 1 ? "" : "s")})" : "")}: {start}");
            for (int i = 1; i <= _settings.Count; i++)
            {
                (vm, SoakMigration migration) = await MigrateOnceAsync(vm, i, ct).ConfigureAwait(false);
                migrations.Add(migration);
                _line($"{i,4}/{_settings.Count}: {Describe(migration)}");
                if (!migration.Verified)
                {
                    break;
                }
            }

            ProcessStats end = ProcessStats.Settle(ct);
            _line($"end: {end}");
            return new SoakResult(_settings, migrations, start, end, Stopwatch.GetElapsedTime(started));
        }
        finally
        {
            vm.Dispose();
        }
    }

    private static string Describe(SoakMigration m) =>
        $"{m.Direction} {(m.Verified ? "verified" : "NOT VERIFIED")}, downtime {m.DowntimeMs?.ToString("F1", System.Globalization.CultureInfo.InvariantCulture) ?? "-"} ms, " +
        $"{m.Rounds} rounds, {m.MigrateMs:F0} ms; {m.Detail} ({m.After})";

    /// <summary>
    /// Migrates <paramref name="source"/> to a new VM and checks it. Returns the VM that runs the
    /// guest afterwards (the new one when verified; the source is disposed then) and the row.
    /// </summary>
    private async Task<(IWorkloadVm Running, SoakMigration Row)> MigrateOnceAsync(IWorkloadVm source, int index, CancellationToken ct)
    {
        // Odd migrations go A→B, even ones B→A; warm-ups (negative) count the same way.
        string direction = Math.Abs(index) % 2 == 1 ? "A→B" : "B→A";
        long t0 = Stopwatch.GetTimestamp();
        (MigrationReport report, ReceiveResult? received) = await TransferAsync(source, ct).ConfigureAwait(false);
        double migrateMs = Math.Round(Stopwatch.GetElapsedTime(t0).TotalMilliseconds, 1);
        IWorkloadVm? destination = received?.Target as IWorkloadVm;
        string detail;
        bool verified = false;
        if (report.Status != MigrationStatus.Completed || destination is null)
        {
            detail = $"{report.Status.ToString().ToLowerInvariant()}: {received?.Reason ?? report.Reason}";
        }
        else
        {
            // The pace is the host's limit on the guest, not part of the guest's state: set it again.
            destination.SetPaceLimit(source.PaceLimit);
            (bool ok, string check, _) = MigrationRunner.CheckDestination(destination, verifier: true, Passes);
            verified = ok && report.DigestsMatched == true && report.SourceMemoryVerified != false;
            detail = $"digests {(report.DigestsMatched == true ? "matched" : "differ")}, {check}";
        }

        IWorkloadVm running = verified ? destination! : source;
        (verified ? source : destination)?.Dispose();
        var row = new SoakMigration
        {
            Index = index,
            Direction = direction,
            Verified = verified,
            Detail = detail,
            DowntimeMs = report.DowntimeMs,
            MigrateMs = migrateMs,
            Rounds = report.Rounds,
            BytesSent = report.BytesSent,
            After = ProcessStats.Take(),
        };
        return (running, row);
    }

    /// <summary>One migration over a new TLS listener and its connections, all closed before it returns.</summary>
    private async Task<(MigrationReport Report, ReceiveResult? Received)> TransferAsync(IWorkloadVm source, CancellationToken ct)
    {
        using var receiverCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", _receiving, null);
        MigrationReceiver receiver = MigrationRunner.Receiver(_settings.Vm, new MigrationReceiverOptions(), _settings.Verbose);
        Task<ReceiveResult> receiving = Task.Run(() => receiver.ReceiveAsync(listener, receiverCts.Token), ct);
        MigrationReport report;
        try
        {
            report = await MigrationRunner.SendAsync(source, token => MigrationConnector.ConnectAsync(listener.LocalAddress, _sending, null, token), _source, LiveStatus.Lines(false), null, ct).ConfigureAwait(false);
        }
        catch
        {
            // The receiver may still wait for a peer that will not come: end it, and drop what it built.
            await receiverCts.CancelAsync().ConfigureAwait(false);
            await DrainAsync(receiving).ConfigureAwait(false);
            throw;
        }

        if (report.Status != MigrationStatus.Completed)
        {
            // A destination that still waits for its source to reconnect is not waited for.
            receiverCts.CancelAfter(TimeSpan.FromSeconds(2));
            return (report, await DrainAsync(receiving).ConfigureAwait(false));
        }

        return (report, await receiving.ConfigureAwait(false));
    }

    private static async Task<ReceiveResult?> DrainAsync(Task<ReceiveResult> receiving)
    {
        try
        {
            ReceiveResult result = await receiving.ConfigureAwait(false);
            if (result.Status != MigrationStatus.Completed)
            {
                result.Target?.Dispose();
            }

            return result;
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or MigrationTlsException)
        {
            // The send side's outcome is the one to report.
            return null;
        }
    }
}

/// <summary>The soak's outcome: the migrations, the figures at the start and the end, and whether the targets were met.</summary>
internal sealed record SoakResult(SoakSettings Settings, IReadOnlyList<SoakMigration> Migrations, ProcessStats Start, ProcessStats End, TimeSpan Elapsed)
{
    internal int Verified => Migrations.Count(m => m.Verified);

    /// <summary>
    /// Threads at the end that were not there at the start, by name. Compared by name rather than
    /// in total: a runtime thread present through the start's settling wait may have ended by the
    /// end's, and one fewer thread is not a leak.
    /// </summary>
    internal IReadOnlyList<string> ThreadsAdded { get; } = ProcessStats.ThreadsAdded(Start, End);

    /// <summary>
    /// Every migration verified; descriptors as at the start, no thread added (<see cref="ThreadsAdded"/>),
    /// mappings within <see cref="SoakRun.MappingsNoise"/> of the start; RSS grown less than <see cref="SoakRun.RssGrowthLimit"/>.
    /// </summary>
    internal bool TargetsMet => Verified == Settings.Count && End.Fds == Start.Fds && ThreadsAdded.Count == 0
        && Math.Abs(End.Mappings - Start.Mappings) <= SoakRun.MappingsNoise && End.RssBytes - Start.RssBytes < SoakRun.RssGrowthLimit;
}
