using System;
using System.Threading;
using LibvirtSharp;
using Microsoft.Extensions.Logging;

namespace MigrateKit.Libvirt;

/// <summary>
/// The checks before anything changes: both hosts answer, the domain runs on the source and the
/// destination has no domain of that name.
/// </summary>
internal static class LibvirtPreflight
{
    /// <summary>Checks <paramref name="route"/> and returns the domain's memory size in bytes.</summary>
    /// <exception cref="LibvirtException">The domain does not exist (libvirt's own "no domain" error, its operation naming the source URI), or a host did not answer within <see cref="LibvirtMigrationOptions.ConnectTimeout"/>.</exception>
    /// <exception cref="InvalidOperationException">The domain is not running, or the destination already has one of that name.</exception>
    internal static ulong Check(ILibvirtHostFactory factory, MigrationRoute route, LibvirtMigrationOptions options, ILogger logger, CancellationToken ct)
    {
        // An unreachable host gets the (shorter) connect timeout, not the reconnect timeout of a running migration.
        using var source = new ResilientHost(factory, route.SourceUri, options.ConnectTimeout, options.TimeProvider, logger);
        using var destination = new ResilientHost(factory, route.DestinationUri, options.ConnectTimeout, options.TimeProvider, logger);
        string domain = route.Domain;
        ulong memory;
        try
        {
            memory = source.Run(h => h.GetMemoryBytes(domain), ct);
        }
        catch (LibvirtException ex) when (ex.IsNoDomain)
        {
            // libvirt names the domain, not the host it looked on; an operator with several hosts needs both.
            throw new LibvirtException($"{ex.Operation} on '{route.SourceUri}'", ex.Code, ex.ErrorDomain, ex.LibvirtMessage);
        }

        DomainStateInfo state = source.Run(h => h.GetState(domain), ct)
            ?? throw new InvalidOperationException($"The domain '{domain}' disappeared from '{route.SourceUri}'.");
        if (state.State != DomainState.Running)
        {
            throw new InvalidOperationException($"The domain '{domain}' on '{route.SourceUri}' is {state.State.ToString().ToLowerInvariant()}, not running.");
        }

        if (destination.Run(h => h.GetState(domain), ct) is { } existing)
        {
            throw new InvalidOperationException($"The destination '{route.DestinationUri}' already has a domain '{domain}' ({existing.State.ToString().ToLowerInvariant()}).");
        }

        return memory;
    }
}
