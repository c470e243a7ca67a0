/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP front end (libmicrohttpd): /metrics, /probe, /, /-/healthy, /-/ready,
 * /-/reload. Thread per connection, bounded by connection count, request
 * size and idle timeout. Knows the app, nothing about collectors. */
#ifndef POH_HTTP_H
#define POH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <zlib.h>

#include "app/app.h"
#include "core/strbuf.h"

typedef struct poh_http poh_http_t;

/* Start listening on the configured web.listen_address. NULL on failure
 * (logged). The bound address (with the real port when 0 was asked) is
 * logged as msg="listening on HOST:PORT". */
poh_http_t *poh_http_start(poh_app_t *app);
void poh_http_stop(poh_http_t *h); /* NULL is fine */
unsigned poh_http_port(const poh_http_t *h);
/* Re-read the web config file (SIGHUP). 0 or -EINVAL (logged; the previous
 * one stays in force). */
int poh_http_reload_web_config(poh_http_t *h);
/* --config.check of a web config file: 0 or -EINVAL with reasons in err. */
int poh_http_check_web_config(const char *path, poh_strbuf_t *err);

/* gzip when the Accept-Encoding header allows it (q > 0 for gzip or *). */
bool poh_http_accepts_gzip(const char *accept_encoding);
/* X-Prometheus-Scrape-Timeout-Seconds: seconds, or 0 when absent or not a
 * number in (0, 86400] (the caller then uses its default; the app caps it). */
double poh_http_parse_scrape_timeout(const char *v);
/* gzip-compress in into out (appends). 0 or a negative errno. */
int poh_gzip(const char *in, size_t len, poh_strbuf_t *out);

/* gzip in pieces: begin, feed any number of times, end (or abort). out
 * grows with the compressed text only, so a body rendered in chunks
 * (poh_render_to) is never whole in memory, compressed or not. */
typedef struct poh_gzip_stream {
    z_stream zs;
    poh_strbuf_t *out;
    bool open;
} poh_gzip_stream_t;

int poh_gzip_begin(poh_gzip_stream_t *g, poh_strbuf_t *out);
int poh_gzip_feed(poh_gzip_stream_t *g, const char *in, size_t len);
/* A poh_render_sink_t take(): feeds chunk and empties it; ctx is the stream. */
int poh_gzip_take(void *ctx, poh_strbuf_t *chunk);
int poh_gzip_end(poh_gzip_stream_t *g);   /* finishes the gzip member; 0 or -errno */
void poh_gzip_abort(poh_gzip_stream_t *g); /* after a failure; out is left as it is */

#endif
