namespace LibvirtSharp;

/// <summary>The names of libvirt's migration compression methods, for <see cref="DomainMigrationParameters.CompressionMethods"/>.</summary>
public static class MigrationCompression
{
    /// <summary><c>xbzrle</c>: pages re-sent as the XOR-based run-length delta against the copy sent before (a page cache on the source).</summary>
    public const string Xbzrle = "xbzrle";

    /// <summary><c>mt</c>: pages compressed with zlib by a pool of threads.</summary>
    public const string MultiThread = "mt";

    /// <summary><c>zlib</c>: zlib compression of <see cref="MigrationFlags.Parallel"/> channels (libvirt 9.4 and later).</summary>
    public const string Zlib = "zlib";

    /// <summary><c>zstd</c>: zstd compression of <see cref="MigrationFlags.Parallel"/> channels (libvirt 9.4 and later).</summary>
    public const string Zstd = "zstd";
}
