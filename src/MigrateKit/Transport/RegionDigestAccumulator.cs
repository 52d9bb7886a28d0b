using System;
using System.Runtime.CompilerServices;
using MigrateKit.Memory;

namespace MigrateKit.Transport;

/// <summary>
/// An order-aware digest of a region's memory that can be kept up to date page by page while
/// pages are re-sent: <c>Σ XxHash3(page i) · (2·SplitMix64(i) + 1)</c> modulo 2⁶⁴. Each page's
/// term is remembered so a re-sent page replaces its old term. A fresh accumulator describes an
/// all-zero region, which is what a new destination mapping holds.
/// </summary>
/// <remarks>
/// Each page's term is kept as its difference from a zero page's, 8 bytes per page in chunks of
/// 4096 pages, allocated zeroed when a page of the chunk is first recorded with other contents
/// than zeros. Zero pages need no chunk and no work: a digest of memory that is mostly zero, or
/// that nobody has written, costs a few bytes per chunk, not 1/512 of the region.
/// </remarks>
public sealed class RegionDigestAccumulator
{
    private const int ChunkShift = 12;
    private const int ChunkPages = 1 << ChunkShift;

    private static readonly ulong ZeroPageHash = PageHash.Hash(new byte[MigrationProtocol.PageSize]);

    private readonly ulong _pageCount;
    private readonly ulong[]?[] _chunks;
    private ulong _value;

    /// <summary>Creates the digest of an all-zero region of <paramref name="pageCount"/> pages.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count is zero or too large for one array.</exception>
    public RegionDigestAccumulator(ulong pageCount)
    {
        if (pageCount == 0 || pageCount > (ulong)Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, "A region digest covers 1 to Array.MaxLength pages.");
        }

        _pageCount = pageCount;
        _chunks = new ulong[]?[(int)((pageCount + ChunkPages - 1) >> ChunkShift)];
        ulong sum = 0;
        for (ulong i = 0; i < pageCount; i++)
        {
            sum += Term(i, ZeroPageHash);
        }

        _value = sum;
    }

    /// <summary>The number of pages covered.</summary>
    public ulong PageCount => _pageCount;

    /// <summary>The current digest.</summary>
    public ulong Value => _value;

    /// <summary>Records the contents of one page (exactly one page of bytes).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The page is outside the region.</exception>
    /// <exception cref="ArgumentException">The data is not one page long.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Update(ulong page, ReadOnlySpan<byte> data)
    {
        if (data.Length != MigrationProtocol.PageSize)
        {
            throw new ArgumentException($"A page is {MigrationProtocol.PageSize} bytes (got {data.Length}).", nameof(data));
        }

        Set(page, PageHash.Hash(data));
    }

    /// <summary>Records that one page is all zero.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The page is outside the region.</exception>
    public void UpdateZero(ulong page) => Set(page, ZeroPageHash);

    /// <summary>
    /// Computes the digest of a region's current contents from scratch. Pages the host never
    /// populated are zero and are not read (reading them would fault each one in).
    /// </summary>
    public static ulong Compute(GuestMemoryRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        var populated = new DirtyBitmap(region.PageCount);
        region.MarkPopulatedPages(populated);
        ulong sum = 0;
        for (ulong p = 0; p < region.PageCount; p++)
        {
            sum += Term(p, populated.Test(p) ? PageHash.Hash(region.GetPage(p)) : ZeroPageHash);
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Set(ulong page, ulong hash)
    {
        if (page >= _pageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(page), page, $"The digest covers {_pageCount} pages.");
        }

        // The difference from a zero page's term: (hash - zero hash) times the page's multiplier.
        ulong relative = Term(page, hash - ZeroPageHash);
        ref ulong[]? chunk = ref _chunks[(int)(page >> ChunkShift)];
        if (chunk is null)
        {
            if (relative == 0)
            {
                return;
            }

            // A region's last chunk covers only the pages left after its first.
            chunk = new ulong[(int)Math.Min(ChunkPages, _pageCount - (page & ~(ulong)(ChunkPages - 1)))];
        }

        ref ulong slot = ref chunk[(int)(page & (ChunkPages - 1))];
        _value = _value - slot + relative;
        slot = relative;
    }

    // The odd multiplier makes the term a bijection of the hash, and position-dependent, so
    // swapped pages change the digest.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong Term(ulong page, ulong hash) => hash * ((SplitMix64(page) << 1) | 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static ulong SplitMix64(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
