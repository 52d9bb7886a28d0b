using System;

namespace LibvirtSharp;

/// <summary>Flags for <see cref="LibvirtConnection.CreateDomain"/> (<c>virDomainCreateFlags</c>).</summary>
[Flags]
public enum DomainCreateFlags : uint
{
    /// <summary><c>VIR_DOMAIN_NONE</c>: start running.</summary>
    None = 0,

    /// <summary><c>VIR_DOMAIN_START_PAUSED</c>: start with the vCPUs paused.</summary>
    Paused = 1 << 0,

    /// <summary><c>VIR_DOMAIN_START_AUTODESTROY</c>: destroy the domain when the creating connection closes.</summary>
    AutoDestroy = 1 << 1,

    /// <summary><c>VIR_DOMAIN_START_BYPASS_CACHE</c>: avoid the file system cache when restoring.</summary>
    BypassCache = 1 << 2,

    /// <summary><c>VIR_DOMAIN_START_FORCE_BOOT</c>: boot, discarding any managed save image.</summary>
    ForceBoot = 1 << 3,

    /// <summary><c>VIR_DOMAIN_START_VALIDATE</c>: validate the XML against libvirt's schema.</summary>
    Validate = 1 << 4,

    /// <summary><c>VIR_DOMAIN_START_RESET_NVRAM</c>: re-initialize NVRAM from its template.</summary>
    ResetNvram = 1 << 5,
}

/// <summary>Flags for <see cref="LibvirtDomain.GetXml"/> (<c>virDomainXMLFlags</c>).</summary>
[Flags]
public enum DomainXmlFlags : uint
{
    /// <summary>The live configuration of a running domain, without secrets.</summary>
    None = 0,

    /// <summary><c>VIR_DOMAIN_XML_SECURE</c>: include security-sensitive information (needs a read-write connection).</summary>
    Secure = 1 << 0,

    /// <summary><c>VIR_DOMAIN_XML_INACTIVE</c>: the persistent configuration used at next boot.</summary>
    Inactive = 1 << 1,

    /// <summary><c>VIR_DOMAIN_XML_UPDATE_CPU</c>: update guest CPU requirements from the host CPU.</summary>
    UpdateCpu = 1 << 2,

    /// <summary><c>VIR_DOMAIN_XML_MIGRATABLE</c>: XML suitable for migration.</summary>
    Migratable = 1 << 3,
}

/// <summary>Flags for <see cref="LibvirtDomain.Undefine"/> (<c>virDomainUndefineFlagsValues</c>).</summary>
[Flags]
public enum DomainUndefineFlags : uint
{
    /// <summary>Plain undefine.</summary>
    None = 0,

    /// <summary><c>VIR_DOMAIN_UNDEFINE_MANAGED_SAVE</c>: also remove any managed save image.</summary>
    ManagedSave = 1 << 0,

    /// <summary><c>VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA</c>: also remove snapshot metadata.</summary>
    SnapshotsMetadata = 1 << 1,

    /// <summary><c>VIR_DOMAIN_UNDEFINE_NVRAM</c>: also remove the NVRAM file.</summary>
    Nvram = 1 << 2,

    /// <summary><c>VIR_DOMAIN_UNDEFINE_KEEP_NVRAM</c>: keep the NVRAM file.</summary>
    KeepNvram = 1 << 3,

    /// <summary><c>VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA</c>: also remove checkpoint metadata.</summary>
    CheckpointsMetadata = 1 << 4,

    /// <summary><c>VIR_DOMAIN_UNDEFINE_TPM</c>: also remove TPM state.</summary>
    Tpm = 1 << 5,

    /// <summary><c>VIR_DOMAIN_UNDEFINE_KEEP_TPM</c>: keep TPM state.</summary>
    KeepTpm = 1 << 6,
}

/// <summary>Filters for <see cref="LibvirtConnection.ListAllDomains"/> (<c>virConnectListAllDomainsFlags</c>); none lists every domain.</summary>
[Flags]
public enum ListDomainsFlags : uint
{
    /// <summary>No filter.</summary>
    None = 0,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_ACTIVE</c>.</summary>
    Active = 1 << 0,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_INACTIVE</c>.</summary>
    Inactive = 1 << 1,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_PERSISTENT</c>.</summary>
    Persistent = 1 << 2,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_TRANSIENT</c>.</summary>
    Transient = 1 << 3,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_RUNNING</c>.</summary>
    Running = 1 << 4,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_PAUSED</c>.</summary>
    Paused = 1 << 5,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_SHUTOFF</c>.</summary>
    Shutoff = 1 << 6,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_OTHER</c>.</summary>
    Other = 1 << 7,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE</c>.</summary>
    ManagedSave = 1 << 8,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_NO_MANAGEDSAVE</c>.</summary>
    NoManagedSave = 1 << 9,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_AUTOSTART</c>.</summary>
    Autostart = 1 << 10,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_NO_AUTOSTART</c>.</summary>
    NoAutostart = 1 << 11,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT</c>.</summary>
    HasSnapshot = 1 << 12,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT</c>.</summary>
    NoSnapshot = 1 << 13,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT</c>.</summary>
    HasCheckpoint = 1 << 14,

    /// <summary><c>VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT</c>.</summary>
    NoCheckpoint = 1 << 15,
}

/// <summary>Statistics groups for <see cref="LibvirtConnection.GetDomainStats(LibvirtDomain, DomainStatsTypes)"/> (<c>virDomainStatsTypes</c>).</summary>
[Flags]
public enum DomainStatsTypes : uint
{
    /// <summary>Every group the driver supports.</summary>
    None = 0,

    /// <summary><c>VIR_DOMAIN_STATS_STATE</c>: <c>state.state</c>, <c>state.reason</c>.</summary>
    State = 1 << 0,

    /// <summary><c>VIR_DOMAIN_STATS_CPU_TOTAL</c>: <c>cpu.*</c>.</summary>
    CpuTotal = 1 << 1,

    /// <summary><c>VIR_DOMAIN_STATS_BALLOON</c>: <c>balloon.*</c>.</summary>
    Balloon = 1 << 2,

    /// <summary><c>VIR_DOMAIN_STATS_VCPU</c>: <c>vcpu.*</c>.</summary>
    Vcpu = 1 << 3,

    /// <summary><c>VIR_DOMAIN_STATS_INTERFACE</c>: <c>net.*</c>.</summary>
    Interface = 1 << 4,

    /// <summary><c>VIR_DOMAIN_STATS_BLOCK</c>: <c>block.*</c>.</summary>
    Block = 1 << 5,

    /// <summary><c>VIR_DOMAIN_STATS_PERF</c>: <c>perf.*</c>.</summary>
    Perf = 1 << 6,

    /// <summary><c>VIR_DOMAIN_STATS_IOTHREAD</c>: <c>iothread.*</c>.</summary>
    Iothread = 1 << 7,

    /// <summary><c>VIR_DOMAIN_STATS_MEMORY</c>: <c>memory.*</c>.</summary>
    Memory = 1 << 8,

    /// <summary><c>VIR_DOMAIN_STATS_DIRTYRATE</c>: <c>dirtyrate.*</c>.</summary>
    DirtyRate = 1 << 9,

    /// <summary><c>VIR_DOMAIN_STATS_VM</c>: <c>vm.*</c> (hypervisor-specific).</summary>
    Vm = 1 << 10,
}
