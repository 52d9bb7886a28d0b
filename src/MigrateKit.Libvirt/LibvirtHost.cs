using System;
using System.Threading;
using LibvirtSharp;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace MigrateKit.Libvirt;

/// <summary>
/// The operations the migrator needs from one libvirt host, by domain name: the seam the policy
/// and retry logic are tested against.
/// </summary>
internal interface ILibvirtHost : IDisposable
{
    /// <summary>The connection URI.</summary>
    string Uri { get; }

    /// <summary>The versions of libvirt and of the hypervisor (QEMU) serving the connection.</summary>
    HostVersions Versions();

    /// <summary>The domain's state, or null when the host has no such domain.</summary>
    DomainStateInfo? GetState(string domain);

    /// <summary>The domain's current (or last completed) job statistics.</summary>
    JobStats GetJobStats(string domain, bool completed);

    /// <summary>Sets QEMU's downtime limit.</summary>
    void SetMaxDowntime(string domain, TimeSpan limit);

    /// <summary>Switches a running migration to postcopy.</summary>
    void StartPostCopy(string domain);

    /// <summary>Resizes the xbzrle page cache of the domain's migration.</summary>
    void SetCompressionCache(string domain, ulong bytes);

    /// <summary>Aborts the domain's job.</summary>
    void AbortJob(string domain);

    /// <summary>Resumes a paused domain.</summary>
    void Resume(string domain);

    /// <summary>Pauses a running domain.</summary>
    void Suspend(string domain);

    /// <summary>The domain's memory size in bytes.</summary>
    ulong GetMemoryBytes(string domain);

    /// <summary>The domain's virtualization type: <c>kvm</c>, or <c>qemu</c> for a TCG guest.</summary>
    string GetVirtType(string domain);

    /// <summary>Starts libvirt's dirty-rate calculation.</summary>
    void StartDirtyRateCalc(string domain, TimeSpan period, DirtyRateMode mode);

    /// <summary>Reads the dirty-rate calculation's state and result.</summary>
    DirtyRateInfo GetDirtyRate(string domain);

    /// <summary>
    /// Runs the migration (blocks until libvirt returns): <c>virDomainMigrate3</c> from this host to
    /// <paramref name="destination"/>, both opened by the same factory.
    /// </summary>
    void Migrate(string domain, ILibvirtHost destination, DomainMigrationParameters parameters, MigrationFlags flags);

    /// <summary>Calls <paramref name="onIteration"/> on every migration-iteration event of the domain until disposed.</summary>
    IDisposable WatchIterations(string domain, Action<int> onIteration);
}

/// <summary>Opens hosts; the migrator reconnects through it after a fault.</summary>
internal interface ILibvirtHostFactory
{
    /// <summary>Opens a read-write connection to <paramref name="uri"/>.</summary>
    ILibvirtHost Open(string uri);
}

/// <summary>The real host: a LibvirtSharp connection.</summary>
internal sealed class LibvirtHost : ILibvirtHost
{
    private readonly LibvirtConnection _connection;

    private LibvirtHost(LibvirtConnection connection, string uri)
    {
        _connection = connection;
        Uri = uri;
    }

    /// <summary>The factory over LibvirtSharp.</summary>
    internal static ILibvirtHostFactory Factory { get; } = new RealFactory();

    public string Uri { get; }

    /// <summary>The underlying connection (for the migrate call and events).</summary>
    internal LibvirtConnection Connection => _connection;

    public DomainStateInfo? GetState(string domain)
    {
        using LibvirtDomain? d = _connection.TryLookupDomain(domain);
        return d?.GetState();
    }

    public HostVersions Versions() => new(_connection.LibraryVersion, _connection.HypervisorVersion);

    public JobStats GetJobStats(string domain, bool completed) => On(domain, d => d.GetJobStats(completed));

    public void SetMaxDowntime(string domain, TimeSpan limit) => On(domain, d => d.SetMaxDowntime(limit));

    public void StartPostCopy(string domain) => On(domain, d => d.StartPostCopy());

    public void SetCompressionCache(string domain, ulong bytes) => On(domain, d => d.SetCompressionCache(bytes));

    public void AbortJob(string domain) => On(domain, d => d.AbortJob());

    public void Resume(string domain) => On(domain, d => d.Resume());

    public void Suspend(string domain) => On(domain, d => d.Suspend());

    public ulong GetMemoryBytes(string domain) => On(domain, d => DomainXml.MemoryBytes(d.GetXml()));

    public string GetVirtType(string domain) => On(domain, d => DomainXml.VirtType(d.GetXml()));

    public void StartDirtyRateCalc(string domain, TimeSpan period, DirtyRateMode mode) => On(domain, d => d.StartDirtyRateCalc(period, mode));

    public DirtyRateInfo GetDirtyRate(string domain) => On(domain, d => d.GetDirtyRate());

    public void Migrate(string domain, ILibvirtHost destination, DomainMigrationParameters parameters, MigrationFlags flags)
    {
        var target = destination as LibvirtHost ?? throw new ArgumentException("The destination must come from the same factory.", nameof(destination));
        using LibvirtDomain d = _connection.LookupDomain(domain);
        using LibvirtDomain migrated = d.Migrate(target._connection, parameters, flags);
    }

    public IDisposable WatchIterations(string domain, Action<int> onIteration)
    {
        EventHandler<DomainMigrationIterationEventArgs> handler = (_, e) =>
        {
            if (e.DomainName == domain)
            {
                onIteration(e.Iteration);
            }
        };
        _connection.MigrationIteration += handler;
        return new Unsubscriber(() => _connection.MigrationIteration -= handler);
    }

    public void Dispose() => _connection.Dispose();

    // Looked up per call: a handle from a connection that was replaced would be stale.
    private T On<T>(string domain, Func<LibvirtDomain, T> call)
    {
        using LibvirtDomain d = _connection.LookupDomain(domain);
        return call(d);
    }

    private void On(string domain, Action<LibvirtDomain> call)
    {
        using LibvirtDomain d = _connection.LookupDomain(domain);
        call(d);
    }

    private sealed class Unsubscriber(Action undo) : IDisposable
    {
        private Action? _undo = undo;

        public void Dispose() => Interlocked.Exchange(ref _undo, null)?.Invoke();
    }

    private sealed class RealFactory : ILibvirtHostFactory
    {
        public ILibvirtHost Open(string uri)
        {
            LibvirtConnection connection = LibvirtConnection.Open(uri);
            try
            {
                // A peer that goes silent (a partition, a hung daemon) is declared dead after about
                // 20 s, failing the calls blocked on it instead of leaving them hanging forever.
                connection.SetKeepAlive(5, 3);
            }
            catch (LibvirtException)
            {
                // Local drivers (test:///, qemu:///session without a daemon) have no keepalive.
            }

            return new LibvirtHost(connection, uri);
        }
    }
}

/// <summary>
/// A host that reconnects: every call runs through a Polly retry pipeline that treats connection
/// faults (reset sockets, RPC errors, a restarted daemon) as transient, drops the broken connection
/// and opens a new one, with exponential back-off, until <see cref="LibvirtMigrationOptions.ReconnectTimeout"/>.
/// Other libvirt errors (no such domain, invalid operation) pass through at once.
/// </summary>
internal sealed class ResilientHost : IDisposable
{
    private readonly ILibvirtHostFactory _factory;
    private readonly ResiliencePipeline _pipeline;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private ILibvirtHost? _host;
    private int _reconnects;

    internal ResilientHost(ILibvirtHostFactory factory, string uri, TimeSpan reconnectTimeout, TimeProvider time, ILogger logger)
    {
        _factory = factory;
        Uri = uri;
        _logger = logger;
        // The timeout is outermost: it bounds the whole reconnect effort, not one attempt.
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddTimeout(reconnectTimeout)
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<LibvirtException>(IsTransient),
                BackoffType = DelayBackoffType.Exponential,
                Delay = TimeSpan.FromMilliseconds(100),
                MaxDelay = TimeSpan.FromSeconds(2),
                MaxRetryAttempts = int.MaxValue,
                OnRetry = args =>
                {
                    Drop();
                    LibvirtLog.Reconnecting(_logger, args.Outcome.Exception, Uri, args.AttemptNumber + 1);
                    return default;
                },
            })
            .Build();
    }

    /// <summary>The URI.</summary>
    internal string Uri { get; }

    /// <summary>How many times a broken connection was dropped.</summary>
    internal int Reconnects => Volatile.Read(ref _reconnects);

    /// <summary>Whether an exception is a connection fault worth reconnecting for.</summary>
    internal static bool IsTransient(LibvirtException ex) => ex.IsConnectionFault;

    /// <summary>Runs <paramref name="call"/> on a live connection, reconnecting on connection faults.</summary>
    /// <exception cref="LibvirtException">A non-transient error, or the last connection fault when the reconnect timeout ran out.</exception>
    internal T Run<T>(Func<ILibvirtHost, T> call, CancellationToken cancellationToken = default)
    {
        LibvirtException? last = null;
        try
        {
            return _pipeline.Execute(_ =>
            {
                try
                {
                    return call(Current());
                }
                catch (LibvirtException ex) when (IsTransient(ex))
                {
                    last = ex;
                    throw;
                }
            }, cancellationToken);
        }
        catch (Polly.Timeout.TimeoutRejectedException) when (last is not null)
        {
            // Out of time: the caller gets libvirt's own account of the last fault.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(last);
            throw;
        }
    }

    /// <summary>Runs <paramref name="call"/> on a live connection, reconnecting on connection faults.</summary>
    internal void Run(Action<ILibvirtHost> call, CancellationToken cancellationToken = default) =>
        Run<bool>(h => { call(h); return true; }, cancellationToken);

    public void Dispose()
    {
        lock (_gate)
        {
            _host?.Dispose();
            _host = null;
        }
    }

    private ILibvirtHost Current()
    {
        lock (_gate)
        {
            if (_host is null)
            {
                _host = _factory.Open(Uri);
            }

            return _host;
        }
    }

    private void Drop()
    {
        ILibvirtHost? old;
        lock (_gate)
        {
            old = _host;
            _host = null;
        }

        if (old is not null)
        {
            Interlocked.Increment(ref _reconnects);
            try
            {
                old.Dispose();
            }
            catch (LibvirtException)
            {
                // Closing a dead connection may report the death once more; it is gone either way.
            }
        }
    }
}
