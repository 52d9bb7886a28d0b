// The consumer check that tests/consumer/run.sh builds in a project of its own, outside the
// repository, against the MigrateKit packages from a local feed. It uses the packages the way an
// application would and prints one "ok:" line per check; the first failure ends it with exit code 1.
//
//   Consumer                        dirty pages of a VM through the shim, then libvirt's test driver
//   Consumer --expect-missing       MIGRATEKIT_NATIVE_LIBRARY names a missing file: expects the error naming it
//   Consumer --library-path PATH    sets MigrateKitNative.LibraryPath to PATH: expects the shim from there
//                                   when the file exists, otherwise the error naming PATH and the option
//
// The shim is resolved once per process, so each explicit path is checked by a run of its own.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using LibvirtSharp;
using MigrateKit.Guests;
using MigrateKit.Interop;
using MigrateKit.Kvm;
using MigrateKit.Tracking;
using MigrateKit.Vmm;
using MigrateKit.Memory;

const ulong MiB = 1UL << 20;
const string LibraryPathOption = nameof(MigrateKitNative) + "." + nameof(MigrateKitNative.LibraryPath);

try
{
    if (args is ["--expect-missing"])
    {
        string? named = Environment.GetEnvironmentVariable(MigrateKitNative.EnvironmentVariable);
        Check(!string.IsNullOrEmpty(named) && !File.Exists(named), $"{MigrateKitNative.EnvironmentVariable} must name a missing file for this check");
        ExpectMissingExplicitLibrary(named!, MigrateKitNative.EnvironmentVariable);
    }
    else if (args is ["--library-path", string path])
    {
        MigrateKitNative.LibraryPath = path;
        if (File.Exists(path))
        {
            ShimCameFromLibraryPath(path);
        }
        else
        {
            ExpectMissingExplicitLibrary(path, LibraryPathOption);
        }
    }
    else
    {
        TrackDirtyPages();
        ShimCameFromThePackage();
        ListTestDriverDomains();
    }

    return 0;
}
catch (CheckFailed e)
{
    Console.WriteLine($"failed: {e.Message}");
    return 1;
}

static void TrackDirtyPages()
{
    // A guest that writes one byte in every page of [1 MiB, 9 MiB): exactly 2048 dirty pages.
    const ulong start = 1 * MiB, end = 9 * MiB;
    if (KvmSystem.IsAvailable())
    {
        using MicroVm vm = MicroVm.Create(new MicroVmOptions { MemorySize = 16 * MiB });
        vm.Load(GuestPrograms.Sweep(start, end));
        using IDirtyPageTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        Check(vm.WaitForPass(2, TimeSpan.FromSeconds(10)), "the MicroVm's guest did not finish two passes in 10 s");
        vm.Pause();
        Harvested("MicroVm (KVM dirty log)", tracker, start, end);
    }
    else if (WriteProtectTracker.IsSupported)
    {
        using var vm = new HostVm(16 * MiB);
        vm.Load(HostWorkload.Sweep(start, end));
        using WriteProtectTracker tracker = vm.CreateTracker();
        tracker.Start();
        vm.Start();
        Check(vm.WaitForPass(2, TimeSpan.FromSeconds(10)), "the HostVm's worker did not finish two passes in 10 s");
        vm.Pause();
        Harvested("HostVm (no /dev/kvm: userfaultfd write-protection)", tracker, start, end);
    }
    else
    {
        // Neither facility: a KvmException about /dev/kvm comes from the shim, so it loaded.
        try
        {
            using KvmSystem kvm = KvmSystem.Open();
            throw new CheckFailed("KvmSystem.Open() succeeded although KvmSystem.IsAvailable() said no");
        }
        catch (KvmException e)
        {
            Check(e.Message.Contains(KvmSystem.DefaultPath, StringComparison.Ordinal), $"the KvmException does not name {KvmSystem.DefaultPath}: {e.Message}");
            Console.WriteLine($"ok: no /dev/kvm and no write-protect tracking ({WriteProtectTracker.UnsupportedReason}); the shim answered: {e.Message}");
        }
    }
}

static void Harvested(string what, IDirtyPageTracker tracker, ulong start, ulong end)
{
    DirtyBitmap[] dirty = tracker.Regions.Select(r => new DirtyBitmap(r.PageCount)).ToArray();
    HarvestResult result = tracker.Harvest(dirty);
    ulong first = start / 4096, count = (end - start) / 4096;
    var runs = new List<PageRun>();
    foreach (PageRun run in dirty[0].EnumerateRuns())
    {
        runs.Add(run);
    }

    Check(result.DirtyPages == count && runs is [{ } only] && only == new PageRun(first, count),
        $"{what}: expected pages {first}..{first + count - 1} ({count}), harvested {result.DirtyPages} in runs {string.Join(", ", runs)}");
    Console.WriteLine($"ok: {what} tracked {result.DirtyPages} dirty pages ({first}..{first + count - 1}) in {result.Duration.TotalMicroseconds:F0} µs");
}

static void ShimCameFromThePackage()
{
    // A framework-dependent app without a runtime identifier keeps the package's
    // runtimes/linux-x64/native folder in its output; the shim must be the one from there.
    string expected = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libmigratekit.so");
    Check(MigrateKitNative.LoadedPath == expected, $"libmigratekit.so was loaded from {MigrateKitNative.LoadedPath ?? "(nowhere)"}, expected {expected}");
    Console.WriteLine($"ok: libmigratekit.so loaded from {MigrateKitNative.LoadedPath}");
}

static void ListTestDriverDomains()
{
    LibvirtConnection connection;
    try
    {
        connection = LibvirtConnection.Open("test:///default");
    }
    catch (DllNotFoundException e) when (Environment.GetEnvironmentVariable("MIGRATEKIT_REQUIRE_LIBVIRT") != "1")
    {
        Console.WriteLine($"ok: libvirt part skipped, libvirt.so.0 is not installed ({e.Message})");
        return;
    }

    using (connection)
    {
        string[] names = connection.ListAllDomains().Select(d => d.Name).ToArray();
        Check(names.Contains("test"), $"test:///default lists [{string.Join(", ", names)}], expected its domain \"test\"");
        Console.WriteLine($"ok: {connection.Uri} (libvirt {connection.LibraryVersion}) lists domains: {string.Join(", ", names)}");
    }
}

// The first shim call must fail with an error naming the path and where it was named.
static void ExpectMissingExplicitLibrary(string named, string source)
{
    try
    {
        using var memory = new MigrateKit.Memory.GuestMemoryLayout([new MigrateKit.Memory.GuestMemoryRegionSpec(0, 1 * MiB)]);
        throw new CheckFailed($"guest memory was mapped although {source}={named} does not exist");
    }
    catch (DllNotFoundException e)
    {
        Check(e.Message.Contains(named, StringComparison.Ordinal) && e.Message.Contains(source, StringComparison.Ordinal),
            $"the error does not name the path and {source}: {e.Message}");
        Console.WriteLine($"ok: a missing explicit library is reported: {e.Message}");
    }
}

static void ShimCameFromLibraryPath(string path)
{
    // run.sh points the environment variable at a missing file here: the option must win over it.
    using (var memory = new MigrateKit.Memory.GuestMemoryLayout([new MigrateKit.Memory.GuestMemoryRegionSpec(0, 1 * MiB)]))
    {
        memory.GetSpan(0, 1)[0] = 1;
    }

    string expected = Path.GetFullPath(path);
    Check(MigrateKitNative.LoadedPath == expected, $"libmigratekit.so was loaded from {MigrateKitNative.LoadedPath ?? "(nowhere)"}, expected {expected} from {LibraryPathOption}");
    try
    {
        MigrateKitNative.LibraryPath = null;
        throw new CheckFailed($"{LibraryPathOption} could be changed after the shim was loaded");
    }
    catch (InvalidOperationException)
    {
    }

    Console.WriteLine($"ok: libmigratekit.so loaded from {LibraryPathOption} ({MigrateKitNative.LoadedPath})");
}

static void Check(bool condition, string failure)
{
    if (!condition)
    {
        throw new CheckFailed(failure);
    }
}

internal sealed class CheckFailed(string message) : Exception(message);
