/* SPDX-License-Identifier: Apache-2.0 */
/* The landing page as a picture of the network: for each gRPC group every
 * target as a coloured cell (up, slow, down) with its success ratio and mean
 * latency over the last hour; for each change stream Tx/s and the p50/p99 of
 * each configured latency over the last hour as small charts; for each
 * MongoDB cluster its members with state and lag. Inline SVG, no script, no
 * external asset. Fed by every /metrics scrape (app.h's scrape observer), so
 * the current numbers are the ones that scrape returned (change counters
 * are read just before it renders them, so events arriving in between may
 * be in the body and not yet on the page); the history is an
 * hour in fixed-size rings: a point every 5 minutes per target (for the
 * hour's ratio and mean latency), every 10 s per stream (for the charts). */
#ifndef POH_LANDING_H
#define POH_LANDING_H

#include <stddef.h>

#include "appconfig/app_config.h"
#include "collectors/collector.h"
#include "core/strbuf.h"
#include "metrics/metrics.h"

typedef struct poh_landing poh_landing_t;

poh_landing_t *poh_landing_new(void);
void poh_landing_free(poh_landing_t *l); /* NULL is fine */

/* The scrape observer (poh_scrape_observer_fn): ctx is the landing. */
void poh_landing_observe(void *ctx, poh_registry_t *const *regs, size_t n,
                         const poh_config_t *cfg, double now);

/* The pictures (the page's middle): host is the Host header, for the
 * scrape config shown before the first scrape. */
void poh_landing_render(poh_landing_t *l, const poh_config_t *cfg, const char *host,
                        poh_strbuf_t *html);

/* The whole page: links, the pictures, the collectors' status table.
 * refresh: seconds between reloads of the page (meta refresh; 0: none). */
struct poh_app;
void poh_landing_page(poh_landing_t *l, struct poh_app *app, const char *host, unsigned refresh,
                      poh_strbuf_t *html);

/* The collectors' status rows as HTML table rows (<tr> with 5 <td>). */
void poh_landing_status_rows(const poh_status_rows_t *rows, poh_strbuf_t *html);

/* HTML-escape text (& < > " ') into out. */
void poh_html_escape(poh_strbuf_t *out, const char *text);

#endif
