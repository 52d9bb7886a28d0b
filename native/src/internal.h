/* Helpers shared by the shim's translation units; not exported. */
#ifndef MIGRATEKIT_INTERNAL_H
#define MIGRATEKIT_INTERNAL_H

#include <errno.h>
#include <sys/ioctl.h>

/* ioctl(2) with EINTR retried; returns the ioctl's value or -errno. */
static inline int mk_ioctl(int fd, unsigned long request, void *arg)
{
    int r;
    do {
        r = ioctl(fd, request, arg);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

#endif
