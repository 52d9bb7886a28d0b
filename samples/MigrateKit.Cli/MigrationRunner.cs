using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Estimation;
using MigrateKit.Guests;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.Cli;

/// <summary>Settings shared by <c>demo</c> and <c>send</c>.</summary>
internal sealed record SourceSettings
{
    /// <summary>Guest memory in bytes.</summary>
    internal required ulong Memory { get; init; }

    /// <summary>The workload's name (see <see cref="Workloads.Names"/>).</summary>
    internal required string Workload { get; init; }

    /// <summary>The hot set of the hot/cold workload, in bytes.</summary>
    internal required ulong Hot { get; init; }

    /// <summary>The bandwidth limit in bytes/s, or null for none.</summary>
    internal ulong? Bandwidth { get; init; }

    /// <summary>The downtime the migration must not exceed.</summary>
    internal required TimeSpan MaxDowntime { get; init; }

    /// <summary>A MicroVm's dirty-page tracker: "bitmap" or "ring".</summary>
    internal required string Tracker { get; init; }

    /// <summary>"microvm" or "hostvm" (resolved from "auto").</summary>
    internal required string Vm { get; init; }

    /// <summary>Guest page writes per second, 0 for unpaced.</summary>
    internal required double Pace { get; init; }

    /// <summary>Whether to log the engine and receiver to stderr.</summary>
    internal bool Verbose { get; init; }

    /// <summary>The switchovers the engine's forecasts learn from; null: this process's.</summary>
    internal DowntimeHistory? History { get; init; }

    /// <summary>The page encodings the engine may use; null for the engine's default (by the bandwidth limit).</summary>
    internal PageEncodings? Encodings { get; init; }

    /// <summary>The sent-page cache for deltas in bytes; null for the engine's default.</summary>
    internal long? SentPageCache { get; init; }

    /// <summary>The engine's options these settings ask for.</summary>
    internal MigrationOptions MigrationOptions() => new()
    {
        MaxDowntime = MaxDowntime,
        Encodings = Encodings,
        SentPageCacheBytes = SentPageCache,
        BandwidthLimit = Bandwidth is ulong b ? (long)Math.Min(b, long.MaxValue) : null,
        DowntimeHistory = History ?? DowntimeHistory.Shared,
    };
}

/// <summary>What the CLI prints at the end of a migration.</summary>
internal sealed record RunOutcome(MigrationReport Report, bool Verified, string? VerifyDetail, int DestinationPasses, string Vm = "microvm", double? LibvirtDowntimeMs = null);

/// <summary>Runs migrations of MicroVms for the CLI commands.</summary>
internal static class MigrationRunner
{
    private static readonly TimeSpan WarmUpTimeout = TimeSpan.FromMinutes(2);

    /// <summary>Builds the source VM, loads the workload and lets it run one full pass.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled during the warm-up (the VM is disposed).</exception>
    internal static IWorkloadVm StartSource(SourceSettings s, LiveStatus status, CancellationToken ct = default)
    {
        status.Set($"starting a {s.Vm} with {Units.FormatBytes(s.Memory)} and running one pass of the {s.Workload} workload (untracked)");
        IWorkloadVm source;
        if (s.Vm == VmKind.Host)
        {
            HostWorkload workload = Workloads.BuildHost(s.Workload, s.Memory, s.Hot);
            source = DisposedOnFailure(new HostVm(s.Memory), vm => vm.Load(workload));
        }
        else
        {
            GuestProgram program = Workloads.Build(s.Workload, s.Memory, s.Hot);
            source = DisposedOnFailure(MicroVm.Create(new MicroVmOptions
            {
                MemorySize = s.Memory,
                DirtyRingBytes = s.Tracker == "ring" ? 256 * 1024 : 0,
                ManualDirtyLogProtect = s.Tracker == "bitmap",
            }), vm => vm.Load(program));
        }

        return DisposedOnFailure(source, vm =>
        {
            if (s.Pace > 0)
            {
                vm.SetPaceLimit(s.Pace);
            }

            vm.Start();
            WarmUp(vm, s, ct);
        });
    }

    /// <summary>Runs <paramref name="step"/> on a new VM; disposes of the VM when the step fails.</summary>
    private static T DisposedOnFailure<T>(T vm, Action<T> step)
        where T : IDisposable
    {
        try
        {
            step(vm);
            return vm;
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    // Warm up untracked: the working set exists and is non-zero before the migration starts.
    // Waited in slices, so a signal stops it at once rather than after the whole timeout.
    private static void WarmUp(IWorkloadVm vm, SourceSettings s, CancellationToken ct)
    {
        TimeSpan slice = TimeSpan.FromMilliseconds(200);
        bool fill = s.Workload == "fill";
        var waited = Stopwatch.StartNew();
        while (!(fill ? SpinWait.SpinUntil(() => vm.GetStatus()[0].Halted, slice) : vm.WaitForPass(1, slice)))
        {
            ct.ThrowIfCancellationRequested();
            VcpuStatus now = vm.GetStatus()[0];
            if (now.Fault is { } fault)
            {
                throw new InvalidOperationException($"The {s.Workload} workload faulted before its first pass: {fault}");
            }

            if (waited.Elapsed >= WarmUpTimeout)
            {
                string pace = s.Pace > 0 ? string.Create(CultureInfo.InvariantCulture, $" at --pace {s.Pace} (page writes per second): raise it or lower --memory") : string.Empty;
                throw new InvalidOperationException($"The {s.Workload} workload did not {(fill ? "finish" : "complete its first pass")} within {WarmUpTimeout.TotalSeconds:0} s{pace}.");
            }
        }
    }

    /// <summary>
    /// Migrates a running source to the destination <paramref name="connect"/> reaches, reconnecting
    /// after a lost link; the tracker lives as long as the migration.
    /// </summary>
    internal static async Task<MigrationReport> SendAsync(IWorkloadVm source, Func<CancellationToken, Task<IMigrationConnection>> connect, SourceSettings s, LiveStatus status, IProgress<MigrationProgress>? progress, CancellationToken ct)
    {
        using IDirtyPageTracker tracker = source.CreateTracker();
        var engine = new PreCopyEngine(source, tracker, s.MigrationOptions(), CliLogging.For<PreCopyEngine>(s.Verbose));
        status.Set("migrating: round 0 (all memory)", LiveStatus.Rounds.Engine);
        return await engine.MigrateAsync(connect, progress, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// A receiver that builds VMs of <paramref name="vmKind"/>, within <paramref name="accepted"/>;
    /// logs to stderr when <paramref name="verbose"/>. The kind is the destination's setting: the
    /// source's Hello names itself, but a peer's claim must not pick what this host runs.
    /// </summary>
    internal static MigrationReceiver Receiver(string vmKind, MigrationReceiverOptions accepted, bool verbose) =>
        new(hello => vmKind == VmKind.Host
            ? new HostVm(hello.Regions)
            : MicroVm.Create(new MicroVmOptions { Regions = hello.Regions, VcpuCount = hello.VcpuCount }), accepted, CliLogging.For<MigrationReceiver>(verbose));

    /// <summary>
    /// Checks a destination after a completed migration: for the self-verifying workload it must
    /// pass at least <paramref name="passes"/> more passes without a failure; any workload must not fault.
    /// </summary>
    internal static (bool Ok, string Detail, int Passes) CheckDestination(IWorkloadVm destination, bool verifier, int passes)
    {
        VcpuStatus start = destination.GetStatus()[0];
        if (verifier)
        {
            bool reached = destination.WaitForPass(start.Passes + (uint)passes, TimeSpan.FromSeconds(60));
            VcpuStatus now = destination.GetStatus()[0];
            int done = (int)(now.Passes - start.Passes);
            if (!reached && now.Halted && now.Failures == 0 && now.Fault is null)
            {
                // A workload that ends (fill) halts its guest: it has no passes to wait for.
                return (true, "destination guest resumed where its workload had ended (halted)", done);
            }

            if (!reached || now.Failures != 0 || now.Fault is not null)
            {
                return (false, $"destination guest: {done} passes, {now.Failures} self-check failures (first page {now.FirstFailedPage}){(now.Fault is null ? "" : ", " + now.Fault)}", done);
            }

            return (true, $"destination guest passed {done} self-checking passes after resuming", done);
        }

        Thread.Sleep(200);
        VcpuStatus after = destination.GetStatus()[0];
        return after.Fault is null
            ? (true, "destination guest is running", (int)(after.Passes - start.Passes))
            : (false, after.Fault, 0);
    }

    /// <summary>Runs <c>demo</c>: source and destination in this process over loopback TCP, with mutual TLS when <paramref name="tls"/> is given.</summary>
    internal static async Task<RunOutcome> DemoAsync(SourceSettings s, LiveStatus status, IProgress<MigrationProgress>? progress, (MigrationTlsOptions Source, MigrationTlsOptions Destination)? tls, CancellationToken ct)
    {
        using IWorkloadVm source = StartSource(s, status, ct);
        (MigrationReport report, ReceiveResult? received) = await LoopbackAsync(
            connect => SendAsync(source, connect, s, status, progress, ct), Receiver(s.Vm, new MigrationReceiverOptions(), s.Verbose), tls, ct).ConfigureAwait(false);
        using IWorkloadVm? destination = received?.Target as IWorkloadVm;
        if (report.Status != MigrationStatus.Completed || destination is null)
        {
            return new RunOutcome(report, false, received?.Reason ?? report.Reason, 0, VmKind.Of(source));
        }

        status.Set("checking the guest on the destination");
        (bool ok, string detail, int passes) = CheckDestination(destination, s.Workload == "verify", 3);
        bool verified = ok && report.DigestsMatched == true && report.SourceMemoryVerified != false;
        return new RunOutcome(report, verified, detail, passes, VmKind.Of(source));
    }

    /// <summary>
    /// Runs a migration over loopback TCP into a VM <paramref name="receiver"/> builds in this process
    /// (with mutual TLS when <paramref name="tls"/> is given): <paramref name="send"/> migrates over the
    /// connections it is handed. Returns the source's report and what the destination received
    /// (null when a failed migration left the destination waiting for a reconnection).
    /// </summary>
    internal static async Task<(MigrationReport Report, ReceiveResult? Received)> LoopbackAsync(
        Func<Func<CancellationToken, Task<IMigrationConnection>>, Task<MigrationReport>> send, MigrationReceiver receiver,
        (MigrationTlsOptions Source, MigrationTlsOptions Destination)? tls, CancellationToken ct)
    {
        await using MigrationListener listener = tls is { } pair ? MigrationListener.Listen("tcp:127.0.0.1:0", pair.Destination, null) : MigrationListener.Listen("tcp:127.0.0.1:0");
        using var stopReceiving = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task<ReceiveResult> receiving = Task.Run(() => receiver.ReceiveAsync(listener, stopReceiving.Token), ct);
        MigrationReport report = await send(token => MigrationConnector.ConnectAsync(listener.LocalAddress, tls?.Source, null, token)).ConfigureAwait(false);
        if (report.Status != MigrationStatus.Completed)
        {
            // The source told the destination if it could; a destination that still waits for a reconnection is not waited for.
            stopReceiving.CancelAfter(TimeSpan.FromSeconds(2));
        }

        try
        {
            return (report, await receiving.ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return (report, null);
        }
    }

    /// <summary>An <see cref="IProgress{T}"/> that queues reports for a renderer on another thread.</summary>
    internal sealed class QueueProgress : IProgress<MigrationProgress>
    {
        internal ConcurrentQueue<MigrationProgress> Items { get; } = new();

        public void Report(MigrationProgress value) => Items.Enqueue(value);
    }

    internal static long Now() => Stopwatch.GetTimestamp();
}
