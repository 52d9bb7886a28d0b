using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Tracking;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>
/// Skips a test only when the kernel lacks asynchronous userfaultfd write-protection. With
/// MIGRATEKIT_REQUIRE_WP=1 (set by ./test.sh on Linux 6.9+) its absence fails the test instead.
/// </summary>
internal static class WriteTrackingRequirement
{
    internal static void Require()
    {
        if (WriteProtectTracker.IsSupported)
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("MIGRATEKIT_REQUIRE_WP") == "1")
        {
            Assert.Fail($"MIGRATEKIT_REQUIRE_WP=1 but {WriteProtectTracker.UnsupportedReason}");
        }

        Assert.Inconclusive($"Skipped: {WriteProtectTracker.UnsupportedReason}");
    }
}
