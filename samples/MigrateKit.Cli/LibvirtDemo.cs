using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using MigrateKit.Guests;
using MigrateKit.Libvirt;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>What <c>migratekit libvirt demo</c> boots and where it moves it.</summary>
/// <param name="From">The source host's URI.</param>
/// <param name="To">The destination host's URI.</param>
/// <param name="Memory">Guest memory in bytes (whole MiB).</param>
/// <param name="Workload">The guest program's name (see <see cref="Workloads.Names"/>).</param>
/// <param name="Hot">The hot set of the hot/cold workload, in bytes.</param>
internal sealed record LibvirtDemoPlan(string From, string To, ulong Memory, string Workload, ulong Hot);

/// <summary>
/// <c>migratekit libvirt demo</c>: a transient boot-sector domain on the source host, migrated under
/// MigrateKit's policy, checked on the destination and removed from both hosts.
/// </summary>
internal static class LibvirtDemo
{
    private static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Where images and serial logs go: a path both hosts see (not under /var/lib/libvirt, which a second host may mount privately).</summary>
    internal static string WorkRoot => Environment.GetEnvironmentVariable("MIGRATEKIT_LIBVIRT_WORKDIR") ?? "/var/tmp/migratekit-libvirt";

    /// <summary>Boots the guest on <see cref="LibvirtDemoPlan.From"/>, migrates it, checks it and removes it; <paramref name="migrating"/> runs as the migration starts.</summary>
    internal static async Task<RunOutcome> RunAsync(LibvirtMigrator migrator, LibvirtDemoPlan plan, LibvirtMigrationOptions options, LiveStatus status, Action migrating,
        IProgress<MigrationProgress>? progress, CancellationToken ct)
    {
        (string from, string to, ulong memory, string workload, ulong hot) = plan;
        string name = $"migratekit-demo-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";
        string dir = Path.Combine(WorkRoot, name);
        Directory.CreateDirectory(dir);
        var guest = new BootSectorDomain(name, memory, Path.Combine(dir, "boot.img"), Path.Combine(dir, "com1.log"), BootSectorDomain.KvmAvailable);
        try
        {
            status.Set($"booting a {Units.FormatBytes(memory)} {workload} guest on {from}");
            GuestProgram program = Workloads.Build(workload, memory, hot, GuestPorts.Com1, BootSector.ProgramAddress);
            await File.WriteAllBytesAsync(guest.ImagePath, BootSector.Build(program), ct).ConfigureAwait(false);
            using (LibvirtConnection source = LibvirtConnection.Open(from))
            {
                using LibvirtDomain created = source.CreateDomain(guest.ToXml());
            }

            // The working set exists before the migration: one whole pass (fill: its only pass).
            status.Set("waiting for the guest's first pass (untracked warm-up)");
            GuestSerialLog before = await guest.WaitForPassAsync(1, BootTimeout, ct).ConfigureAwait(false);
            migrating();
            MigrationReport report = await migrator.MigrateAsync(from, name, to, options, progress, ct).ConfigureAwait(false);
            if (report.Status != MigrationStatus.Completed)
            {
                bool running = StateOn(from, name) == DomainState.Running;
                return new RunOutcome(report, false, running ? "the domain still runs on the source" : "the domain is not running on the source", 0, "libvirt", report.DowntimeMs);
            }

            status.Set("checking the guest on the destination");
            (bool ok, string detail, int passes) = await CheckAsync(guest, before.LastPass, workload, ct).ConfigureAwait(false);
            return new RunOutcome(report, ok, detail, passes, "libvirt", report.DowntimeMs);
        }
        finally
        {
            Remove(from, to, name, dir);
        }
    }

    /// <summary>Destroys the domain <paramref name="name"/> on both hosts and deletes its directory of image and serial log.</summary>
    internal static void Remove(string from, string to, string name, string dir)
    {
        TransientDomains.Destroy(from, name);
        TransientDomains.Destroy(to, name);
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // A QEMU still closing its files; the directory is named after the run and harmless.
        }
    }

    /// <summary>Checks the migrated guest goes on from where it was: more passes, every check passing.</summary>
    private static async Task<(bool Ok, string Detail, int Passes)> CheckAsync(BootSectorDomain guest, uint passBefore, string workload, CancellationToken ct)
    {
        if (workload == "fill")
        {
            // Fill reports once and halts; its memory was checked by nothing but the digest-free copy.
            GuestSerialLog done = guest.ReadSerial();
            bool clean = done.FailedPages.Count == 0 && done.Garbage.Count == 0;
            return (clean, clean ? "fill guest resumed (halted after its single pass)" : "the guest printed unexpected output", 0);
        }

        GuestSerialLog last = guest.ReadSerial();
        try
        {
            last = await guest.WaitForPassAsync(last.LastPass + 3, CheckTimeout, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
        {
            return (false, ex.Message, 0);
        }

        // Pass numbers live in guest registers and memory: they go on without a gap or a restart.
        for (int i = 1; i < last.Passes.Count; i++)
        {
            if (last.Passes[i] != last.Passes[i - 1] + 1)
            {
                return (false, $"pass {last.Passes[i - 1]} was followed by pass {last.Passes[i]}: the guest did not resume where it stopped", 0);
            }
        }

        int after = (int)(last.LastPass - passBefore);
        string what = workload == "verify" ? ", every page check passing" : "";
        return (true, $"guest runs on the destination: passes {passBefore} -> {last.LastPass}{what}", after);
    }

    /// <summary>The domain's state on a host; null when the host has no such domain or cannot be reached.</summary>
    internal static DomainState? StateOn(string uri, string name)
    {
        try
        {
            using LibvirtConnection c = LibvirtConnection.Open(uri);
            return c.TryLookupDomain(name) is { } d ? Dispose(d, d.GetState().State) : null;
        }
        catch (LibvirtException)
        {
            return null;
        }
    }

    private static T Dispose<T>(IDisposable d, T value)
    {
        d.Dispose();
        return value;
    }
}
