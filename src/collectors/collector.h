/* The collector vtable. A collector knows nothing of HTTP: at each scrape the
 * framework calls collect() on every collector concurrently, each in its own
 * thread, with the scrape's output registry and a deadline. Long-lived state
 * (counters that must survive between scrapes, background threads) lives in
 * the collector and may use the persistent registry given at creation.
 *
 * Names are "<kind>" or "<kind>/<instance>" (e.g. "grpc/poh", "mongodb/main")
 * and become the label collector="..." of poh_exporter_collector_success and
 * poh_exporter_collector_duration_seconds. */
#ifndef POH_COLLECTOR_H
#define POH_COLLECTOR_H

#include <stdbool.h>

#include "config/config.h"
#include "core/strbuf.h"
#include "metrics/metrics.h"

typedef struct poh_scrape {
    poh_registry_t *out;   /* per-scrape registry, shared by all collectors (thread-safe) */
    double deadline;       /* CLOCK_MONOTONIC seconds (poh_now_mono()); finish before it */
} poh_scrape_t;

typedef struct poh_collector_ops {
    const char *kind;
    /* Return 0 on success, a negative errno on failure. Must return by the
     * deadline; a collector still running at the deadline is reported as
     * failed and its late output is discarded. */
    int (*collect)(void *state, poh_scrape_t *scrape);
    /* Stop background work and free state. NULL state is fine. */
    void (*destroy)(void *state);
    /* Optional: append HTML table rows (<tr>...</tr>, 5 cells: collector,
     * target, last result, latency, error) for the landing page. Text must be
     * escaped with poh_html_escape(). May be NULL. */
    void (*status_html)(void *state, poh_strbuf_t *out);
} poh_collector_ops_t;

typedef struct poh_collector {
    const poh_collector_ops_t *ops;
    void *state;
    char name[96];
} poh_collector_t;

/* A factory builds the collectors of one kind from the whole configuration,
 * appending to *list (grow with poh_collector_list_push). Zero collectors is
 * fine (section absent). Returns 0 or a negative errno after logging why. */
typedef struct poh_collector_list {
    poh_collector_t *items;
    size_t len, cap;
} poh_collector_list_t;

typedef int (*poh_collector_factory_fn)(const poh_config_t *cfg, poh_registry_t *persistent,
                                        poh_collector_list_t *list);

int poh_collector_list_push(poh_collector_list_t *l, const poh_collector_ops_t *ops,
                            void *state, const char *name);
void poh_collector_list_destroy(poh_collector_list_t *l); /* destroys every collector */

/* Build all collectors of all kinds (table in collectors/collectors.c). On
 * error everything built so far is destroyed. */
int poh_collectors_create(const poh_config_t *cfg, poh_registry_t *persistent,
                          poh_collector_list_t *out);

/* Run every collector concurrently into scrape->out; adds the
 * poh_exporter_collector_success/duration_seconds gauges. Returns when all have
 * finished or the deadline passed (stragglers keep running detached on their
 * own copy of the state reference and their output is dropped). */
void poh_collectors_run(poh_collector_list_t *l, poh_scrape_t *scrape);

#endif
