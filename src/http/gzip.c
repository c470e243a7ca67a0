/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
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

/* Room deflate writes into at a time; out grows by doubling past it. */
#define GZ_ROOM (16u << 10)

int poh_gzip_begin(poh_gzip_stream_t *g, poh_strbuf_t *out)
{
    memset(g, 0, sizeof *g);
    g->out = out;
    /* 15 + 16: gzip wrapper; level 1: /metrics is scraped often and the text
     * is highly repetitive, so fast compression already shrinks it ~10x. */
    if (deflateInit2(&g->zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    g->open = true;
    return 0;
}

/* Deflate in with flush (Z_NO_FLUSH or Z_FINISH) until deflate has taken
 * all of it (and, finishing, written the trailer). */
static int gz_run(poh_gzip_stream_t *g, const char *in, size_t len, int flush)
{
    if (!g->open)
        return -EINVAL;
    g->zs.next_in = (Bytef *)(uintptr_t)in;
    for (;;) {
        uInt chunk = len > UINT_MAX ? UINT_MAX : (uInt)len;
        g->zs.avail_in = chunk;
        if (poh_strbuf_reserve(g->out, GZ_ROOM) < 0)
            return -ENOMEM;
        poh_strbuf_t *o = g->out;
        size_t room = o->cap - o->len - 1;
        g->zs.next_out = (Bytef *)o->data + o->len;
        g->zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        int last = chunk == len ? flush : Z_NO_FLUSH;
        int rc = deflate(&g->zs, last);
        o->len += room - g->zs.avail_out;
        o->data[o->len] = '\0';
        len -= chunk - g->zs.avail_in;
        if (rc == Z_STREAM_END)
            return 0;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return -EIO;
        if (len == 0 && flush == Z_NO_FLUSH && g->zs.avail_out > 0)
            return 0;
    }
}

int poh_gzip_feed(poh_gzip_stream_t *g, const char *in, size_t len)
{
    return len ? gz_run(g, in, len, Z_NO_FLUSH) : 0;
}

int poh_gzip_take(void *ctx, poh_strbuf_t *chunk)
{
    int rc = poh_gzip_feed(ctx, chunk->data, chunk->len);
    poh_strbuf_reset(chunk);
    return rc;
}

int poh_gzip_end(poh_gzip_stream_t *g)
{
    int rc = gz_run(g, "", 0, Z_FINISH);
    poh_gzip_abort(g);
    return rc;
}

void poh_gzip_abort(poh_gzip_stream_t *g)
{
    if (g->open)
        deflateEnd(&g->zs);
    g->open = false;
}

int poh_gzip(const char *in, size_t len, poh_strbuf_t *out)
{
    poh_gzip_stream_t g;
    int rc = poh_gzip_begin(&g, out);
    if (rc == 0)
        rc = poh_gzip_feed(&g, in, len);
    if (rc == 0)
        return poh_gzip_end(&g);
    poh_gzip_abort(&g);
    return rc;
}
