using System.Text.Json;

namespace MigrateKit.Qemu;

/// <summary>
/// The <c>xbzrle-cache</c> section of <c>query-migrate</c>: what the <c>xbzrle</c> capability
/// (pages re-sent as a delta against the copy in a cache of sent pages) did; every figure is nullable.
/// </summary>
public sealed record QemuXbzrleStatus
{
    /// <summary>The cache of sent pages, in bytes (<c>cache-size</c>).</summary>
    public long? CacheSizeBytes { get; init; }

    /// <summary>Bytes of XBZRLE-encoded pages sent (<c>bytes</c>).</summary>
    public long? EncodedBytes { get; init; }

    /// <summary>Pages sent XBZRLE-encoded (<c>pages</c>).</summary>
    public long? EncodedPages { get; init; }

    /// <summary>Dirty pages not in the cache, sent whole (<c>cache-miss</c>).</summary>
    public long? CacheMisses { get; init; }

    /// <summary>The share of cache misses over the last period, 0 to 1 (<c>cache-miss-rate</c>).</summary>
    public double? CacheMissRate { get; init; }

    /// <summary>Page bytes per encoded byte over the last period (<c>encoding-rate</c>).</summary>
    public double? EncodingRate { get; init; }

    /// <summary>Pages whose delta would have been larger than the page, sent whole (<c>overflow</c>).</summary>
    public long? Overflows { get; init; }

    internal static QemuXbzrleStatus Parse(JsonElement xbzrle) => new()
    {
        CacheSizeBytes = Json.Int64(xbzrle, "cache-size"),
        EncodedBytes = Json.Int64(xbzrle, "bytes"),
        EncodedPages = Json.Int64(xbzrle, "pages"),
        CacheMisses = Json.Int64(xbzrle, "cache-miss"),
        CacheMissRate = Json.Double(xbzrle, "cache-miss-rate"),
        EncodingRate = Json.Double(xbzrle, "encoding-rate"),
        Overflows = Json.Int64(xbzrle, "overflow"),
    };
}
