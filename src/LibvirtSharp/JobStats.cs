using System.Collections.Generic;
using System.Collections.ObjectModel;

namespace LibvirtSharp;

/// <summary>The kind of job a domain is running (<c>virDomainJobType</c>; the values are libvirt's).</summary>
public enum DomainJobType
{
    /// <summary><c>VIR_DOMAIN_JOB_NONE</c>: no job is active.</summary>
    None = 0,

    /// <summary><c>VIR_DOMAIN_JOB_BOUNDED</c>: a job with a finite completion time.</summary>
    Bounded = 1,

    /// <summary><c>VIR_DOMAIN_JOB_UNBOUNDED</c>: a job without a finite completion time (a live migration).</summary>
    Unbounded = 2,

    /// <summary><c>VIR_DOMAIN_JOB_COMPLETED</c>: the job finished (statistics of a completed job).</summary>
    Completed = 3,

    /// <summary><c>VIR_DOMAIN_JOB_FAILED</c>: the job failed.</summary>
    Failed = 4,

    /// <summary><c>VIR_DOMAIN_JOB_CANCELLED</c>: the job was aborted.</summary>
    Cancelled = 5,
}

/// <summary>
/// Statistics of a domain job (<c>virDomainGetJobStats</c>, or the <c>VIR_DOMAIN_EVENT_ID_JOB_COMPLETED</c>
/// event). Every <c>VIR_DOMAIN_JOB_*</c> field libvirt 9.0 defines has a property; a property is null when
/// libvirt did not report the field (drivers report different subsets, and some only while migrating).
/// <see cref="Raw"/> holds every field as libvirt sent it, including ones newer than this binding.
/// </summary>
public sealed record JobStats
{
    /// <summary>The job's type.</summary>
    public DomainJobType Type { get; init; }

    /// <summary><c>operation</c>: what started the job (<c>virDomainJobOperation</c>: 4 = incoming migration, 5 = outgoing migration, …).</summary>
    public int? Operation { get; init; }

    /// <summary><c>time_elapsed</c>: milliseconds since the job started.</summary>
    public ulong? TimeElapsedMs { get; init; }

    /// <summary><c>time_elapsed_net</c>: <see cref="TimeElapsedMs"/> without the time spent handing control to the destination.</summary>
    public ulong? TimeElapsedNetMs { get; init; }

    /// <summary><c>time_remaining</c>: estimated milliseconds left (bounded jobs only).</summary>
    public ulong? TimeRemainingMs { get; init; }

    /// <summary><c>downtime</c>: expected downtime in ms while migrating; the measured downtime of a completed migration.</summary>
    public ulong? DowntimeMs { get; init; }

    /// <summary><c>downtime_net</c>: measured downtime in ms without the time spent handing control to the destination.</summary>
    public ulong? DowntimeNetMs { get; init; }

    /// <summary><c>setup_time</c>: milliseconds spent in the setup phase before the first iteration.</summary>
    public ulong? SetupTimeMs { get; init; }

    /// <summary><c>data_total</c>: bytes expected to be transferred (memory and disks).</summary>
    public ulong? DataTotal { get; init; }

    /// <summary><c>data_processed</c>: bytes transferred so far.</summary>
    public ulong? DataProcessed { get; init; }

    /// <summary><c>data_remaining</c>: bytes still to transfer.</summary>
    public ulong? DataRemaining { get; init; }

    /// <summary><c>memory_total</c>: as <see cref="DataTotal"/>, guest memory only.</summary>
    public ulong? MemoryTotal { get; init; }

    /// <summary><c>memory_processed</c>: as <see cref="DataProcessed"/>, guest memory only.</summary>
    public ulong? MemoryProcessed { get; init; }

    /// <summary><c>memory_remaining</c>: as <see cref="DataRemaining"/>, guest memory only.</summary>
    public ulong? MemoryRemaining { get; init; }

    /// <summary><c>memory_constant</c>: pages filled with one repeated byte (mostly zero pages), sent as such.</summary>
    public ulong? MemoryConstant { get; init; }

    /// <summary><c>memory_normal</c>: pages sent uncompressed.</summary>
    public ulong? MemoryNormal { get; init; }

    /// <summary><c>memory_normal_bytes</c>: bytes sent as uncompressed pages.</summary>
    public ulong? MemoryNormalBytes { get; init; }

    /// <summary><c>memory_bps</c>: memory transfer throughput in bytes per second.</summary>
    public ulong? MemoryBps { get; init; }

    /// <summary><c>memory_dirty_rate</c>: pages the guest dirties per second (live migration only).</summary>
    public ulong? MemoryDirtyRate { get; init; }

    /// <summary><c>memory_page_size</c>: the page size in bytes, to convert page counts to bytes.</summary>
    public ulong? MemoryPageSize { get; init; }

    /// <summary><c>memory_iteration</c>: the current pass over guest memory (0 = the first, full pass).</summary>
    public ulong? MemoryIteration { get; init; }

    /// <summary><c>memory_postcopy_requests</c>: pages the destination requested during post-copy.</summary>
    public ulong? MemoryPostcopyRequests { get; init; }

    /// <summary><c>disk_total</c>: as <see cref="DataTotal"/>, disks only.</summary>
    public ulong? DiskTotal { get; init; }

    /// <summary><c>disk_processed</c>: as <see cref="DataProcessed"/>, disks only.</summary>
    public ulong? DiskProcessed { get; init; }

    /// <summary><c>disk_remaining</c>: as <see cref="DataRemaining"/>, disks only.</summary>
    public ulong? DiskRemaining { get; init; }

    /// <summary><c>disk_bps</c>: disk transfer throughput in bytes per second.</summary>
    public ulong? DiskBps { get; init; }

    /// <summary><c>compression_cache</c>: size in bytes of the XBZRLE compression cache.</summary>
    public ulong? CompressionCache { get; init; }

    /// <summary><c>compression_bytes</c>: compressed bytes transferred.</summary>
    public ulong? CompressionBytes { get; init; }

    /// <summary><c>compression_pages</c>: compressed pages transferred.</summary>
    public ulong? CompressionPages { get; init; }

    /// <summary><c>compression_cache_misses</c>: changing pages not found in the compression cache.</summary>
    public ulong? CompressionCacheMisses { get; init; }

    /// <summary><c>compression_overflow</c>: changing pages that compressed to more than a page.</summary>
    public ulong? CompressionOverflow { get; init; }

    /// <summary><c>auto_converge_throttle</c>: the percentage by which auto-convergence currently throttles the vCPUs.</summary>
    public int? AutoConvergeThrottle { get; init; }

    /// <summary><c>success</c>: whether a completed job succeeded (completed-job statistics only).</summary>
    public bool? Success { get; init; }

    /// <summary><c>errmsg</c>: why a completed job failed (completed-job statistics only).</summary>
    public string? ErrorMessage { get; init; }

    /// <summary><c>disk_temp_used</c>: temporary disk space in bytes used by the job.</summary>
    public ulong? DiskTempUsed { get; init; }

    /// <summary><c>disk_temp_total</c>: temporary disk space in bytes the job may use.</summary>
    public ulong? DiskTempTotal { get; init; }

    /// <summary>Every field libvirt reported, by its libvirt name, with its libvirt type (boxed).</summary>
    public IReadOnlyDictionary<string, object> Raw { get; init; } = ReadOnlyDictionary<string, object>.Empty;

    /// <summary>Maps libvirt's job statistics fields onto the properties.</summary>
    /// <param name="type">The job type libvirt returned beside the fields.</param>
    /// <param name="parameters">The fields by their libvirt names (<c>VIR_DOMAIN_JOB_*</c> values).</param>
    internal static JobStats FromParameters(DomainJobType type, IReadOnlyDictionary<string, object> parameters) => new()
    {
        Type = type,
        Operation = TypedValue.Int32(parameters, "operation"),
        TimeElapsedMs = TypedValue.UInt64(parameters, "time_elapsed"),
        TimeElapsedNetMs = TypedValue.UInt64(parameters, "time_elapsed_net"),
        TimeRemainingMs = TypedValue.UInt64(parameters, "time_remaining"),
        DowntimeMs = TypedValue.UInt64(parameters, "downtime"),
        DowntimeNetMs = TypedValue.UInt64(parameters, "downtime_net"),
        SetupTimeMs = TypedValue.UInt64(parameters, "setup_time"),
        DataTotal = TypedValue.UInt64(parameters, "data_total"),
        DataProcessed = TypedValue.UInt64(parameters, "data_processed"),
        DataRemaining = TypedValue.UInt64(parameters, "data_remaining"),
        MemoryTotal = TypedValue.UInt64(parameters, "memory_total"),
        MemoryProcessed = TypedValue.UInt64(parameters, "memory_processed"),
        MemoryRemaining = TypedValue.UInt64(parameters, "memory_remaining"),
        MemoryConstant = TypedValue.UInt64(parameters, "memory_constant"),
        MemoryNormal = TypedValue.UInt64(parameters, "memory_normal"),
        MemoryNormalBytes = TypedValue.UInt64(parameters, "memory_normal_bytes"),
        MemoryBps = TypedValue.UInt64(parameters, "memory_bps"),
        MemoryDirtyRate = TypedValue.UInt64(parameters, "memory_dirty_rate"),
        MemoryPageSize = TypedValue.UInt64(parameters, "memory_page_size"),
        MemoryIteration = TypedValue.UInt64(parameters, "memory_iteration"),
        MemoryPostcopyRequests = TypedValue.UInt64(parameters, "memory_postcopy_requests"),
        DiskTotal = TypedValue.UInt64(parameters, "disk_total"),
        DiskProcessed = TypedValue.UInt64(parameters, "disk_processed"),
        DiskRemaining = TypedValue.UInt64(parameters, "disk_remaining"),
        DiskBps = TypedValue.UInt64(parameters, "disk_bps"),
        CompressionCache = TypedValue.UInt64(parameters, "compression_cache"),
        CompressionBytes = TypedValue.UInt64(parameters, "compression_bytes"),
        CompressionPages = TypedValue.UInt64(parameters, "compression_pages"),
        CompressionCacheMisses = TypedValue.UInt64(parameters, "compression_cache_misses"),
        CompressionOverflow = TypedValue.UInt64(parameters, "compression_overflow"),
        AutoConvergeThrottle = TypedValue.Int32(parameters, "auto_converge_throttle"),
        Success = TypedValue.Boolean(parameters, "success"),
        ErrorMessage = TypedValue.String(parameters, "errmsg"),
        DiskTempUsed = TypedValue.UInt64(parameters, "disk_temp_used"),
        DiskTempTotal = TypedValue.UInt64(parameters, "disk_temp_total"),
        Raw = parameters,
    };

    /// <summary>
    /// Statistics delivered by the job-completed event, which carries no job type: <see cref="DomainJobType.Failed"/>
    /// when libvirt reports <c>success</c> = false, <see cref="DomainJobType.Completed"/> otherwise.
    /// </summary>
    internal static JobStats FromCompletedJob(IReadOnlyDictionary<string, object> parameters) =>
        FromParameters(TypedValue.Boolean(parameters, "success") == false ? DomainJobType.Failed : DomainJobType.Completed, parameters);
}
