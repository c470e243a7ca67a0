/* SPDX-License-Identifier: Apache-2.0 */
/* The one host:port rule, used by the listen address, gRPC targets (config
 * and /probe) and the OTLP endpoint; flags say what a caller allows beyond
 * "host:port".
 *
 * A host is an IPv6 address in brackets ("[::1]"), an IPv4 address, or a
 * name of letters, digits, '.', '-' and '_' of at most 253 characters; a
 * host of digits and dots only must be a dotted-quad IPv4 address. A port is
 * 1 to 5 digits with a value from 1 to 65535. Pure and allocation-free. */
#ifndef POH_HOSTPORT_H
#define POH_HOSTPORT_H

#include <stdbool.h>

#include "core/strbuf.h"

enum {
    POH_HOSTPORT_EMPTY_HOST = 1u << 0,    /* ":port" (every local address)     */
    POH_HOSTPORT_PORT_ZERO = 1u << 1,     /* port 0 (any free port)            */
    POH_HOSTPORT_PORT_OPTIONAL = 1u << 2, /* "host" or "[v6]" alone            */
    /* "http://" or "https://" may come first (any case); after a scheme a
     * "user@" before the host is dropped, and the host:port ends at the
     * first '/', '?' or '#'. */
    POH_HOSTPORT_URL = 1u << 3,
};

typedef enum {
    POH_HOSTPORT_OK = 0,
    POH_HOSTPORT_BAD_SCHEME,       /* "x://" that is not http or https (URL)    */
    POH_HOSTPORT_NO_HOST,          /* empty host without EMPTY_HOST             */
    POH_HOSTPORT_NO_CLOSE_BRACKET, /* "[" without "]"                           */
    POH_HOSTPORT_BAD_IPV6,         /* brackets without an IPv6 address in them */
    POH_HOSTPORT_AFTER_BRACKET,    /* "]" not followed by ":port"               */
    POH_HOSTPORT_NO_PORT,          /* no ':' and the port is required           */
    POH_HOSTPORT_UNBRACKETED_IPV6, /* a ':' in the host                         */
    POH_HOSTPORT_BAD_CHAR,         /* a character not allowed in a host name    */
    POH_HOSTPORT_HOST_TOO_LONG,    /* a name over 253 characters                */
    POH_HOSTPORT_BAD_IPV4,         /* digits and dots, but not an IPv4 address  */
    POH_HOSTPORT_BAD_PORT,         /* not 1 to 5 digits                         */
    POH_HOSTPORT_PORT_RANGE,       /* over 65535, or 0 without PORT_ZERO        */
} poh_hostport_problem_t;

typedef struct poh_hostport {
    char host[254];  /* without brackets; "" for ":port" */
    char port[6];    /* the digits as written; "" when there is none */
    unsigned portno; /* their value (also set for PORT_RANGE); 0 when none */
    bool bracketed;  /* the host is an IPv6 address in brackets */
    bool https;      /* URL: the scheme is https */
    bool http;       /* URL: the scheme is http */
    int scheme_len;  /* BAD_SCHEME: the length of the scheme before "://" */
} poh_hostport_t;

/* Parses s (NULL counts as "") under flags into *out. */
poh_hostport_problem_t poh_hostport_parse(const char *s, unsigned flags, poh_hostport_t *out);

/* Appends a short English reason for problem p of hp (parsed under flags)
 * to why, for callers without wording of their own. */
void poh_hostport_explain(poh_strbuf_t *why, poh_hostport_problem_t p, unsigned flags,
                          const poh_hostport_t *hp);

#endif
