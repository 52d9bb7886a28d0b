using System;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.LibvirtSharp;

/// <summary>
/// Skips a test only when libvirt.so.0 cannot be loaded. With MIGRATEKIT_REQUIRE_LIBVIRT=1 a missing
/// library fails the test instead, so CI cannot go green by skipping.
/// </summary>
internal static class LibvirtRequirement
{
    /// <summary>libvirt's built-in test driver: no daemon, one running domain named "test".</summary>
    internal const string TestUri = "test:///default";

    internal static void Require()
    {
        if (global::LibvirtSharp.Libvirt.IsAvailable)
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("MIGRATEKIT_REQUIRE_LIBVIRT") == "1")
        {
            Assert.Fail("MIGRATEKIT_REQUIRE_LIBVIRT=1 but libvirt.so.0 cannot be loaded.");
        }

        Assert.Inconclusive("Skipped: libvirt.so.0 cannot be loaded (install libvirt0; set MIGRATEKIT_REQUIRE_LIBVIRT=1 to make this a failure).");
    }

    /// <summary>Opens test:///default after <see cref="Require"/>.</summary>
    internal static LibvirtConnection OpenTest(bool readOnly = false)
    {
        Require();
        return LibvirtConnection.Open(TestUri, readOnly);
    }

    /// <summary>A test-driver domain XML with a name no other test uses.</summary>
    internal static string DomainXml(out string name)
    {
        name = "lvs-" + Guid.NewGuid().ToString("N")[..12];
        return $"<domain type='test'><name>{name}</name><memory>8192</memory><os><type>hvm</type></os></domain>";
    }
}
