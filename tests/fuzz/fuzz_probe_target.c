/* SPDX-License-Identifier: Apache-2.0 */
/* The target parameter of /probe?target=..., as any HTTP client may send it:
 * checked (poh_grpc_address_problem), split into host and port as the probe
 * policy does (poh_grpc_split_host_port, into buffers of the policy's sizes
 * and into tight ones), and matched against allow-list patterns
 * (core/netmatch.c). Whatever passes must be a plain host and a port in
 * 1..65535, and a host-name pattern may only match what it says. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/netmatch.h"
#include "fuzz.h"
#include "grpc/grpc_probe.h"

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const patterns[] = {"*.poh.internal", "poh-?.example", "10.0.0.0/8",
                                           "fd00::/8", "127.0.0.1"};
    poh_netpattern_t pat[sizeof patterns / sizeof *patterns];
    for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
        const char *why = NULL;
        FUZZ_CHECK(poh_netpattern_parse(patterns[i], &pat[i], &why) == 0);
    }
    char *v = fuzz_cstring(data, size);
    if (!v)
        return 0;
    const char *problem = poh_grpc_address_problem(v);
    char host[256], port[8];
    bool ok = poh_grpc_split_host_port(v, host, sizeof host, port, sizeof port);
    FUZZ_CHECK(!ok || !problem);
    if (ok) {
        FUZZ_CHECK(host[0] != '\0' && strlen(host) < sizeof host);
        FUZZ_CHECK(v[0] == '[' || !strchr(host, ':'));
        for (const char *p = host; *p; p++)
            FUZZ_CHECK(*p > 0x20 && *p < 0x7f && !strchr("/?#@%\\", *p));
        char *end;
        long n = strtol(port, &end, 10);
        FUZZ_CHECK(port[0] >= '0' && port[0] <= '9' && !*end && n >= 1 && n <= 65535);
        if (poh_netpattern_match_host(&pat[0], host))
            FUZZ_CHECK(ends_with_ci(host, ".poh.internal"));
        if (poh_netpattern_match_host(&pat[1], host))
            FUZZ_CHECK(strlen(host) == 13 && !strncasecmp(host, "poh-", 4) &&
                       ends_with_ci(host, ".example"));
        for (size_t i = 2; i < sizeof pat / sizeof *pat; i++)
            FUZZ_CHECK(!poh_netpattern_match_host(&pat[i], host));
        /* the same split into buffers just too small must refuse, not overflow */
        size_t hl = strlen(host), pl = strlen(port);
        char *h2 = malloc(hl), *p2 = malloc(pl + 1);
        FUZZ_CHECK(h2 && p2);
        FUZZ_CHECK(!poh_grpc_split_host_port(v, h2, hl, p2, pl + 1));
        free(h2);
        free(p2);
    }
    /* the input as an allow-list entry of the configuration */
    poh_netpattern_t mine;
    const char *why = NULL;
    if (poh_netpattern_parse(v, &mine, &why) == 0) {
        FUZZ_CHECK(mine.cidr ? (mine.family == AF_INET ? mine.bits <= 32 : mine.bits <= 128)
                             : mine.glob == v);
        if (ok && !mine.cidr)
            (void)poh_netpattern_match_host(&mine, host);
    } else {
        FUZZ_CHECK(why != NULL);
    }
    free(v);
    return 0;
}
