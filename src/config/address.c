/* SPDX-License-Identifier: Apache-2.0 */
/* "host:port" values of the configuration engine (POH_CFG_ADDRESS and
 * poh_parse_listen_address): the one place that knows their rules. */
#include "config/cfg_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

int poh_cfg_parse_address(const char *s, char *host, size_t hostlen, unsigned *port,
                         poh_strbuf_t *why)
{
    const char *h = s, *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) {
            poh_strbuf_puts(why, "missing \"]\" after IPv6 address");
            return -EINVAL;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        char v6[INET6_ADDRSTRLEN];
        struct in6_addr a;
        if (hl == 0 || hl >= sizeof v6 || (memcpy(v6, h, hl), v6[hl] = '\0',
                                           inet_pton(AF_INET6, v6, &a) != 1)) {
            poh_strbuf_puts(why, "invalid IPv6 address in brackets");
            return -EINVAL;
        }
        colon = close + 1;
        if (*colon != ':') {
            poh_strbuf_puts(why, "expected \":port\" after \"]\"");
            return -EINVAL;
        }
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            poh_strbuf_puts(why, "missing port (expected host:port, [ipv6]:port or :port)");
            return -EINVAL;
        }
        hl = (size_t)(colon - s);
        for (size_t i = 0; i < hl; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == ':') {
                poh_strbuf_puts(why, "IPv6 addresses must be in brackets, as in [::1]:9100");
                return -EINVAL;
            }
            if (!isalnum(c) && c != '.' && c != '-' && c != '_') {
                poh_strbuf_puts(why, "invalid character in host name");
                return -EINVAL;
            }
        }
        if (hl > 253) {
            poh_strbuf_puts(why, "host name too long");
            return -EINVAL;
        }
    }
    uint64_t p;
    const char *end;
    if (poh_cfg_parse_u64(colon + 1, 5, &p, &end) < 0 || *end) {
        poh_strbuf_puts(why, "port must be a number from 0 to 65535");
        return -EINVAL;
    }
    if (p > 65535) {
        poh_strbuf_printf(why, "port %llu out of range (0-65535)", (unsigned long long)p);
        return -EINVAL;
    }
    if (host) {
        if (hl >= hostlen) {
            poh_strbuf_puts(why, "host name too long");
            return -EINVAL;
        }
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    if (port)
        *port = (unsigned)p;
    return 0;
}

int poh_parse_listen_address(const char *s, char *host, size_t hostlen, unsigned *port)
{
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = s ? poh_cfg_parse_address(s, host, hostlen, port, &why) : -EINVAL;
    poh_strbuf_free(&why);
    return rc < 0 ? -EINVAL : 0;
}
