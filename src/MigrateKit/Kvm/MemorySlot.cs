using System;
using MigrateKit.Memory;

namespace MigrateKit.Kvm;

/// <summary>A KVM memory slot: one <see cref="GuestMemoryRegion"/> registered with a VM.</summary>
public sealed class MemorySlot
{
    private readonly KvmVm _vm;

    internal MemorySlot(KvmVm vm, uint id, GuestMemoryRegion region, bool dirtyLogging)
    {
        _vm = vm;
        Id = id;
        Region = region;
        DirtyLogging = dirtyLogging;
    }

    /// <summary>The slot number KVM knows it by.</summary>
    public uint Id { get; }

    /// <summary>The memory behind the slot.</summary>
    public GuestMemoryRegion Region { get; }

    /// <summary>The first guest-physical address.</summary>
    public ulong GuestPhysicalAddress => Region.GuestPhysicalAddress;

    /// <summary>The number of 4 KiB pages.</summary>
    public ulong PageCount => Region.PageCount;

    /// <summary>Whether <c>KVM_MEM_LOG_DIRTY_PAGES</c> is set.</summary>
    public bool DirtyLogging { get; internal set; }

    /// <summary>Whether the slot has been deleted.</summary>
    public bool IsDeleted { get; internal set; }

    /// <summary>Switches dirty logging on or off (re-registers the slot with the new flag).</summary>
    public void SetDirtyLogging(bool enabled) => _vm.SetDirtyLogging(this, enabled);

    /// <summary><c>KVM_GET_DIRTY_LOG</c> into <paramref name="bitmap"/> (overwriting it).</summary>
    /// <remarks>Without manual protect KVM also clears its log and write-protects the pages again;
    /// with it (<see cref="KvmVm.EnableManualDirtyLogProtect"/>) the bits stay set until
    /// <see cref="ClearDirtyLog"/>.</remarks>
    public void GetDirtyLog(DirtyBitmap bitmap) => _vm.GetDirtyLog(this, bitmap);

    /// <summary>
    /// <c>KVM_CLEAR_DIRTY_LOG</c>: re-protects the pages of <c>[firstPage, firstPage + pageCount)</c>
    /// whose bits are set in <paramref name="pages"/> (indexed by page of the slot).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="firstPage"/> is not a multiple of 64, or
    /// <paramref name="pageCount"/> is not one either and the range does not end at the slot's end.</exception>
    public void ClearDirtyLog(DirtyBitmap pages, ulong firstPage, ulong pageCount) =>
        _vm.ClearDirtyLog(this, pages, firstPage, pageCount);

    /// <summary>Deletes the slot from its VM.</summary>
    public void Delete() => _vm.DeleteSlot(this);

    /// <inheritdoc/>
    public override string ToString() =>
        $"slot {Id} [0x{GuestPhysicalAddress:x}, 0x{GuestPhysicalAddress + Region.Size:x})";
}
