using System;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using Microsoft.Extensions.Logging;

namespace MigrateKit.Libvirt;

/// <summary>
/// The <c>virDomainMigrate3</c> call, on connections of its own (a fault on the polling ones must not
/// touch it) and on a thread of its own (it blocks until libvirt returns). It is never retried: after a
/// fault the domain's state on both hosts decides what happened.
/// </summary>
internal sealed class MigrateCall : IDisposable
{
    private readonly ILibvirtHost _source;
    private readonly ILibvirtHost _destination;
    private IDisposable? _iterations;

    private MigrateCall(ILibvirtHost source, ILibvirtHost destination)
    {
        _source = source;
        _destination = destination;
    }

    /// <summary>Opens the call's connections, through the hosts' reconnecting pipelines.</summary>
    internal static MigrateCall Open(ILibvirtHostFactory factory, ResilientHost source, ResilientHost destination, CancellationToken ct)
    {
        ILibvirtHost controlSource = source.Run(_ => factory.Open(source.Uri), ct);
        try
        {
            return new MigrateCall(controlSource, destination.Run(_ => factory.Open(destination.Uri), ct));
        }
        catch
        {
            controlSource.Dispose();
            throw;
        }
    }

    /// <summary>Calls <paramref name="onIteration"/> at every iteration event of the domain, where the source sends them.</summary>
    internal void WatchIterations(string domain, Action onIteration, ILogger logger)
    {
        try
        {
            _iterations = _source.WatchIterations(domain, _ => onIteration());
        }
        catch (LibvirtException ex)
        {
            LibvirtLog.IterationEventsUnavailable(logger, ex, _source.Uri);
        }
    }

    /// <summary>Starts the call; the task ends when libvirt returns.</summary>
    internal Task Start(string domain, DomainMigrationParameters parameters, MigrationFlags flags) =>
        Task.Factory.StartNew(() => _source.Migrate(domain, _destination, parameters, flags),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Waits for the call: null when it returned, or the libvirt failure it ended with.</summary>
    internal static async Task<Exception?> FailureOf(Task call)
    {
        try
        {
            await call.ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is LibvirtException or ArgumentException or InvalidOperationException or ObjectDisposedException)
        {
            return ex;
        }
    }

    public void Dispose()
    {
        _iterations?.Dispose();
        _source.Dispose();
        _destination.Dispose();
    }
}
