using System;
using System.Collections.Generic;
using System.IO;
using System.Xml;
using System.Xml.Linq;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>
/// A connection to a libvirt driver (<c>virConnectPtr</c>): <c>qemu:///system</c>,
/// <c>qemu+ssh://host/system</c>, <c>test:///default</c>… Thread-safe; libvirt serializes what needs it.
/// </summary>
/// <remarks>
/// Domains obtained from a connection stay usable after the connection is disposed (libvirt keeps the
/// underlying connection alive until the last domain is disposed), but its events stop.
/// </remarks>
public sealed partial class LibvirtConnection : IDisposable
{
    private readonly SafeConnectHandle _handle;
    private Version? _libraryVersion;
    private Version? _hypervisorVersion;
    private string? _hypervisorType;
    private string? _hostName;
    private Guid? _hostUuid;

    private LibvirtConnection(SafeConnectHandle handle, bool readOnly)
    {
        _handle = handle;
        IsReadOnly = readOnly;
        Uri = ConnectApi.GetUri(handle);
        EventApi.TryRegisterClose(handle, this);
    }

    /// <summary>
    /// Opens a connection (<c>virConnectOpenAuth</c> without an authentication callback, so nothing prompts).
    /// Starts <see cref="LibvirtEventLoop"/> first: the remote driver only watches its socket for events
    /// and keepalive replies when an event loop existed when the connection was opened.
    /// </summary>
    /// <param name="uri">The connection URI, e.g. <c>qemu:///system</c> or <c>qemu+tcp://10.0.0.2/system</c>.</param>
    /// <param name="readOnly">Open read-only (<c>VIR_CONNECT_RO</c>): no domain changes, fewer permissions needed.</param>
    /// <exception cref="LibvirtException">The connection failed; <see cref="LibvirtException.Operation"/> names the URI.</exception>
    /// <exception cref="DllNotFoundException">libvirt.so.0 cannot be loaded.</exception>
    public static LibvirtConnection Open(string uri, bool readOnly = false)
    {
        ArgumentNullException.ThrowIfNull(uri);
        LibvirtEventLoop.EnsureStarted();
        SafeConnectHandle handle = ConnectApi.Open(uri, readOnly);
        try
        {
            return new LibvirtConnection(handle, readOnly);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The canonical URI of the open connection (<c>virConnectGetURI</c>), e.g. <c>test:///default</c>.</summary>
    public string Uri { get; }

    /// <summary>The libvirt version serving the connection (<c>virConnectGetLibVersion</c>): the daemon's for remote URIs.</summary>
    /// <exception cref="LibvirtException">libvirt failed.</exception>
    public Version LibraryVersion => _libraryVersion ??= Libvirt.Decode(ConnectApi.GetLibraryVersion(_handle));

    /// <summary>The hypervisor's version (<c>virConnectGetVersion</c>), e.g. QEMU 7.2.0; 0.0.0 when the driver cannot tell.</summary>
    /// <exception cref="LibvirtException">libvirt failed.</exception>
    public Version HypervisorVersion => _hypervisorVersion ??= Libvirt.Decode(ConnectApi.GetHypervisorVersion(_handle));

    /// <summary>The driver's name (<c>virConnectGetType</c>), e.g. <c>QEMU</c> or <c>TEST</c>.</summary>
    /// <exception cref="LibvirtException">libvirt failed.</exception>
    public string HypervisorType => _hypervisorType ??= ConnectApi.GetHypervisorType(_handle);

    /// <summary>The host name of the hypervisor host (<c>virConnectGetHostname</c>).</summary>
    /// <exception cref="LibvirtException">libvirt failed.</exception>
    public string HostName => _hostName ??= ConnectApi.GetHostname(_handle);

    /// <summary>
    /// The host's UUID from the capabilities XML (<c>/capabilities/host/uuid</c>), the identity libvirt uses to
    /// refuse a migration to the same host; <see cref="Guid.Empty"/> when the driver reports none (the test driver).
    /// </summary>
    /// <exception cref="LibvirtException">libvirt failed.</exception>
    public Guid HostUuid => _hostUuid ??= ParseHostUuid(ConnectApi.GetCapabilities(_handle));

    /// <summary>Whether the connection is still usable (<c>virConnectIsAlive</c>): false once a remote daemon went away.</summary>
    /// <exception cref="LibvirtException">libvirt failed.</exception>
    /// <exception cref="ObjectDisposedException">The connection was disposed.</exception>
    public bool IsAlive => ConnectApi.IsAlive(_handle);

    /// <summary>Whether the connection was opened read-only.</summary>
    public bool IsReadOnly { get; }

    /// <summary>The handle, for tests that check what release reports.</summary>
    internal SafeConnectHandle Handle => _handle;

    /// <summary>
    /// Has the remote driver send a keepalive every <paramref name="intervalSeconds"/> seconds and close the
    /// connection after <paramref name="count"/> unanswered ones (<c>virConnectSetKeepAlive</c>), so a dead
    /// daemon or network is noticed within about interval × (count + 1) seconds.
    /// </summary>
    /// <param name="intervalSeconds">Seconds between keepalives; 0 or less turns keepalive off.</param>
    /// <param name="count">Unanswered keepalives before the connection is closed.</param>
    /// <exception cref="LibvirtException">The driver has no keepalive (local drivers such as test: <c>VIR_ERR_NO_SUPPORT</c>),
    /// or the remote daemon does not support it (also reported as <see cref="LibvirtErrorCodes.NoSupport"/>).</exception>
    public void SetKeepAlive(int intervalSeconds, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (ConnectApi.SetKeepAlive(_handle, intervalSeconds, (uint)count) == 1)
        {
            throw new LibvirtException("virConnectSetKeepAlive", LibvirtErrorCodes.NoSupport, 0, "the remote party does not support keepalive messages");
        }
    }

    /// <summary>Looks a domain up by name (<c>virDomainLookupByName</c>). Dispose the result.</summary>
    /// <exception cref="LibvirtException">No such domain (<see cref="LibvirtException.IsNoDomain"/>), or libvirt failed.</exception>
    public LibvirtDomain LookupDomain(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return LibvirtDomain.Wrap(this, ConnectApi.LookupByName(_handle, name));
    }

    /// <summary>Looks a domain up by UUID (<c>virDomainLookupByUUID</c>). Dispose the result.</summary>
    /// <exception cref="LibvirtException">No such domain (<see cref="LibvirtException.IsNoDomain"/>), or libvirt failed.</exception>
    public LibvirtDomain LookupDomain(Guid uuid) => LibvirtDomain.Wrap(this, ConnectApi.LookupByUuid(_handle, uuid));

    /// <summary>Looks a domain up by name; null when there is none. Dispose the result.</summary>
    /// <exception cref="LibvirtException">libvirt failed for another reason than the domain's absence.</exception>
    public LibvirtDomain? TryLookupDomain(string name)
    {
        try
        {
            return LookupDomain(name);
        }
        catch (LibvirtException ex) when (ex.IsNoDomain)
        {
            return null;
        }
    }

    /// <summary>Defines (or redefines) a persistent domain from XML without starting it (<c>virDomainDefineXML</c>). Dispose the result.</summary>
    /// <exception cref="LibvirtException">The XML is invalid (libvirt's message says why), or libvirt failed.</exception>
    public LibvirtDomain DefineDomain(string xml)
    {
        ArgumentNullException.ThrowIfNull(xml);
        return LibvirtDomain.Wrap(this, ConnectApi.DefineXml(_handle, xml));
    }

    /// <summary>Creates and starts a transient domain from XML (<c>virDomainCreateXML</c>). Dispose the result.</summary>
    /// <exception cref="LibvirtException">The XML is invalid, the domain exists, or libvirt failed.</exception>
    public LibvirtDomain CreateDomain(string xml, DomainCreateFlags flags = DomainCreateFlags.None)
    {
        ArgumentNullException.ThrowIfNull(xml);
        return LibvirtDomain.Wrap(this, ConnectApi.CreateXml(_handle, xml, (uint)flags));
    }

    /// <summary>Lists domains, active and inactive (<c>virConnectListAllDomains</c>). Dispose each result.</summary>
    /// <param name="flags">Filters; <see cref="ListDomainsFlags.None"/> lists all.</param>
    /// <exception cref="LibvirtException">libvirt failed.</exception>
    public IReadOnlyList<LibvirtDomain> ListAllDomains(ListDomainsFlags flags = 0)
    {
        SafeDomainHandle[] handles = ConnectApi.ListAllDomains(_handle, (uint)flags);
        var domains = new List<LibvirtDomain>(handles.Length);
        try
        {
            foreach (SafeDomainHandle handle in handles)
            {
                domains.Add(LibvirtDomain.Wrap(this, handle));
            }

            return domains;
        }
        catch
        {
            // Wrap disposed the handle that failed; release the others.
            foreach (LibvirtDomain domain in domains)
            {
                domain.Dispose();
            }

            for (int i = domains.Count + 1; i < handles.Length; i++)
            {
                handles[i].Dispose();
            }

            throw;
        }
    }

    /// <summary>Reads one domain's statistics (<c>virDomainListGetStats</c> with a one-domain list).</summary>
    /// <param name="domain">A domain obtained from this connection.</param>
    /// <param name="types">The groups to read; <see cref="DomainStatsTypes.None"/> reads every group the driver supports.
    /// Groups the driver does not support are left out rather than failing.</param>
    /// <returns>The record; its parameters are empty when the driver had nothing to report for the domain.</returns>
    /// <exception cref="ArgumentException">The domain belongs to another connection.</exception>
    /// <exception cref="LibvirtException">libvirt failed.</exception>
    public DomainStatsRecord GetDomainStats(LibvirtDomain domain, DomainStatsTypes types) => GetDomainStats(domain, types, 0);

    /// <summary>Closes the connection (<c>virConnectClose</c>) after removing LibvirtSharp's event callbacks; watchers end.</summary>
    public void Dispose()
    {
        lock (_eventGate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        CompleteWatchers(null);
        _handle.Dispose();
    }

    /// <summary>Returns <see cref="Uri"/>.</summary>
    public override string ToString() => Uri;

    /// <summary><see cref="GetDomainStats(LibvirtDomain, DomainStatsTypes)"/> with <c>virConnectGetAllDomainsStatsFlags</c>.</summary>
    internal DomainStatsRecord GetDomainStats(LibvirtDomain domain, DomainStatsTypes types, uint flags)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if (!ReferenceEquals(domain.Connection, this))
        {
            throw new ArgumentException("The domain belongs to another connection.", nameof(domain));
        }

        (string name, Dictionary<string, object> parameters) = DomainApi.GetStats(domain.Handle, domain.Name, (uint)types, flags);
        return new DomainStatsRecord(name, parameters);
    }

    /// <summary>Reads <c>/capabilities/host/uuid</c>; <see cref="Guid.Empty"/> when absent.</summary>
    internal static Guid ParseHostUuid(string capabilitiesXml)
    {
        // libvirt's own output, but parsed without DTD processing all the same.
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null };
        using var reader = XmlReader.Create(new StringReader(capabilitiesXml), settings);
        XElement? uuid = XDocument.Load(reader).Root?.Element("host")?.Element("uuid");
        return uuid is not null && Guid.TryParse(uuid.Value.Trim(), out Guid value) ? value : Guid.Empty;
    }
}
