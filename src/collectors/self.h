/* SPDX-License-Identifier: Apache-2.0 */
/* The self collector: every poh_exporter_* series and the standard process_*
 * series of the Prometheus client libraries. The rest of the program hands it
 * plain data (the configuration and web config reloads, basic auth failures,
 * the tracer's totals, each collector's outcome in a scrape) and it alone
 * turns them into series, from the tables below (the one place their names,
 * types, HELP texts and labels are written; poh_exporter
 * --print-metric-table prints them for tests/e2e/test_metric_reference.py). */
#ifndef POH_SELF_H
#define POH_SELF_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics/metrics.h"
#include "trace/trace.h"

/* Families on every /metrics page; indexed by these. */
enum {
    POH_SELF_M_BUILD_INFO,
    POH_SELF_M_CPU,
    POH_SELF_M_RSS,
    POH_SELF_M_VSIZE,
    POH_SELF_M_START_TIME,
    POH_SELF_M_OPEN_FDS,
    POH_SELF_M_MAX_FDS,
    POH_SELF_M_SPANS_EXPORTED,
    POH_SELF_M_SPANS_DROPPED,
    POH_SELF_M_RELOAD_OK,
    POH_SELF_M_RELOAD_TS,
    POH_SELF_M_COLLECTOR_SUCCESS,
    POH_SELF_M_COLLECTOR_DURATION,
};
extern const poh_family_desc_t poh_self_metrics[];

/* Families only with a web config file (--web.config.file); the certificate's
 * expiry only with TLS. */
enum {
    POH_SELF_W_RELOAD_OK,
    POH_SELF_W_RELOAD_TS,
    POH_SELF_W_AUTH_FAILURES,
    POH_SELF_W_CERT_EXPIRY,
};
extern const poh_family_desc_t poh_self_web_metrics[];

/* The system's boot time (Unix seconds, /proc/stat's btime; process start
 * = btime + starttime/HZ), or -1 if unknown. */
double poh_self_boot_time(void);

typedef struct poh_self poh_self_t;

/* Reads the boot time once. NULL when out of memory. */
poh_self_t *poh_self_new(void);
void poh_self_free(poh_self_t *s); /* NULL is fine */

/* A configuration (re)load: ok sets the success gauge and the time (now,
 * Unix seconds); a failure only clears the gauge. */
void poh_self_config_loaded(poh_self_t *s, bool ok, double now);

/* The web config file: present (its families appear), then each (re)load
 * as above; cert_not_after: the listener's certificate's notAfter, < 0 when
 * the listener has no TLS (then no expiry series). */
void poh_self_web_loaded(poh_self_t *s, bool ok, double now, double cert_not_after);

typedef enum { POH_SELF_AUTH_NO_CREDENTIALS, POH_SELF_AUTH_BAD_CREDENTIALS } poh_self_auth_t;
/* A request refused by basic auth (lock-free). */
void poh_self_web_auth_failure(poh_self_t *s, poh_self_auth_t why);

/* Everything above into r, a per-scrape registry, with the build info, the
 * process' figures from /proc and tracer's totals (NULL: all zero).
 * Returns 0, -ENOMEM, or a negative errno when /proc could not be read (the
 * other series are still written). */
int poh_self_collect(poh_self_t *s, const poh_tracer_t *tracer, poh_registry_t *r);

/* poh_exporter_spans_exported_total and poh_exporter_spans_dropped_total
 * {reason} (every reason, zeros included) from tracer's totals (NULL: all
 * zero) into r. 0 or -ENOMEM. */
int poh_self_write_tracer(poh_registry_t *r, const poh_tracer_t *tracer);

/* One collector's outcome in a scrape. */
typedef struct poh_self_run {
    const char *collector;
    bool ok;         /* succeeded within the deadline */
    double duration; /* seconds */
} poh_self_run_t;

/* poh_exporter_collector_success and _duration_seconds{collector} for runs
 * (in their order) into r. 0 or -ENOMEM. */
int poh_self_write_runs(poh_registry_t *r, const poh_self_run_t *runs, size_t n);

#endif
