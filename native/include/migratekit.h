/*
 * libmigratekit: a flat C ABI over the KVM ioctls MigrateKit uses.
 *
 * Conventions (every function below):
 *  - Returns 0 on success, -errno on failure. Nothing else is ever returned
 *    unless the comment says so.
 *  - EINTR is retried inside the shim; callers never see it. The one
 *    exception is mk_vcpu_run, which reports an interrupted KVM_RUN as the
 *    exit reason MK_EXIT_INTR so the caller can look at its pause flags.
 *  - File descriptors are plain ints owned by the caller, closed with mk_close.
 *  - Structures shared with the managed side are pinned by static_assert in
 *    the .c files and by mk_abi_* queries that the managed tests check.
 */
#ifndef MIGRATEKIT_H
#define MIGRATEKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MK_EXPORT __attribute__((visibility("default")))

/* Exit reasons reported by mk_vcpu_run; the numbers are KVM's. */
#define MK_EXIT_UNKNOWN 0
#define MK_EXIT_IO 2
#define MK_EXIT_HLT 5
#define MK_EXIT_MMIO 6
#define MK_EXIT_SHUTDOWN 8
#define MK_EXIT_FAIL_ENTRY 9
#define MK_EXIT_INTR 10
#define MK_EXIT_INTERNAL_ERROR 17
#define MK_EXIT_DIRTY_RING_FULL 31

/* What one KVM_RUN ended with. For MK_EXIT_IO with direction out, data holds
 * the first min(size * count, 8) bytes the guest wrote, little-endian. For an
 * in, the shim fills the guest's buffer with 0xff (an unbacked port) unless
 * the caller answers otherwise with mk_vcpu_answer_io_in. */
typedef struct mk_vcpu_exit {
    uint32_t reason;
    uint8_t io_direction; /* 0 = in, 1 = out */
    uint8_t io_size;      /* 1, 2 or 4 */
    uint16_t io_port;
    uint32_t io_count;
    uint32_t hardware_reason; /* fail_entry / internal error sub-code */
    uint64_t data;
} mk_vcpu_exit;

/* One harvested dirty-ring entry: the KVM slot (address space in bits 16..31)
 * and the page offset within that slot. */
typedef struct mk_dirty_entry {
    uint32_t slot;
    uint32_t reserved;
    uint64_t offset;
} mk_dirty_entry;

/* General-purpose registers; identical in layout to struct kvm_regs. */
typedef struct mk_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
} mk_regs;

/* A segment register; identical in layout to struct kvm_segment. */
typedef struct mk_segment {
    uint64_t base;
    uint32_t limit;
    uint16_t selector;
    uint8_t type, present, dpl, db, s, l, g, avl;
    uint8_t unusable, padding;
} mk_segment;

/* A descriptor-table register; identical in layout to struct kvm_dtable. */
typedef struct mk_dtable {
    uint64_t base;
    uint16_t limit;
    uint16_t padding[3];
} mk_dtable;

/* Special registers; identical in layout to struct kvm_sregs. */
typedef struct mk_sregs {
    mk_segment cs, ds, es, fs, gs, ss, tr, ldt;
    mk_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
    uint64_t interrupt_bitmap[4];
} mk_sregs;

/* ---- system ---------------------------------------------------------- */

/* Opens the KVM device (path NULL means /dev/kvm) close-on-exec and checks
 * that KVM_GET_API_VERSION is 12. -EPROTO if the version differs. */
MK_EXPORT int mk_kvm_open(const char *path, int *out_fd);

/* KVM_GET_API_VERSION into *out_version. */
MK_EXPORT int mk_kvm_api_version(int kvm_fd, int *out_version);

/* KVM_CHECK_EXTENSION on a system or VM fd; *out_value is KVM's answer
 * (0 = unsupported, otherwise capability-specific). */
MK_EXPORT int mk_check_extension(int fd, uint32_t capability, int *out_value);

/* KVM_GET_VCPU_MMAP_SIZE: the size of a vCPU's kvm_run mapping. */
MK_EXPORT int mk_kvm_vcpu_mmap_size(int kvm_fd, uint64_t *out_size);

/* close(2), retrying nothing (EINTR on close must not be retried). */
MK_EXPORT int mk_close(int fd);

/* ---- files ----------------------------------------------------------- */

/* lstat(2) on path: *out_is_socket is 1 when path itself (not a symlink's
 * target) is a socket, else 0. -ENOENT when nothing is there. */
MK_EXPORT int mk_path_is_socket(const char *path, int *out_is_socket);

/* ---- memory ---------------------------------------------------------- */

/* Anonymous private mapping of size bytes (a page multiple), MAP_NORESERVE,
 * zero-filled; *out_addr receives it. From 2 MiB up it starts on a 2 MiB boundary. */
MK_EXPORT int mk_mmap_anonymous(uint64_t size, void **out_addr);

/* munmap(2). */
MK_EXPORT int mk_munmap(void *addr, uint64_t size);

/* ---- VM -------------------------------------------------------------- */

/* KVM_CREATE_VM (default machine type) into *out_vm_fd. */
MK_EXPORT int mk_vm_create(int kvm_fd, int *out_vm_fd);

/* KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) with
 * KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, plus KVM_DIRTY_LOG_INITIALLY_SET when
 * initially_set is non-zero. Must precede the first dirty-logging slot. */
MK_EXPORT int mk_vm_enable_manual_dirty_log_protect(int vm_fd, int initially_set);

/* KVM_ENABLE_CAP(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, or KVM_CAP_DIRTY_LOG_RING
 * where the former is absent) with ring_bytes per vCPU. Must precede
 * KVM_CREATE_VCPU. *out_acq_rel tells which capability was used. */
MK_EXPORT int mk_vm_enable_dirty_ring(int vm_fd, uint32_t ring_bytes, int *out_acq_rel);

/* KVM_SET_USER_MEMORY_REGION. log_dirty non-zero sets KVM_MEM_LOG_DIRTY_PAGES.
 * Calling it again with the same slot, address, size and host address and a
 * different log_dirty switches dirty logging on or off. */
MK_EXPORT int mk_vm_set_memory_region(int vm_fd, uint32_t slot, int log_dirty,
                                      uint64_t guest_phys_addr, uint64_t size, void *host_addr);

/* KVM_SET_USER_MEMORY_REGION with size 0: deletes the slot. */
MK_EXPORT int mk_vm_delete_memory_region(int vm_fd, uint32_t slot);

/* KVM_GET_DIRTY_LOG for slot into bitmap (one bit per page of the slot,
 * rounded up to 64 bits). Without manual protect KVM also clears and
 * re-protects; with it, the bits stay set until mk_vm_clear_dirty_log. */
MK_EXPORT int mk_vm_get_dirty_log(int vm_fd, uint32_t slot, uint64_t *bitmap);

/* KVM_CLEAR_DIRTY_LOG: re-protects the pages of [first_page, first_page +
 * num_pages) whose bits are set in bitmap (bit 0 = first_page). first_page
 * must be a multiple of 64, and num_pages too unless the range ends at the
 * end of the slot; -EINVAL otherwise (checked here, before KVM). */
MK_EXPORT int mk_vm_clear_dirty_log(int vm_fd, uint32_t slot, uint64_t first_page,
                                    uint32_t num_pages, uint64_t slot_pages,
                                    const uint64_t *bitmap);

/* KVM_RESET_DIRTY_RINGS: *out_reset receives how many entries KVM reset. */
MK_EXPORT int mk_vm_reset_dirty_rings(int vm_fd, uint32_t *out_reset);

/* ---- vCPU ------------------------------------------------------------ */

/* KVM_CREATE_VCPU with the given id into *out_vcpu_fd. */
MK_EXPORT int mk_vcpu_create(int vm_fd, uint32_t id, int *out_vcpu_fd);

/* Maps the vCPU's kvm_run area (mmap_size from mk_kvm_vcpu_mmap_size). */
MK_EXPORT int mk_vcpu_map_run(int vcpu_fd, uint64_t mmap_size, void **out_run);

/* Maps the vCPU's dirty ring (ring_bytes as given to mk_vm_enable_dirty_ring). */
MK_EXPORT int mk_vcpu_map_dirty_ring(int vcpu_fd, uint32_t ring_bytes, void **out_ring);

/* Collects up to max_entries dirty entries from a mapped ring of
 * ring_entries (a power of two) starting at *fetch_index, which is advanced.
 * Each entry's flags are read with acquire ordering and marked collected with
 * release ordering, as the KVM API requires. *out_count receives how many
 * were collected; fewer than max_entries means the ring is drained. */
MK_EXPORT int mk_vcpu_harvest_dirty_ring(void *ring, uint32_t ring_entries, uint32_t *fetch_index,
                                         mk_dirty_entry *out, uint32_t max_entries,
                                         uint32_t *out_count);

/* KVM_RUN. Returns 0 and fills *out_exit on every exit, including an
 * interrupted run (MK_EXIT_INTR). kvm_run.immediate_exit is left as it is:
 * the caller clears it (mk_vcpu_set_immediate_exit) once it has looked at
 * why it was kicked. */
MK_EXPORT int mk_vcpu_run(int vcpu_fd, void *run, mk_vcpu_exit *out_exit);

/* Answers the `in` the last mk_vcpu_run exit (MK_EXIT_IO, direction in)
 * reported: the guest reads the low io_size bytes of value (for each of
 * io_count repeats) when it next runs, instead of the shim's 0xff. -EINVAL
 * when the last exit was not an `in`. */
MK_EXPORT int mk_vcpu_answer_io_in(void *run, uint32_t value);

/* KVM_GET_REGS / KVM_SET_REGS. */
MK_EXPORT int mk_vcpu_get_regs(int vcpu_fd, mk_regs *regs);
MK_EXPORT int mk_vcpu_set_regs(int vcpu_fd, const mk_regs *regs);

/* KVM_GET_SREGS / KVM_SET_SREGS. */
MK_EXPORT int mk_vcpu_get_sregs(int vcpu_fd, mk_sregs *sregs);
MK_EXPORT int mk_vcpu_set_sregs(int vcpu_fd, const mk_sregs *sregs);

/* ---- kicking a running vCPU ------------------------------------------ */

/* Installs (once per process) an empty handler without SA_RESTART for the
 * kick signal (SIGRTMIN + 6), so that a signalled KVM_RUN returns. */
MK_EXPORT int mk_kick_init(void);

/* The calling thread's identity, for mk_vcpu_kick. */
MK_EXPORT int mk_thread_self(uint64_t *out_thread);

/* Sets or clears kvm_run.immediate_exit with a full barrier. */
MK_EXPORT int mk_vcpu_set_immediate_exit(void *run, int value);

/* Forces a vCPU out of KVM_RUN from another thread: sets immediate_exit (so a
 * KVM_RUN about to start returns at once) and signals the thread that runs
 * it (so one in progress returns). -ESRCH if the thread is gone. */
MK_EXPORT int mk_vcpu_kick(void *run, uint64_t thread);

/* ---- ABI self-description, for the managed layout tests --------------- */

#define MK_ABI_SIZEOF_REGS 1
#define MK_ABI_SIZEOF_SREGS 2
#define MK_ABI_SIZEOF_SEGMENT 3
#define MK_ABI_SIZEOF_DTABLE 4
#define MK_ABI_SIZEOF_VCPU_EXIT 5
#define MK_ABI_SIZEOF_DIRTY_ENTRY 6
#define MK_ABI_SIZEOF_DIRTY_GFN 7
#define MK_ABI_OFFSETOF_SREGS_CR0 8
#define MK_ABI_OFFSETOF_SREGS_GDT 9
#define MK_ABI_OFFSETOF_SREGS_EFER 10
#define MK_ABI_OFFSETOF_EXIT_DATA 11
#define MK_ABI_OFFSETOF_REGS_RIP 12
#define MK_ABI_IOCTL_CREATE_VM 100
#define MK_ABI_IOCTL_GET_API_VERSION 101
#define MK_ABI_IOCTL_CHECK_EXTENSION 102
#define MK_ABI_IOCTL_SET_USER_MEMORY_REGION 103
#define MK_ABI_IOCTL_GET_DIRTY_LOG 104
#define MK_ABI_IOCTL_CLEAR_DIRTY_LOG 105
#define MK_ABI_IOCTL_ENABLE_CAP 106
#define MK_ABI_IOCTL_CREATE_VCPU 107
#define MK_ABI_IOCTL_RUN 108
#define MK_ABI_IOCTL_GET_REGS 109
#define MK_ABI_IOCTL_SET_REGS 110
#define MK_ABI_IOCTL_GET_SREGS 111
#define MK_ABI_IOCTL_SET_SREGS 112
#define MK_ABI_IOCTL_RESET_DIRTY_RINGS 113
#define MK_ABI_IOCTL_GET_VCPU_MMAP_SIZE 114
#define MK_ABI_DIRTY_LOG_PAGE_OFFSET 200

/*
 * Write tracking of this process's own memory (no KVM): userfaultfd
 * write-protection in asynchronous mode plus PAGEMAP_SCAN (Linux 6.7+; exact from 6.9, see WriteProtectTracker).
 */

/* Opens a userfaultfd with asynchronous write-protection and /proc/self/pagemap.
 * -EOPNOTSUPP when the kernel lacks the asynchronous mode. */
MK_EXPORT int mk_wp_open(int *out_uffd, int *out_pagemap);

/* Registers [addr, addr+len) (page-aligned, anonymous private memory) for
 * write-protection and protects it: from now on writes are recorded. */
MK_EXPORT int mk_wp_register(int uffd, void *addr, uint64_t len);

/* Stops tracking [addr, addr+len); writes are no longer recorded. */
MK_EXPORT int mk_wp_unregister(int uffd, void *addr, uint64_t len);

/* ORs the pages of [addr, addr+len) written since the last harvest into bitmap
 * (bit i of word i/64 = page i of the range) and stores their number in
 * out_pages. With reprotect non-zero the reported pages are protected again in
 * the same walk, so every later write is seen by the next harvest. */
MK_EXPORT int mk_wp_harvest(int pagemap, void *addr, uint64_t len, int reprotect, uint64_t *bitmap, uint64_t *out_pages);

/* ORs into bitmap the pages of [addr, addr+len) that are populated (present or
 * swapped, per /proc/self/pagemap) and stores their number in out_pages. A page
 * not populated was never touched and reads as zero. */
MK_EXPORT int mk_pages_present(void *addr, uint64_t len, uint64_t *bitmap, uint64_t *out_pages);

/* Populates [addr, addr+len) for writing in one call (MADV_POPULATE_WRITE,
 * Linux 5.14+), instead of one page fault per page. -EINVAL on older kernels. */
MK_EXPORT int mk_populate_write(void *addr, uint64_t len);

/* Asks for transparent huge pages over [addr, addr+len) (MADV_HUGEPAGE): the
 * kernel then backs each aligned 2 MiB of it with one page where it can. */
MK_EXPORT int mk_advise_huge(void *addr, uint64_t len);

/* Moves the calling thread to SCHED_IDLE: it runs only on a CPU nothing else
 * wants, so background work never slows the threads that migrate or run a
 * guest. Lowering a thread's own policy needs no privilege. */
MK_EXPORT int mk_thread_idle(void);

/* The size, offset, ioctl number or constant named by what (MK_ABI_*), or
 * -EINVAL for an unknown name. Returns the value itself, not 0. */
MK_EXPORT int64_t mk_abi_query(int what);

#ifdef __cplusplus
}
#endif

#endif
