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
 * same name (same type required) and sorting families by name. */
#ifndef POH_METRICS_H
#define POH_METRICS_H

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
 * label names match; NULL (and logs) if the name exists with another shape, the
 * name or a label name is invalid, or more than POH_MAX_LABELS labels.
 * buckets: strictly increasing upper bounds without +Inf (added implicitly);
 * NULL/0 means poh_default_buckets. Ignored for counters and gauges.
 * Strings are copied. */
poh_family_t *poh_registry_family(poh_registry_t *r, poh_metric_type_t type, const char *name,
                                  const char *help, size_t nlabels,
                                  const char *const *label_names, const double *buckets,
                                  size_t nbuckets);

/* Get or create the series with these label values (nlabels of the family,
 * NULL if the family has none). Values are copied. Never returns NULL unless
 * out of memory. */
poh_series_t *poh_family_series(poh_family_t *f, const char *const *label_values);

/* Remove a series (e.g. a target dropped on reload). The memory stays owned by
 * the registry until it is freed, so stale pointers held by other threads are
 * still safe to write to; the series simply no longer renders. */
void poh_family_remove_series(poh_family_t *f, const char *const *label_values);

void poh_counter_add(poh_series_t *s, double v); /* v < 0 is ignored */
static inline void poh_counter_inc(poh_series_t *s) { poh_counter_add(s, 1.0); }
void poh_gauge_set(poh_series_t *s, double v);
void poh_gauge_add(poh_series_t *s, double v);
void poh_histogram_observe(poh_series_t *s, double v);

/* Exemplars (rendered in OpenMetrics only). trace_id is 32 hex chars, span_id 16
 * hex chars (either may be NULL); ts is unix seconds (0 = omit). The last
 * exemplar per counter / per histogram bucket is kept. */
void poh_counter_add_exemplar(poh_series_t *s, double v, const char *trace_id,
                              const char *span_id, double ts);
void poh_histogram_observe_exemplar(poh_series_t *s, double v, const char *trace_id,
                                    const char *span_id, double ts);

/* Read back (tests, landing page). */
double poh_series_value(const poh_series_t *s); /* counter/gauge value; histogram sum */
uint64_t poh_histogram_count(const poh_series_t *s);

/* Render the union of registries into out (appends). Returns 0 or -ENOMEM. */
int poh_render(poh_strbuf_t *out, poh_registry_t *const *regs, size_t nregs, poh_format_t fmt);

/* Content negotiation from an Accept header (NULL = text). OpenMetrics is chosen
 * when application/openmetrics-text is acceptable with a q at least that of
 * text/plain. */
poh_format_t poh_format_negotiate(const char *accept);
const char *poh_format_content_type(poh_format_t fmt);

/* Prometheus number formatting: shortest round-trip repr, +Inf, -Inf, NaN.
 * buf must hold 32 bytes; returns length. */
size_t poh_format_double(char *buf, double v);

#endif
