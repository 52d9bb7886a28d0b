/*
 * Write tracking for ordinary process memory: userfaultfd write-protection in
 * asynchronous mode (Linux 6.7+; exact from 6.9) read and re-armed by the PAGEMAP_SCAN ioctl.
 * A write to a protected page is resolved by the kernel without a fault
 * message and marks the page written; PAGEMAP_SCAN with PM_SCAN_WP_MATCHING
 * reports written pages and protects them again in one atomic walk. This is
 * the exact dirty log KVM keeps for guests, for memory no KVM guest backs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "migratekit.h"
#include "internal.h"

/* Build on older uapi headers too: the values are the kernel's ABI. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

struct mk_page_region {
    uint64_t start, end, categories;
};

struct mk_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define MK_PAGEMAP_SCAN _IOWR('f', 16, struct mk_pm_scan_arg)
#define MK_PM_SCAN_WP_MATCHING (1 << 0)
#define MK_PM_SCAN_CHECK_WPASYNC (1 << 1)
#define MK_PAGE_IS_WRITTEN (1 << 1)
#define MK_PAGE_IS_SWAPPED (1 << 4)

_Static_assert(sizeof(struct mk_pm_scan_arg) == 96, "pm_scan_arg is 96 bytes");
_Static_assert(sizeof(struct mk_page_region) == 24, "page_region is 24 bytes");

#define MK_SCAN_VEC 512

int mk_wp_open(int *out_uffd, int *out_pagemap)
{
    if (out_uffd == NULL || out_pagemap == NULL)
        return -EINVAL;
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0)
        return -errno;
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
    };
    int r = mk_ioctl(uffd, UFFDIO_API, &api);
    if (r < 0) {
        close(uffd);
        /* EINVAL here means the kernel lacks the asynchronous write-protect mode. */
        return r == -EINVAL ? -EOPNOTSUPP : r;
    }
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap < 0) {
        r = -errno;
        close(uffd);
        return r;
    }
    *out_uffd = uffd;
    *out_pagemap = pagemap;
    return 0;
}

int mk_wp_register(int uffd, void *addr, uint64_t len)
{
    if (addr == NULL || len == 0 || ((uintptr_t)addr | len) % 4096 != 0)
        return -EINVAL;
    struct uffdio_register reg = {
        .range = { .start = (uintptr_t)addr, .len = len },
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    int r = mk_ioctl(uffd, UFFDIO_REGISTER, &reg);
    if (r < 0)
        return r;
    struct uffdio_writeprotect wp = {
        .range = { .start = (uintptr_t)addr, .len = len },
        .mode = UFFDIO_WRITEPROTECT_MODE_WP,
    };
    r = mk_ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
    if (r < 0) {
        struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };
        mk_ioctl(uffd, UFFDIO_UNREGISTER, &range);
        return r;
    }
    return 0;
}

int mk_wp_unregister(int uffd, void *addr, uint64_t len)
{
    struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };
    int r = mk_ioctl(uffd, UFFDIO_UNREGISTER, &range);
    return r < 0 ? r : 0;
}

int mk_wp_harvest(int pagemap, void *addr, uint64_t len, int reprotect, uint64_t *bitmap, uint64_t *out_pages)
{
    if (addr == NULL || bitmap == NULL || out_pages == NULL || len == 0 || ((uintptr_t)addr | len) % 4096 != 0)
        return -EINVAL;
    struct mk_page_region vec[MK_SCAN_VEC];
    uint64_t base = (uintptr_t)addr;
    uint64_t end = base + len;
    uint64_t pages = 0;
    uint64_t start = base;
    while (start < end) {
        struct mk_pm_scan_arg arg;
        memset(&arg, 0, sizeof(arg));
        arg.size = sizeof(arg);
        arg.flags = reprotect ? (MK_PM_SCAN_WP_MATCHING | MK_PM_SCAN_CHECK_WPASYNC) : 0;
        arg.start = start;
        arg.end = end;
        arg.vec = (uintptr_t)vec;
        arg.vec_len = MK_SCAN_VEC;
        arg.category_mask = MK_PAGE_IS_WRITTEN;
        /* Asking for the swapped category too keeps the scan off the kernel fast path that,
         * before 6.9, misread uffd-wp on swapped-out pages; coverage is unchanged. */
        arg.return_mask = MK_PAGE_IS_WRITTEN | MK_PAGE_IS_SWAPPED;
        int n = mk_ioctl(pagemap, MK_PAGEMAP_SCAN, &arg);
        if (n < 0)
            return n;
        for (int i = 0; i < n; i++) {
            uint64_t first = (vec[i].start - base) >> 12;
            uint64_t last = (vec[i].end - base) >> 12;
            pages += last - first;
            /* Set bits [first, last): whole words where possible. */
            while (first < last && (first & 63) != 0) {
                bitmap[first >> 6] |= 1ULL << (first & 63);
                first++;
            }
            while (last - first >= 64) {
                bitmap[first >> 6] = ~0ULL;
                first += 64;
            }
            while (first < last) {
                bitmap[first >> 6] |= 1ULL << (first & 63);
                first++;
            }
        }
        if (arg.walk_end <= start)
            return -EIO; /* no progress: never loop forever */
        start = arg.walk_end;
    }
    *out_pages = pages;
    return 0;
}

int mk_pages_present(void *addr, uint64_t len, uint64_t *bitmap, uint64_t *out_pages)
{
    if (addr == NULL || bitmap == NULL || out_pages == NULL || len == 0 || ((uintptr_t)addr | len) % 4096 != 0)
        return -EINVAL;
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint64_t entries[512];
    uint64_t pages = len / 4096;
    uint64_t first = (uintptr_t)addr / 4096;
    uint64_t present = 0;
    for (uint64_t done = 0; done < pages;) {
        uint64_t want = pages - done < 512 ? pages - done : 512;
        ssize_t got;
        do {
            got = pread(fd, entries, want * 8, (off_t)((first + done) * 8));
        } while (got < 0 && errno == EINTR);
        if (got <= 0 || got % 8 != 0) {
            int r = got < 0 ? -errno : -EIO;
            close(fd);
            return r;
        }
        uint64_t n = (uint64_t)got / 8;
        for (uint64_t i = 0; i < n; i++) {
            /* Bit 63: present in RAM. Bit 62: a swap entry, which is either a page swapped
             * out (populated) or a PTE marker: swap type 31 in bits 0-4, such as the marker
             * userfaultfd write-protection leaves on a never-touched page (zero). Without
             * CAP_SYS_ADMIN the type reads as 0, so such pages count as populated: only
             * slower, never wrong. */
            uint64_t e = entries[i];
            int populated = (e >> 63) & 1;
            if (!populated && ((e >> 62) & 1))
                populated = (e & 0x1f) != 0x1f;
            if (populated) {
                uint64_t p = done + i;
                bitmap[p >> 6] |= 1ULL << (p & 63);
                present++;
            }
        }
        done += n;
    }
    close(fd);
    *out_pages = present;
    return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int mk_populate_write(void *addr, uint64_t len)
{
    if (addr == NULL || len == 0 || ((uintptr_t)addr | len) % 4096 != 0)
        return -EINVAL;
    int r;
    do {
        r = madvise(addr, len, MADV_POPULATE_WRITE);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

int mk_advise_huge(void *addr, uint64_t len)
{
    if (addr == NULL || len == 0 || ((uintptr_t)addr | len) % 4096 != 0)
        return -EINVAL;
    return madvise(addr, len, MADV_HUGEPAGE) < 0 ? -errno : 0;
}

int mk_thread_idle(void)
{
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(0, SCHED_IDLE, &param) < 0 ? -errno : 0;
}
