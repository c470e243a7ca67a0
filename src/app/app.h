/* SPDX-License-Identifier: Apache-2.0 */
/* The running exporter: configuration, the persistent registry, the current
 * collector set, scrapes and reloads. HTTP calls into this; it knows nothing
 * of HTTP. */
#ifndef POH_APP_H
#define POH_APP_H

#include "appconfig/app_config.h"
#include "collectors/collector.h"
#include "core/strbuf.h"
#include "metrics/metrics.h"

typedef struct poh_app poh_app_t;

/* Command-line values that win over the file (NULL = not given). */
typedef struct poh_overrides {
    const char *listen_address;
    const char *telemetry_path;
    const char *log_level;
    const char *log_format;
    const char *web_config_file;
} poh_overrides_t;

/* Load the configuration (path NULL = embedded default), apply overrides and
 * logging, and build the collectors. NULL on failure, with the reasons in err.
 * The overrides are copied. */
poh_app_t *poh_app_create(const char *config_path, const poh_overrides_t *ov, poh_strbuf_t *err);
void poh_app_destroy(poh_app_t *app); /* NULL is fine */

/* Load the config file again; on success swap collectors atomically, on
 * failure keep the old ones. Either way sets
 * poh_exporter_config_last_reload_successful. Returns 0 or a negative errno
 * with the reasons in err. Serialised internally. */
int poh_app_reload(poh_app_t *app, poh_strbuf_t *err);

/* Load and validate a configuration with overrides applied, without running
 * it (--config.check); then extra(ctx, cfg, err) when not NULL (the web
 * layer's own files). Returns 0 or a negative errno with reasons in err. */
int poh_app_check_config(const char *config_path, const poh_overrides_t *ov, poh_strbuf_t *err,
                         int (*extra)(void *ctx, const poh_config_t *cfg, poh_strbuf_t *err),
                         void *ctx);

/* The self collector (collectors/self.h), to which the web layer reports its
 * config file's loads and basic auth failures. Lives as long as app. */
typedef struct poh_self poh_self_t;
poh_self_t *poh_app_self(poh_app_t *app);

/* The configuration in force, held until poh_app_release(); a reload in
 * between does not free it. */
typedef struct poh_app_view poh_app_view_t;
poh_app_view_t *poh_app_acquire(poh_app_t *app);
const poh_config_t *poh_app_view_config(const poh_app_view_t *v);
void poh_app_release(poh_app_view_t *v);

/* Run one scrape: timeout is the scraper's timeout in seconds (<= 0: use the
 * configured default); the deadline is timeout minus the configured offset.
 * sink NULL: the exposition is rendered whole into body. Otherwise it goes
 * through sink in chunks (poh_render_to) and body is only the chunk buffer. */
int poh_app_scrape(poh_app_t *app, double timeout, poh_format_t fmt, poh_strbuf_t *body,
                   const poh_render_sink_t *sink);

/* Called by every /metrics scrape with the registries it is about to render
 * (the values /metrics shows), the configuration in force and the time
 * (Unix seconds), e.g. to keep the landing page's history. One observer;
 * set before serving. */
typedef void (*poh_scrape_observer_fn)(void *ctx, poh_registry_t *const *regs, size_t n,
                                       const poh_config_t *cfg, double now);
void poh_app_set_scrape_observer(poh_app_t *app, poh_scrape_observer_fn fn, void *ctx);

/* The collectors' status rows for the landing page (Collector, Target, Last
 * result, Latency, Error) as data, appended to rows (free them with
 * poh_status_rows_free()); none when no collector is configured. */
void poh_app_collector_status(poh_app_t *app, poh_status_rows_t *rows);

/* /probe?target=&module=: 0 with the body, -EINVAL (bad request, reason in
 * body as text), -EACCES (target not allowed, reason in body) or another
 * negative errno. debug: the body is text as blackbox_exporter's
 * debug=true: the probe's log, the metrics it would have returned (text
 * format) and the module's configuration. */
int poh_app_probe(poh_app_t *app, const char *module, const char *target, double timeout,
                  poh_format_t fmt, bool debug, poh_strbuf_t *body);

#endif
