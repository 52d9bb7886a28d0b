using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;

namespace MigrateKit.Cli;

/// <summary>
/// One plain libvirt migration, as an orchestrator calling libvirt directly would make it:
/// <c>virDomainMigrate3</c> on a thread of its own (it blocks), and a watcher that sets the downtime
/// limit on the job as soon as it exists and aborts the job at the deadline.
/// </summary>
internal static class StrategyBenchPlain
{
    /// <summary>How often the watcher looks for the job before it has set the limit: the job is young, the limit matters from its first iteration.</summary>
    private static readonly TimeSpan EarlyPoll = TimeSpan.FromMilliseconds(5);

    /// <summary>How often the watcher looks at the deadline once the limit is set.</summary>
    private static readonly TimeSpan LatePoll = TimeSpan.FromMilliseconds(50);

    /// <summary>The flags and parameters of <paramref name="config"/>.</summary>
    internal static (MigrationFlags Flags, DomainMigrationParameters Parameters) Call(StrategyBenchConfig config, StrategyBenchSettings s)
    {
        MigrationFlags flags = MigrationFlags.Live | MigrationFlags.Unsafe;
        bool xbzrle = config == StrategyBenchConfig.LibvirtXbzrle;
        flags |= config switch
        {
            StrategyBenchConfig.LibvirtDefault => MigrationFlags.None,
            StrategyBenchConfig.LibvirtAutoConverge => MigrationFlags.AutoConverge,
            StrategyBenchConfig.LibvirtXbzrle => MigrationFlags.Compressed,
            _ => throw new ArgumentOutOfRangeException(nameof(config), config, "not a plain libvirt configuration"),
        };
        var parameters = new DomainMigrationParameters
        {
            MigrationUri = StrategyBenchSettings.MigrationUri,

            // libvirt takes whole MiB/s; rounded up, as MigrateKit rounds its own limit.
            BandwidthMiBps = (ulong)((s.Bandwidth + (1L << 20) - 1) >> 20),
            CompressionMethods = xbzrle ? [MigrationCompression.Xbzrle] : null,
            XbzrleCacheBytes = xbzrle ? s.XbzrleCacheBytes : null,
        };
        return (flags, parameters);
    }

    /// <summary>Migrates domain <paramref name="name"/> from <paramref name="here"/> to <paramref name="there"/>; returns <paramref name="row"/> with what it measured.</summary>
    internal static async Task<StrategyBenchRun> RunAsync(StrategyBenchRun row, StrategyBenchSettings s, StrategyBenchConfig config, (string Name, string Here, string There) move,
        CancellationToken ct)
    {
        (MigrationFlags flags, DomainMigrationParameters parameters) = Call(config, s);
        using LibvirtConnection source = LibvirtConnection.Open(move.Here);
        using LibvirtConnection destination = LibvirtConnection.Open(move.There);
        using LibvirtDomain domain = source.LookupDomain(move.Name);
        long started = Stopwatch.GetTimestamp();
        Task<LibvirtDomain> migrate = Task.Factory.StartNew(() => domain.Migrate(destination, parameters, flags), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Task<Watch> watcher = Task.Factory.StartNew(() => WatchJob(move.Here, move.Name, s, migrate, started, ct), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        LibvirtDomain arrived;
        try
        {
            arrived = await migrate.ConfigureAwait(false);
        }
        catch (LibvirtException ex)
        {
            double wall = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            Watch w = await watcher.ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            return row with
            {
                Outcome = w.Aborted ? StrategyBenchOutcome.NotConverged : StrategyBenchOutcome.Failed,
                Reason = w.Aborted ? $"still migrating after {s.Deadline.TotalSeconds:F0} s: aborted" : ex.Message,
                WallMs = wall,
                LimitSetAtMs = w.LimitSetAtMs,
            };
        }

        using (arrived)
        {
            double wall = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            Watch w = await watcher.ConfigureAwait(false);
            JobStats stats = arrived.GetJobStats(completed: true);
            return row with
            {
                Outcome = StrategyBenchOutcome.Converged,
                WallMs = wall,
                JobMs = stats.TimeElapsedMs,
                DowntimeMs = stats.DowntimeMs,
                Bytes = stats.DataProcessed,
                LimitSetAtMs = w.LimitSetAtMs,
            };
        }
    }

    /// <summary>What the watcher did: when it set the limit (null: the job ended first), and whether it aborted the job.</summary>
    private readonly record struct Watch(double? LimitSetAtMs, bool Aborted);

    private static Watch WatchJob(string uri, string name, StrategyBenchSettings s, Task migrate, long started, CancellationToken ct)
    {
        // A connection of its own: the migrating thread's call holds the other one for the whole job.
        using LibvirtConnection connection = LibvirtConnection.Open(uri);
        using LibvirtDomain domain = connection.LookupDomain(name);
        double? limitSetAt = null;
        bool aborted = false;

        // Waits on the call without rethrowing its failure: the caller reads that from the call itself.
        Task ended = migrate.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        while (!ended.IsCompleted)
        {
            TimeSpan elapsed = Stopwatch.GetElapsedTime(started);
            try
            {
                if (limitSetAt is null && domain.GetJobStats().Type == DomainJobType.Unbounded)
                {
                    domain.SetMaxDowntime(s.MaxDowntime);
                    limitSetAt = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                }

                if (!aborted && (elapsed > s.Deadline || ct.IsCancellationRequested))
                {
                    domain.AbortJob();
                    aborted = true;
                }
            }
            catch (LibvirtException)
            {
                // The job ended (or had not begun) between the look and the call: the next look tells.
            }

            ended.Wait(limitSetAt is null ? EarlyPoll : LatePoll, CancellationToken.None);
        }

        return new Watch(limitSetAt, aborted);
    }
}
