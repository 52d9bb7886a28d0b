using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Libvirt;

namespace MigrateKit.IntegrationTests.Libvirt;

/// <summary>
/// The two libvirt hosts of <c>tests/harness/libvirt-hosts.sh</c>. Tests skip with a reason only when
/// the harness is not running; with MIGRATEKIT_REQUIRE_LIBVIRT=1 (set by ./test.sh after starting it)
/// a missing host fails them.
/// </summary>
internal static class LibvirtHosts
{
    internal static string SourceUri => Environment.GetEnvironmentVariable("MIGRATEKIT_LIBVIRT_SOURCE_URI") ?? "qemu:///system";

    internal static string DestinationUri => Environment.GetEnvironmentVariable("MIGRATEKIT_LIBVIRT_DEST_URI")
        ?? "qemu:///system?socket=/var/lib/migratekit-harness/host2/run/libvirt-sock";

    /// <summary>The harness script (for restarting a daemon).</summary>
    internal static string Script
    {
        get
        {
            for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "tests", "harness", "libvirt-hosts.sh");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }

            throw new FileNotFoundException("tests/harness/libvirt-hosts.sh not found above the test assembly.");
        }
    }

    internal static void Require()
    {
        bool required = Environment.GetEnvironmentVariable("MIGRATEKIT_REQUIRE_LIBVIRT") == "1";
        foreach (string uri in new[] { SourceUri, DestinationUri })
        {
            try
            {
                using LibvirtConnection c = LibvirtConnection.Open(uri);
            }
            catch (Exception ex) when (ex is LibvirtException or DllNotFoundException)
            {
                if (required)
                {
                    Assert.Fail($"MIGRATEKIT_REQUIRE_LIBVIRT=1 but libvirt at '{uri}' cannot be reached: {ex.Message}");
                }

                Assert.Inconclusive($"Skipped: the two-host libvirt harness is not running ('{uri}': {ex.Message}; start it with tests/harness/libvirt-hosts.sh start; set MIGRATEKIT_REQUIRE_LIBVIRT=1 to make this a failure).");
            }
        }
    }

    /// <summary>Runs the harness script with an argument; fails the test with its output when it fails.</summary>
    internal static void Harness(string argument)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Script);
        psi.ArgumentList.Add(argument);
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(true);
            Assert.Fail($"libvirt-hosts.sh {argument} did not finish within 120 s");
        }

        Assert.AreEqual(0, p.ExitCode, $"libvirt-hosts.sh {argument}: {stdout.Result}{stderr.Result}");
    }
}

/// <summary>A transient boot-sector domain on a harness host, destroyed on both hosts on dispose.</summary>
internal sealed class TestDomain : IDisposable
{
    private static readonly string Root = Path.Combine(Path.GetTempPath() == "/tmp/" ? "/var/tmp" : Path.GetTempPath(), "migratekit-tests");
    private readonly string _dir;

    private TestDomain(BootSectorDomain guest, string dir)
    {
        Guest = guest;
        _dir = dir;
    }

    internal BootSectorDomain Guest { get; }

    internal string Name => Guest.Name;

    /// <summary>Creates and starts a domain running <paramref name="program"/> on <paramref name="uri"/>; waits for its first pass.</summary>
    /// <param name="kvm">A KVM or a TCG guest; null for KVM where <c>/dev/kvm</c> exists.</param>
    internal static TestDomain Start(string uri, Func<GuestProgram> program, ulong memory, int dirtyRing = 0, bool waitForPass = true, bool? kvm = null)
    {
        string name = $"mk-test-{Guid.NewGuid().ToString("N")[..10]}";
        string dir = Path.Combine(Root, name);
        Directory.CreateDirectory(dir);
        var guest = new BootSectorDomain(name, memory, Path.Combine(dir, "boot.img"), Path.Combine(dir, "com1.log"), kvm ?? BootSectorDomain.KvmAvailable, dirtyRing);
        File.WriteAllBytes(guest.ImagePath, BootSector.Build(program()));
        var domain = new TestDomain(guest, dir);
        try
        {
            using (LibvirtConnection c = LibvirtConnection.Open(uri))
            {
                using LibvirtDomain d = c.CreateDomain(guest.ToXml());
            }

            if (waitForPass)
            {
                domain.WaitForPass(1, TimeSpan.FromSeconds(60));
            }

            return domain;
        }
        catch
        {
            domain.Dispose();
            throw;
        }
    }

    /// <summary>Waits for pass <paramref name="pass"/>; fails on any failed check or stray output.</summary>
    internal GuestSerialLog WaitForPass(uint pass, TimeSpan timeout)
    {
        GuestSerialLog log;
        try
        {
            log = Guest.WaitForPassAsync(pass, timeout).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            log = Guest.ReadSerial();
            Assert.IsEmpty(log.FailedPages, $"{Name}: failed page checks {string.Join(", ", log.FailedPages)}");
            Assert.IsEmpty(log.Garbage, $"{Name}: unexpected serial output {string.Join(" | ", log.Garbage)}");
            Assert.Fail($"{Name} did not reach pass {pass} within {timeout.TotalSeconds} s (last {log.LastPass}): {ex.Message}");
        }

        Assert.IsEmpty(log.FailedPages, $"{Name}: failed page checks {string.Join(", ", log.FailedPages)}");
        Assert.IsEmpty(log.Garbage, $"{Name}: unexpected serial output {string.Join(" | ", log.Garbage)}");
        return log;
    }

    /// <summary>The domain's state on a host, or null when the host has no such domain.</summary>
    internal DomainState? StateOn(string uri)
    {
        using LibvirtConnection c = LibvirtConnection.Open(uri);
        using LibvirtDomain? d = c.TryLookupDomain(Name);
        return d?.GetState().State;
    }

    public void Dispose()
    {
        TransientDomains.Destroy(LibvirtHosts.SourceUri, Name);
        TransientDomains.Destroy(LibvirtHosts.DestinationUri, Name);

        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
