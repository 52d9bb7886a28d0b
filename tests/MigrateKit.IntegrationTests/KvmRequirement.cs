using System;
using System.IO;
using MigrateKit.Kvm;
using Microsoft.VisualStudio.TestTools.UnitTesting;

[assembly: DoNotParallelize]

namespace MigrateKit.IntegrationTests;

/// <summary>
/// Skips a test only when KVM is truly absent. With MIGRATEKIT_REQUIRE_KVM=1 (set by ./test.sh
/// whenever /dev/kvm exists) a missing or unusable KVM fails the test instead.
/// </summary>
internal static class KvmRequirement
{
    internal static void Require()
    {
        bool required = Environment.GetEnvironmentVariable("MIGRATEKIT_REQUIRE_KVM") == "1";
        if (!File.Exists(KvmSystem.DefaultPath))
        {
            if (required)
            {
                Assert.Fail("MIGRATEKIT_REQUIRE_KVM=1 but /dev/kvm does not exist.");
            }

            Assert.Inconclusive("Skipped: /dev/kvm does not exist on this machine (set MIGRATEKIT_REQUIRE_KVM=1 to make this a failure).");
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
