using System;
using System.Collections.Generic;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>
/// A domain (<c>virDomainPtr</c>) — a reference to a virtual machine, which exists independently of
/// this object: disposing it releases the reference, nothing else. Thread-safe.
/// </summary>
public sealed class LibvirtDomain : IDisposable
{
    private readonly SafeDomainHandle _handle;

    private LibvirtDomain(LibvirtConnection connection, SafeDomainHandle handle)
    {
        _handle = handle;
        Connection = connection;
        Name = DomainApi.GetName(handle);
        Uuid = DomainApi.GetUuid(handle, Name);
    }

    /// <summary>The domain's name (as it was when this object was obtained).</summary>
    public string Name { get; }

    /// <summary>The domain's UUID.</summary>
    public Guid Uuid { get; }

    /// <summary>The hypervisor's id for the running domain (<c>virDomainGetID</c>); null while it is inactive.</summary>
    /// <exception cref="ObjectDisposedException">This object was disposed.</exception>
    public int? Id => DomainApi.GetId(_handle);

    /// <summary>Whether the domain is running or paused (<c>virDomainIsActive</c>).</summary>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the domain no longer exists.</exception>
    public bool IsActive => DomainApi.IsActive(_handle, Name);

    /// <summary>Whether the domain has a persistent definition (<c>virDomainIsPersistent</c>); false for transient domains.</summary>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the domain no longer exists.</exception>
    public bool IsPersistent => DomainApi.IsPersistent(_handle, Name);

    /// <summary>The connection this domain was obtained from.</summary>
    public LibvirtConnection Connection { get; }

    /// <summary>The handle, for calls made on the domain's behalf by its connection.</summary>
    internal SafeDomainHandle Handle => _handle;

    /// <summary>The domain's state and its reason (<c>virDomainGetState</c>).</summary>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the domain no longer exists.</exception>
    public DomainStateInfo GetState()
    {
        (int state, int reason) = DomainApi.GetState(_handle, Name);
        return new DomainStateInfo((DomainState)state, reason);
    }

    /// <summary>The domain's XML description (<c>virDomainGetXMLDesc</c>).</summary>
    /// <exception cref="LibvirtException">libvirt failed, e.g. <see cref="DomainXmlFlags.Secure"/> on a read-only connection.</exception>
    public string GetXml(DomainXmlFlags flags = 0) => DomainApi.GetXmlDesc(_handle, Name, (uint)flags);

    /// <summary>Starts the defined domain (<c>virDomainCreate</c>).</summary>
    /// <exception cref="LibvirtException">The domain is already running (<c>VIR_ERR_OPERATION_INVALID</c>), or libvirt failed.</exception>
    public void Create() => DomainApi.Create(_handle, Name);

    /// <summary>Stops the domain immediately, like pulling the plug (<c>virDomainDestroy</c>). A transient domain disappears.</summary>
    /// <exception cref="LibvirtException">The domain is not running, the connection is read-only (<c>VIR_ERR_OPERATION_DENIED</c>), or libvirt failed.</exception>
    public void Destroy() => DomainApi.Destroy(_handle, Name);

    /// <summary>Removes the domain's persistent definition (<c>virDomainUndefineFlags</c>); a running domain becomes transient.</summary>
    /// <exception cref="LibvirtException">libvirt failed.</exception>
    public void Undefine(DomainUndefineFlags flags = 0) => DomainApi.Undefine(_handle, Name, (uint)flags);

    /// <summary>Pauses the domain's vCPUs (<c>virDomainSuspend</c>).</summary>
    /// <exception cref="LibvirtException">The domain is not running, or libvirt failed.</exception>
    public void Suspend() => DomainApi.Suspend(_handle, Name);

    /// <summary>Resumes the domain's vCPUs (<c>virDomainResume</c>).</summary>
    /// <exception cref="LibvirtException">The domain is not paused, or libvirt failed.</exception>
    public void Resume() => DomainApi.Resume(_handle, Name);

    /// <summary>
    /// Migrates the domain to the host behind <paramref name="destination"/> (<c>virDomainMigrate3</c>):
    /// the client drives the migration through both connections. Blocks until the migration ends; watch it
    /// from another thread with <see cref="GetJobStats"/> or the connection's events, stop it with <see cref="AbortJob"/>.
    /// </summary>
    /// <param name="destination">An open, read-write connection to the destination host.</param>
    /// <param name="parameters">Migration parameters; <see cref="DomainMigrationParameters.Default"/> sends none.</param>
    /// <param name="flags">Migration flags, typically <see cref="MigrationFlags.Live"/>.</param>
    /// <returns>The domain on the destination, obtained from <paramref name="destination"/>. Dispose it.</returns>
    /// <exception cref="LibvirtException">The migration failed or was aborted (<c>VIR_ERR_OPERATION_ABORTED</c>).</exception>
    public LibvirtDomain Migrate(LibvirtConnection destination, DomainMigrationParameters parameters, MigrationFlags flags)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(parameters);
        using TypedParameters native = parameters.ToTypedParameters();
        return Wrap(destination, DomainApi.Migrate3(_handle, Name, destination.Handle, native, (uint)flags));
    }

    /// <summary>
    /// Migrates the domain with the source daemon in charge (<c>virDomainMigrateToURI3</c>): it connects to
    /// <paramref name="destinationConnectionUri"/> itself, so <paramref name="flags"/> must include
    /// <see cref="MigrationFlags.PeerToPeer"/>. Blocks until the migration ends.
    /// </summary>
    /// <param name="destinationConnectionUri">The destination's libvirt URI as the source daemon sees it, e.g. <c>qemu+tls://dst/system</c>.</param>
    /// <param name="parameters">Migration parameters; <see cref="DomainMigrationParameters.Default"/> sends none.</param>
    /// <param name="flags">Migration flags, including <see cref="MigrationFlags.PeerToPeer"/>.</param>
    /// <exception cref="LibvirtException">The migration failed or was aborted.</exception>
    public void MigrateToUri(string destinationConnectionUri, DomainMigrationParameters parameters, MigrationFlags flags)
    {
        ArgumentNullException.ThrowIfNull(destinationConnectionUri);
        ArgumentNullException.ThrowIfNull(parameters);
        using TypedParameters native = parameters.ToTypedParameters();
        DomainApi.MigrateToUri3(_handle, Name, destinationConnectionUri, native, (uint)flags);
    }

    /// <summary>
    /// Sets the longest acceptable pause at switchover of the running migration
    /// (<c>virDomainMigrateSetMaxDowntime</c>). libvirt takes whole milliseconds: a fraction of a
    /// millisecond is dropped; zero is passed on as zero. Hypervisors have their own upper bound
    /// (QEMU: 2000 s), which libvirt reports as a <see cref="LibvirtException"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="downtime"/> is negative, or positive but under 1 ms (it would become 0 ms).</exception>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the driver does not support it (<c>VIR_ERR_NO_SUPPORT</c>).</exception>
    public void SetMaxDowntime(TimeSpan downtime)
    {
        if (downtime < TimeSpan.Zero || (downtime > TimeSpan.Zero && downtime < TimeSpan.FromMilliseconds(1)))
        {
            throw new ArgumentOutOfRangeException(nameof(downtime), downtime,
                "The downtime limit must be zero or at least 1 ms: libvirt takes whole milliseconds, so a shorter one would become 0 ms.");
        }

        // TimeSpan.MaxValue is about 9.2e14 ms: every TimeSpan fits libvirt's unsigned long long.
        DomainApi.SetMaxDowntime(_handle, Name, (ulong)(downtime.Ticks / TimeSpan.TicksPerMillisecond));
    }

    /// <summary>The longest acceptable pause at switchover (<c>virDomainMigrateGetMaxDowntime</c>).</summary>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the driver does not support it (<c>VIR_ERR_NO_SUPPORT</c>).</exception>
    public TimeSpan GetMaxDowntime()
    {
        ulong milliseconds = DomainApi.GetMaxDowntime(_handle, Name);
        return TimeSpan.FromMilliseconds(Math.Min(milliseconds, (ulong)TimeSpan.MaxValue.TotalMilliseconds));
    }

    /// <summary>Sets the migration bandwidth limit (<c>virDomainMigrateSetMaxSpeed</c>).</summary>
    /// <param name="mebibytesPerSecond">The limit in MiB/s.</param>
    /// <param name="postcopy">Set the post-copy phase's limit (<c>VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY</c>) rather than pre-copy's.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="mebibytesPerSecond"/> does not fit C's <c>unsigned long</c> (on 32-bit processes).</exception>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the driver does not support it (<c>VIR_ERR_NO_SUPPORT</c>).</exception>
    public void SetMaxSpeed(ulong mebibytesPerSecond, bool postcopy = false)
    {
        // libvirt takes an unsigned long, 32 bits wide in a 32-bit process: a larger value would wrap.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(mebibytesPerSecond, (ulong)nuint.MaxValue);
        DomainApi.SetMaxSpeed(_handle, Name, mebibytesPerSecond, postcopy ? DomainApi.MaxSpeedPostcopy : 0);
    }

    /// <summary>The migration bandwidth limit in MiB/s (<c>virDomainMigrateGetMaxSpeed</c>).</summary>
    /// <param name="postcopy">Read the post-copy phase's limit rather than pre-copy's.</param>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the driver does not support it (<c>VIR_ERR_NO_SUPPORT</c>).</exception>
    public ulong GetMaxSpeed(bool postcopy = false) =>
        DomainApi.GetMaxSpeed(_handle, Name, postcopy ? DomainApi.MaxSpeedPostcopy : 0);

    /// <summary>
    /// Sets the size of the XBZRLE page cache (<c>virDomainMigrateSetCompressionCache</c>), before a migration
    /// or while one runs (QEMU resizes the cache between pages).
    /// </summary>
    /// <param name="bytes">The cache size in bytes; QEMU rounds it down to a power of two pages and refuses less than a page or more than guest memory.</param>
    /// <exception cref="LibvirtException">libvirt or QEMU refused the size, or the driver does not support it (<c>VIR_ERR_NO_SUPPORT</c>).</exception>
    public void SetCompressionCache(ulong bytes) => DomainApi.SetCompressionCache(_handle, Name, bytes);

    /// <summary>The size of the XBZRLE page cache in bytes (<c>virDomainMigrateGetCompressionCache</c>).</summary>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the driver does not support it (<c>VIR_ERR_NO_SUPPORT</c>).</exception>
    public ulong GetCompressionCache() => DomainApi.GetCompressionCache(_handle, Name);

    /// <summary>
    /// Switches the running migration to post-copy (<c>virDomainMigrateStartPostCopy</c>): the domain runs on the
    /// destination at once and fetches the remaining pages on demand. The migration must have been started with
    /// <see cref="MigrationFlags.Postcopy"/>.
    /// </summary>
    /// <exception cref="LibvirtException">No suitable migration is running, or libvirt failed.</exception>
    public void StartPostCopy() => DomainApi.StartPostCopy(_handle, Name);

    /// <summary>Aborts the domain's current job, e.g. a migration (<c>virDomainAbortJob</c>).</summary>
    /// <exception cref="LibvirtException">No job is running, or libvirt failed.</exception>
    public void AbortJob() => DomainApi.AbortJob(_handle, Name);

    /// <summary>Statistics of the domain's current job, or of its last completed one (<c>virDomainGetJobStats</c>).</summary>
    /// <param name="completed">Return the last completed job's statistics (<c>VIR_DOMAIN_JOB_STATS_COMPLETED</c>).</param>
    /// <returns>The statistics; <see cref="JobStats.Type"/> is <see cref="DomainJobType.None"/> when there is no job.</returns>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the driver does not support it (<c>VIR_ERR_NO_SUPPORT</c>).</exception>
    public JobStats GetJobStats(bool completed = false)
    {
        (int type, Dictionary<string, object> parameters) = DomainApi.GetJobStats(_handle, Name, completed ? DomainApi.JobStatsCompleted : 0);
        return JobStats.FromParameters((DomainJobType)type, parameters);
    }

    /// <summary>
    /// Starts measuring how fast the guest dirties memory (<c>virDomainStartDirtyRateCalc</c>). Read the result
    /// with <see cref="GetDirtyRate"/> once <paramref name="period"/> has passed.
    /// </summary>
    /// <param name="period">How long to measure, in whole seconds (QEMU accepts 1 to 60).</param>
    /// <param name="mode">The measuring method; <see cref="DirtyRateMode.DirtyRing"/> needs a domain started with KVM's dirty ring.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="period"/> is shorter than a second or too long.</exception>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the driver does not support it (<c>VIR_ERR_NO_SUPPORT</c>).</exception>
    public void StartDirtyRateCalc(TimeSpan period, DirtyRateMode mode)
    {
        long seconds = period.Ticks / TimeSpan.TicksPerSecond;
        ArgumentOutOfRangeException.ThrowIfLessThan(seconds, 1L, nameof(period));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(seconds, (long)int.MaxValue, nameof(period));
        uint flags = mode switch
        {
            DirtyRateMode.PageSampling => 0,
            DirtyRateMode.DirtyBitmap => 1u << 0,
            DirtyRateMode.DirtyRing => 1u << 1,
            _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown dirty-rate mode."),
        };
        DomainApi.StartDirtyRateCalc(_handle, Name, (int)seconds, flags);
    }

    /// <summary>
    /// The last dirty-rate measurement (the <c>dirtyrate.*</c> statistics of <c>virDomainListGetStats</c>),
    /// requested with <c>VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS</c> so that a driver without dirty-rate
    /// statistics fails instead of answering with nothing.
    /// </summary>
    /// <exception cref="LibvirtException">libvirt failed, e.g. the driver has no dirty-rate statistics (<c>VIR_ERR_ARGUMENT_UNSUPPORTED</c>).</exception>
    public DirtyRateInfo GetDirtyRate() =>
        DirtyRateInfo.FromStats(Connection.GetDomainStats(this, DomainStatsTypes.DirtyRate, DomainApi.EnforceStats).Parameters);

    /// <summary>Releases the reference to the domain (<c>virDomainFree</c>); the virtual machine is unaffected.</summary>
    public void Dispose() => _handle.Dispose();

    /// <summary>Returns <see cref="Name"/>.</summary>
    public override string ToString() => Name;

    /// <summary>Wraps a new reference; releases it if the domain cannot be read.</summary>
    internal static LibvirtDomain Wrap(LibvirtConnection connection, SafeDomainHandle handle)
    {
        try
        {
            return new LibvirtDomain(connection, handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
