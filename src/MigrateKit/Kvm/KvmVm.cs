using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using MigrateKit.Interop;
using MigrateKit.Memory;

namespace MigrateKit.Kvm;

/// <summary>
/// A KVM virtual machine: memory slots, dirty logging (bitmap with optional manual protect, or
/// the per-vCPU dirty ring) and vCPUs. One wrapper per VM file descriptor.
/// </summary>
public sealed unsafe class KvmVm : IDisposable
{
    private const int RingHarvestBatch = 4096;

    private readonly KvmSystem _kvm;
    private readonly SafeFdHandle _fd;
    private readonly object _gate = new();
    private readonly Dictionary<uint, MemorySlot> _slots = new();
    private readonly List<KvmVcpu> _vcpus = new();

    // Dirty-ring collection: one batch buffer, and the sink (a ring tracker) that keeps what is
    // collected; without a sink, collected entries are dropped because nobody tracks.
    private readonly object _ringGate = new();
    private NativeDirtyEntry[]? _ringBuffer;
    private IDirtyRingSink? _ringSink;
    private bool _disposed;

    internal KvmVm(KvmSystem kvm, SafeFdHandle fd)
    {
        _kvm = kvm;
        _fd = fd;
    }

    /// <summary>The KVM system the VM was created from.</summary>
    public KvmSystem System => _kvm;

    /// <summary>Whether <c>KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2</c> is enabled.</summary>
    public bool ManualDirtyLogProtect { get; private set; }

    /// <summary>Whether manual protect was enabled with <c>KVM_DIRTY_LOG_INITIALLY_SET</c>.</summary>
    public bool DirtyLogInitiallySet { get; private set; }

    /// <summary>The dirty ring size per vCPU in bytes, or 0 when the ring is not enabled.</summary>
    public int DirtyRingBytes { get; private set; }

    /// <summary>Whether the ring uses <c>KVM_CAP_DIRTY_LOG_RING_ACQ_REL</c>.</summary>
    public bool DirtyRingAcquireRelease { get; private set; }

    /// <summary>The memory slots, in the order they were created.</summary>
    public IReadOnlyList<MemorySlot> Slots
    {
        get
        {
            lock (_gate)
            {
                return _slots.Values.ToArray();
            }
        }
    }

    /// <summary>The vCPUs, in the order they were created.</summary>
    public IReadOnlyList<KvmVcpu> Vcpus
    {
        get
        {
            lock (_gate)
            {
                return _vcpus.ToArray();
            }
        }
    }

    /// <summary>Asks KVM about a capability on the VM fd (answers can differ from the system fd).</summary>
    public int CheckExtension(KvmCapability capability)
    {
        using (Lease())
        {
            KvmException.Check(NativeMethods.CheckExtension(_fd.Fd, (uint)capability, out int value), $"KVM_CHECK_EXTENSION ({capability}) on the VM");
            return value;
        }
    }

    /// <summary>
    /// Enables <c>KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2</c>: <c>KVM_GET_DIRTY_LOG</c> then only reads the
    /// log, and <see cref="MemorySlot.ClearDirtyLog"/> re-protects exactly the pages the caller took.
    /// </summary>
    /// <param name="initiallySet">Also set <c>KVM_DIRTY_LOG_INITIALLY_SET</c>: when logging starts every
    /// page reads as dirty and write protection is applied lazily, as pages are cleared.</param>
    /// <exception cref="InvalidOperationException">A slot already logs dirty pages.</exception>
    /// <exception cref="KvmException">KVM does not support it.</exception>
    public void EnableManualDirtyLogProtect(bool initiallySet = false)
    {
        lock (_gate)
        {
            if (_slots.Values.Any(s => s.DirtyLogging))
            {
                throw new InvalidOperationException("Manual dirty-log protect must be enabled before any slot logs dirty pages.");
            }

            using (Lease())
            {
                KvmException.Check(NativeMethods.VmEnableManualDirtyLogProtect(_fd.Fd, initiallySet ? 1 : 0),
                    $"KVM_ENABLE_CAP (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, {(initiallySet ? "MANUAL_PROTECT_ENABLE | INITIALLY_SET" : "MANUAL_PROTECT_ENABLE")})");
            }

            ManualDirtyLogProtect = true;
            DirtyLogInitiallySet = initiallySet;
        }
    }

    /// <summary>
    /// Enables the per-vCPU dirty ring (acquire/release flavour where KVM has it). Must come before
    /// the first vCPU. While enabled, dirty pages are reported through the rings, not the bitmap.
    /// </summary>
    /// <param name="bytesPerVcpu">Ring size in bytes: a power of two, 16 bytes per entry.</param>
    /// <exception cref="ArgumentException">The size is not a power of two.</exception>
    /// <exception cref="InvalidOperationException">vCPUs exist already, or the ring is already enabled.</exception>
    /// <exception cref="KvmException">KVM refuses the size (too small, or over its maximum) or lacks the ring.</exception>
    public void EnableDirtyRing(int bytesPerVcpu)
    {
        if (bytesPerVcpu <= 0 || !BitOperations.IsPow2(bytesPerVcpu))
        {
            throw new ArgumentException($"Dirty ring size {bytesPerVcpu} is not a positive power of two.", nameof(bytesPerVcpu));
        }

        lock (_gate)
        {
            if (_vcpus.Count > 0)
            {
                throw new InvalidOperationException("The dirty ring must be enabled before the first vCPU is created.");
            }

            if (DirtyRingBytes != 0)
            {
                throw new InvalidOperationException("The dirty ring is already enabled.");
            }

            using (Lease())
            {
                int r = NativeMethods.VmEnableDirtyRing(_fd.Fd, (uint)bytesPerVcpu, out int acqRel);
                if (r < 0)
                {
                    int max = CheckExtension(KvmCapability.DirtyLogRingAcqRel) is > 0 and var m ? m : CheckExtension(KvmCapability.DirtyLogRing);
                    throw new KvmException("KVM_ENABLE_CAP (KVM_CAP_DIRTY_LOG_RING)", -r,
                        $"KVM refused a dirty ring of {bytesPerVcpu} bytes per vCPU: {Errno.Describe(-r)} ({Errno.Name(-r)}). " +
                        (max > 0 ? $"This host accepts powers of two from 4096 to {max} bytes." : "This host has no dirty ring."));
                }

                DirtyRingAcquireRelease = acqRel != 0;
            }

            DirtyRingBytes = bytesPerVcpu;
        }
    }

    /// <summary>Registers a region of guest memory as a KVM memory slot.</summary>
    /// <param name="slotId">The slot number (unique within the VM).</param>
    /// <param name="region">The memory behind it.</param>
    /// <param name="dirtyLogging">Set <c>KVM_MEM_LOG_DIRTY_PAGES</c> from the start.</param>
    /// <exception cref="ArgumentException">The slot number is in use.</exception>
    /// <exception cref="KvmException">KVM refuses the slot, e.g. EEXIST when it overlaps another slot.</exception>
    public MemorySlot CreateSlot(uint slotId, GuestMemoryRegion region, bool dirtyLogging = false)
    {
        ArgumentNullException.ThrowIfNull(region);
        lock (_gate)
        {
            if (_slots.ContainsKey(slotId))
            {
                throw new ArgumentException($"Memory slot {slotId} is already in use.", nameof(slotId));
            }

            using (Lease())
            using (new HandleLease(region.Mapping))
            {
                int r = NativeMethods.VmSetMemoryRegion(_fd.Fd, slotId, dirtyLogging ? 1 : 0, region.GuestPhysicalAddress, region.Size, (nint)region.Pointer);
                if (r < 0)
                {
                    string why = -r == Errno.EEXIST ? " (it overlaps an existing slot)" : string.Empty;
                    throw new KvmException($"KVM_SET_USER_MEMORY_REGION (slot {slotId})", -r,
                        $"KVM_SET_USER_MEMORY_REGION (slot {slotId}, [0x{region.GuestPhysicalAddress:x}, 0x{region.End:x})) failed{why}: {Errno.Describe(-r)} ({Errno.Name(-r)})");
                }
            }

            var slot = new MemorySlot(this, slotId, region, dirtyLogging);
            _slots.Add(slotId, slot);
            return slot;
        }
    }

    /// <summary>Registers every region of a layout as slots <c>firstSlot</c>, <c>firstSlot + 1</c>, ….</summary>
    public IReadOnlyList<MemorySlot> MapMemory(GuestMemoryLayout memory, bool dirtyLogging = false, uint firstSlot = 0)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var slots = new List<MemorySlot>(memory.Regions.Count);
        foreach (GuestMemoryRegion region in memory.Regions)
        {
            slots.Add(CreateSlot(firstSlot + (uint)region.Index, region, dirtyLogging));
        }

        return slots;
    }

    /// <summary>The slot with the given number.</summary>
    /// <exception cref="ArgumentException">The VM has no such slot.</exception>
    public MemorySlot GetSlot(uint slotId)
    {
        lock (_gate)
        {
            return _slots.TryGetValue(slotId, out MemorySlot? slot)
                ? slot
                : throw new ArgumentException($"The VM has no memory slot {slotId} (slots: {string.Join(", ", _slots.Keys.Order())}).", nameof(slotId));
        }
    }

    /// <summary><c>KVM_GET_DIRTY_LOG</c> of slot <paramref name="slotId"/>; see <see cref="MemorySlot.GetDirtyLog"/>.</summary>
    /// <exception cref="ArgumentException">Unknown slot, or a bitmap of the wrong size.</exception>
    public void GetDirtyLog(uint slotId, DirtyBitmap bitmap) => GetDirtyLog(GetSlot(slotId), bitmap);

    /// <summary><c>KVM_RESET_DIRTY_RINGS</c>: lets KVM re-protect the pages collected from the rings.</summary>
    /// <returns>How many entries KVM reset.</returns>
    public uint ResetDirtyRings()
    {
        using (Lease())
        {
            KvmException.Check(NativeMethods.VmResetDirtyRings(_fd.Fd, out uint reset), "KVM_RESET_DIRTY_RINGS");
            return reset;
        }
    }

    /// <summary>
    /// Collects every vCPU's dirty ring, hands the entries to the dirty-ring tracker that tracks
    /// this VM (entries are dropped when none does) and resets the rings. A VMM calls this when a
    /// vCPU exits with <see cref="VcpuExitReason.DirtyRingFull"/>; the ring tracker calls it on
    /// each harvest. Safe from any thread.
    /// </summary>
    /// <returns>How many entries were collected.</returns>
    public long CollectDirtyRings()
    {
        if (DirtyRingBytes == 0)
        {
            throw new InvalidOperationException("The dirty ring is not enabled on this VM.");
        }

        KvmVcpu[] vcpus;
        lock (_gate)
        {
            vcpus = _vcpus.ToArray();
        }

        long total = 0;
        lock (_ringGate)
        {
            _ringBuffer ??= GC.AllocateArray<NativeDirtyEntry>(RingHarvestBatch, pinned: true);
            fixed (NativeDirtyEntry* buffer = _ringBuffer)
            {
                foreach (KvmVcpu vcpu in vcpus)
                {
                    DirtyRing ring = vcpu.DirtyRing!;
                    int n;
                    do
                    {
                        n = ring.Harvest(buffer, RingHarvestBatch);
                        _ringSink?.Collect(new ReadOnlySpan<NativeDirtyEntry>(buffer, n));
                        total += n;
                    }
                    while (n == RingHarvestBatch);
                }
            }

            ResetDirtyRings();
        }

        return total;
    }

    /// <summary>
    /// Makes <paramref name="sink"/> the receiver of every entry collected from now on; one at a
    /// time, because two receivers would each see only part of the writes.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another sink is attached.</exception>
    internal void AttachDirtyRingSink(IDirtyRingSink sink)
    {
        lock (_ringGate)
        {
            if (_ringSink is not null && !ReferenceEquals(_ringSink, sink))
            {
                throw new InvalidOperationException("Another dirty-ring tracker is tracking this VM: stop it first.");
            }

            _ringSink = sink;
        }
    }

    /// <summary>Detaches <paramref name="sink"/> if it is the attached one.</summary>
    internal void DetachDirtyRingSink(IDirtyRingSink sink)
    {
        lock (_ringGate)
        {
            if (ReferenceEquals(_ringSink, sink))
            {
                _ringSink = null;
            }
        }
    }

    /// <summary>Creates a vCPU, maps its run area and, when enabled, its dirty ring.</summary>
    public KvmVcpu CreateVcpu(uint id)
    {
        lock (_gate)
        {
            using (Lease())
            {
                KvmException.Check(NativeMethods.VcpuCreate(_fd.Fd, id, out int vcpuFd), $"KVM_CREATE_VCPU ({id})");
                var fd = new SafeFdHandle(vcpuFd);
                try
                {
                    var vcpu = new KvmVcpu(this, id, fd, _kvm.VcpuMmapSize, DirtyRingBytes);
                    _vcpus.Add(vcpu);
                    return vcpu;
                }
                catch
                {
                    fd.Dispose();
                    throw;
                }
            }
        }
    }

    /// <summary>Destroys the VM: vCPUs, slots and the VM fd. Guest memory stays with its layout.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (KvmVcpu vcpu in _vcpus)
            {
                vcpu.Dispose();
            }

            _fd.Dispose();
        }
    }

    internal void SetDirtyLogging(MemorySlot slot, bool enabled)
    {
        lock (_gate)
        {
            CheckOwned(slot);
            if (slot.DirtyLogging == enabled)
            {
                return;
            }

            using (Lease())
            using (new HandleLease(slot.Region.Mapping))
            {
                KvmException.Check(NativeMethods.VmSetMemoryRegion(_fd.Fd, slot.Id, enabled ? 1 : 0, slot.GuestPhysicalAddress, slot.Region.Size, (nint)slot.Region.Pointer),
                    $"KVM_SET_USER_MEMORY_REGION (slot {slot.Id}, dirty logging {(enabled ? "on" : "off")})");
            }

            slot.DirtyLogging = enabled;
        }
    }

    internal void GetDirtyLog(MemorySlot slot, DirtyBitmap bitmap)
    {
        CheckOwned(slot);
        CheckBitmap(slot, bitmap);
        if (!slot.DirtyLogging)
        {
            throw new InvalidOperationException($"Dirty logging is off for {slot}.");
        }

        using (Lease())
        {
            fixed (ulong* words = bitmap.Words)
            {
                // The kernel writes only the slot's bits; the bitmap was checked to be exactly that size.
                int r = NativeMethods.VmGetDirtyLog(_fd.Fd, slot.Id, words);
                KvmException.Check(r, $"KVM_GET_DIRTY_LOG (slot {slot.Id})");
            }
        }

        bitmap.TrimTail();
    }

    internal void ClearDirtyLog(MemorySlot slot, DirtyBitmap pages, ulong firstPage, ulong pageCount)
    {
        CheckOwned(slot);
        CheckBitmap(slot, pages);
        if (!ManualDirtyLogProtect)
        {
            throw new InvalidOperationException("KVM_CLEAR_DIRTY_LOG needs manual dirty-log protect (EnableManualDirtyLogProtect).");
        }

        if (firstPage % 64 != 0)
        {
            throw new ArgumentException($"First page {firstPage} is not a multiple of 64 (KVM_CLEAR_DIRTY_LOG works on 64-page words).", nameof(firstPage));
        }

        if (firstPage > slot.PageCount || pageCount > slot.PageCount - firstPage)
        {
            throw new ArgumentOutOfRangeException(nameof(pageCount), $"[{firstPage}, +{pageCount}) is outside {slot} of {slot.PageCount} pages.");
        }

        if (pageCount % 64 != 0 && firstPage + pageCount != slot.PageCount)
        {
            throw new ArgumentException($"Page count {pageCount} is not a multiple of 64 and the range does not end at the end of {slot}.", nameof(pageCount));
        }

        // num_pages is 32-bit: clear huge slots in 64-aligned chunks.
        const ulong chunk = 1UL << 31;
        using (Lease())
        {
            fixed (ulong* words = pages.Words)
            {
                for (ulong done = 0; done < pageCount; done += chunk)
                {
                    ulong first = firstPage + done;
                    uint n = (uint)Math.Min(chunk, pageCount - done);
                    int r = NativeMethods.VmClearDirtyLog(_fd.Fd, slot.Id, first, n, slot.PageCount, words + (first / 64));
                    KvmException.Check(r, $"KVM_CLEAR_DIRTY_LOG (slot {slot.Id}, pages [{first}, +{n}))");
                }
            }
        }
    }

    internal void DeleteSlot(MemorySlot slot)
    {
        lock (_gate)
        {
            CheckOwned(slot);
            using (Lease())
            {
                KvmException.Check(NativeMethods.VmDeleteMemoryRegion(_fd.Fd, slot.Id), $"KVM_SET_USER_MEMORY_REGION (delete slot {slot.Id})");
            }

            _slots.Remove(slot.Id);
            slot.IsDeleted = true;
        }
    }

    internal HandleLease Lease() => new(_fd);

    internal int Fd => _fd.Fd;

    private void CheckOwned(MemorySlot slot)
    {
        ArgumentNullException.ThrowIfNull(slot);
        if (slot.IsDeleted)
        {
            throw new ArgumentException($"Memory slot {slot.Id} has been deleted.", nameof(slot));
        }

        lock (_gate)
        {
            if (!_slots.TryGetValue(slot.Id, out MemorySlot? known) || !ReferenceEquals(known, slot))
            {
                throw new ArgumentException($"Memory slot {slot.Id} does not belong to this VM.", nameof(slot));
            }
        }
    }

    private static void CheckBitmap(MemorySlot slot, DirtyBitmap bitmap)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        if (bitmap.PageCount != slot.PageCount)
        {
            throw new ArgumentException($"The bitmap covers {bitmap.PageCount} pages but {slot} has {slot.PageCount}.", nameof(bitmap));
        }
    }
}
