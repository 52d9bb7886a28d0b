using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MigrateKit.Interop;

namespace MigrateKit.Transport;

/// <summary>
/// The source's copies of pages as last sent, to delta the next version of a page against
/// (<see cref="PageDelta"/>): keyed by region and page index, bounded in bytes, the least
/// recently used page evicted first.
/// </summary>
/// <remarks>
/// Every array is allocated by the constructor; lookups, inserts, evictions and removals
/// allocate nothing. The copies live in 16 MiB slabs of mapped memory, each mapped when its
/// first page is stored and returned to the system by <see cref="Dispose"/>, so a migration's
/// cache neither outlives it nor waits for a garbage collection; the bookkeeping costs at most 36 bytes
/// per page slot (keys, LRU links and an open-addressing index at most half full), under 1 %
/// of the capacity. A copy must equal what the destination holds: after a page goes out in any form,
/// <see cref="Put"/> its bytes, or <see cref="Remove"/> it. Not thread-safe.
/// </remarks>
internal sealed class SentPageCache : IDisposable
{
    /// <summary>The default capacity, 64 MiB of page copies (QEMU's default XBZRLE cache size).</summary>
    public const long DefaultCapacityBytes = 64L << 20;

    /// <summary>The largest capacity, 256 GiB, so the index stays an array.</summary>
    public const long MaxCapacityBytes = (long)MaxPages * PageSize;

    private const int PageSize = MigrationProtocol.PageSize;
    private const int MaxPages = 1 << 26;
    private const int SlabShift = 12;
    private const int PagesPerSlab = 1 << SlabShift;
    private const int None = -1;

    private readonly nint[] _slabs;
    private readonly int _lastSlabPages;
    private bool _disposed;
    private readonly int[] _regions;
    private readonly ulong[] _pages;
    private readonly int[] _newer;
    private readonly int[] _older;

    /// <summary>Open addressing with linear probing: slot + 1 per entry, 0 where empty; a power of two at least twice the slots.</summary>
    private readonly int[] _index;
    private readonly int _indexShift;

    private int _count;
    private int _unused;

    /// <summary>Slots below this were written at least once; <see cref="Clear"/> leaves it, as their memory stays touched.</summary>
    private int _written;
    private int _free = None;
    private int _newest = None;
    private int _oldest = None;

    /// <summary>Allocates a cache of <paramref name="capacityBytes"/> of page copies.</summary>
    /// <param name="capacityBytes">
    /// How many bytes of page copies to keep, rounded down to whole pages: at least one page,
    /// at most <see cref="MaxCapacityBytes"/>. The default is <see cref="DefaultCapacityBytes"/>.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException">The capacity is below one page or above <see cref="MaxCapacityBytes"/>.</exception>
    public SentPageCache(long capacityBytes = DefaultCapacityBytes)
    {
        if (capacityBytes < PageSize || capacityBytes > MaxCapacityBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(capacityBytes), capacityBytes, $"The sent-page cache holds {PageSize} bytes (one page) to {MaxCapacityBytes} bytes.");
        }

        Capacity = (int)(capacityBytes / PageSize);
        int slabs = (Capacity + PagesPerSlab - 1) >> SlabShift;
        _slabs = new nint[slabs];
        _lastSlabPages = Capacity - ((slabs - 1) << SlabShift);

        _regions = new int[Capacity];
        _pages = new ulong[Capacity];
        _newer = new int[Capacity];
        _older = new int[Capacity];
        int indexLength = (int)BitOperations.RoundUpToPowerOf2((uint)Capacity * 2);
        _index = new int[indexLength];
        _indexShift = 64 - BitOperations.Log2((uint)indexLength);
    }

    /// <summary>How many pages the cache holds at most.</summary>
    public int Capacity { get; }

    /// <summary>The bytes of page copies the cache holds at most.</summary>
    public long CapacityBytes => (long)Capacity * PageSize;

    /// <summary>How many pages the cache holds now.</summary>
    public int Count => _count;

    /// <summary>
    /// Whether the next page added goes into a slot never written since the cache was created:
    /// its first write faults in the slab's memory, several microseconds on some hosts, once per slot.
    /// </summary>
    public bool NextSlotNeverWritten
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
        get => _unused < Capacity && _unused >= _written;
    }

    /// <summary>Lookups that found a copy.</summary>
    public long Hits { get; private set; }

    /// <summary>Lookups that found none.</summary>
    public long Misses { get; private set; }

    /// <summary>Copies dropped to make room for another page.</summary>
    public long Evictions { get; private set; }

    /// <summary>Finds the copy of a page and marks it most recently used.</summary>
    /// <param name="region">The page's region.</param>
    /// <param name="page">The page's index in its region.</param>
    /// <param name="copy">The copy, writable in place (to update it after a delta is sent); empty on a miss.</param>
    /// <returns>Whether the cache holds the page.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryGet(int region, ulong page, out Span<byte> copy)
    {
        int position = Find(region, page);
        if (position < 0)
        {
            Misses++;
            copy = default;
            return false;
        }

        Hits++;
        int slot = _index[position] - 1;
        MakeNewest(slot);
        copy = Copy(slot);
        return true;
    }

    /// <summary>Finds the copy of a page without counting a lookup or changing its age.</summary>
    /// <param name="region">The page's region.</param>
    /// <param name="page">The page's index in its region.</param>
    /// <param name="copy">The copy; empty when the cache does not hold the page.</param>
    /// <returns>Whether the cache holds the page.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryPeek(int region, ulong page, out ReadOnlySpan<byte> copy)
    {
        int position = Find(region, page);
        copy = position < 0 ? default : Copy(_index[position] - 1);
        return position >= 0;
    }

    /// <summary>
    /// Stores the bytes of a page as sent, replacing its copy or adding one (the least recently
    /// used page makes room when the cache is full), and marks it most recently used.
    /// </summary>
    /// <param name="region">The page's region.</param>
    /// <param name="page">The page's index in its region.</param>
    /// <param name="contents">The page's bytes, exactly one page.</param>
    /// <returns>The stored copy, writable in place.</returns>
    /// <exception cref="ArgumentException"><paramref name="contents"/> is not one page long.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public Span<byte> Put(int region, ulong page, ReadOnlySpan<byte> contents)
    {
        if (contents.Length != PageSize)
        {
            throw new ArgumentException($"A page has {PageSize} bytes, not {contents.Length}.", nameof(contents));
        }

        int position = Find(region, page);
        int slot;
        if (position >= 0)
        {
            slot = _index[position] - 1;
            MakeNewest(slot);
        }
        else
        {
            slot = TakeSlot();
            _regions[slot] = region;
            _pages[slot] = page;

            // Looked up again: an eviction may have shifted the free position.
            _index[~Find(region, page)] = slot + 1;
            _count++;
            LinkNewest(slot);
        }

        Span<byte> copy = Copy(slot);
        contents.CopyTo(copy);
        return copy;
    }

    /// <summary>Drops the copy of a page, for a page the destination now holds in another version.</summary>
    /// <param name="region">The page's region.</param>
    /// <param name="page">The page's index in its region.</param>
    /// <returns>Whether the cache held the page.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool Remove(int region, ulong page)
    {
        int position = Find(region, page);
        if (position < 0)
        {
            return false;
        }

        int slot = _index[position] - 1;
        RemoveAt(position, slot);
        _older[slot] = _free;
        _free = slot;
        return true;
    }

    /// <summary>Drops every copy; the counters stay.</summary>
    public void Clear()
    {
        Array.Clear(_index);
        _count = 0;
        _unused = 0;
        _free = _newest = _oldest = None;
    }

    /// <summary>Returns every slab to the system; the cache is empty and must not be used after.</summary>
    public void Dispose()
    {
        _disposed = true;
        Clear();
        FreeSlabs();
        GC.SuppressFinalize(this);
    }

    ~SentPageCache() => FreeSlabs();

    private unsafe void FreeSlabs()
    {
        // A constructor that threw leaves no slabs for the finalizer to free.
        if (_slabs is null)
        {
            return;
        }

        for (int i = 0; i < _slabs.Length; i++)
        {
            if (_slabs[i] != 0)
            {
                _ = NativeMethods.Munmap(_slabs[i], SlabBytes(i));
                _slabs[i] = 0;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe Span<byte> Copy(int slot)
    {
        int index = slot >> SlabShift;
        nint slab = _slabs[index];
        if (slab == 0)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Mapped, not taken from malloc: glibc serves a 16 MiB block from its heap once one
            // was freed (its mmap threshold rises to the freed size) and keeps it after free, so
            // each cache a process made left up to its size resident (a soak grew 14-75 MiB in 10
            // migrations). An unmapped slab goes back to the system at once.
            ulong bytes = SlabBytes(index);
            int error = NativeMethods.MmapAnonymous(bytes, out slab);
            if (error != 0)
            {
                throw new OutOfMemoryException($"the sent-page cache could not map a {bytes >> 20} MiB slab (errno {-error})");
            }

            _slabs[index] = slab;
        }

        return new Span<byte>((byte*)slab + ((slot & (PagesPerSlab - 1)) * PageSize), PageSize);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ulong SlabBytes(int index) => (ulong)(index == _slabs.Length - 1 ? _lastSlabPages : PagesPerSlab) * PageSize;

    /// <summary>A never-used slot, a removed page's slot, or the least recently used page's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int TakeSlot()
    {
        if (_unused < Capacity)
        {
            _written = Math.Max(_written, _unused + 1);
            return _unused++;
        }

        if (_free != None)
        {
            int slot = _free;
            _free = _older[slot];
            return slot;
        }

        int oldest = _oldest;
        RemoveAt(Find(_regions[oldest], _pages[oldest]), oldest);
        Evictions++;
        return oldest;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RemoveAt(int position, int slot)
    {
        Unlink(slot);
        _count--;

        // Backward-shift deletion keeps every probe chain unbroken without tombstones: each
        // later entry of the cluster moves into the hole unless its home lies after the hole.
        int mask = _index.Length - 1;
        int hole = position;
        for (int next = (hole + 1) & mask; _index[next] != 0; next = (next + 1) & mask)
        {
            int moved = _index[next] - 1;
            int home = Home(_regions[moved], _pages[moved]);
            if (((next - home) & mask) >= ((next - hole) & mask))
            {
                _index[hole] = _index[next];
                hole = next;
            }
        }

        _index[hole] = 0;
    }

    /// <summary>The index position holding the page, or the complement of the empty position where it would go.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Find(int region, ulong page)
    {
        int mask = _index.Length - 1;
        for (int position = Home(region, page); ; position = (position + 1) & mask)
        {
            int entry = _index[position];
            if (entry == 0)
            {
                return ~position;
            }

            if (_pages[entry - 1] == page && _regions[entry - 1] == region)
            {
                return position;
            }
        }
    }

    /// <summary>Fibonacci hashing: neighbouring pages land far apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Home(int region, ulong page) =>
        (int)(((page ^ ((ulong)(uint)region << 40)) * 0x9E3779B97F4A7C15UL) >> _indexShift);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void MakeNewest(int slot)
    {
        if (slot != _newest)
        {
            Unlink(slot);
            LinkNewest(slot);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void LinkNewest(int slot)
    {
        _newer[slot] = None;
        _older[slot] = _newest;
        if (_newest != None)
        {
            _newer[_newest] = slot;
        }

        _newest = slot;
        if (_oldest == None)
        {
            _oldest = slot;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private void Unlink(int slot)
    {
        int newer = _newer[slot];
        int older = _older[slot];
        if (newer != None)
        {
            _older[newer] = older;
        }
        else
        {
            _newest = older;
        }

        if (older != None)
        {
            _newer[older] = newer;
        }
        else
        {
            _oldest = newer;
        }
    }
}
