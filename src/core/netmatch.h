/* SPDX-License-Identifier: Apache-2.0 */
/* Address and host-name patterns of an allow-list: a CIDR ("10.0.0.0/8",
 * "fd00::/8", a bare address meaning /32 or /128) or a host-name glob
 * ("*.poh.internal", "poh-?.example", matched without regard to case).
 * Used by the /probe policy; pure, so unit-tested and fuzzable. */
#ifndef POH_NETMATCH_H
#define POH_NETMATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct poh_netpattern {
    bool cidr;          /* else a host glob */
    int family;         /* AF_INET or AF_INET6 (cidr) */
    uint8_t addr[16];   /* network address, host bits cleared */
    unsigned bits;
    const char *glob;   /* points into the parsed string (host glob) */
} poh_netpattern_t;

/* Parse s; returns 0, or -1 with a reason in why ("prefix length over
 * 32", ...). s must outlive p for a glob. */
int poh_netpattern_parse(const char *s, poh_netpattern_t *p, const char **why);

/* Whether the address (a sockaddr_in or sockaddr_in6) is in the CIDR p. An
 * IPv4-mapped IPv6 address matches as the IPv4 one. */
bool poh_netpattern_match_addr(const poh_netpattern_t *p, const struct sockaddr *sa);

/* Whether the host name matches the glob p (case-insensitive; a glob never
 * matches an IP literal written in brackets). */
bool poh_netpattern_match_host(const poh_netpattern_t *p, const char *host);

#endif
