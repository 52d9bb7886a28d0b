/* KVM system, VM and memory-slot operations. Contracts: see migratekit.h. */
#define _GNU_SOURCE
#include "migratekit.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* The managed side mirrors these layouts byte for byte. */
_Static_assert(sizeof(mk_regs) == sizeof(struct kvm_regs), "mk_regs mirrors kvm_regs");
_Static_assert(offsetof(mk_regs, rip) == offsetof(struct kvm_regs, rip), "kvm_regs.rip");
_Static_assert(sizeof(mk_segment) == sizeof(struct kvm_segment), "mk_segment mirrors kvm_segment");
_Static_assert(offsetof(mk_segment, unusable) == offsetof(struct kvm_segment, unusable), "kvm_segment.unusable");
_Static_assert(sizeof(mk_dtable) == sizeof(struct kvm_dtable), "mk_dtable mirrors kvm_dtable");
_Static_assert(sizeof(mk_sregs) == sizeof(struct kvm_sregs), "mk_sregs mirrors kvm_sregs");
_Static_assert(offsetof(mk_sregs, gdt) == offsetof(struct kvm_sregs, gdt), "kvm_sregs.gdt");
_Static_assert(offsetof(mk_sregs, cr0) == offsetof(struct kvm_sregs, cr0), "kvm_sregs.cr0");
_Static_assert(offsetof(mk_sregs, efer) == offsetof(struct kvm_sregs, efer), "kvm_sregs.efer");
_Static_assert(offsetof(mk_sregs, interrupt_bitmap) == offsetof(struct kvm_sregs, interrupt_bitmap),
               "kvm_sregs.interrupt_bitmap");
_Static_assert(sizeof(mk_regs) == 144, "mk_regs size");
_Static_assert(sizeof(mk_sregs) == 312, "mk_sregs size");
_Static_assert(sizeof(mk_vcpu_exit) == 24, "mk_vcpu_exit size");
_Static_assert(offsetof(mk_vcpu_exit, data) == 16, "mk_vcpu_exit.data");
_Static_assert(sizeof(mk_dirty_entry) == 16, "mk_dirty_entry size");
_Static_assert(sizeof(struct kvm_dirty_gfn) == 16, "kvm_dirty_gfn size");

int mk_kvm_open(const char *path, int *out_fd)
{
    if (out_fd == NULL)
        return -EINVAL;
    int fd;
    do {
        fd = open(path != NULL ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    int version = mk_ioctl(fd, KVM_GET_API_VERSION, NULL);
    if (version != KVM_API_VERSION) {
        close(fd);
        return version < 0 ? version : -EPROTO;
    }
    *out_fd = fd;
    return 0;
}

int mk_kvm_api_version(int kvm_fd, int *out_version)
{
    int r = mk_ioctl(kvm_fd, KVM_GET_API_VERSION, NULL);
    if (r < 0)
        return r;
    *out_version = r;
    return 0;
}

int mk_check_extension(int fd, uint32_t capability, int *out_value)
{
    int r = mk_ioctl(fd, KVM_CHECK_EXTENSION, (void *)(uintptr_t)capability);
    if (r < 0)
        return r;
    *out_value = r;
    return 0;
}

int mk_kvm_vcpu_mmap_size(int kvm_fd, uint64_t *out_size)
{
    int r = mk_ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
    if (r < 0)
        return r;
    *out_size = (uint64_t)r;
    return 0;
}

int mk_close(int fd)
{
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

int mk_mmap_anonymous(uint64_t size, void **out_addr)
{
    long page = sysconf(_SC_PAGESIZE);
    if (size == 0 || size % (uint64_t)page != 0 || out_addr == NULL)
        return -EINVAL;
    /* Large mappings start on a 2 MiB boundary, so huge pages (THP, or KVM's large
     * mappings of the slot) can back all of it: map 2 MiB more and trim both ends. */
    const uint64_t huge = 2u << 20;
    uint64_t extra = size >= huge ? huge : 0;
    if (size > UINT64_MAX - extra)
        return -EINVAL;
    uint8_t *p = mmap(NULL, size + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    uint8_t *start = p;
    if (extra != 0) {
        start = (uint8_t *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
        if (start > p)
            munmap(p, (size_t)(start - p));
        if (p + extra > start)
            munmap(start + size, (size_t)(p + extra - start));
    }
    *out_addr = start;
    return 0;
}

int mk_munmap(void *addr, uint64_t size)
{
    return munmap(addr, size) < 0 ? -errno : 0;
}

int mk_vm_create(int kvm_fd, int *out_vm_fd)
{
    int r = mk_ioctl(kvm_fd, KVM_CREATE_VM, (void *)0);
    if (r < 0)
        return r;
    *out_vm_fd = r;
    return 0;
}

static int mk_enable_cap(int vm_fd, uint32_t cap, uint64_t arg0)
{
    struct kvm_enable_cap ec;
    memset(&ec, 0, sizeof ec);
    ec.cap = cap;
    ec.args[0] = arg0;
    int r = mk_ioctl(vm_fd, KVM_ENABLE_CAP, &ec);
    return r < 0 ? r : 0;
}

int mk_vm_enable_manual_dirty_log_protect(int vm_fd, int initially_set)
{
    uint64_t flags = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
    if (initially_set)
        flags |= KVM_DIRTY_LOG_INITIALLY_SET;
    return mk_enable_cap(vm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, flags);
}

int mk_vm_enable_dirty_ring(int vm_fd, uint32_t ring_bytes, int *out_acq_rel)
{
    int acq_rel = 0;
    int r = mk_check_extension(vm_fd, KVM_CAP_DIRTY_LOG_RING_ACQ_REL, &acq_rel);
    if (r < 0)
        acq_rel = 0;
    uint32_t cap = acq_rel > 0 ? KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KVM_CAP_DIRTY_LOG_RING;
    r = mk_enable_cap(vm_fd, cap, ring_bytes);
    if (r < 0)
        return r;
    if (out_acq_rel != NULL)
        *out_acq_rel = acq_rel > 0;
    return 0;
}

int mk_vm_set_memory_region(int vm_fd, uint32_t slot, int log_dirty, uint64_t guest_phys_addr,
                            uint64_t size, void *host_addr)
{
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = guest_phys_addr,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host_addr,
    };
    int r = mk_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
    return r < 0 ? r : 0;
}

int mk_vm_delete_memory_region(int vm_fd, uint32_t slot)
{
    struct kvm_userspace_memory_region region = {.slot = slot};
    int r = mk_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
    return r < 0 ? r : 0;
}

int mk_vm_get_dirty_log(int vm_fd, uint32_t slot, uint64_t *bitmap)
{
    if (bitmap == NULL)
        return -EINVAL;
    struct kvm_dirty_log log;
    memset(&log, 0, sizeof log);
    log.slot = slot;
    log.dirty_bitmap = bitmap;
    int r = mk_ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log);
    return r < 0 ? r : 0;
}

int mk_vm_clear_dirty_log(int vm_fd, uint32_t slot, uint64_t first_page, uint32_t num_pages,
                          uint64_t slot_pages, const uint64_t *bitmap)
{
    if (bitmap == NULL || first_page % 64 != 0)
        return -EINVAL;
    if (num_pages % 64 != 0 && first_page + num_pages != slot_pages)
        return -EINVAL;
    struct kvm_clear_dirty_log clear;
    memset(&clear, 0, sizeof clear);
    clear.slot = slot;
    clear.first_page = first_page;
    clear.num_pages = num_pages;
    clear.dirty_bitmap = (void *)bitmap;
    int r = mk_ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, &clear);
    return r < 0 ? r : 0;
}

int mk_vm_reset_dirty_rings(int vm_fd, uint32_t *out_reset)
{
    int r = mk_ioctl(vm_fd, KVM_RESET_DIRTY_RINGS, NULL);
    if (r < 0)
        return r;
    if (out_reset != NULL)
        *out_reset = (uint32_t)r;
    return 0;
}

int64_t mk_abi_query(int what)
{
    switch (what) {
    case MK_ABI_SIZEOF_REGS: return sizeof(struct kvm_regs);
    case MK_ABI_SIZEOF_SREGS: return sizeof(struct kvm_sregs);
    case MK_ABI_SIZEOF_SEGMENT: return sizeof(struct kvm_segment);
    case MK_ABI_SIZEOF_DTABLE: return sizeof(struct kvm_dtable);
    case MK_ABI_SIZEOF_VCPU_EXIT: return sizeof(mk_vcpu_exit);
    case MK_ABI_SIZEOF_DIRTY_ENTRY: return sizeof(mk_dirty_entry);
    case MK_ABI_SIZEOF_DIRTY_GFN: return sizeof(struct kvm_dirty_gfn);
    case MK_ABI_OFFSETOF_SREGS_CR0: return offsetof(struct kvm_sregs, cr0);
    case MK_ABI_OFFSETOF_SREGS_GDT: return offsetof(struct kvm_sregs, gdt);
    case MK_ABI_OFFSETOF_SREGS_EFER: return offsetof(struct kvm_sregs, efer);
    case MK_ABI_OFFSETOF_EXIT_DATA: return offsetof(mk_vcpu_exit, data);
    case MK_ABI_OFFSETOF_REGS_RIP: return offsetof(struct kvm_regs, rip);
    case MK_ABI_IOCTL_CREATE_VM: return KVM_CREATE_VM;
    case MK_ABI_IOCTL_GET_API_VERSION: return KVM_GET_API_VERSION;
    case MK_ABI_IOCTL_CHECK_EXTENSION: return KVM_CHECK_EXTENSION;
    case MK_ABI_IOCTL_SET_USER_MEMORY_REGION: return KVM_SET_USER_MEMORY_REGION;
    case MK_ABI_IOCTL_GET_DIRTY_LOG: return KVM_GET_DIRTY_LOG;
    case MK_ABI_IOCTL_CLEAR_DIRTY_LOG: return KVM_CLEAR_DIRTY_LOG;
    case MK_ABI_IOCTL_ENABLE_CAP: return KVM_ENABLE_CAP;
    case MK_ABI_IOCTL_CREATE_VCPU: return KVM_CREATE_VCPU;
    case MK_ABI_IOCTL_RUN: return KVM_RUN;
    case MK_ABI_IOCTL_GET_REGS: return KVM_GET_REGS;
    case MK_ABI_IOCTL_SET_REGS: return KVM_SET_REGS;
    case MK_ABI_IOCTL_GET_SREGS: return KVM_GET_SREGS;
    case MK_ABI_IOCTL_SET_SREGS: return KVM_SET_SREGS;
    case MK_ABI_IOCTL_RESET_DIRTY_RINGS: return KVM_RESET_DIRTY_RINGS;
    case MK_ABI_IOCTL_GET_VCPU_MMAP_SIZE: return KVM_GET_VCPU_MMAP_SIZE;
    case MK_ABI_DIRTY_LOG_PAGE_OFFSET: return KVM_DIRTY_LOG_PAGE_OFFSET;
    default: return -EINVAL;
    }
}
