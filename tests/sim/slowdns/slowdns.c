/* SPDX-License-Identifier: Apache-2.0 */
/* slowdns: an LD_PRELOAD shim that makes name lookups of hosts ending in
 * ".slow.test" take SLOWDNS_MS milliseconds (default 3000) and then fail
 * with EAI_AGAIN, as a stalled or hostile DNS server would; every other
 * name goes to the real getaddrinfo. With SLOWDNS_PEAK_FILE set, the most
 * slow lookups ever in progress at once is written there (a decimal number,
 * rewritten whenever it rises): the test reads how many threads the
 * process let a slow DNS hold. No network is touched. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static atomic_int active, peak;

static int is_slow(const char *node)
{
    static const char suffix[] = ".slow.test";
    size_t n = node ? strlen(node) : 0, k = sizeof suffix - 1;
    return n >= k && strcmp(node + n - k, suffix) == 0;
}

static void record_peak(int now)
{
    int p = atomic_load(&peak);
    while (now > p)
        if (atomic_compare_exchange_weak(&peak, &p, now)) {
            const char *path = getenv("SLOWDNS_PEAK_FILE");
            if (path) {
                char buf[16];
                int len = snprintf(buf, sizeof buf, "%d\n", now);
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd >= 0) {
                    if (write(fd, buf, (size_t)len) != len)
                        perror("slowdns: write");
                    close(fd);
                }
            }
            break;
        }
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    /* AI_NUMERICHOST never asks a DNS: such calls stay real. */
    if (!is_slow(node) || (hints && (hints->ai_flags & AI_NUMERICHOST))) {
        gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
        return real ? real(node, service, hints, res) : EAI_SYSTEM;
    }
    record_peak(atomic_fetch_add(&active, 1) + 1);
    const char *ms = getenv("SLOWDNS_MS");
    long wait = ms ? strtol(ms, NULL, 10) : 3000;
    struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    atomic_fetch_sub(&active, 1);
    return EAI_AGAIN;
}
