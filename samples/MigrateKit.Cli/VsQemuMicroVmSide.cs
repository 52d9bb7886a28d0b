using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Guests;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.Cli;

/// <summary>MicroVm→MicroVm for <c>bench vs-qemu</c>: the same boot image, MigrateKit's engine over loopback TCP.</summary>
internal static class VsQemuMicroVmSide
{
    private static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan ResumeTimeout = TimeSpan.FromSeconds(20);

    // Where a scenario leaves the encodings to the engine, its defaults apply.
    private static readonly MigrationOptions EngineDefaults = new();

    /// <summary>
    /// The engine's options for a scenario: its bandwidth and QEMU's downtime limit; the throttle
    /// only where QEMU auto-converges; the page encodings as <paramref name="encodings"/> says.
    /// </summary>
    internal static MigrationOptions Options(VsQemuScenario scenario, TimeSpan cutoff, VsQemuEncodings encodings) => new()
    {
        MaxDowntime = VsQemuScenario.MaxDowntime,
        BandwidthLimit = scenario.Bandwidth is ulong b ? (long)b : null,
        AllowThrottling = scenario.Throttle,
        Deadline = cutoff,
        Encodings = encodings switch
        {
            VsQemuEncodings.On => PageEncodings.All,
            VsQemuEncodings.Off => PageEncodings.None,
            _ => null,
        },

        // QEMU's xbzrle cache size where QEMU runs with one, so both sides keep the same bytes of sent pages.
        SentPageCacheBytes = encodings == VsQemuEncodings.On ? VsQemuScenario.SentPageCacheBytes : EngineDefaults.SentPageCacheBytes,
    };

    /// <summary>Boots the image in a source MicroVm, migrates it into a MicroVm the receiver builds and reports what the engine measured.</summary>
    internal static async Task<VsQemuRun> RunAsync(VsQemuScenario scenario, VsQemuGuestImage image, int run, VsQemuSettings settings, VsQemuEncodings encodings, CancellationToken ct)
    {
        var row = new VsQemuRun { Run = run, Status = VsQemuRun.Failed };
        using MicroVm source = MicroVm.Create(new MicroVmOptions { MemorySize = scenario.Memory, ManualDirtyLogProtect = true, Ports = GuestPorts.Com1 });
        source.Boot(image.Boot);
        image.Memory?.CopyTo(source.Memory.GetSpan(VsQemuScenario.Base, image.Memory.Length));
        source.Start();
        if (!source.WaitForPass(1, BootTimeout))
        {
            return row with { Reason = $"the source guest reported no pass within {BootTimeout.TotalSeconds:F0} s: {source.GetStatus()[0]}" };
        }

        var receiver = new MigrationReceiver(hello => MicroVm.Create(new MicroVmOptions { Regions = hello.Regions, VcpuCount = hello.VcpuCount, Ports = GuestPorts.Com1 }), new MigrationReceiverOptions(), CliLogging.For<MigrationReceiver>(settings.Verbose));
        (MigrationReport report, ReceiveResult? received) = await MigrationRunner.LoopbackAsync(async connect =>
        {
            using IDirtyPageTracker tracker = source.CreateTracker();
            var engine = new PreCopyEngine(source, tracker, Options(scenario, settings.Cutoff, encodings), CliLogging.For<PreCopyEngine>(settings.Verbose));
            return await engine.MigrateAsync(connect, null, ct).ConfigureAwait(false);
        }, receiver, null, ct).ConfigureAwait(false);
        using IWorkloadVm? destination = received?.Target as IWorkloadVm;
        row = row with
        {
            TotalMs = report.TotalMs,
            BytesSent = report.BytesSent,
            Rounds = report.Rounds,
            PredictedDowntimeMs = report.PredictedDowntimeMs,
            MaxThrottlePercent = report.MaxThrottlePercent,
            Deltas = VsQemuDeltas.Of(report.RoundsDetail),
            CompressedPages = report.RoundsDetail.Aggregate(0UL, (sum, r) => sum + r.CompressedPages),
        };
        if (report.Status == MigrationStatus.Aborted)
        {
            return row with { Status = VsQemuRun.NotConverged, Reason = report.Reason };
        }

        if (report.Status != MigrationStatus.Completed || destination is null)
        {
            return row with { Reason = report.Reason ?? received?.Reason ?? "the destination has no VM" };
        }

        row = row with { Status = VsQemuRun.Completed, DowntimeMs = report.DowntimeMs };
        string? problem = report.DigestsMatched != true ? "the destination's memory digests did not match the source's"
            : DestinationProblem(destination, scenario);
        return (problem is null ? row with { Verified = true } : row with { Reason = problem }).WithError();
    }

    private static string? DestinationProblem(IWorkloadVm destination, VsQemuScenario scenario)
    {
        VcpuStatus arrived = destination.GetStatus()[0];
        if (!scenario.Halts && !destination.WaitForPass(arrived.Passes + 1, ResumeTimeout))
        {
            return $"the destination guest reported no pass within {ResumeTimeout.TotalSeconds:F0} s: {destination.GetStatus()[0]}";
        }

        VcpuStatus now = destination.GetStatus()[0];
        return now.Fault ?? (now.Failures != 0 ? $"{now.Failures} self-check failures on the destination" : null);
    }
}
