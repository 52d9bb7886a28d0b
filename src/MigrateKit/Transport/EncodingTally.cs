namespace MigrateKit.Transport;

/// <summary>How many pages went in each form and what the encoded ones took, from one point on.</summary>
/// <param name="RawPages">Pages sent whole through the encoder.</param>
/// <param name="DeltaPages">Pages sent as deltas.</param>
/// <param name="DeltaBytes">The bytes of those deltas.</param>
/// <param name="CompressedPages">Pages sent compressed.</param>
/// <param name="CompressedBytes">The bytes of those.</param>
/// <param name="CacheMisses">Non-zero pages with no copy to delta against.</param>
/// <param name="Overflows">Pages whose delta was not smaller than the page.</param>
internal readonly record struct EncodingTally(
    ulong RawPages, ulong DeltaPages, ulong DeltaBytes, ulong CompressedPages, ulong CompressedBytes, ulong CacheMisses, ulong Overflows)
{
    public static EncodingTally operator -(EncodingTally a, EncodingTally b) => new(
        a.RawPages - b.RawPages, a.DeltaPages - b.DeltaPages, a.DeltaBytes - b.DeltaBytes, a.CompressedPages - b.CompressedPages,
        a.CompressedBytes - b.CompressedBytes, a.CacheMisses - b.CacheMisses, a.Overflows - b.Overflows);
}
