using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>
/// One migration over real sockets with a <see cref="FaultProxy"/> in the path: a source VM
/// (HostVm, or MicroVm on KVM) running the verifier, which writes only its range, so what
/// differs between the two sides is known page by page; the real engine over plain TCP on
/// 127.0.0.1, the proxy, a <see cref="MigrationListener"/> and a real
/// <see cref="MigrationReceiver"/> that builds a <see cref="RecordingTarget"/> of the same kind.
/// A test arms a fault on <see cref="Proxy"/>, runs, and checks the <see cref="ProxiedOutcome"/>.
/// </summary>
internal sealed class ProxiedMigration : IAsyncDisposable
{
    /// <summary>Guest memory of the source.</summary>
    internal const ulong Memory = 64UL << 20;

    /// <summary>The range the verifier writes, [1 MiB, 33 MiB): the rest of memory is never written.</summary>
    internal static readonly GuestRange Written = new(1UL << 20, 33UL << 20);

    /// <summary>How long the source's answers may take: short, so faults that silence the link end quickly.</summary>
    internal static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(2);

    // The verifier's pace: about what a MicroVm guest dirties under tracking on the reference machine.
    private const double GuestPace = 25_000;
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);

    private readonly MigrationListener _listener;
    private readonly Func<MigrationHello, IWorkloadVm> _createTarget;
    private RecordingTarget? _target;

    /// <param name="source">The started source VM; this owns it from here.</param>
    /// <param name="createTarget">Builds the destination VM for a Hello.</param>
    private ProxiedMigration(IWorkloadVm source, Func<MigrationHello, IWorkloadVm> createTarget)
    {
        Source = source;
        _createTarget = createTarget;
        Source.SetPaceLimit(GuestPace);
        Assert.IsTrue(Source.WaitForPass(1, TimeSpan.FromSeconds(60)), $"no first pass: {Source.GetStatus()[0]}");
        Tracker = new KeptTracker(Source.CreateTracker());
        _listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        Proxy = FaultProxy.Start(_listener.LocalAddress);
    }

    internal IWorkloadVm Source { get; }

    internal KeptTracker Tracker { get; }

    /// <summary>The link between the two sides: arm faults here before <see cref="RunAsync"/>.</summary>
    internal FaultProxy Proxy { get; }

    /// <summary>The destination's limits: silence ends it within 5 s, so a silenced link does not keep it waiting.</summary>
    internal MigrationReceiverOptions ReceiverOptions { get; set; } = new()
    {
        HandshakeTimeout = TimeSpan.FromSeconds(5),
        IdleTimeout = TimeSpan.FromSeconds(5),
    };

    /// <summary>Starts a HostVm source (tracked with userfaultfd write-protection), the destination's listener and the proxy.</summary>
    internal static ProxiedMigration OnHostVms()
    {
        var source = new HostVm(Memory);
        source.Load(HostWorkload.Verifier(Written.Start, Written.End));
        source.Start();
        return new ProxiedMigration(source, hello => new HostVm(hello.Regions));
    }

    /// <summary>Starts a MicroVm source on KVM (tracked with the dirty log), the destination's listener and the proxy.</summary>
    internal static ProxiedMigration OnMicroVms()
    {
        MicroVm source = MicroVm.Create(new MicroVmOptions { MemorySize = Memory, ManualDirtyLogProtect = true });
        source.Load(GuestPrograms.Verifier(Written.Start, Written.End));
        source.Start();
        return new ProxiedMigration(source, hello => MicroVm.Create(new MicroVmOptions { Regions = hello.Regions, VcpuCount = hello.VcpuCount }));
    }

    /// <summary>
    /// A large source for the resume test: <paramref name="memory"/> of guest memory with the
    /// verifier rewriting [1 MiB, 1 MiB + <paramref name="written"/>); a MicroVm where KVM opens, a HostVm otherwise.
    /// </summary>
    internal static ProxiedMigration Large(ulong memory, ulong written, bool microVm)
    {
        var range = new GuestRange(1UL << 20, (1UL << 20) + written);
        if (microVm)
        {
            MicroVm micro = MicroVm.Create(new MicroVmOptions { MemorySize = memory, ManualDirtyLogProtect = true });
            micro.Load(GuestPrograms.Verifier(range.Start, range.End));
            micro.Start();
            return new ProxiedMigration(micro, hello => MicroVm.Create(new MicroVmOptions { Regions = hello.Regions, VcpuCount = hello.VcpuCount }));
        }

        var host = new HostVm(memory);
        host.Load(HostWorkload.Verifier(range.Start, range.End));
        host.Start();
        return new ProxiedMigration(host, hello => new HostVm(hello.Regions));
    }

    /// <summary>
    /// Options that stay in pre-copy for several rounds: at 32 MiB/s a round of the 32 MiB the
    /// verifier rewrites takes about a second, longer than a pass, so every round finds the whole
    /// range dirty and the policy throttles instead of switching over.
    /// </summary>
    /// <remarks>Raw pages, so triggers inside Pages frames and after so many bytes land where a test says; <see cref="Encoded"/> turns the encodings on.</remarks>
    internal static MigrationOptions ManyRounds() => new() { BandwidthLimit = 32L << 20, ResponseTimeout = ResponseTimeout, Encodings = PageEncodings.None };

    /// <summary>Like <see cref="ManyRounds"/> with every page encoding on: pages go in EncodedPages frames.</summary>
    internal static MigrationOptions Encoded() => new() { BandwidthLimit = 32L << 20, ResponseTimeout = ResponseTimeout };

    /// <summary>Options that switch over right after round 0 (any forecast fits a 10 s downtime), with pages still dirty for it to send.</summary>
    internal static MigrationOptions SwitchOverAfterRound0() => new() { BandwidthLimit = 128L << 20, MaxDowntime = TimeSpan.FromSeconds(10), MinRounds = 1, ResponseTimeout = ResponseTimeout, Encodings = PageEncodings.None };

    /// <summary>Runs the migration through the proxy; every wait is bounded.</summary>
    internal async Task<ProxiedOutcome> RunAsync(MigrationOptions options)
    {
        var receiver = new MigrationReceiver(hello => _target = new RecordingTarget(_createTarget(hello)), ReceiverOptions);
        Task<ReceiveResult> receiving = Task.Run(async () =>
        {
            await using IMigrationConnection incoming = await _listener.AcceptAsync().WaitAsync(ConnectTimeout);
            return await receiver.ReceiveAsync(incoming);
        });

        var engine = new PreCopyEngine(Source, Tracker, options);
        MigrationReport report;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(Proxy.Address).WaitAsync(ConnectTimeout))
        {
            report = await Bounded(engine.MigrateAsync(connection), "the source's MigrateAsync");
        }

        // The destination's receive ends too, whatever the fault: its idle timeout bounds it.
        ReceiveResult received = await Bounded(receiving, "the destination's ReceiveAsync");
        return new ProxiedOutcome(this, engine, report, received, _target);
    }

    /// <summary>
    /// Runs the migration as a source that reconnects (through the proxy) after a lost link and a
    /// destination that listens, so a session survives the fault. <paramref name="connect"/>, when
    /// given, replaces how the source opens its connections after the first one.
    /// </summary>
    internal async Task<ProxiedOutcome> RunResumableAsync(MigrationOptions options, Func<CancellationToken, Task<IMigrationConnection>>? reconnect = null)
    {
        var receiver = new MigrationReceiver(hello => _target = new RecordingTarget(_createTarget(hello)), ReceiverOptions);
        Receiver = receiver;
        using var stop = new CancellationTokenSource();
        Task<ReceiveResult> receiving = Task.Run(() => receiver.ReceiveAsync(_listener, stop.Token));
        var engine = new PreCopyEngine(Source, Tracker, options);
        int opened = 0;
        MigrationReport report = await Bounded(
            engine.MigrateAsync(ct => Interlocked.Increment(ref opened) == 1 || reconnect is null ? MigrationConnector.ConnectAsync(Proxy.Address, null, null, ct) : reconnect(ct)),
            "the source's MigrateAsync");
        ReceiveResult received;
        if (report.Status == MigrationStatus.Completed || !report.OutcomeUnknown)
        {
            // A destination that still waits for its source (the source gave up) is stopped after a moment.
            stop.CancelAfter(report.Status == MigrationStatus.Completed ? RunTimeout : TimeSpan.FromSeconds(3));
            received = await Bounded(receiving.ContinueWith(t => t.IsCanceled ? new ReceiveResult { Status = MigrationStatus.Failed, Reason = "the receive was stopped" } : t.GetAwaiter().GetResult(), TaskScheduler.Default), "the destination's ReceiveAsync");
        }
        else
        {
            // Outcome unknown: the destination keeps its session; the test resolves it.
            Pending = receiving;
            received = new ReceiveResult { Status = MigrationStatus.Failed, Reason = "still waiting for its source" };
        }

        return new ProxiedOutcome(this, engine, report, received, _target);
    }

    /// <summary>The listening receiver of <see cref="RunResumableAsync"/>.</summary>
    internal MigrationReceiver? Receiver { get; private set; }

    /// <summary>The destination's receive, still running after an unknown outcome.</summary>
    internal Task<ReceiveResult>? Pending { get; private set; }

    /// <summary>The destination's listening address (not through the proxy), for a query.</summary>
    internal string DestinationAddress => _listener.LocalAddress;

    internal static async Task<T> Bounded<T>(Task<T> task, string what)
    {
        try
        {
            return await task.WaitAsync(RunTimeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{what} did not end within {RunTimeout.TotalSeconds:F0} s");
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Proxy.DisposeAsync();
        await _listener.DisposeAsync();
        _target?.Dispose();
        Tracker.Release();
        Source.Dispose();
    }
}
