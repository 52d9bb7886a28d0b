using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>Domain events of a connection.</summary>
public sealed partial class LibvirtConnection : IConnectionEventSink
{
    // Held while registering with libvirt; the native callbacks never take it (they read the handler
    // fields with Volatile.Read), so a callback can never wait for a thread that waits for libvirt.
    private readonly Lock _eventGate = new();

    // Guards only the watcher list; never held across a libvirt call.
    private readonly Lock _watcherGate = new();
    private readonly List<ChannelWriter<DomainEvent>> _watchers = [];
    private LibvirtException? _closedError;
    private bool _disposed;
    private bool _lifecycleRegistered;
    private bool _migrationIterationRegistered;
    private bool _jobCompletedRegistered;
    private EventHandler<DomainLifecycleEventArgs>? _domainLifecycle;
    private EventHandler<DomainMigrationIterationEventArgs>? _migrationIteration;
    private EventHandler<DomainJobCompletedEventArgs>? _jobCompleted;

    /// <summary>
    /// A domain of this connection was defined, started, suspended, stopped… (<c>VIR_DOMAIN_EVENT_ID_LIFECYCLE</c>).
    /// The first subscription registers with libvirt for all domains; the registration lasts until
    /// <see cref="Dispose"/>. Handlers run on the <see cref="LibvirtEventLoop"/> thread.
    /// </summary>
    /// <exception cref="LibvirtException">Subscribing: libvirt refused the registration.</exception>
    /// <exception cref="ObjectDisposedException">Subscribing: the connection was disposed.</exception>
    public event EventHandler<DomainLifecycleEventArgs>? DomainLifecycle
    {
        add
        {
            EnsureRegistered(EventApi.LifecycleEventId, ref _lifecycleRegistered);
            lock (_eventGate)
            {
                _domainLifecycle += value;
            }
        }

        remove
        {
            lock (_eventGate)
            {
                _domainLifecycle -= value;
            }
        }
    }

    /// <summary>
    /// A migrating domain started another pass over its memory (<c>VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION</c>;
    /// QEMU raises it on the source). Registered and run like <see cref="DomainLifecycle"/>.
    /// </summary>
    /// <exception cref="LibvirtException">Subscribing: libvirt refused the registration.</exception>
    /// <exception cref="ObjectDisposedException">Subscribing: the connection was disposed.</exception>
    public event EventHandler<DomainMigrationIterationEventArgs>? MigrationIteration
    {
        add
        {
            EnsureRegistered(EventApi.MigrationIterationEventId, ref _migrationIterationRegistered);
            lock (_eventGate)
            {
                _migrationIteration += value;
            }
        }

        remove
        {
            lock (_eventGate)
            {
                _migrationIteration -= value;
            }
        }
    }

    /// <summary>
    /// A domain job (a migration, a backup…) completed, with its final statistics
    /// (<c>VIR_DOMAIN_EVENT_ID_JOB_COMPLETED</c>). Registered and run like <see cref="DomainLifecycle"/>.
    /// </summary>
    /// <exception cref="LibvirtException">Subscribing: libvirt refused the registration.</exception>
    /// <exception cref="ObjectDisposedException">Subscribing: the connection was disposed.</exception>
    public event EventHandler<DomainJobCompletedEventArgs>? JobCompleted
    {
        add
        {
            EnsureRegistered(EventApi.JobCompletedEventId, ref _jobCompletedRegistered);
            lock (_eventGate)
            {
                _jobCompleted += value;
            }
        }

        remove
        {
            lock (_eventGate)
            {
                _jobCompleted -= value;
            }
        }
    }

    /// <summary>
    /// Streams the lifecycle, migration-iteration and job-completed events of every domain, or of the
    /// domain named <paramref name="domainName"/>. Subscribes when enumeration starts (the first
    /// <c>MoveNextAsync</c>) and unsubscribes when it ends; events are buffered without bound, so read
    /// promptly.
    /// </summary>
    /// <param name="domainName">Only this domain's events (ordinal name match); null for all.</param>
    /// <param name="cancellationToken">Ends the enumeration with <see cref="OperationCanceledException"/>.</param>
    /// <returns>The events in libvirt's order. The sequence ends when the connection is disposed.</returns>
    /// <exception cref="LibvirtException">The connection to a remote daemon closed (<see cref="LibvirtException.IsConnectionFault"/>),
    /// or libvirt refused the event registration.</exception>
    /// <exception cref="ObjectDisposedException">The connection was disposed before enumeration started.</exception>
    public async IAsyncEnumerable<DomainEvent> WatchEventsAsync(string? domainName = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Channel<DomainEvent> channel = Channel.CreateUnbounded<DomainEvent>(new UnboundedChannelOptions
        {
            SingleReader = true,

            // The writers are libvirt callbacks; the consumer must not run on the event-loop thread.
            AllowSynchronousContinuations = false,
        });
        ChannelWriter<DomainEvent> writer = channel.Writer;
        EventHandler<DomainLifecycleEventArgs> onLifecycle = (_, e) =>
        {
            if (Matches(domainName, e.DomainName))
            {
                writer.TryWrite(new DomainLifecycleEvent(e.DomainName, e.Uuid, e.Event, e.Detail));
            }
        };
        EventHandler<DomainMigrationIterationEventArgs> onIteration = (_, e) =>
        {
            if (Matches(domainName, e.DomainName))
            {
                writer.TryWrite(new DomainMigrationIterationEvent(e.DomainName, e.Uuid, e.Iteration));
            }
        };
        EventHandler<DomainJobCompletedEventArgs> onJobCompleted = (_, e) =>
        {
            if (Matches(domainName, e.DomainName))
            {
                writer.TryWrite(new DomainJobCompletedEvent(e.DomainName, e.Uuid, e.Stats));
            }
        };

        AddWatcher(writer);
        try
        {
            DomainLifecycle += onLifecycle;
            MigrationIteration += onIteration;
            JobCompleted += onJobCompleted;
            await foreach (DomainEvent domainEvent in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return domainEvent;
            }
        }
        finally
        {
            DomainLifecycle -= onLifecycle;
            MigrationIteration -= onIteration;
            JobCompleted -= onJobCompleted;
            RemoveWatcher(writer);
        }
    }

    void IConnectionEventSink.OnLifecycle(string domainName, Guid uuid, int eventType, int detail)
    {
        EventHandler<DomainLifecycleEventArgs>? handlers = Volatile.Read(ref _domainLifecycle);
        if (handlers is not null)
        {
            Raise(handlers, new DomainLifecycleEventArgs(domainName, uuid, (DomainEventType)eventType, detail));
        }
    }

    void IConnectionEventSink.OnMigrationIteration(string domainName, Guid uuid, int iteration)
    {
        EventHandler<DomainMigrationIterationEventArgs>? handlers = Volatile.Read(ref _migrationIteration);
        if (handlers is not null)
        {
            Raise(handlers, new DomainMigrationIterationEventArgs(domainName, uuid, iteration));
        }
    }

    void IConnectionEventSink.OnJobCompleted(string domainName, Guid uuid, IReadOnlyDictionary<string, object> statistics)
    {
        EventHandler<DomainJobCompletedEventArgs>? handlers = Volatile.Read(ref _jobCompleted);
        if (handlers is not null)
        {
            Raise(handlers, new DomainJobCompletedEventArgs(domainName, uuid, JobStats.FromCompletedJob(statistics)));
        }
    }

    void IConnectionEventSink.OnClosed(int reason)
    {
        // VIR_CONNECT_CLOSE_REASON_CLIENT: our own close; Dispose already ended the watchers.
        const int closedByClient = 3;
        if (reason == closedByClient)
        {
            return;
        }

        string why = reason switch
        {
            0 => "I/O error",
            1 => "end of file",
            2 => "keepalive timeout",
            _ => $"reason {reason}",
        };

        // Synthesized, as libvirt reports the closure through this callback rather than an error; the
        // code and domain are those its RPC client uses for a lost connection.
        CompleteWatchers(new LibvirtException($"connection {Uri}", LibvirtErrorCodes.Rpc, LibvirtErrorDomains.Rpc, $"the connection was closed: {why}"));
    }

    private static bool Matches(string? wanted, string domainName) => wanted is null || string.Equals(wanted, domainName, StringComparison.Ordinal);

    private void Raise<TEventArgs>(EventHandler<TEventArgs> handlers, TEventArgs args)
    {
        // One failing subscriber must not starve the others, nor unwind into libvirt.
        foreach (EventHandler<TEventArgs> handler in Delegate.EnumerateInvocationList(handlers))
        {
            try
            {
                handler(this, args);
            }
            catch (Exception ex)
            {
                LibvirtEventLoop.ReportUnhandled(ex);
            }
        }
    }

    private void EnsureRegistered(int eventId, ref bool registered)
    {
        lock (_eventGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (registered)
            {
                return;
            }

            // Without a running loop the test driver cannot queue events and the remote driver never reads them.
            LibvirtEventLoop.EnsureStarted();
            EventApi.RegisterDomainEvent(_handle, eventId, this);
            registered = true;
        }
    }

    private void AddWatcher(ChannelWriter<DomainEvent> writer)
    {
        lock (_watcherGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_closedError is { } closed)
            {
                throw new LibvirtException(closed.Operation, closed.Code, closed.ErrorDomain, closed.LibvirtMessage);
            }

            _watchers.Add(writer);
        }
    }

    private void RemoveWatcher(ChannelWriter<DomainEvent> writer)
    {
        lock (_watcherGate)
        {
            _watchers.Remove(writer);
        }
    }

    private void CompleteWatchers(LibvirtException? error)
    {
        ChannelWriter<DomainEvent>[] watchers;
        lock (_watcherGate)
        {
            _closedError ??= error;
            watchers = [.. _watchers];
        }

        foreach (ChannelWriter<DomainEvent> watcher in watchers)
        {
            watcher.TryComplete(error);
        }
    }
}
