namespace MigrateKit.Qemu;

/// <summary>The page compression of QEMU's <c>multifd</c> channels (<c>multifd-compression</c>).</summary>
public enum QemuMultifdCompression
{
    /// <summary>Pages are sent as they are (<c>none</c>).</summary>
    None,

    /// <summary>zlib (<c>zlib</c>).</summary>
    Zlib,

    /// <summary>Zstandard (<c>zstd</c>); QEMU must be built with it, or <c>migrate-set-parameters</c> fails.</summary>
    Zstd,
}
