using System;
using LibvirtSharp;

namespace MigrateKit.Libvirt;

/// <summary>Clean-up of transient domains (probes, demos, tests).</summary>
public static class TransientDomains
{
    /// <summary>Destroys the domain <paramref name="name"/> on each host where it is active; unreachable hosts and missing domains are skipped.</summary>
    public static void Destroy(string uri, string name)
    {
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentNullException.ThrowIfNull(name);
        try
        {
            using LibvirtConnection c = LibvirtConnection.Open(uri);
            using LibvirtDomain? d = c.TryLookupDomain(name);
            if (d is { IsActive: true })
            {
                d.Destroy();
            }
        }
        catch (LibvirtException)
        {
            // Nothing to clean up where the host cannot be reached or the domain is gone.
        }
    }
}
