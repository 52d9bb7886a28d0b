namespace MigrateKit.Libvirt;

/// <summary>Which of QEMU's migration tools a libvirt migration uses.</summary>
public enum LibvirtStrategy
{
    /// <summary>
    /// Chosen per migration from the measured dirty rate, hot set, bandwidth and forecast: plain pre-copy
    /// when the guest dirties well under the bandwidth, xbzrle when it does not, multifd when one stream
    /// cannot fill the bandwidth; the reasons go into the report.
    /// </summary>
    Auto,

    /// <summary>Plain pre-copy, with auto-converge sized from the dirty rate (unless not allowed).</summary>
    Precopy,

    /// <summary>
    /// Pre-copy with QEMU's xbzrle: re-dirtied pages go as deltas against the copy sent before, from a
    /// page cache on the source sized from the hot set. Auto-converge stays on where allowed: it converges a
    /// guest whose deltas do not help (QEMU counts encoded bytes as progress, so with small deltas it may
    /// throttle briefly before the switchover).
    /// </summary>
    Xbzrle,

    /// <summary>Pre-copy over several connections (<c>VIR_MIGRATE_PARALLEL</c>), for links one stream cannot fill.</summary>
    Multifd,

    /// <summary>One full pre-copy pass, then post-copy: the destination runs the guest and pulls what is missing.</summary>
    Postcopy,
}
