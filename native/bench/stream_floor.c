/* The C floor for the page stream: in one process, a sender thread writes
 * MIB mebibytes of populated, non-zero anonymous memory to a loopback TCP
 * connection, and the receiving thread maps fresh anonymous memory, backs it
 * and recv()s straight into it. The timed window runs from the moment the
 * receiver maps its memory (the populate counts: MigrateKit's receiver has to
 * do it too) to the last byte received; the sender's memory is filled before.
 *
 *   mk_stream_floor [MIB] [POPULATE] [BUFFER_KIB]
 *
 * MIB defaults to 1024. POPULATE says how the destination is backed:
 *   fault     no populate: recv() faults each 4 KiB page in
 *   map       mmap(MAP_POPULATE)
 *   madvise   MADV_POPULATE_WRITE on the whole mapping before the first recv
 *   thp       MADV_HUGEPAGE, then MADV_POPULATE_WRITE (2 MiB pages where THP allows)
 *   ahead     MADV_HUGEPAGE, then a third thread populates 32 MiB chunks ahead of recv
 *   best      (the default) each of the above once, then the fastest again
 * Each measurement runs in a process of its own, which fills its source first.
 * BUFFER_KIB sets SO_SNDBUF/SO_RCVBUF on both ends; 0 (the default) leaves the
 * kernel's autotuned sizes, which is what MigrateKit's sockets use.
 *
 * Prints one line per measured mode, the last one being the result:
 *   mode=thp bytes=1073741824 seconds=0.412 gbps=2.606 buffer_kib=0 verified=yes */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define HUGE_SIZE (2u << 20)
#define AHEAD_CHUNK (32u << 20)

enum mode { MODE_FAULT, MODE_MAP, MODE_MADVISE, MODE_THP, MODE_AHEAD, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = { "fault", "map", "madvise", "thp", "ahead" };

struct run {
    size_t bytes;
    int buffer;
    const uint8_t *source;
    int send_fd;
    uint8_t *dest;
    _Atomic size_t populated; /* ahead: bytes of dest backed so far */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "%s failed: %s\n", what, strerror(errno));
    exit(1);
}

/* A 2 MiB-aligned anonymous mapping, so THP can back all of it. */
static uint8_t *map_aligned(size_t bytes, int flags)
{
    uint8_t *p = mmap(NULL, bytes + HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    uintptr_t start = ((uintptr_t)p + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1);
    if (start != (uintptr_t)p)
        munmap(p, start - (uintptr_t)p);
    munmap((uint8_t *)start + bytes, (uintptr_t)p + HUGE_SIZE - start);
    return (uint8_t *)start;
}

static void populate(uint8_t *p, size_t bytes)
{
    while (madvise(p, bytes, MADV_POPULATE_WRITE) < 0)
        if (errno != EINTR)
            die("madvise(MADV_POPULATE_WRITE)");
}

static void set_buffers(int fd, int kib)
{
    if (kib <= 0)
        return;
    int bytes = kib * 1024;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) < 0)
        die("setsockopt");
}

static void *sender(void *arg)
{
    struct run *r = arg;
    size_t sent = 0;
    while (sent < r->bytes) {
        ssize_t n = send(r->send_fd, r->source + sent, r->bytes - sent, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("send");
        sent += (size_t)n;
    }
    return NULL;
}

static void *populator(void *arg)
{
    struct run *r = arg;
    for (size_t at = 0; at < r->bytes; at += AHEAD_CHUNK) {
        size_t n = r->bytes - at < AHEAD_CHUNK ? r->bytes - at : AHEAD_CHUNK;
        populate(r->dest + at, n);
        atomic_store_explicit(&r->populated, at + n, memory_order_release);
    }
    return NULL;
}

static void connect_pair(int buffer, int *out_send, int *out_recv)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0)
        die("socket");
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    set_buffers(listener, buffer);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 1) < 0 || getsockname(listener, (struct sockaddr *)&addr, &len) < 0)
        die("bind/listen");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        die("socket");
    set_buffers(s, buffer);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("connect");
    int a = accept(listener, NULL, NULL);
    if (a < 0)
        die("accept");
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(listener);
    *out_send = s;
    *out_recv = a;
}

/* One transfer; returns the seconds of the timed window. */
static double measure(const uint8_t *source, size_t bytes, enum mode mode, int buffer, int *verified)
{
    struct run r = { .bytes = bytes, .buffer = buffer, .source = source };
    int recv_fd;
    connect_pair(buffer, &r.send_fd, &recv_fd);
    pthread_t send_thread, populate_thread;

    uint64_t t0 = now_ns();
    if (pthread_create(&send_thread, NULL, sender, &r) != 0)
        die("pthread_create");
    r.dest = map_aligned(bytes, mode == MODE_MAP ? MAP_POPULATE : 0);
    if (mode == MODE_THP || mode == MODE_AHEAD)
        madvise(r.dest, bytes, MADV_HUGEPAGE);
    if (mode == MODE_MADVISE || mode == MODE_THP)
        populate(r.dest, bytes);
    if (mode == MODE_AHEAD && pthread_create(&populate_thread, NULL, populator, &r) != 0)
        die("pthread_create");

    size_t got = 0;
    while (got < bytes) {
        size_t limit = bytes;
        if (mode == MODE_AHEAD) {
            while ((limit = atomic_load_explicit(&r.populated, memory_order_acquire)) <= got)
                sched_yield();
        }
        ssize_t n = recv(recv_fd, r.dest + got, limit - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("recv");
        got += (size_t)n;
    }
    uint64_t t1 = now_ns();

    pthread_join(send_thread, NULL);
    if (mode == MODE_AHEAD)
        pthread_join(populate_thread, NULL);
    *verified = memcmp(r.dest, source, bytes) == 0;
    close(r.send_fd);
    close(recv_fd);
    munmap(r.dest, bytes);
    return (double)(t1 - t0) / 1e9;
}

static void report(enum mode mode, size_t bytes, double seconds, int buffer, int verified)
{
    printf("mode=%s bytes=%zu seconds=%.3f gbps=%.3f buffer_kib=%d verified=%s\n",
           mode_names[mode], bytes, seconds, (double)bytes / seconds / 1e9, buffer, verified ? "yes" : "no");
    fflush(stdout);
}

struct result {
    double seconds;
    int verified;
};

/* Fills a source and measures one transfer into fresh memory in a child process, which
 * reports the result through a pipe: no measurement receives into frames an earlier one
 * freed. A paravirtual host backs such frames already, while a new destination's memory it
 * must back first, which took 6x as long on one (docs/BENCHMARKS.md). */
static struct result measure_in_child(size_t bytes, enum mode mode, int buffer)
{
    int fds[2];
    if (pipe(fds) < 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        close(fds[0]);
        uint8_t *source = map_aligned(bytes, 0);
        /* Non-zero and different on every page, so nothing on the way could shortcut it. */
        for (size_t i = 0; i < bytes; i += sizeof(uint64_t))
            *(uint64_t *)(source + i) = (i * 0x9E3779B97F4A7C15ull) | 1;
        struct result r;
        r.seconds = measure(source, bytes, mode, buffer, &r.verified);
        _exit(write(fds[1], &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    struct result r = { 0, 0 };
    ssize_t got;
    do {
        got = read(fds[0], &r, sizeof r);
    } while (got < 0 && errno == EINTR);
    close(fds[0]);
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (got != (ssize_t)sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the measuring process failed\n");
        exit(1);
    }
    return r;
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 1024;
    const char *which = argc > 2 ? argv[2] : "best";
    int buffer = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 0;
    int first = -1;
    for (int m = 0; m < MODE_COUNT; m++)
        if (strcmp(which, mode_names[m]) == 0)
            first = m;
    if (mib < 1 || mib > (1L << 20) || buffer < 0 || (first < 0 && strcmp(which, "best") != 0)) {
        fprintf(stderr, "usage: %s [MIB] [fault|map|madvise|thp|ahead|best] [BUFFER_KIB]\n", argv[0]);
        return 2;
    }

    size_t bytes = (size_t)mib << 20;
    if (first >= 0) {
        struct result r = measure_in_child(bytes, (enum mode)first, buffer);
        report((enum mode)first, bytes, r.seconds, buffer, r.verified);
        return r.verified ? 0 : 1;
    }

    enum mode best = MODE_FAULT;
    double best_seconds = 1e300;
    for (int m = 0; m < MODE_COUNT; m++) {
        struct result r = measure_in_child(bytes, (enum mode)m, buffer);
        report((enum mode)m, bytes, r.seconds, buffer, r.verified);
        if (!r.verified)
            return 1;
        if (r.seconds < best_seconds) {
            best_seconds = r.seconds;
            best = (enum mode)m;
        }
    }

    struct result r = measure_in_child(bytes, best, buffer);
    report(best, bytes, r.seconds, buffer, r.verified);
    return r.verified ? 0 : 1;
}
