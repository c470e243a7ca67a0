/* SPDX-License-Identifier: Apache-2.0 */
/* The collector vtable. A collector knows nothing of HTTP: at each scrape the
 * framework runs collect() of every collector concurrently, each in its own
 * thread, into a registry of its own for that scrape, before a deadline.
 * Long-lived state (counters that survive between scrapes, background
 * threads) lives in the collector and may use the persistent registry given
 * at creation, which outlives reloads.
 *
 * Names are "<kind>" or "<kind>/<instance>" (e.g. "grpc/poh", "mongodb/main")
 * and become the label collector="..." of poh_exporter_collector_success and
 * poh_exporter_collector_duration_seconds. */
#ifndef POH_COLLECTOR_H
#define POH_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "appconfig/app_config.h"
#include "core/strbuf.h"
#include "metrics/metrics.h"
#include "trace/trace.h"

typedef struct poh_scrape {
    poh_registry_t *out;   /* this collector's output for this scrape */
    double deadline;       /* CLOCK_MONOTONIC seconds (poh_now_mono()); finish before it */
    poh_trace_parent_t trace; /* parent for spans: the scrape's root span, by value
                                 (tracer NULL when tracing is off) */
    /* /probe?debug=true: the probe's log lines and the module's
     * configuration (no secrets), as text; NULL otherwise. */
    poh_strbuf_t *debug_log, *debug_module;
} poh_scrape_t;

/* One row of the collectors' status table, as data (http/ renders it):
 * collector, target, last result, latency, error. Texts are owned copies. */
typedef enum poh_status_latency {
    POH_STATUS_LATENCY_NONE,   /* nothing to show */
    POH_STATUS_LATENCY_S,      /* a duration, shown in seconds */
    POH_STATUS_LATENCY_MS,     /* a duration, shown in milliseconds */
    POH_STATUS_LATENCY_LAG,    /* a lag behind now, shown in seconds */
} poh_status_latency_t;

typedef struct poh_status_row {
    char *collector, *target, *result, *error;
    poh_status_latency_t latency_kind;
    double latency; /* seconds */
} poh_status_row_t;

typedef struct poh_status_rows {
    poh_status_row_t *items;
    size_t len, cap;
    bool failed; /* out of memory: a row is missing */
} poh_status_rows_t;

#define POH_STATUS_ROWS_INIT {NULL, 0, 0, false}

/* Append a row. collector is "<kind>/<name>" (kind NULL: name alone);
 * target is "<target_prefix><target>" (prefix NULL: target alone); NULL
 * texts are empty. Sets rows->failed when out of memory. */
typedef struct poh_status_text {
    const char *kind, *name, *target_prefix, *target, *result, *error;
} poh_status_text_t;
void poh_status_rows_add(poh_status_rows_t *rows, const poh_status_text_t *text,
                         poh_status_latency_t latency_kind, double latency);
void poh_status_rows_free(poh_status_rows_t *rows);

typedef struct poh_collector_ops {
    const char *kind;
    /* Return 0 on success, a negative errno on failure. Should return by the
     * deadline; one still running at the deadline is reported as failed, its
     * output is dropped, and it finishes in the background (the framework keeps
     * its state alive until then). collect() of one collector is never run
     * twice at the same time: a scrape that finds it running waits for that
     * run (until its own deadline) and shares its output. */
    int (*collect)(void *state, poh_scrape_t *scrape);
    /* Stop background work and free state. NULL state is fine. */
    void (*destroy)(void *state);
    /* Optional: append this collector's status rows (what it watches and
     * how that went last) with poh_status_rows_add(). Called concurrently
     * with collect(); the collector synchronises. */
    void (*status)(void *state, poh_status_rows_t *rows);
    /* Optional (multi-target pattern, /probe?target=&module=): probe one
     * target with the settings of the module (e.g. a grpc group) into
     * scrape->out, including a success gauge (e.g. poh_probe_success).
     * Return -ENOENT when this collector has no such module, -EINVAL for a
     * target that cannot be parsed, 0 otherwise: a failed probe is still 0,
     * it is reported in the metrics. May run concurrently with collect(). */
    int (*probe)(void *state, const char *module, const char *target, poh_scrape_t *scrape);
    /* collect() returns by the scrape deadline on its own (it bounds every
     * wait by it): a scrape may then run it on its own thread rather than
     * hand it to the collector's worker, sparing two thread wake-ups. */
    bool bounded;
} poh_collector_ops_t;

typedef struct poh_collector {
    const poh_collector_ops_t *ops;
    void *state;
    char name[96];
} poh_collector_t;

typedef struct poh_collector_list {
    poh_collector_t *items;
    size_t len, cap;
} poh_collector_list_t;

/* The collector sets not yet destroyed (a straggling collector keeps its
 * set alive past the last unref). Owned by the app, which waits for none
 * before freeing what the sets use. */
typedef struct poh_collector_sets_live poh_collector_sets_live_t;
poh_collector_sets_live_t *poh_collector_sets_live_new(void);
/* Wait until no set is alive, at most timeout seconds: true when none is. */
bool poh_collector_sets_live_wait(poh_collector_sets_live_t *live, double timeout);
/* Only once none is alive (a set still alive uses it: leave it to exit). */
void poh_collector_sets_live_free(poh_collector_sets_live_t *live); /* NULL is fine */

typedef struct poh_mongodb_store poh_mongodb_store_t; /* collectors/mongodb.h */

typedef struct poh_collector_env {
    poh_registry_t *persistent; /* outlives reloads: counters kept between scrapes */
    poh_tracer_t *tracer;       /* NULL when tracing is off; outlives every collector */
    poh_collector_sets_live_t *live; /* counts the set built from this env; NULL: none */
    /* Change streams' state across reloads; NULL: each cluster keeps its own. */
    poh_mongodb_store_t *mongodb_store;
} poh_collector_env_t;

/* A collector kind: one descriptor, defined beside the kind's collector
 * (e.g. poh_grpc_kind in collectors/grpc.c) and listed once, by its key, in
 * appconfig/kinds.h. confs is the kind's list of instances as the schema
 * section filled it (conf_size bytes each), n of them. */
/* The metric families a kind writes at one endpoint ("/metrics" or
 * "/probe"): a table beside its code (e.g. grpc/grpc_metrics.c). */
typedef struct poh_collector_metrics {
    const char *endpoint;               /* NULL ends a list */
    const poh_family_desc_t *families;  /* ended by {NULL} */
} poh_collector_metrics_t;

typedef struct poh_collector_kind {
    const char *name;                 /* the YAML key, and "<kind>/" of collector names */
    const poh_cfg_section_t *section; /* the schema of one instance */
    size_t conf_size;                 /* sizeof one instance's conf struct */
    /* Build the collectors of this kind, appending to *list with
     * poh_collector_list_push(). Zero instances is fine (section absent).
     * Returns 0, or a negative errno after logging why. Collectors must copy
     * what they keep: a collector may outlive the config it was built from
     * (reload while a straggler still runs). cfg is the whole configuration
     * (e.g. memory.buffer_limit). */
    int (*create)(const poh_config_t *cfg, const void *confs, size_t n,
                  const poh_collector_env_t *env, poh_collector_list_t *list);
    /* Optional, after a reload: does the persistent series with these labels
     * still belong to something confs configures? A kind answers only for
     * series it made (e.g. those labelled group+target for grpc) and true
     * for all others. */
    bool (*keep)(const void *confs, size_t n, const char *family, const char *const *names,
                 const char *const *values, size_t nlabels);
    const poh_collector_ops_t *ops;   /* what its collectors run */
    /* The families it writes whose names are fixed by the code (not those
     * named in its configuration), ended by {NULL}; NULL: none declared. */
    const poh_collector_metrics_t *metrics;
} poh_collector_kind_t;

/* Where a configuration root of type root_t holds the instances of kind k
 * (the fields POH_CONFIG_KIND_FIELDS made). */
typedef struct poh_collector_kind_ref {
    const poh_collector_kind_t *kind; /* NULL ends a list */
    size_t offset, count_offset;
} poh_collector_kind_ref_t;

#define POH_COLLECTOR_KIND_DECL(k, tag) extern const poh_collector_kind_t poh_##k##_kind;
#define POH_COLLECTOR_KIND_REF(root_t, k)                                                              {&poh_##k##_kind, offsetof(root_t, k), offsetof(root_t, k##_count)},

POH_COLLECTOR_KINDS(POH_COLLECTOR_KIND_DECL)

/* The row of the exporter's fixed metric tables (every kind's and the self
 * collector's) that a family a configuration names, (type, name), would
 * clash with (poh_family_names_clash), with *kind the table's owner; NULL
 * when there is none. */
const poh_family_desc_t *poh_collector_fixed_clash(poh_metric_type_t type, const char *name,
                                                   const char **kind);

/* The product's kinds (appconfig/kinds.h) in a poh_config_t, ended by {NULL}. */
extern const poh_collector_kind_ref_t poh_collector_kinds[];

/* Print the product kinds' metric tables, one family a line:
 * "<kind>\t<endpoint>\t<name>\t<type>\t<label,label>\t<help>".
 * Returns 0 or -EIO. */
int poh_collector_kinds_print_metrics(FILE *out);

/* Remove from the persistent registry the series of targets, groups,
 * clusters and streams that cfg no longer configures, so a reload does not
 * leave them behind. Called once the new configuration is in force. Returns
 * how many series were removed. */
size_t poh_collectors_sweep(const poh_config_t *cfg, poh_registry_t *persistent);

/* Label value of the label called name, or NULL. */
const char *poh_label_value(const char *const *names, const char *const *values, size_t n,
                            const char *name);

/* Takes ownership of state (destroys it with ops->destroy on failure). */
int poh_collector_list_push(poh_collector_list_t *l, const poh_collector_ops_t *ops,
                            void *state, const char *name);

/* An immutable, reference-counted set of collectors built from one config. A
 * reload builds a new set and drops the old one; scrapes in flight keep their
 * reference, so the old collectors are destroyed only when the last is done. */
typedef struct poh_collector_set poh_collector_set_t;

poh_collector_set_t *poh_collector_set_create(const poh_config_t *cfg,
                                              const poh_collector_env_t *env);
/* The same from the kinds of a list ended by {NULL}, their instances found
 * in the root cfg points to (a poh_config_t, or a struct that starts with
 * one, as in the unit test of the example kind). */
poh_collector_set_t *poh_collector_set_create_kinds(const poh_config_t *cfg,
                                                    const poh_collector_env_t *env,
                                                    const poh_collector_kind_ref_t *kinds);
/* Build a set from collectors already made (takes them; tests use this). */
poh_collector_set_t *poh_collector_set_from_list(poh_collector_list_t *list);
void poh_collector_set_ref(poh_collector_set_t *s);
void poh_collector_set_unref(poh_collector_set_t *s); /* NULL is fine */
size_t poh_collector_set_len(const poh_collector_set_t *s);
const poh_collector_t *poh_collector_set_get(const poh_collector_set_t *s, size_t i);
/* First collector of this kind, NULL if none. */
const poh_collector_t *poh_collector_set_find_kind(const poh_collector_set_t *s,
                                                   const char *kind);

/* The registries one scrape produced; free with poh_scrape_output_free(). */
typedef struct poh_scrape_output {
    poh_registry_t **regs;
    size_t n;
    void **held;            /* internal: the runs that own regs */
} poh_scrape_output_t;

/* Run every collector concurrently until done or deadline; each one's
 * outcome goes to the self collector (poh_self_write_runs()), which writes
 * poh_exporter_collector_success and _duration_seconds into self. A
 * collector already running for another scrape is not started again: this
 * scrape waits for that run and shares its output (read-only). */
int poh_collector_set_scrape(poh_collector_set_t *s, double deadline,
                             const poh_trace_parent_t *trace,
                             poh_registry_t *self, poh_scrape_output_t *out);
void poh_scrape_output_free(poh_scrape_output_t *out);


/* Status rows: one per collector (last result of the last scrape) followed
 * by each collector's own status rows. */
void poh_collector_set_status(poh_collector_set_t *s, poh_status_rows_t *rows);

#endif
