using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Guests;
using MigrateKit.Qemu;

namespace MigrateKit.Cli;

/// <summary>QEMU→QEMU for <c>bench vs-qemu</c>: two local QEMU processes on KVM, driven over QMP.</summary>
internal static class VsQemuQemuSide
{
    /// <summary>QEMU's bandwidth cap for an "unlimited" scenario (QEMU has no "none"; its default is 128 MiB/s).</summary>
    internal const long UnlimitedBytesPerSecond = 100L << 30;

    // The BIOS and boot code are emulated on this host: the guest needs ~15 s before its first pass.
    private static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(2);
    // QEMU updates expected-downtime at each dirty sync, which can be 100 ms apart in a short migration.
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan ResumeTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Boots the image in a source QEMU, migrates it to a second one and reports what QEMU measured.</summary>
    internal static async Task<VsQemuRun> RunAsync(VsQemuScenario scenario, VsQemuGuestImage image, int run, TimeSpan cutoff, CancellationToken ct)
    {
        var row = new VsQemuRun { Run = run, Status = VsQemuRun.Failed };
        int port = FreePort();

        // The destination loads the same files (the same devices on both ends); the migration overwrites what they put in memory.
        var options = new QemuProcessOptions
        {
            MemoryMiB = (int)(scenario.Memory >> 20),
            DiskImagePath = image.BootPath,
            Accelerator = "kvm",
            MemoryFiles = image.MemoryPath is string loaded ? [new QemuMemoryFile(loaded, VsQemuScenario.Base)] : [],
        };
        await using QemuProcess source = await QemuProcess.StartAsync(options, ct).ConfigureAwait(false);
        await using QemuProcess destination = await QemuProcess.StartAsync(options with { IncomingPort = port }, ct).ConfigureAwait(false);
        if (!await WaitForPassAsync(source, 1, BootTimeout, ct).ConfigureAwait(false))
        {
            return row with { Reason = $"the source guest reported no pass within {BootTimeout.TotalSeconds:F0} s of QEMU's start{Exited(source)}" };
        }

        if (await ConfigureAsync(source, destination, scenario, ct).ConfigureAwait(false) is string refused)
        {
            return row with { Reason = refused };
        }

        await source.Qmp.MigrateAsync($"tcp:127.0.0.1:{port}", ct).ConfigureAwait(false);

        (QemuMigrationStatus last, long? expected, long maxThrottle) = await FollowAsync(source.Qmp, cutoff, ct).ConfigureAwait(false);
        row = row with
        {
            TotalMs = last.TotalTimeMilliseconds,
            BytesSent = last.Ram?.TransferredBytes is long t ? (ulong)t : null,
            Rounds = last.Ram?.DirtySyncCount is long n ? (int)n : null,
            PredictedDowntimeMs = expected,
            MaxThrottlePercent = (int)maxThrottle,
            Xbzrle = VsQemuDeltas.Of(last.Xbzrle),
        };
        switch (last.Status)
        {
            case "completed":
                break;
            case "active" or "device" or "pre-switchover" or "setup":
                await source.Qmp.MigrateCancelAsync(ct).ConfigureAwait(false);
                return row with { Status = VsQemuRun.NotConverged, TotalMs = cutoff.TotalMilliseconds, Reason = $"still {last.Status} after {cutoff.TotalSeconds:F0} s (expected downtime {expected?.ToString() ?? "-"} ms); cancelled" };
            default:
                return row with { Reason = $"migration {last.Status}: {last.ErrorDescription}" };
        }

        row = row with { Status = VsQemuRun.Completed, DowntimeMs = last.DowntimeMilliseconds };
        string? problem = await DestinationProblemAsync(destination, scenario, ct).ConfigureAwait(false);
        return (problem is null ? row with { Verified = true } : row with { Reason = problem }).WithError();
    }

    /// <summary>
    /// Sets the scenario's capabilities and parameters: on the source, and multifd's on the
    /// destination too (both ends must agree on it before the first connection). Null when QEMU
    /// took them; else why not, naming what it refused.
    /// </summary>
    private static async Task<string?> ConfigureAsync(QemuProcess source, QemuProcess destination, VsQemuScenario scenario, CancellationToken ct)
    {
        bool xbzrle = scenario.Qemu == VsQemuConfiguration.Xbzrle, multifd = scenario.Qemu == VsQemuConfiguration.MultifdZstd;
        var capabilities = new Dictionary<string, bool> { ["auto-converge"] = scenario.Throttle, ["xbzrle"] = xbzrle, ["multifd"] = multifd };
        var parameters = new MigrationParameters
        {
            MaxBandwidthBytesPerSecond = scenario.Bandwidth is ulong b ? (long)b : UnlimitedBytesPerSecond,
            DowntimeLimitMilliseconds = (long)VsQemuScenario.MaxDowntime.TotalMilliseconds,
            XbzrleCacheSizeBytes = xbzrle ? VsQemuScenario.SentPageCacheBytes : null,
            MultifdChannels = multifd ? VsQemuScenario.MultifdChannels : null,
            MultifdCompression = multifd ? QemuMultifdCompression.Zstd : null,
        };
        try
        {
            await source.Qmp.SetMigrationCapabilitiesAsync(capabilities, ct).ConfigureAwait(false);
            await source.Qmp.SetMigrationParametersAsync(parameters, ct).ConfigureAwait(false);
            if (multifd)
            {
                await destination.Qmp.SetMigrationCapabilitiesAsync(new Dictionary<string, bool> { ["multifd"] = true }, ct).ConfigureAwait(false);
                await destination.Qmp.SetMigrationParametersAsync(new MigrationParameters { MultifdChannels = parameters.MultifdChannels, MultifdCompression = parameters.MultifdCompression }, ct).ConfigureAwait(false);
            }

            return null;
        }
        catch (QmpException ex)
        {
            string what = multifd ? $"multifd with {VsQemuScenario.MultifdChannels} channels and zstd compression (a QEMU built without zstd refuses it)"
                : xbzrle ? $"xbzrle with a {VsQemuScenario.SentPageCacheBytes >> 20} MiB cache" : "the scenario's migration settings";
            return $"this QEMU refused {what}: {ex.Message}";
        }
    }

    /// <summary>Polls <c>query-migrate</c> until the migration ends or the cut-off; keeps the last expected downtime and the highest throttle seen.</summary>
    private static async Task<(QemuMigrationStatus Last, long? Expected, long MaxThrottle)> FollowAsync(QmpClient qmp, TimeSpan cutoff, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        long? expected = null;
        long maxThrottle = 0;
        while (true)
        {
            QemuMigrationStatus status = await qmp.QueryMigrateAsync(ct).ConfigureAwait(false);

            // QEMU drops expected-downtime once the migration completes: the last one seen while active is its forecast.
            if (status.Status == "active" && status.ExpectedDowntimeMilliseconds is long e)
            {
                expected = e;
            }

            maxThrottle = Math.Max(maxThrottle, status.CpuThrottlePercentage ?? 0);
            if (status.Status is "completed" or "failed" or "cancelled" || clock.Elapsed >= cutoff)
            {
                return (status, expected, maxThrottle);
            }

            await Task.Delay(PollInterval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Null when the destination runs the guest on (a sweep guest reports another pass), else what is wrong.</summary>
    private static async Task<string?> DestinationProblemAsync(QemuProcess destination, VsQemuScenario scenario, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        QemuRunState state = await destination.Qmp.QueryStatusAsync(ct).ConfigureAwait(false);
        while (!state.Running && clock.Elapsed < ResumeTimeout)
        {
            await Task.Delay(PollInterval, ct).ConfigureAwait(false);
            state = await destination.Qmp.QueryStatusAsync(ct).ConfigureAwait(false);
        }

        if (!state.Running)
        {
            return $"the destination QEMU is {state.Status}, not running, {ResumeTimeout.TotalSeconds:F0} s after the migration";
        }

        if (scenario.Halts)
        {
            return null;
        }

        uint arrived = GuestSerialLog.Read(destination.SerialPath).LastPass;
        return await WaitForPassAsync(destination, arrived + 1, ResumeTimeout, ct).ConfigureAwait(false)
            ? null
            : $"the destination guest reported no pass within {ResumeTimeout.TotalSeconds:F0} s";
    }

    private static async Task<bool> WaitForPassAsync(QemuProcess qemu, uint pass, TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout && !qemu.HasExited)
        {
            if (GuestSerialLog.Read(qemu.SerialPath).LastPass >= pass)
            {
                return true;
            }

            await Task.Delay(PollInterval, ct).ConfigureAwait(false);
        }

        return false;
    }

    private static string Exited(QemuProcess qemu) => qemu.HasExited ? $"; QEMU exited: {qemu.StandardError}" : "";

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
