using System.Runtime.InteropServices;

namespace MigrateKit.Interop;

/// <summary>
/// Raw declarations of libmigratekit's exports. Every function returns 0 or -errno (see
/// native/include/migratekit.h); <see cref="Errno.Check(int, string)"/> turns the latter into a
/// <see cref="LinuxException"/> (KVM's wrappers into its subclass <c>KvmException</c>). The calls
/// that take KVM's register structs are declared next to them, in <c>Kvm.RegisterNativeMethods</c>.
/// </summary>
internal static unsafe partial class NativeMethods
{
    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_kvm_open", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int KvmOpen(string? path, out int fd);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_kvm_api_version")]
    internal static partial int KvmApiVersion(int kvmFd, out int version);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_check_extension")]
    internal static partial int CheckExtension(int fd, uint capability, out int value);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_kvm_vcpu_mmap_size")]
    internal static partial int KvmVcpuMmapSize(int kvmFd, out ulong size);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_close")]
    internal static partial int Close(int fd);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_path_is_socket", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int PathIsSocket(string path, out int isSocket);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_mmap_anonymous")]
    internal static partial int MmapAnonymous(ulong size, out nint address);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_munmap")]
    internal static partial int Munmap(nint address, ulong size);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_populate_write")]
    internal static partial int PopulateWrite(nint address, ulong length);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_advise_huge")]
    internal static partial int AdviseHuge(nint address, ulong length);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_thread_idle")]
    internal static partial int ThreadIdle();

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_pages_present")]
    internal static unsafe partial int PagesPresent(nint address, ulong length, ulong* bitmap, out ulong pages);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_wp_open")]
    internal static partial int WpOpen(out int uffd, out int pagemap);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_wp_register")]
    internal static partial int WpRegister(int uffd, nint address, ulong length);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_wp_unregister")]
    internal static partial int WpUnregister(int uffd, nint address, ulong length);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_wp_harvest")]
    internal static unsafe partial int WpHarvest(int pagemap, nint address, ulong length, int reprotect, ulong* bitmap, out ulong pages);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vm_create")]
    internal static partial int VmCreate(int kvmFd, out int vmFd);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vm_enable_manual_dirty_log_protect")]
    internal static partial int VmEnableManualDirtyLogProtect(int vmFd, int initiallySet);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vm_enable_dirty_ring")]
    internal static partial int VmEnableDirtyRing(int vmFd, uint ringBytes, out int acqRel);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vm_set_memory_region")]
    internal static partial int VmSetMemoryRegion(int vmFd, uint slot, int logDirty, ulong guestPhysAddr, ulong size, nint hostAddr);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vm_delete_memory_region")]
    internal static partial int VmDeleteMemoryRegion(int vmFd, uint slot);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vm_get_dirty_log")]
    internal static partial int VmGetDirtyLog(int vmFd, uint slot, ulong* bitmap);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vm_clear_dirty_log")]
    internal static partial int VmClearDirtyLog(int vmFd, uint slot, ulong firstPage, uint numPages, ulong slotPages, ulong* bitmap);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vm_reset_dirty_rings")]
    internal static partial int VmResetDirtyRings(int vmFd, out uint reset);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_create")]
    internal static partial int VcpuCreate(int vmFd, uint id, out int vcpuFd);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_map_run")]
    internal static partial int VcpuMapRun(int vcpuFd, ulong mmapSize, out nint run);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_map_dirty_ring")]
    internal static partial int VcpuMapDirtyRing(int vcpuFd, uint ringBytes, out nint ring);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_harvest_dirty_ring")]
    internal static partial int VcpuHarvestDirtyRing(nint ring, uint ringEntries, ref uint fetchIndex, NativeDirtyEntry* entries, uint maxEntries, out uint count);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_run")]
    internal static partial int VcpuRun(int vcpuFd, nint run, out NativeVcpuExit exit);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_kick_init")]
    internal static partial int KickInit();

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_thread_self")]
    internal static partial int ThreadSelf(out ulong thread);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_set_immediate_exit")]
    internal static partial int VcpuSetImmediateExit(nint run, int value);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_answer_io_in")]
    internal static partial int VcpuAnswerIoIn(nint run, uint value);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_kick")]
    internal static partial int VcpuKick(nint run, ulong thread);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_abi_query")]
    internal static partial long AbiQuery(int what);
}
