using System;
using System.Runtime.CompilerServices;
using MigrateKit.Interop;

namespace MigrateKit.Memory;

/// <summary>
/// One contiguous range of guest-physical memory backed by an anonymous host mapping that
/// MigrateKit created. Owned by a <see cref="GuestMemoryLayout"/>.
/// </summary>
public sealed unsafe class GuestMemoryRegion
{
    private readonly SafeMappingHandle _mapping;

    internal GuestMemoryRegion(int index, ulong guestPhysicalAddress, ulong size, SafeMappingHandle mapping)
    {
        Index = index;
        GuestPhysicalAddress = guestPhysicalAddress;
        Size = size;
        _mapping = mapping;
    }

    /// <summary>The region's position in its layout (0-based).</summary>
    public int Index { get; }

    /// <summary>The first guest-physical address of the region.</summary>
    public ulong GuestPhysicalAddress { get; }

    /// <summary>The size in bytes (a multiple of <see cref="GuestMemoryLayout.PageSize"/>).</summary>
    public ulong Size { get; }

    /// <summary>The number of 4 KiB pages.</summary>
    public ulong PageCount
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        get => Size / GuestMemoryLayout.PageSize;
    }

    /// <summary>The guest-physical address one past the region's end.</summary>
    public ulong End => GuestPhysicalAddress + Size;

    /// <summary>The host address of the region's first byte; valid while the layout lives.</summary>
    internal byte* Pointer => (byte*)_mapping.Address;

    internal SafeMappingHandle Mapping => _mapping;

    /// <summary>Whether a guest-physical address lies inside the region.</summary>
    public bool Contains(ulong guestPhysicalAddress) =>
        guestPhysicalAddress >= GuestPhysicalAddress && guestPhysicalAddress - GuestPhysicalAddress < Size;

    /// <summary>The bytes of one page of the region.</summary>
    /// <param name="page">The page index within the region.</param>
    /// <exception cref="ArgumentOutOfRangeException">The page is outside the region.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public Span<byte> GetPage(ulong page)
    {
        if (page >= PageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(page), page, $"Region {Index} has {PageCount} pages.");
        }

        ThrowIfReleased();
        return new Span<byte>(Pointer + (page * GuestMemoryLayout.PageSize), (int)GuestMemoryLayout.PageSize);
    }

    /// <summary>A span over <paramref name="length"/> bytes starting at a byte offset within the region.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range leaves the region.</exception>
    public Span<byte> GetSpan(ulong offset, int length)
    {
        if (length < 0 || offset > Size || (ulong)length > Size - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, +{length}) is outside region {Index} of {Size} bytes.");
        }

        ThrowIfReleased();
        return new Span<byte>(Pointer + offset, length);
    }

    /// <summary>
    /// Sets in <paramref name="into"/> the pages the host has populated (present or swapped out);
    /// the others were never touched and read as zero, so a sender can skip them without
    /// reading them. Returns the number of populated pages.
    /// </summary>
    /// <exception cref="ArgumentException">The bitmap is not sized to the region.</exception>
    /// <exception cref="System.IO.IOException">/proc/self/pagemap cannot be read.</exception>
    public ulong MarkPopulatedPages(DirtyBitmap into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.PageCount != PageCount)
        {
            throw new ArgumentException($"The bitmap has {into.PageCount} pages; region {Index} has {PageCount}.", nameof(into));
        }

        ThrowIfReleased();
        using var lease = new HandleLease(_mapping);
        fixed (ulong* words = into.Words)
        {
            int r = NativeMethods.PagesPresent(_mapping.DangerousGetHandle(), Size, words, out ulong pages);
            return r == 0 ? pages : throw new System.IO.IOException($"Reading /proc/self/pagemap for region {Index} failed: {Errno.Describe(-r)} ({Errno.Name(-r)})");
        }
    }

    /// <summary>
    /// Backs <paramref name="pageCount"/> pages from <paramref name="firstPage"/> with memory in one
    /// call, so writing them does not fault page by page. Returns false where the kernel cannot
    /// (before Linux 5.14); the pages are then populated by the first writes as usual.
    /// </summary>
    internal bool TryPopulate(ulong firstPage, ulong pageCount)
    {
        if (firstPage >= PageCount || pageCount > PageCount - firstPage || pageCount == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(firstPage), $"[{firstPage}, +{pageCount}) is outside region {Index} of {PageCount} pages.");
        }

        ThrowIfReleased();
        using var lease = new HandleLease(_mapping);
        return NativeMethods.PopulateWrite(_mapping.DangerousGetHandle() + (nint)(firstPage * GuestMemoryLayout.PageSize), pageCount * GuestMemoryLayout.PageSize) == 0;
    }

    /// <summary>Asks the kernel to back the region with transparent huge pages where it can; false where it will not.</summary>
    internal bool TryAdviseHugePages()
    {
        ThrowIfReleased();
        using var lease = new HandleLease(_mapping);
        return NativeMethods.AdviseHuge(_mapping.DangerousGetHandle(), Size) == 0;
    }

    /// <summary>
    /// Writes to each of <paramref name="pageCount"/> pages from <paramref name="firstPage"/>
    /// without changing a byte: an atomic compare-and-exchange of its first word with itself,
    /// safe while another thread writes the page. Populating a page leaves mappings that
    /// some hosts (a paravirtual guest's shadow page tables) complete only at the first write
    /// from user space, at several microseconds a page; touching pays that here instead.
    /// </summary>
    internal void Touch(ulong firstPage, ulong pageCount)
    {
        if (firstPage >= PageCount || pageCount > PageCount - firstPage || pageCount == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(firstPage), $"[{firstPage}, +{pageCount}) is outside region {Index} of {PageCount} pages.");
        }

        ThrowIfReleased();
        using var lease = new HandleLease(_mapping);
        byte* first = (byte*)_mapping.DangerousGetHandle() + (firstPage * GuestMemoryLayout.PageSize);
        for (ulong p = 0; p < pageCount; p++)
        {
            System.Threading.Interlocked.CompareExchange(ref *(ulong*)(first + (p * GuestMemoryLayout.PageSize)), 0UL, 0UL);
        }
    }

    private void ThrowIfReleased() => ObjectDisposedException.ThrowIf(_mapping.IsClosed, this);
}
