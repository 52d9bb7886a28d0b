using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Runtime.CompilerServices;
using MigrateKit.Interop;
using MigrateKit.Kvm;
using MigrateKit.Memory;

namespace MigrateKit.Tracking;

/// <summary>
/// Tracks dirty pages through KVM's per-vCPU dirty rings. Each harvest collects every vCPU's
/// ring (entries are read with acquire and released with release ordering), resets the rings,
/// and adds what VMM run loops collected in between when a ring filled
/// (<see cref="VcpuExitReason.DirtyRingFull"/> handled by <see cref="KvmVm.CollectDirtyRings"/>,
/// which hands the entries to this tracker while it tracks).
/// </summary>
public sealed class KvmDirtyRingTracker : IDirtyPageTracker, IDirtyRingSink
{
    private readonly KvmVm _vm;
    private readonly MemorySlot[] _slots;
    private readonly object _gate = new();

    // Pages collected from the rings and not yet harvested, one bitmap per tracked slot id;
    // guarded by _collectedGate because vCPU threads add to them on a full ring.
    private readonly Dictionary<uint, (MemorySlot Slot, DirtyBitmap Pages)> _collected;
    private readonly object _collectedGate = new();

    /// <summary>Tracks the given slots of a VM whose dirty ring is enabled.</summary>
    /// <exception cref="ArgumentException">No slots, a slot of another VM, or no dirty ring on the VM.</exception>
    public KvmDirtyRingTracker(KvmVm vm, IEnumerable<MemorySlot> slots)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(slots);
        if (vm.DirtyRingBytes == 0)
        {
            throw new ArgumentException("The VM has no dirty ring (KvmVm.EnableDirtyRing before creating vCPUs).", nameof(vm));
        }

        _vm = vm;
        _slots = slots.ToArray();
        if (_slots.Length == 0)
        {
            throw new ArgumentException("Nothing to track: no memory slots given.", nameof(slots));
        }

        foreach (MemorySlot slot in _slots)
        {
            if (!ReferenceEquals(vm.GetSlot(slot.Id), slot))
            {
                throw new ArgumentException($"{slot} does not belong to this VM.", nameof(slots));
            }
        }

        Regions = _slots.Select(s => s.Region).ToArray();
        _collected = _slots.ToDictionary(s => s.Id, s => (s, new DirtyBitmap(s.PageCount)));
    }

    /// <summary>Tracks every slot of a VM.</summary>
    public KvmDirtyRingTracker(KvmVm vm)
        : this(vm, vm?.Slots ?? throw new ArgumentNullException(nameof(vm)))
    {
    }

    /// <inheritdoc/>
    public IReadOnlyList<GuestMemoryRegion> Regions { get; }

    /// <inheritdoc/>
    public bool IsTracking { get; private set; }

    /// <inheritdoc/>
    public string Kind => "dirty-ring";

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">Another dirty-ring tracker is tracking the VM: the rings can feed one tracker only.</exception>
    public void Start()
    {
        lock (_gate)
        {
            // First, so that a VM another ring tracker already tracks is refused before anything changes.
            _vm.AttachDirtyRingSink(this);
            foreach (MemorySlot slot in _slots)
            {
                slot.SetDirtyLogging(true);
            }

            // Anything in the rings before tracking started is not ours to report.
            _vm.CollectDirtyRings();
            TakeCollected(null);
            IsTracking = true;
        }
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public HarvestResult Harvest(IReadOnlyList<DirtyBitmap> into)
    {
        HarvestTargets.Check(into, Regions);

        long start = Stopwatch.GetTimestamp();
        ulong total = 0;
        lock (_gate)
        {
            if (!IsTracking)
            {
                throw new InvalidOperationException("Tracking has not been started.");
            }

            _vm.CollectDirtyRings();
            total = TakeCollected(into);
        }

        return new HarvestResult(total, Stopwatch.GetElapsedTime(start));
    }

    /// <inheritdoc/>
    public void Stop()
    {
        lock (_gate)
        {
            _vm.DetachDirtyRingSink(this);
            foreach (MemorySlot slot in _slots)
            {
                if (!slot.IsDeleted)
                {
                    slot.SetDirtyLogging(false);
                }
            }

            IsTracking = false;
        }
    }

    void IDirtyRingSink.Collect(ReadOnlySpan<NativeDirtyEntry> entries)
    {
        lock (_collectedGate)
        {
            foreach (ref readonly NativeDirtyEntry entry in entries)
            {
                // The high half of the slot field is the address space; entries of slots this
                // tracker does not cover are not ours, and those of deleted slots name memory
                // that is gone.
                if ((entry.Slot >> 16) == 0 && _collected.TryGetValue(entry.Slot & 0xffff, out (MemorySlot Slot, DirtyBitmap Pages) collected) &&
                    !collected.Slot.IsDeleted)
                {
                    collected.Pages.Set(entry.Offset);
                }
            }
        }
    }

    /// <summary>
    /// Moves the collected pages into <paramref name="into"/> (OR, one bitmap per slot), or drops
    /// them when it is null; returns how many pages were collected.
    /// </summary>
    private ulong TakeCollected(IReadOnlyList<DirtyBitmap>? into)
    {
        ulong total = 0;
        lock (_collectedGate)
        {
            for (int i = 0; i < _slots.Length; i++)
            {
                DirtyBitmap collected = _collected[_slots[i].Id].Pages;
                total += collected.Count();
                into?[i].Or(collected);
                collected.ClearAll();
            }
        }

        return total;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (IsTracking)
        {
            Stop();
        }
    }
}
