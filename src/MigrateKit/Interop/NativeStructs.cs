using System.Runtime.InteropServices;

namespace MigrateKit.Interop;

/// <summary>Mirror of <c>mk_vcpu_exit</c> (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeVcpuExit
{
    public uint Reason;
    public byte IoDirection;
    public byte IoSize;
    public ushort IoPort;
    public uint IoCount;
    public uint HardwareReason;
    public ulong Data;
}

/// <summary>Mirror of <c>mk_dirty_entry</c> (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeDirtyEntry
{
    public uint Slot;
    public uint Reserved;
    public ulong Offset;
}

/// <summary>Names for <c>mk_abi_query</c>.</summary>
internal enum AbiQuery
{
    SizeofRegs = 1,
    SizeofSregs = 2,
    SizeofSegment = 3,
    SizeofDtable = 4,
    SizeofVcpuExit = 5,
    SizeofDirtyEntry = 6,
    SizeofDirtyGfn = 7,
    OffsetofSregsCr0 = 8,
    OffsetofSregsGdt = 9,
    OffsetofSregsEfer = 10,
    OffsetofExitData = 11,
    OffsetofRegsRip = 12,
    IoctlCreateVm = 100,
    IoctlGetApiVersion = 101,
    IoctlCheckExtension = 102,
    IoctlSetUserMemoryRegion = 103,
    IoctlGetDirtyLog = 104,
    IoctlClearDirtyLog = 105,
    IoctlEnableCap = 106,
    IoctlCreateVcpu = 107,
    IoctlRun = 108,
    IoctlGetRegs = 109,
    IoctlSetRegs = 110,
    IoctlGetSregs = 111,
    IoctlSetSregs = 112,
    IoctlResetDirtyRings = 113,
    IoctlGetVcpuMmapSize = 114,
    DirtyLogPageOffset = 200,
}
