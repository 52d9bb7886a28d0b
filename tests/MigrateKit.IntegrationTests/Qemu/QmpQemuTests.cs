using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Qemu;

namespace MigrateKit.IntegrationTests.Qemu;

/// <summary>
/// The QMP client against a real QEMU (KVM where /dev/kvm exists, TCG otherwise): run-state
/// commands and a local live migration between two QEMU processes.
/// </summary>
[TestClass]
[TestCategory("Qemu")]
public sealed class QmpQemuTests
{
    private const ulong MiB = 1UL << 20;
    private static readonly TimeSpan MigrationLimit = TimeSpan.FromSeconds(60);

    [TestMethod]
    public async Task StopAndCont_ChangeTheRunState()
    {
        QemuRequirement.Require();
        await using QemuProcess qemu = await QemuProcess.StartAsync(new QemuProcessOptions { MemoryMiB = 64 });
        Assert.AreEqual(7, qemu.Qmp.QemuVersion.Major, $"QEMU {qemu.Qmp.QemuVersion}: the version comes from the greeting");
        Assert.AreEqual(new QemuRunState("running", true), await qemu.Qmp.QueryStatusAsync());

        await qemu.Qmp.StopAsync();
        Assert.AreEqual(new QemuRunState("paused", false), await qemu.Qmp.QueryStatusAsync());

        await qemu.Qmp.ContAsync();
        Assert.AreEqual(new QemuRunState("running", true), await qemu.Qmp.QueryStatusAsync());
    }

    [TestMethod]
    public async Task AnUnknownCommand_IsAQmpExceptionWithQemusErrorClass()
    {
        QemuRequirement.Require();
        await using QemuProcess qemu = await QemuProcess.StartAsync(new QemuProcessOptions { MemoryMiB = 64 });
        QmpException e = await Assert.ThrowsExactlyAsync<QmpException>(() => qemu.Qmp.ExecuteAsync("no-such-command"));
        Assert.AreEqual("CommandNotFound", e.ErrorClass);
        Assert.AreEqual(new QemuRunState("running", true), await qemu.Qmp.QueryStatusAsync());
    }

    [TestMethod]
    public async Task AQemuThatCannotStart_ReportsItsStderr()
    {
        QemuRequirement.Require();
        string missing = Path.Combine(Path.GetTempPath(), "mk-no-such-disk-" + Guid.NewGuid().ToString("N")[..8] + ".img");
        IOException e = await Assert.ThrowsExactlyAsync<IOException>(() => QemuProcess.StartAsync(new QemuProcessOptions { DiskImagePath = missing }));
        Assert.Contains("exited with code", e.Message);
        Assert.Contains(missing, e.Message);
    }

    [TestMethod]
    public async Task ALocalMigration_Completes_AndTheDestinationRuns()
    {
        QemuRequirement.Require();
        GuestProgram sweep = GuestPrograms.Sweep(MiB, 9 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress);
        string image = Path.Combine(Path.GetTempPath(), "mk-qmp-sweep-" + Guid.NewGuid().ToString("N")[..8] + ".img");
        await File.WriteAllBytesAsync(image, BootSector.Build(sweep));
        try
        {
            int port = FreePort();
            await using QemuProcess source = await QemuProcess.StartAsync(new QemuProcessOptions { MemoryMiB = 64, DiskImagePath = image });
            await using QemuProcess destination = await QemuProcess.StartAsync(new QemuProcessOptions { MemoryMiB = 64, DiskImagePath = image, IncomingPort = port });
            Assert.AreEqual("inmigrate", (await destination.Qmp.QueryStatusAsync()).Status);
            await WaitForSerialLineAsync(source, "the source guest reports its first sweep");

            await source.Qmp.SetMigrationParametersAsync(new MigrationParameters
            {
                MaxBandwidthBytesPerSecond = 1L << 30,
                DowntimeLimitMilliseconds = 300,
            });
            await source.Qmp.MigrateAsync($"tcp:127.0.0.1:{port}");

            QemuMigrationStatus status = await source.Qmp.QueryMigrateAsync();
            var clock = Stopwatch.StartNew();
            while (status.Status != "completed")
            {
                Assert.IsFalse(status.Status is "failed" or "cancelled", $"migration {status.Status}: {status.ErrorDescription}");
                Assert.IsLessThan(MigrationLimit, clock.Elapsed, $"migration not completed within {MigrationLimit.TotalSeconds} s: {status}");
                await Task.Delay(100);
                status = await source.Qmp.QueryMigrateAsync();
            }

            Assert.IsGreaterThan(0L, status.DowntimeMilliseconds ?? 0, $"downtime: {status}");
            Assert.IsGreaterThan(0L, status.TotalTimeMilliseconds ?? 0, $"total-time: {status}");
            Assert.IsNotNull(status.Ram, $"ram: {status}");
            Assert.IsGreaterThan(0L, status.Ram.TransferredBytes ?? 0, $"transferred: {status.Ram}");
            Assert.AreEqual("postmigrate", (await source.Qmp.QueryStatusAsync()).Status);

            // The destination resumes on its own once the incoming migration completes.
            QemuRunState state = await destination.Qmp.QueryStatusAsync();
            clock.Restart();
            while (!state.Running && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(50);
                state = await destination.Qmp.QueryStatusAsync();
            }

            Assert.AreEqual(new QemuRunState("running", true), state);
            await WaitForSerialLineAsync(destination, "the guest keeps sweeping on the destination");
        }
        finally
        {
            File.Delete(image);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitForSerialLineAsync(QemuProcess qemu, string what)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < MigrationLimit)
        {
            if (File.Exists(qemu.SerialPath))
            {
                using var stream = new FileStream(qemu.SerialPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var reader = new StreamReader(stream);
                if ((await reader.ReadToEndAsync()).Contains('\n', StringComparison.Ordinal))
                {
                    return;
                }
            }

            Assert.IsFalse(qemu.HasExited, $"QEMU exited: {qemu.StandardError}");
            await Task.Delay(50);
        }

        Assert.Fail($"no serial line within {MigrationLimit.TotalSeconds} s: expected {what}");
    }
}
