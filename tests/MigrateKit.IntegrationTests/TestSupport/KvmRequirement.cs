using System;
using System.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Kvm;

[assembly: DoNotParallelize]

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>
/// Skips a test only when KVM is truly absent. With MIGRATEKIT_REQUIRE_KVM=1 (set by ./test.sh
/// whenever /dev/kvm exists) a missing or unusable KVM fails the test instead.
/// </summary>
internal static class KvmRequirement
{
    /// <param name="why">What needs KVM, added to the skip reason (for tests that use KVM through QEMU).</param>
    internal static void Require(string? why = null)
    {
        bool required = Environment.GetEnvironmentVariable("MIGRATEKIT_REQUIRE_KVM") == "1";
        if (!File.Exists(KvmSystem.DefaultPath))
        {
            if (required)
            {
                Assert.Fail("MIGRATEKIT_REQUIRE_KVM=1 but /dev/kvm does not exist.");
            }

            Assert.Inconclusive($"Skipped: /dev/kvm does not exist on this machine{(why is null ? "" : $" ({why})")} (set MIGRATEKIT_REQUIRE_KVM=1 to make this a failure).");
        }

        try
        {
            using KvmSystem kvm = KvmSystem.Open();
        }
        catch (KvmException ex)
        {
            if (required)
            {
                Assert.Fail($"MIGRATEKIT_REQUIRE_KVM=1 but /dev/kvm cannot be used: {ex.Message}");
            }

            Assert.Inconclusive($"Skipped: /dev/kvm exists but cannot be opened ({ex.Message}).");
        }
    }
}

/// <summary>
/// Skips a test only when QEMU is not installed. With MIGRATEKIT_REQUIRE_QEMU=1 (set by ./test.sh
/// whenever qemu-system-x86_64 is on PATH) a missing QEMU fails the test instead.
/// </summary>
internal static class QemuRequirement
{
    /// <summary>The path of qemu-system-x86_64.</summary>
    internal static string Require()
    {
        if (MigrateKit.Qemu.QemuProcess.FindOnPath() is { } qemu)
        {
            return qemu;
        }

        if (Environment.GetEnvironmentVariable("MIGRATEKIT_REQUIRE_QEMU") == "1")
        {
            Assert.Fail("MIGRATEKIT_REQUIRE_QEMU=1 but qemu-system-x86_64 is not on PATH.");
        }

        Assert.Inconclusive("Skipped: qemu-system-x86_64 is not installed (Debian: qemu-system-x86; set MIGRATEKIT_REQUIRE_QEMU=1 to make this a failure).");
        return string.Empty;
    }
}
