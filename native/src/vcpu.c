/* vCPU operations: creation, the run area, the dirty ring, KVM_RUN and kicks.
 * Contracts: see migratekit.h. */
#define _GNU_SOURCE
#include "migratekit.h"
#include "internal.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int mk_vcpu_create(int vm_fd, uint32_t id, int *out_vcpu_fd)
{
    int r = mk_ioctl(vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)id);
    if (r < 0)
        return r;
    *out_vcpu_fd = r;
    return 0;
}

int mk_vcpu_map_run(int vcpu_fd, uint64_t mmap_size, void **out_run)
{
    void *p = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *out_run = p;
    return 0;
}

int mk_vcpu_map_dirty_ring(int vcpu_fd, uint32_t ring_bytes, void **out_ring)
{
    long page = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd,
                   (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * page);
    if (p == MAP_FAILED)
        return -errno;
    *out_ring = p;
    return 0;
}

int mk_vcpu_harvest_dirty_ring(void *ring, uint32_t ring_entries, uint32_t *fetch_index,
                               mk_dirty_entry *out, uint32_t max_entries, uint32_t *out_count)
{
    if (ring == NULL || fetch_index == NULL || out_count == NULL || ring_entries == 0 ||
        (ring_entries & (ring_entries - 1)) != 0 || (out == NULL && max_entries != 0))
        return -EINVAL;
    struct kvm_dirty_gfn *gfns = ring;
    uint32_t index = *fetch_index;
    uint32_t n = 0;
    while (n < max_entries) {
        struct kvm_dirty_gfn *e = &gfns[index & (ring_entries - 1)];
        /* Acquire: the slot and offset KVM wrote before publishing the
         * DIRTY flag are visible once we see the flag. */
        uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
        if ((flags & KVM_DIRTY_GFN_F_DIRTY) == 0)
            break;
        out[n].slot = e->slot;
        out[n].reserved = 0;
        out[n].offset = e->offset;
        /* Release: our reads of the entry happen before KVM may reuse it. */
        __atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
        index++;
        n++;
    }
    *fetch_index = index;
    *out_count = n;
    return 0;
}

int mk_vcpu_run(int vcpu_fd, void *run_area, mk_vcpu_exit *out_exit)
{
    struct kvm_run *run = run_area;
    if (run == NULL || out_exit == NULL)
        return -EINVAL;
    memset(out_exit, 0, sizeof *out_exit);
    if (ioctl(vcpu_fd, KVM_RUN, NULL) < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            out_exit->reason = MK_EXIT_INTR;
            return 0;
        }
        return -errno;
    }
    out_exit->reason = run->exit_reason;
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        uint32_t bytes = (uint32_t)run->io.size * run->io.count;
        out_exit->io_direction = run->io.direction;
        out_exit->io_size = run->io.size;
        out_exit->io_port = run->io.port;
        out_exit->io_count = run->io.count;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&out_exit->data, data, bytes < 8 ? bytes : 8);
        } else {
            memset(data, 0xff, bytes);
        }
        break;
    }
    case KVM_EXIT_MMIO:
        out_exit->data = run->mmio.phys_addr;
        if (!run->mmio.is_write)
            memset(run->mmio.data, 0xff, sizeof run->mmio.data);
        break;
    case KVM_EXIT_FAIL_ENTRY:
        out_exit->hardware_reason = (uint32_t)run->fail_entry.hardware_entry_failure_reason;
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        out_exit->hardware_reason = run->internal.suberror;
        break;
    default:
        break;
    }
    return 0;
}

int mk_vcpu_get_regs(int vcpu_fd, mk_regs *regs)
{
    int r = mk_ioctl(vcpu_fd, KVM_GET_REGS, regs);
    return r < 0 ? r : 0;
}

int mk_vcpu_set_regs(int vcpu_fd, const mk_regs *regs)
{
    int r = mk_ioctl(vcpu_fd, KVM_SET_REGS, (void *)regs);
    return r < 0 ? r : 0;
}

int mk_vcpu_get_sregs(int vcpu_fd, mk_sregs *sregs)
{
    int r = mk_ioctl(vcpu_fd, KVM_GET_SREGS, sregs);
    return r < 0 ? r : 0;
}

int mk_vcpu_set_sregs(int vcpu_fd, const mk_sregs *sregs)
{
    int r = mk_ioctl(vcpu_fd, KVM_SET_SREGS, (void *)sregs);
    return r < 0 ? r : 0;
}

static void mk_kick_handler(int signo)
{
    (void)signo;
}

static pthread_once_t mk_kick_once = PTHREAD_ONCE_INIT;
static int mk_kick_init_result;

static void mk_kick_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = mk_kick_handler;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: the point is that KVM_RUN returns. */
    sa.sa_flags = 0;
    mk_kick_init_result = sigaction(SIGRTMIN + 6, &sa, NULL) < 0 ? -errno : 0;
}

int mk_kick_init(void)
{
    pthread_once(&mk_kick_once, mk_kick_install);
    return mk_kick_init_result;
}

int mk_thread_self(uint64_t *out_thread)
{
    if (out_thread == NULL)
        return -EINVAL;
    *out_thread = (uint64_t)pthread_self();
    return 0;
}

int mk_vcpu_set_immediate_exit(void *run_area, int value)
{
    struct kvm_run *run = run_area;
    if (run == NULL)
        return -EINVAL;
    __atomic_store_n(&run->immediate_exit, (uint8_t)(value != 0), __ATOMIC_SEQ_CST);
    return 0;
}

int mk_vcpu_answer_io_in(void *run_area, uint32_t value)
{
    struct kvm_run *run = run_area;
    if (run == NULL || run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_IN ||
        run->io.size > sizeof value)
        return -EINVAL;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    for (uint32_t i = 0; i < run->io.count; i++)
        memcpy(data + (size_t)i * run->io.size, &value, run->io.size); /* x86: little-endian */
    return 0;
}

int mk_vcpu_kick(void *run_area, uint64_t thread)
{
    int r = mk_kick_init();
    if (r < 0)
        return r;
    r = mk_vcpu_set_immediate_exit(run_area, 1);
    if (r < 0)
        return r;
    r = pthread_kill((pthread_t)thread, SIGRTMIN + 6);
    return -r;
}
