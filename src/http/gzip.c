/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "http/http.h"

/* Parse "gzip;q=0.5, br, *;q=0": gzip wins when its own q (or the q of "*"
 * when gzip is not listed) is positive. */
bool poh_http_accepts_gzip(const char *ae)
{
    if (!ae)
        return false;
    double q_gzip = -1, q_star = -1;
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ';' && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        size_t tlen = (size_t)(p - tok);
        double q = 1.0;
        while (*p && *p != ',') {
            if (*p == ';') {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                    char *end;
                    q = strtod(p + 2, &end);
                    if (end == p + 2 || !(q >= 0 && q <= 1))
                        q = 0;
                    p = end;
                }
                continue; /* look at what follows (the end, ',' or ';') first */
            }
            p++;
        }
        if (tlen == 4 && strncasecmp(tok, "gzip", 4) == 0)
            q_gzip = q;
        else if (tlen == 6 && strncasecmp(tok, "x-gzip", 6) == 0)
            q_gzip = q_gzip < 0 ? q : q_gzip;
        else if (tlen == 1 && tok[0] == '*')
            q_star = q;
    }
    return q_gzip >= 0 ? q_gzip > 0 : q_star > 0;
}

double poh_http_parse_scrape_timeout(const char *v)
{
    if (!v)
        return 0;
    char *end;
    double t = strtod(v, &end);
    if (end == v || *end || !(t > 0) || t > 86400)
        return 0;
    return t;
}

int poh_gzip(const char *in, size_t len, poh_strbuf_t *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 15 + 16: gzip wrapper; level 1: /metrics is scraped often and the text
     * is highly repetitive, so fast compression already shrinks it ~10x. */
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    uLong bound = deflateBound(&zs, (uLong)len);
    if (poh_strbuf_reserve(out, bound) < 0) {
        deflateEnd(&zs);
        return -ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out->data + out->len;
    zs.avail_out = (uInt)(out->cap - out->len - 1);
    int rc = deflate(&zs, Z_FINISH);
    if (rc != Z_STREAM_END) {
        deflateEnd(&zs);
        return -EIO;
    }
    out->len += zs.total_out;
    out->data[out->len] = '\0';
    deflateEnd(&zs);
    return 0;
}
