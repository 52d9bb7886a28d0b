using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Runtime.CompilerServices;
using MigrateKit.Kvm;
using MigrateKit.Memory;

namespace MigrateKit.Tracking;

/// <summary>
/// Tracks dirty pages through KVM's dirty bitmap (<c>KVM_GET_DIRTY_LOG</c>). When the VM has
/// manual protect enabled (<see cref="KvmVm.EnableManualDirtyLogProtect"/>), reading the log
/// and re-protecting pages are separate steps: <see cref="Peek"/> reads without clearing and
/// <see cref="Clear"/> re-protects only what the caller took, in 64-page-aligned ranges, so pages
/// not yet sent stay reported. <see cref="Harvest"/> does both for all pages.
/// </summary>
public sealed class KvmDirtyLogTracker : IDirtyPageTracker
{
    private readonly KvmVm _vm;
    private readonly MemorySlot[] _slots;
    private readonly DirtyBitmap[] _scratch;
    private readonly object _gate = new();

    /// <summary>Tracks the given slots of a VM.</summary>
    /// <exception cref="ArgumentException">No slots, or a slot of another VM.</exception>
    public KvmDirtyLogTracker(KvmVm vm, IEnumerable<MemorySlot> slots)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(slots);
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

        if (vm.DirtyRingBytes != 0)
        {
            throw new ArgumentException("The VM uses the dirty ring; track it with KvmDirtyRingTracker.", nameof(vm));
        }

        _scratch = _slots.Select(s => new DirtyBitmap(s.PageCount)).ToArray();
        Regions = _slots.Select(s => s.Region).ToArray();
    }

    /// <summary>Tracks every slot of a VM.</summary>
    public KvmDirtyLogTracker(KvmVm vm)
        : this(vm, vm?.Slots ?? throw new ArgumentNullException(nameof(vm)))
    {
    }

    /// <inheritdoc/>
    public IReadOnlyList<GuestMemoryRegion> Regions { get; }

    /// <summary>The slots tracked, in region order.</summary>
    public IReadOnlyList<MemorySlot> Slots => _slots;

    /// <summary>Whether reads and re-protection are separate (manual protect).</summary>
    public bool ManualProtect => _vm.ManualDirtyLogProtect;

    /// <inheritdoc/>
    public bool IsTracking { get; private set; }

    /// <inheritdoc/>
    public string Kind => "dirty-log";

    /// <inheritdoc/>
    /// <remarks>With <c>KVM_DIRTY_LOG_INITIALLY_SET</c> every page reads as dirty after this.</remarks>
    public void Start()
    {
        lock (_gate)
        {
            foreach (MemorySlot slot in _slots)
            {
                slot.SetDirtyLogging(true);
            }

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
            ThrowIfNotTracking();
            for (int i = 0; i < _slots.Length; i++)
            {
                DirtyBitmap scratch = _scratch[i];
                _slots[i].GetDirtyLog(scratch);
                if (ManualProtect)
                {
                    _slots[i].ClearDirtyLog(scratch, 0, _slots[i].PageCount);
                }

                total += scratch.Count();
                into[i].Or(scratch);
            }
        }

        return new HarvestResult(total, Stopwatch.GetElapsedTime(start));
    }

    /// <summary>
    /// Reads the dirty log without re-protecting anything (manual protect only): the pages stay
    /// reported until <see cref="Clear"/>. Overwrites <paramref name="into"/>.
    /// </summary>
    public HarvestResult Peek(IReadOnlyList<DirtyBitmap> into)
    {
        HarvestTargets.Check(into, Regions);
        RequireManualProtect();
        long start = Stopwatch.GetTimestamp();
        ulong total = 0;
        lock (_gate)
        {
            ThrowIfNotTracking();
            for (int i = 0; i < _slots.Length; i++)
            {
                _slots[i].GetDirtyLog(into[i]);
                total += into[i].Count();
            }
        }

        return new HarvestResult(total, Stopwatch.GetElapsedTime(start));
    }

    /// <summary>
    /// Re-protects the pages of region <paramref name="region"/> that are set in
    /// <paramref name="taken"/> within <c>[firstPage, firstPage + pageCount)</c> (manual protect only).
    /// The range must start on a multiple of 64 pages and be a multiple of 64 long unless it ends
    /// at the region's end.
    /// </summary>
    public void Clear(int region, DirtyBitmap taken, ulong firstPage, ulong pageCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(region);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(region, _slots.Length);
        RequireManualProtect();
        lock (_gate)
        {
            ThrowIfNotTracking();
            _slots[region].ClearDirtyLog(taken, firstPage, pageCount);
        }
    }

    /// <inheritdoc/>
    public void Stop()
    {
        lock (_gate)
        {
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

    /// <inheritdoc/>
    public void Dispose()
    {
        if (IsTracking)
        {
            Stop();
        }
    }

    private void ThrowIfNotTracking()
    {
        if (!IsTracking)
        {
            throw new InvalidOperationException("Tracking has not been started.");
        }
    }

    private void RequireManualProtect()
    {
        if (!ManualProtect)
        {
            throw new InvalidOperationException("Peek and Clear need manual dirty-log protect on the VM (KvmVm.EnableManualDirtyLogProtect).");
        }
    }
}
