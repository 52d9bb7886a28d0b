using System;

namespace LibvirtSharp;

/// <summary>Migration flags (<c>virDomainMigrateFlags</c>; the values are libvirt 9.0's).</summary>
[Flags]
public enum MigrationFlags : uint
{
    /// <summary>Offline-style defaults: the domain is paused while its memory is transferred.</summary>
    None = 0,

    /// <summary><c>VIR_MIGRATE_LIVE</c>: keep the domain running while memory is transferred.</summary>
    Live = 1 << 0,

    /// <summary><c>VIR_MIGRATE_PEER2PEER</c>: the source daemon drives the migration and talks to the destination itself.</summary>
    PeerToPeer = 1 << 1,

    /// <summary><c>VIR_MIGRATE_TUNNELLED</c>: carry migration data over the libvirt connection (needs <see cref="PeerToPeer"/>).</summary>
    Tunnelled = 1 << 2,

    /// <summary><c>VIR_MIGRATE_PERSIST_DEST</c>: define the domain persistently on the destination.</summary>
    PersistDestination = 1 << 3,

    /// <summary><c>VIR_MIGRATE_UNDEFINE_SOURCE</c>: undefine the domain on the source when done.</summary>
    UndefineSource = 1 << 4,

    /// <summary><c>VIR_MIGRATE_PAUSED</c>: leave the domain paused on the destination.</summary>
    Paused = 1 << 5,

    /// <summary><c>VIR_MIGRATE_NON_SHARED_DISK</c>: copy complete disk images.</summary>
    NonSharedDisk = 1 << 6,

    /// <summary><c>VIR_MIGRATE_NON_SHARED_INC</c>: copy disk images incrementally over a shared backing file.</summary>
    NonSharedIncremental = 1 << 7,

    /// <summary><c>VIR_MIGRATE_CHANGE_PROTECTION</c>: refuse configuration changes during the migration.</summary>
    ChangeProtection = 1 << 8,

    /// <summary><c>VIR_MIGRATE_UNSAFE</c>: migrate even if libvirt considers it unsafe.</summary>
    Unsafe = 1 << 9,

    /// <summary><c>VIR_MIGRATE_OFFLINE</c>: migrate the definition of an inactive domain only.</summary>
    Offline = 1 << 10,

    /// <summary><c>VIR_MIGRATE_COMPRESSED</c>: compress migration data.</summary>
    Compressed = 1 << 11,

    /// <summary><c>VIR_MIGRATE_ABORT_ON_ERROR</c>: abort on soft errors during the migration.</summary>
    AbortOnError = 1 << 12,

    /// <summary><c>VIR_MIGRATE_AUTO_CONVERGE</c>: throttle the guest's vCPUs when the migration does not converge.</summary>
    AutoConverge = 1 << 13,

    /// <summary><c>VIR_MIGRATE_RDMA_PIN_ALL</c>: pin all guest memory for RDMA migration.</summary>
    RdmaPinAll = 1 << 14,

    /// <summary><c>VIR_MIGRATE_POSTCOPY</c>: allow switching to post-copy (see <see cref="LibvirtDomain.StartPostCopy"/>).</summary>
    Postcopy = 1 << 15,

    /// <summary><c>VIR_MIGRATE_TLS</c>: encrypt migration data with TLS.</summary>
    Tls = 1 << 16,

    /// <summary><c>VIR_MIGRATE_PARALLEL</c>: send memory over several connections.</summary>
    Parallel = 1 << 17,

    /// <summary><c>VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES</c>: keep non-shared disk copies in sync with guest writes.</summary>
    NonSharedSynchronousWrites = 1 << 18,

    /// <summary><c>VIR_MIGRATE_POSTCOPY_RESUME</c>: resume a failed post-copy migration.</summary>
    PostcopyResume = 1 << 19,

    /// <summary><c>VIR_MIGRATE_ZEROCOPY</c>: zero-copy transfer of memory pages (with <see cref="Parallel"/>).</summary>
    ZeroCopy = 1 << 20,
}
