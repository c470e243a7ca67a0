/* SPDX-License-Identifier: Apache-2.0 */
/* Private structures of the metric model, shared by metrics.c (model and
 * updates), render.c (exposition) and numfmt.c (number formatting). Nothing
 * outside src/metrics/ includes this header.
 *
 * Locking:
 *   registry->mu  guards the family array and the name map (family creation).
 *   family->mu    guards the series array and the series map (series creation,
 *                 removal, and the renderer's snapshot of the array).
 *   series        values are C11 atomics, updated without any lock; exemplars
 *                 sit behind a per-series spinlock.
 * A series array that is outgrown is retired, not freed, until the family is
 * freed, so a renderer that took (array, count) under family->mu can walk it
 * after dropping the lock while creators keep appending. */
#ifndef POH_METRICS_IMPL_H
#define POH_METRICS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <stdint.h>

#include "metrics/metrics.h"

#define POH_TRACE_ID_MAX 32
#define POH_SPAN_ID_MAX 16

/* Longest number poh_format_double() produces, plus NUL. */
#define POH_NUM_MAX 32

typedef struct poh_exemplar {
    double value;
    double ts; /* unix seconds; 0 = none */
    uint8_t trace_len, span_len;
    bool set;
    char trace_id[POH_TRACE_ID_MAX];
    char span_id[POH_SPAN_ID_MAX];
} poh_exemplar_t;

/* One slot for a counter; nbuckets + 1 slots (last is +Inf) for a histogram. */
typedef struct poh_exemplars {
    atomic_flag lock;
    poh_exemplar_t e[];
} poh_exemplars_t;

struct poh_series {
    poh_family_t *family;
    poh_metric_type_t type;              /* copy of family->type, on the update path's line */
    _Atomic uint64_t value;              /* double bits: counter/gauge value, histogram sum */
    _Atomic(poh_exemplars_t *) ex;       /* allocated on first exemplar */
    atomic_bool removed;
    uint64_t hash;                       /* of the label values (series map key) */
    uint64_t labels_hash;                /* of the rendered labels (render-time dedupe) */
    const char *key;                     /* label values, each NUL-terminated, back to back */
    const char *labels;                  /* escaped: a="x",b="y" (no braces), NUL-terminated */
    uint32_t key_len, labels_len;
    _Atomic uint64_t buckets[];          /* histogram: nbuckets + 1 non-cumulative counts */
};

struct poh_family {
    poh_registry_t *reg;
    poh_metric_type_t type;
    char *name;
    size_t name_len;
    char *om_name;                       /* OpenMetrics family name: counters without _total */
    size_t om_name_len;
    char *help_text, *help_om;           /* escaped per format; "" = no HELP line */
    size_t help_text_len, help_om_len;
    size_t nlabels;
    char **label_names;
    uint32_t optional;                   /* bit i: label i left out when its value is "" */
    size_t nbuckets;                     /* finite bounds; +Inf is implicit */
    double *bounds;
    char **le_text, **le_om;             /* nbuckets + 1 rendered fragments: le="0.5" */
    uint8_t *le_text_len, *le_om_len;
    size_t le_max_len;
    bool negative_bounds;                /* OpenMetrics: no _sum for such histograms */

    pthread_mutex_t mu;
    poh_series_t **series;               /* creation order, removed ones included */
    size_t nseries, series_cap;
    void *retired[64];
    size_t nretired;
    poh_series_t **map;                  /* open addressing, linear probing */
    size_t map_cap, map_used;

    atomic_bool conflict_logged, dup_logged;
};

typedef struct poh_name_slot {
    uint64_t hash;
    const char *key;                     /* a reserved sample or family name */
    poh_family_t *family;
} poh_name_slot_t;

struct poh_registry {
    pthread_mutex_t mu;
    poh_family_t **families;             /* creation order */
    size_t nfamilies, families_cap;
    poh_name_slot_t *names;              /* every name a family reserves -> family */
    size_t names_cap, names_used;
};

static inline double poh_bits_to_double(uint64_t u)
{
    union { uint64_t u; double d; } x = {.u = u};
    return x.d;
}

static inline uint64_t poh_double_to_bits(double d)
{
    union { uint64_t u; double d; } x = {.d = d};
    return x.u;
}

/* A name a family's exposition uses: base[0..len) followed by suffix. */
typedef struct poh_name_ref {
    const char *base;
    size_t len;
    const char *suffix;
} poh_name_ref_t;

/* The sample and family names a family uses in one format (om) or in either
 * (om = true is the superset): its name; for a counter in OpenMetrics also
 * the family name without _total; for a histogram the _bucket/_sum/_count
 * sample names. Two families sharing one of these would produce an invalid
 * exposition. Returns the count (at most 5). */
static inline size_t poh_name_refs(poh_metric_type_t type, const char *name, size_t len, bool om,
                                   poh_name_ref_t *out)
{
    size_t n = 0;
    out[n++] = (poh_name_ref_t){name, len, ""};
    if (type == POH_COUNTER && om)
        out[n++] = (poh_name_ref_t){name, len - 6, ""};
    if (type == POH_HISTOGRAM) {
        out[n++] = (poh_name_ref_t){name, len, "_bucket"};
        out[n++] = (poh_name_ref_t){name, len, "_sum"};
        out[n++] = (poh_name_ref_t){name, len, "_count"};
    }
    return n;
}

/* Whether two name refs spell the same name (base + suffix), compared
 * without building either. */
static inline bool poh_name_ref_equal(const poh_name_ref_t *a, const poh_name_ref_t *b)
{
    size_t as = strlen(a->suffix), bs = strlen(b->suffix);
    if (a->len + as != b->len + bs)
        return false;
    for (size_t i = 0; i < a->len + as; i++) {
        char ca = i < a->len ? a->base[i] : a->suffix[i - a->len];
        char cb = i < b->len ? b->base[i] : b->suffix[i - b->len];
        if (ca != cb)
            return false;
    }
    return true;
}

uint64_t poh_hash_bytes(uint64_t h, const void *data, size_t n);
#define POH_HASH_SEED 0xcbf29ce484222325ULL

/* Snapshot the series array of a family: the returned array stays valid until
 * the registry is freed, and its first *n entries never change. */
poh_series_t *const *poh_family_snapshot(poh_family_t *f, size_t *n);

/* Read the cumulative bucket counts (nbuckets + 1 values) of a histogram. */
void poh_histogram_cumulative(const poh_series_t *s, uint64_t *cum);

/* Copy the exemplars of a series (n slots) under its spinlock; returns false
 * if it never had one. */
bool poh_series_exemplars(const poh_series_t *s, poh_exemplar_t *out, size_t n);

/* Unsigned decimal; returns length (no NUL). buf must hold 20 bytes. */
size_t poh_format_u64(char *buf, uint64_t v);

/* An le label value: Go's shortest %g, plus ".0" when canonical (OpenMetrics)
 * and there is neither a '.' nor an exponent. buf holds POH_NUM_MAX bytes. */
size_t poh_format_le(char *buf, double v, bool canonical);

/* Exemplar timestamp with millisecond precision: 1700000000.123. */
size_t poh_format_timestamp(char *buf, double ts);

#endif
