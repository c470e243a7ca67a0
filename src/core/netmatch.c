/* SPDX-License-Identifier: Apache-2.0 */
/* Allow-list patterns (netmatch.h). */
#include "core/netmatch.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool host_glob_ok(const char *s)
{
    if (!*s || strlen(s) > 253)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-.*?_", *p))
            return false;
    return true;
}

int poh_netpattern_parse(const char *s, poh_netpattern_t *p, const char **why)
{
    memset(p, 0, sizeof *p);
    const char *slash = strchr(s, '/');
    char addr[64];
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen < sizeof addr) {
        memcpy(addr, s, alen);
        addr[alen] = '\0';
        int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(fam, addr, p->addr) == 1) {
            unsigned max = fam == AF_INET ? 32 : 128, bits = max;
            if (slash) {
                char *end;
                unsigned long b = strtoul(slash + 1, &end, 10);
                if (end == slash + 1 || *end || b > max) {
                    *why = fam == AF_INET ? "prefix length must be 0 to 32"
                                          : "prefix length must be 0 to 128";
                    return -1;
                }
                bits = (unsigned)b;
            }
            p->cidr = true;
            p->family = fam;
            p->bits = bits;
            for (unsigned i = bits; i < max; i++) /* clear the host bits */
                p->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
            return 0;
        }
    }
    if (slash) {
        *why = "not an IPv4 or IPv6 network (CIDR)";
        return -1;
    }
    if (!host_glob_ok(s)) {
        *why = "not a CIDR nor a host-name pattern (letters, digits, '-', '.', '_', '*', '?')";
        return -1;
    }
    p->glob = s;
    return 0;
}

bool poh_netpattern_match_addr(const poh_netpattern_t *p, const struct sockaddr *sa)
{
    if (!p->cidr || !sa)
        return false;
    const uint8_t *a;
    int fam = sa->sa_family;
    if (fam == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (fam == AF_INET6) {
        a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(a, mapped, 12)) {
            a += 12;
            fam = AF_INET;
        }
    } else {
        return false;
    }
    if (fam != p->family)
        return false;
    unsigned full = p->bits / 8, rest = p->bits % 8;
    if (memcmp(a, p->addr, full))
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & mask) == p->addr[full];
}

bool poh_netpattern_match_host(const poh_netpattern_t *p, const char *host)
{
    if (p->cidr || !host || host[0] == '[')
        return false;
    return fnmatch(p->glob, host, FNM_CASEFOLD) == 0;
}
