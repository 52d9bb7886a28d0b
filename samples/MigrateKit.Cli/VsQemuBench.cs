using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Guests;
using MigrateKit.Kvm;
using MigrateKit.Qemu;

namespace MigrateKit.Cli;

/// <summary>A scenario's guest as both sides boot it: the boot image, and the memory loaded before boot if any, in bytes and in files.</summary>
/// <param name="Boot">The boot image (<see cref="BootSector.Build"/>).</param>
/// <param name="BootPath">The same, as QEMU's disk.</param>
/// <param name="Memory">What is loaded at <see cref="VsQemuScenario.Base"/> before boot, or null.</param>
/// <param name="MemoryPath">The same, as QEMU's loader file, or null.</param>
internal sealed record VsQemuGuestImage(byte[] Boot, string BootPath, byte[]? Memory, string? MemoryPath)
{
    /// <summary>Builds the scenario's image and writes its files into <paramref name="directory"/>.</summary>
    internal static async Task<VsQemuGuestImage> WriteAsync(VsQemuScenario scenario, string directory, CancellationToken ct)
    {
        byte[] boot = BootSector.Build(scenario.Program());
        string bootPath = Path.Combine(directory, scenario.Name + ".img");
        await File.WriteAllBytesAsync(bootPath, boot, ct).ConfigureAwait(false);
        byte[]? memory = scenario.LoadedMemory();
        string? memoryPath = null;
        if (memory is not null)
        {
            memoryPath = Path.Combine(directory, scenario.Name + ".mem");
            await File.WriteAllBytesAsync(memoryPath, memory, ct).ConfigureAwait(false);
        }

        return new VsQemuGuestImage(boot, bootPath, memory, memoryPath);
    }
}

/// <summary>What <c>bench vs-qemu</c> runs.</summary>
/// <param name="Scenarios">The scenarios, in order.</param>
/// <param name="Repeat">Runs of each side of each scenario.</param>
/// <param name="Cutoff">A migration still running after this long is ended and reported as not converged.</param>
/// <param name="Verbose">Log what MigrateKit's engine measures and decides to stderr.</param>
/// <param name="Sides">"both", "qemu" or "migratekit": which side runs (one side alone leaves the other's figures empty).</param>
internal sealed record VsQemuSettings(IReadOnlyList<VsQemuScenario> Scenarios, int Repeat, TimeSpan Cutoff, bool Verbose = false, string Sides = "both");

/// <summary>
/// Runs <c>bench vs-qemu</c>: per repetition and scenario, QEMU→QEMU and MicroVm→MicroVm on the
/// same boot image, one after the other (which goes first alternates per repetition, so a slow
/// stretch of the host does not always fall on the same side); where a scenario compares
/// MigrateKit's encodings, MigrateKit runs a second time with them off, next to the first.
/// </summary>
internal static class VsQemuBench
{
    /// <summary>The name progress lines give MigrateKit's runs with the scenario's encodings.</summary>
    internal const string MigrateKitSide = "migratekit";

    /// <summary>The name progress lines give MigrateKit's runs with its encodings off, where a scenario compares them.</summary>
    internal const string NoEncodingsSide = "migratekit-no-encodings";

    /// <summary>Why the bench cannot run here, or null.</summary>
    internal static string? Missing()
    {
        if (!File.Exists(KvmSystem.DefaultPath))
        {
            return $"{KvmSystem.DefaultPath} does not exist: both sides run on KVM.";
        }

        return QemuProcess.FindOnPath() is null ? $"{QemuProcess.ExecutableName} is not on PATH (Debian: qemu-system-x86)." : null;
    }

    /// <summary>Runs every scenario <see cref="VsQemuSettings.Repeat"/> times on each side; <paramref name="onRun"/> sees each run as it ends.</summary>
    internal static async Task<VsQemuJson> RunAsync(VsQemuSettings settings, Action<VsQemuScenario, string, VsQemuRun> onRun, CancellationToken ct)
    {
        long started = Stopwatch.GetTimestamp();
        var qemu = settings.Scenarios.ToDictionary(s => s.Name, _ => new List<VsQemuRun>());
        var migrateKit = settings.Scenarios.ToDictionary(s => s.Name, _ => new List<VsQemuRun>());
        var noEncodings = settings.Scenarios.ToDictionary(s => s.Name, _ => new List<VsQemuRun>());
        string directory = Directory.CreateTempSubdirectory("migratekit-vs-qemu-").FullName;
        try
        {
            var images = new Dictionary<string, VsQemuGuestImage>();
            foreach (VsQemuScenario s in settings.Scenarios)
            {
                images[s.Name] = await VsQemuGuestImage.WriteAsync(s, directory, ct).ConfigureAwait(false);
            }

            for (int run = 1; run <= settings.Repeat; run++)
            {
                foreach (VsQemuScenario s in settings.Scenarios)
                {
                    VsQemuGuestImage image = images[s.Name];
                    int r = run;
                    Func<Task> q = async () => Add(s, "qemu", qemu[s.Name], await Guarded(r, () => VsQemuQemuSide.RunAsync(s, image, r, settings.Cutoff, ct), ct).ConfigureAwait(false), onRun);
                    Func<Task> m = async () => Add(s, MigrateKitSide, migrateKit[s.Name], await Guarded(r, () => VsQemuMicroVmSide.RunAsync(s, image, r, settings, s.Encodings, ct), ct).ConfigureAwait(false), onRun);
                    Func<Task> off = async () => Add(s, NoEncodingsSide, noEncodings[s.Name], await Guarded(r, () => VsQemuMicroVmSide.RunAsync(s, image, r, settings, VsQemuEncodings.Off, ct), ct).ConfigureAwait(false), onRun);
                    Func<Task>[] migrateKitSides = s.ComparesEncodings ? [m, off] : [m];
                    Func<Task>[] order = settings.Sides switch
                    {
                        "qemu" => [q],
                        "migratekit" => migrateKitSides,
                        _ => run % 2 == 1 ? [q, .. migrateKitSides] : [.. Enumerable.Reverse(migrateKitSides), q],
                    };
                    foreach (Func<Task> side in order)
                    {
                        await side().ConfigureAwait(false);
                    }
                }
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        return new VsQemuJson
        {
            Date = DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
            Repeat = settings.Repeat,
            CutoffSeconds = settings.Cutoff.TotalSeconds,
            QemuVersion = await QemuVersionAsync().ConfigureAwait(false),
            Scenarios = [.. settings.Scenarios.Select(s => VsQemuScenarioResult.Of(s, qemu[s.Name], migrateKit[s.Name], noEncodings[s.Name]))],
            Seconds = Math.Round(Stopwatch.GetElapsedTime(started).TotalSeconds, 1),
        };
    }

    private static void Add(VsQemuScenario s, string side, List<VsQemuRun> runs, VsQemuRun row, Action<VsQemuScenario, string, VsQemuRun> onRun)
    {
        runs.Add(row);
        onRun(s, side, row);
    }

    /// <summary>A run that throws (QEMU would not start, a socket broke) is a failed row, not the end of the bench.</summary>
    private static async Task<VsQemuRun> Guarded(int run, Func<Task<VsQemuRun>> body, CancellationToken ct)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception ex) when (!(ex is OperationCanceledException && ct.IsCancellationRequested))
        {
            return new VsQemuRun { Run = run, Status = VsQemuRun.Failed, Reason = $"{ex.GetType().Name}: {ex.Message}" };
        }
    }

    /// <summary>The first line of <c>qemu-system-x86_64 --version</c>, or null.</summary>
    private static async Task<string?> QemuVersionAsync()
    {
        try
        {
            using Process? p = Process.Start(new ProcessStartInfo(QemuProcess.ExecutableName, "--version") { RedirectStandardOutput = true, UseShellExecute = false });
            if (p is null)
            {
                return null;
            }

            string? line = await p.StandardOutput.ReadLineAsync().ConfigureAwait(false);
            await p.WaitForExitAsync().ConfigureAwait(false);
            return line?.Trim();
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or IOException)
        {
            return null;
        }
    }
}
