/* File-system queries the managed side cannot make itself. Contracts: see migratekit.h. */
#define _GNU_SOURCE
#include "migratekit.h"

#include <errno.h>
#include <sys/stat.h>

int mk_path_is_socket(const char *path, int *out_is_socket)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return -errno;
    *out_is_socket = S_ISSOCK(st.st_mode) ? 1 : 0;
    return 0;
}
