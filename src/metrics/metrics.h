/* SPDX-License-Identifier: Apache-2.0 */
/* Metric model: registries of families of series (counters, gauges, histograms).
 *
 * Threading: creating families and series takes a mutex (cold path; callers keep
 * the returned pointers). Updating a series (add/set/observe) is lock-free
 * (C11 atomics), so background threads update without any global lock.
 * Pointers returned by the registry stay valid until poh_registry_free().
 *
 * Names: a counter family is registered with its full sample name including
 * "_total" (e.g. "poh_requests_total"); the OpenMetrics renderer strips the
 * suffix for the # TYPE/# HELP lines. Histograms are registered by base name
 * ("poh_storage_latency_seconds"); _bucket/_sum/_count are added when rendering.
 *
 * Per-scrape values: collectors write into a fresh registry created for the
 * scrape; poh_render() merges several registries, grouping families with the
 * same name (same type required) and sorting families by name.
 *
 * Updates through a series of the wrong type (poh_gauge_set on a counter...)
 * are ignored, as are NULL series. */
#ifndef POH_METRICS_H
#define POH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

#define POH_MAX_LABELS 8
#define POH_MAX_BUCKETS 64

typedef enum { POH_COUNTER = 0, POH_GAUGE, POH_HISTOGRAM } poh_metric_type_t;
typedef enum { POH_FMT_TEXT = 0, POH_FMT_OPENMETRICS } poh_format_t;

typedef struct poh_registry poh_registry_t;
typedef struct poh_family poh_family_t;
typedef struct poh_series poh_series_t;

/* Default latency buckets (Prometheus client defaults). */
extern const double poh_default_buckets[];
extern const size_t poh_default_buckets_len;

poh_registry_t *poh_registry_new(void);
void poh_registry_free(poh_registry_t *r); /* NULL is fine */

/* Get or create a family. Returns the existing family when name, type and
 * label names (and buckets, for histograms) match; NULL (and logs) if the name
 * exists with another shape, the name or a label name is invalid, a counter's
 * name does not end in "_total", or more than POH_MAX_LABELS labels.
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; label names [a-zA-Z_][a-zA-Z0-9_]*,
 * not starting with "__", unique, and not "le" on a histogram. Two families of
 * one registry may not share a sample or OpenMetrics family name (counter
 * foo_total vs gauge foo; gauge foo_count vs histogram foo).
 * buckets: strictly increasing finite upper bounds (1..POH_MAX_BUCKETS); +Inf
 * is added implicitly (a trailing +Inf is accepted and dropped); NULL/0 means
 * poh_default_buckets. Ignored for counters and gauges.
 * Strings are copied; HELP and label values are escaped once here, and
 * invalid UTF-8 in them is replaced by U+FFFD. */
poh_family_t *poh_registry_family(poh_registry_t *r, poh_metric_type_t type, const char *name,
                                  const char *help, size_t nlabels,
                                  const char *const *label_names, const double *buckets,
                                  size_t nbuckets);

/* A metric family as a collector declares it, in a table beside its code
 * ({NULL} ends a table): the tables are the one place its name, type, HELP
 * text and label names are written (docs and reserved names derive from
 * them). Histograms take the default buckets. optional: bit i set = label i
 * is left out of a series whose value for it is "" (Prometheus reads an empty
 * label as an absent one), so one family serves series with and without it
 * (e.g. a shard label that only sharded clusters have). */
typedef struct poh_family_desc {
    const char *name;
    poh_metric_type_t type;
    const char *help;
    size_t nlabels;
    const char *const *labels;
    uint32_t optional;
} poh_family_desc_t;

/* Whether families (ta, a) and (tb, b) would use a common name in either
 * exposition format (a name itself, a counter's OpenMetrics family name, a
 * histogram's _bucket/_sum/_count): they cannot be rendered side by side. */
bool poh_family_names_clash(poh_metric_type_t ta, const char *a, poh_metric_type_t tb,
                            const char *b);

/* poh_registry_family() for a table row. */
poh_family_t *poh_registry_family_desc(poh_registry_t *r, const poh_family_desc_t *d);

/* Get or create the series with these label values (nlabels of the family,
 * NULL if the family has none; a NULL value is ""). Values are copied. Never
 * returns NULL unless out of memory (or f is NULL). O(1): a hash map per family. */
poh_series_t *poh_family_series(poh_family_t *f, const char *const *label_values);

/* Remove a series (e.g. a target dropped on reload). The memory stays owned by
 * the registry until it is freed, so stale pointers held by other threads are
 * still safe to write to; the series simply no longer renders. Asking for the
 * same label values again creates a fresh series starting from zero. */
void poh_family_remove_series(poh_family_t *f, const char *const *label_values);

/* Remove every series of r that keep() rejects (after a reload, the series of
 * targets no longer configured). keep() gets the family name, its label
 * names and the series' label values (n of each) and must not call into the
 * registry. Returns how many series were removed. */
typedef bool (*poh_series_keep_fn)(const char *family, const char *const *names,
                                   const char *const *values, size_t n, void *ctx);
size_t poh_registry_remove_series_if(poh_registry_t *r, poh_series_keep_fn keep, void *ctx);

void poh_counter_add(poh_series_t *s, double v); /* v < 0 and NaN are ignored */
static inline void poh_counter_inc(poh_series_t *s) { poh_counter_add(s, 1.0); }
void poh_gauge_set(poh_series_t *s, double v);
void poh_gauge_add(poh_series_t *s, double v);
void poh_histogram_observe(poh_series_t *s, double v); /* NaN is ignored */
/* Add saved observations: counts per bucket (not cumulative), n = bounds + 1
 * (the last +Inf), and their sum. Returns false (nothing added) when n does
 * not match the histogram or sum is not finite. */
bool poh_histogram_restore(poh_series_t *s, const uint64_t *counts, size_t n, double sum);

/* Exemplars (rendered in OpenMetrics only). trace_id is 32 hex chars, span_id 16
 * hex chars (either may be NULL); ts is unix seconds (0 = omit). The last
 * exemplar per counter / per histogram bucket is kept. The value is always
 * added/observed; the exemplar is dropped when both ids are NULL or an id is
 * not 1..32 (trace) / 1..16 (span) hex digits, which also keeps the label set
 * under OpenMetrics' 128-character limit. Stored under a per-series spinlock,
 * never a registry or family mutex. */
void poh_counter_add_exemplar(poh_series_t *s, double v, const char *trace_id,
                              const char *span_id, double ts);
void poh_histogram_observe_exemplar(poh_series_t *s, double v, const char *trace_id,
                                    const char *span_id, double ts);

/* Read back (tests, landing page). */
double poh_series_value(const poh_series_t *s); /* counter/gauge value; histogram sum */
uint64_t poh_histogram_count(const poh_series_t *s);
/* Cumulative bucket counts, last one is +Inf (== count). Returns the number of
 * buckets including +Inf; fills cumulative only when cap is at least that. */
size_t poh_histogram_read(const poh_series_t *s, uint64_t *cumulative, size_t cap);
/* Call fn for every live series of r's family called name (none when r has
 * no such family), in creation order, with its label values (as given when
 * the series was created, unescaped) in the family's label order. */
typedef void (*poh_series_visit_fn)(void *ctx, const poh_series_t *s,
                                    const char *const *label_values, size_t nlabels);
void poh_registry_visit(poh_registry_t *r, const char *name, poh_series_visit_fn fn, void *ctx);
/* A histogram's finite bucket bounds (n of them; +Inf follows), or NULL. */
const double *poh_histogram_bounds(const poh_series_t *s, size_t *n);
/* Live (not removed) series in all families of the registry. */
size_t poh_registry_series_count(poh_registry_t *r);

bool poh_metric_name_valid(const char *name);
bool poh_label_name_valid(const char *name);
const char *poh_metric_type_name(poh_metric_type_t t); /* "counter", ... */

/* Render the union of registries into out (appends). Returns 0 or -ENOMEM.
 * Families are sorted by name (OpenMetrics: by family name, i.e. counters
 * without _total); the same family (name and type) in several registries
 * renders as one block with the first registry's HELP, and a series whose
 * labels already appeared in an earlier registry is skipped. A family that
 * would reuse a name an earlier registry's family uses in this format (same
 * name with another type; counter foo_total next to gauge foo in OpenMetrics;
 * gauge foo_count next to histogram foo) is skipped, logged once. Series come
 * in creation order, so output is deterministic. A family with no live series
 * renders nothing (no orphan HELP/TYPE) in both formats. Histograms: the +Inf
 * bucket and _count come from the same bucket reads, so they always agree;
 * OpenMetrics omits _sum and _count (the spec ties them together) when the
 * buckets include negative bounds or the sum is negative.
 * NULL entries in regs are skipped. Safe to call while other threads update
 * and create series. */
int poh_render(poh_strbuf_t *out, poh_registry_t *const *regs, size_t nregs, poh_format_t fmt);

/* Where poh_render_to() hands the text as it is rendered: take() consumes
 * out->len bytes of out->data and empties out (poh_strbuf_reset); 0 or a
 * negative errno, which ends the render with that error. */
typedef struct poh_render_sink {
    int (*take)(void *ctx, poh_strbuf_t *out);
    void *ctx;
} poh_render_sink_t;

/* Bytes poh_render_to() collects in out before it hands them to the sink. */
#define POH_RENDER_CHUNK (64u << 10)

/* poh_render() in chunks: out holds at most about POH_RENDER_CHUNK (plus one
 * series) at a time, every byte goes through sink, out is empty on return.
 * The body is never whole in memory (a scrape of 1,000 targets renders
 * megabytes that compress tenfold). sink NULL: poh_render(). */
int poh_render_to(poh_strbuf_t *out, poh_registry_t *const *regs, size_t nregs,
                  poh_format_t fmt, const poh_render_sink_t *sink);

/* Content negotiation from an Accept header (NULL = text). OpenMetrics is chosen
 * when an explicit application/openmetrics-text range (version absent or
 * 1.0.0) is acceptable with a q at least that of text/plain (version absent or
 * 0.0.4, including via text/ and full wildcards). Wildcards alone, unknown
 * types and malformed headers give text. */
poh_format_t poh_format_negotiate(const char *accept);
const char *poh_format_content_type(poh_format_t fmt);

/* Prometheus number formatting: shortest round-trip repr, +Inf, -Inf, NaN.
 * Integers below 2^53 print as plain digits, other values in [1e-4, 2^53) in
 * fixed notation (0.30000000000000004), the rest as %g would (1e-05, 1e+21,
 * 5e-324). buf must hold 32 bytes; returns length (NUL-terminated). */
size_t poh_format_double(char *buf, double v);

#endif
