/* SPDX-License-Identifier: Apache-2.0 */
#include "core/hostport.h"

#include <arpa/inet.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#define MAX_NAME 253

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
           c == '-' || c == '_';
}

/* URL: skips "http://" or "https://" and a "user@", and ends the span at a
 * path, query or fragment. Without a scheme the span stays as it is. */
static poh_hostport_problem_t strip_url(const char **s, size_t *len, poh_hostport_t *out)
{
    const char *sep = strstr(*s, "://");
    if (!sep)
        return POH_HOSTPORT_OK;
    size_t sl = (size_t)(sep - *s);
    if (sl == 4 && strncasecmp(*s, "http", 4) == 0) {
        out->http = true;
    } else if (sl == 5 && strncasecmp(*s, "https", 5) == 0) {
        out->https = true;
    } else {
        out->scheme_len = sl > INT_MAX ? INT_MAX : (int)sl;
        return POH_HOSTPORT_BAD_SCHEME;
    }
    const char *a = sep + 3;
    size_t alen = strcspn(a, "/?#");
    const char *at = memchr(a, '@', alen);
    if (at) {
        alen -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    *s = a;
    *len = alen;
    return POH_HOSTPORT_OK;
}

/* "[v6]" then ":port", or nothing when the port is optional. */
static poh_hostport_problem_t bracketed(const char *s, const char *end, unsigned flags,
                                        poh_hostport_t *out, const char **colon)
{
    const char *close = memchr(s, ']', (size_t)(end - s));
    if (!close)
        return POH_HOSTPORT_NO_CLOSE_BRACKET;
    size_t hl = (size_t)(close - s - 1);
    struct in6_addr a;
    if (hl == 0 || hl >= sizeof out->host)
        return POH_HOSTPORT_BAD_IPV6;
    memcpy(out->host, s + 1, hl);
    out->host[hl] = '\0';
    if (inet_pton(AF_INET6, out->host, &a) != 1) {
        out->host[0] = '\0';
        return POH_HOSTPORT_BAD_IPV6;
    }
    out->bracketed = true;
    const char *after = close + 1;
    if (after == end && (flags & POH_HOSTPORT_PORT_OPTIONAL))
        return POH_HOSTPORT_OK;
    if (after == end || *after != ':')
        return POH_HOSTPORT_AFTER_BRACKET;
    *colon = after;
    return POH_HOSTPORT_OK;
}

/* A name or an IPv4 address, then ":port" (the last ':'). */
static poh_hostport_problem_t unbracketed(const char *s, const char *end, unsigned flags,
                                          poh_hostport_t *out, const char **colon)
{
    const char *c = end;
    while (c > s && c[-1] != ':')
        c--;
    *colon = c > s ? c - 1 : NULL;
    if (!*colon && !(flags & POH_HOSTPORT_PORT_OPTIONAL))
        return POH_HOSTPORT_NO_PORT;
    size_t hl = (size_t)((*colon ? *colon : end) - s);
    if (hl == 0 && (!*colon || !(flags & POH_HOSTPORT_EMPTY_HOST)))
        return POH_HOSTPORT_NO_HOST;
    bool numeric = true;
    for (size_t i = 0; i < hl; i++) {
        if (s[i] == ':')
            return POH_HOSTPORT_UNBRACKETED_IPV6;
        if (!is_name_char(s[i]))
            return POH_HOSTPORT_BAD_CHAR;
        numeric = numeric && (is_digit(s[i]) || s[i] == '.');
    }
    if (hl > MAX_NAME)
        return POH_HOSTPORT_HOST_TOO_LONG;
    memcpy(out->host, s, hl);
    out->host[hl] = '\0';
    struct in_addr a;
    if (hl && numeric && inet_pton(AF_INET, out->host, &a) != 1) {
        out->host[0] = '\0';
        return POH_HOSTPORT_BAD_IPV4;
    }
    return POH_HOSTPORT_OK;
}

static poh_hostport_problem_t port(const char *p, const char *end, unsigned flags,
                                   poh_hostport_t *out)
{
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= sizeof out->port)
        return POH_HOSTPORT_BAD_PORT;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return POH_HOSTPORT_BAD_PORT;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    out->portno = v;
    if (v > 65535 || (v == 0 && !(flags & POH_HOSTPORT_PORT_ZERO)))
        return POH_HOSTPORT_PORT_RANGE;
    memcpy(out->port, p, n);
    out->port[n] = '\0';
    return POH_HOSTPORT_OK;
}

poh_hostport_problem_t poh_hostport_parse(const char *s, unsigned flags, poh_hostport_t *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        s = "";
    size_t len = strlen(s);
    poh_hostport_problem_t p = POH_HOSTPORT_OK;
    if (flags & POH_HOSTPORT_URL)
        p = strip_url(&s, &len, out);
    const char *colon = NULL;
    if (p == POH_HOSTPORT_OK)
        p = len && s[0] == '[' ? bracketed(s, s + len, flags, out, &colon)
                               : unbracketed(s, s + len, flags, out, &colon);
    if (p == POH_HOSTPORT_OK && colon)
        p = port(colon + 1, s + len, flags, out);
    if (p != POH_HOSTPORT_OK) {
        out->host[0] = '\0';
        out->port[0] = '\0';
        out->bracketed = false;
    }
    return p;
}

void poh_hostport_explain(poh_strbuf_t *why, poh_hostport_problem_t p, unsigned flags,
                          const poh_hostport_t *hp)
{
    int lowest = flags & POH_HOSTPORT_PORT_ZERO ? 0 : 1;
    switch (p) {
    case POH_HOSTPORT_OK:
        break;
    case POH_HOSTPORT_BAD_SCHEME:
        poh_strbuf_puts(why, "the scheme must be http:// or https://");
        break;
    case POH_HOSTPORT_NO_HOST:
        poh_strbuf_puts(why, "missing host");
        break;
    case POH_HOSTPORT_NO_CLOSE_BRACKET:
        poh_strbuf_puts(why, "missing \"]\" after IPv6 address");
        break;
    case POH_HOSTPORT_BAD_IPV6:
        poh_strbuf_puts(why, "invalid IPv6 address in brackets");
        break;
    case POH_HOSTPORT_AFTER_BRACKET:
        poh_strbuf_puts(why, "expected \":port\" after \"]\"");
        break;
    case POH_HOSTPORT_NO_PORT:
        poh_strbuf_puts(why, flags & POH_HOSTPORT_EMPTY_HOST
                                 ? "missing port (expected host:port, [ipv6]:port or :port)"
                                 : "missing port (expected host:port or [ipv6]:port)");
        break;
    case POH_HOSTPORT_UNBRACKETED_IPV6:
        poh_strbuf_puts(why, "IPv6 addresses must be in brackets, as in [::1]:9100");
        break;
    case POH_HOSTPORT_BAD_CHAR:
        poh_strbuf_puts(why, "invalid character in host name");
        break;
    case POH_HOSTPORT_HOST_TOO_LONG:
        poh_strbuf_puts(why, "host name too long");
        break;
    case POH_HOSTPORT_BAD_IPV4:
        poh_strbuf_puts(why, "invalid IPv4 address");
        break;
    case POH_HOSTPORT_BAD_PORT:
        poh_strbuf_printf(why, "port must be a number from %d to 65535", lowest);
        break;
    case POH_HOSTPORT_PORT_RANGE:
        poh_strbuf_printf(why, "port %u out of range (%d-65535)", hp->portno, lowest);
        break;
    }
}
