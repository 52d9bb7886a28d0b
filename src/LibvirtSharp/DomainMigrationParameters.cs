using System.Collections.Generic;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>
/// The typed parameters of <see cref="LibvirtDomain.Migrate"/> and <see cref="LibvirtDomain.MigrateToUri"/>
/// (<c>VIR_MIGRATE_PARAM_*</c>). A property left null is not sent, so libvirt applies its own default.
/// </summary>
public sealed class DomainMigrationParameters
{
    /// <summary>An instance that sends no parameters.</summary>
    public static DomainMigrationParameters Default { get; } = new();

    /// <summary>
    /// <c>migrate_uri</c> (<c>VIR_MIGRATE_PARAM_URI</c>): where the hypervisor sends migration data, e.g.
    /// <c>tcp://10.0.0.2:49152</c>, when it must differ from the destination host's name.
    /// </summary>
    /// <value>The default is null: the hypervisor picks the destination's host name and a free port.</value>
    public string? MigrationUri { get; init; }

    /// <summary><c>destination_name</c>: the domain's name on the destination.</summary>
    /// <value>The default is null: the same name.</value>
    public string? DestinationName { get; init; }

    /// <summary><c>destination_xml</c>: the domain XML to use on the destination (host-specific paths, for example).</summary>
    /// <value>The default is null: the source's XML.</value>
    public string? DestinationXml { get; init; }

    /// <summary><c>bandwidth</c>: the pre-copy bandwidth limit in MiB/s.</summary>
    /// <value>The default is null: the hypervisor's own limit (or the one set with <see cref="LibvirtDomain.SetMaxSpeed"/>).</value>
    public ulong? BandwidthMiBps { get; init; }

    /// <summary><c>bandwidth.postcopy</c>: the post-copy bandwidth limit in MiB/s.</summary>
    /// <value>The default is null: unlimited.</value>
    public ulong? PostcopyBandwidthMiBps { get; init; }

    /// <summary><c>auto_converge.initial</c>: the first CPU throttle percentage under <see cref="MigrationFlags.AutoConverge"/>.</summary>
    /// <value>The default is null: the hypervisor's default (QEMU: 20).</value>
    public int? AutoConvergeInitial { get; init; }

    /// <summary><c>auto_converge.increment</c>: the throttle step percentage under <see cref="MigrationFlags.AutoConverge"/>.</summary>
    /// <value>The default is null: the hypervisor's default (QEMU: 10).</value>
    public int? AutoConvergeIncrement { get; init; }

    /// <summary><c>parallel.connections</c>: the number of connections under <see cref="MigrationFlags.Parallel"/>.</summary>
    /// <value>The default is null: the hypervisor's default (QEMU: 2).</value>
    public int? ParallelConnections { get; init; }

    /// <summary>
    /// <c>compression</c>: the compression methods under <see cref="MigrationFlags.Compressed"/>, each sent as one
    /// <c>compression</c> parameter (see <see cref="MigrationCompression"/> for the names). libvirt 9.0 knows
    /// <c>xbzrle</c> and <c>mt</c>; later versions add <c>zlib</c> and <c>zstd</c> for <see cref="MigrationFlags.Parallel"/>.
    /// </summary>
    /// <value>The default is null: libvirt's default with <see cref="MigrationFlags.Compressed"/> (<c>xbzrle</c>).</value>
    public IReadOnlyList<string>? CompressionMethods { get; init; }

    /// <summary><c>compression.xbzrle.cache</c>: the XBZRLE page cache in bytes (QEMU rounds it down to a power of two pages).</summary>
    /// <value>The default is null: the hypervisor's default (QEMU: 64 MiB).</value>
    public ulong? XbzrleCacheBytes { get; init; }

    /// <summary><c>compression.mt.level</c>: the level of multithreaded compression, 0 (none) to 9 (best).</summary>
    /// <value>The default is null: the hypervisor's default (QEMU: 1).</value>
    public int? CompressionMtLevel { get; init; }

    /// <summary><c>compression.mt.threads</c>: the number of compression threads.</summary>
    /// <value>The default is null: the hypervisor's default (QEMU: 8).</value>
    public int? CompressionMtThreads { get; init; }

    /// <summary><c>compression.mt.dthreads</c>: the number of decompression threads.</summary>
    /// <value>The default is null: the hypervisor's default (QEMU: 2).</value>
    public int? CompressionMtDecompressionThreads { get; init; }

    /// <summary><c>compression.zstd.level</c>: the zstd level of <see cref="MigrationFlags.Parallel"/> compression (libvirt 9.4 and later).</summary>
    /// <value>The default is null: the hypervisor's default (QEMU: 1).</value>
    public int? CompressionZstdLevel { get; init; }

    /// <summary><c>listen_address</c>: the address the destination hypervisor listens on for incoming migration data.</summary>
    /// <value>The default is null: the hypervisor's default.</value>
    public string? ListenAddress { get; init; }

    /// <summary>Builds the native parameter list; the caller disposes it.</summary>
    internal TypedParameters ToTypedParameters()
    {
        var parameters = new TypedParameters();
        try
        {
            if (MigrationUri is not null)
            {
                parameters.AddString("migrate_uri", MigrationUri);
            }

            if (DestinationName is not null)
            {
                parameters.AddString("destination_name", DestinationName);
            }

            if (DestinationXml is not null)
            {
                parameters.AddString("destination_xml", DestinationXml);
            }

            if (BandwidthMiBps is { } bandwidth)
            {
                parameters.AddULLong("bandwidth", bandwidth);
            }

            if (PostcopyBandwidthMiBps is { } postcopyBandwidth)
            {
                parameters.AddULLong("bandwidth.postcopy", postcopyBandwidth);
            }

            if (AutoConvergeInitial is { } initial)
            {
                parameters.AddInt("auto_converge.initial", initial);
            }

            if (AutoConvergeIncrement is { } increment)
            {
                parameters.AddInt("auto_converge.increment", increment);
            }

            if (ParallelConnections is { } connections)
            {
                parameters.AddInt("parallel.connections", connections);
            }

            foreach (string method in CompressionMethods ?? [])
            {
                // libvirt takes one "compression" entry per method (VIR_TYPED_PARAM_MULTIPLE).
                parameters.AddString("compression", method);
            }

            if (XbzrleCacheBytes is { } cache)
            {
                parameters.AddULLong("compression.xbzrle.cache", cache);
            }

            if (CompressionMtLevel is { } level)
            {
                parameters.AddInt("compression.mt.level", level);
            }

            if (CompressionMtThreads is { } threads)
            {
                parameters.AddInt("compression.mt.threads", threads);
            }

            if (CompressionMtDecompressionThreads is { } dthreads)
            {
                parameters.AddInt("compression.mt.dthreads", dthreads);
            }

            if (CompressionZstdLevel is { } zstd)
            {
                parameters.AddInt("compression.zstd.level", zstd);
            }

            if (ListenAddress is not null)
            {
                parameters.AddString("listen_address", ListenAddress);
            }

            return parameters;
        }
        catch
        {
            parameters.Dispose();
            throw;
        }
    }
}
