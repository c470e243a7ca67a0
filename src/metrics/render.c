/* SPDX-License-Identifier: Apache-2.0 */
/* Exposition: Prometheus text 0.0.4 and OpenMetrics 1.0.0.
 *
 * Order: families sorted by name (by the OpenMetrics family name, i.e. counters
 * without _total, in OpenMetrics), registries merged by name; within a
 * family, registries in the order given, and series in creation order. Output
 * is deterministic for a given sequence of creations.
 *
 * Merging: families with the same name and type in several registries render
 * as one block (HELP/TYPE of the first registry); a series whose label set
 * already appeared in an earlier registry is skipped (first wins). A family
 * that would reuse a name an earlier registry's family uses in this format
 * (same name with another type; counter foo_total vs gauge foo in
 * OpenMetrics; gauge foo_count vs histogram foo) is skipped and logged once.
 *
 * A family without live series renders nothing, in both formats: no orphan
 * HELP/TYPE lines.
 *
 * Speed: each series carries its escaped label string from creation, numbers
 * avoid printf (numfmt.c), and capacity is reserved once per line so the hot
 * loop writes straight into the buffer. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"
#include "metrics/metrics_impl.h"

#define HUGE_ADVISE_MIN (4u << 20)

typedef struct entry {
    poh_family_t *f;
    size_t reg, idx;
} entry_t;

/* A name claimed by the first family (in registry order) that uses it. */
typedef struct claim {
    uint64_t hash;
    poh_name_ref_t ref;
    const entry_t *owner;
} claim_t;

static const char *group_key(const poh_family_t *f, bool om, size_t *len)
{
    *len = om ? f->om_name_len : f->name_len;
    return om ? f->om_name : f->name;
}

static int key_cmp(const poh_family_t *a, const poh_family_t *b, bool om)
{
    size_t la, lb;
    const char *ka = group_key(a, om, &la), *kb = group_key(b, om, &lb);
    int c = memcmp(ka, kb, la < lb ? la : lb);
    if (c)
        return c;
    return la < lb ? -1 : la > lb;
}

static int entry_cmp(const entry_t *a, const entry_t *b, bool om)
{
    int c = key_cmp(a->f, b->f, om);
    if (c)
        return c;
    if (a->reg != b->reg)
        return a->reg < b->reg ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int entry_cmp_text(const void *a, const void *b) { return entry_cmp(a, b, false); }
static int entry_cmp_om(const void *a, const void *b) { return entry_cmp(a, b, true); }

/* Set of rendered label strings, to drop series repeated across registries. */
typedef struct seen {
    const poh_series_t **slots;
    size_t cap, used;
} seen_t;

static int seen_grow(seen_t *st)
{
    size_t ncap = st->cap ? st->cap * 2 : 64;
    const poh_series_t **n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < st->cap; i++) {
        const poh_series_t *s = st->slots[i];
        if (!s)
            continue;
        size_t j = s->labels_hash & (ncap - 1);
        while (n[j])
            j = (j + 1) & (ncap - 1);
        n[j] = s;
    }
    free(st->slots);
    st->slots = n;
    st->cap = ncap;
    return 0;
}

/* Returns 1 if an equal label set was already added, 0 after adding s. */
static int seen_add(seen_t *st, const poh_series_t *s)
{
    if ((st->used + 1) * 2 > st->cap && seen_grow(st) < 0)
        return -ENOMEM;
    size_t mask = st->cap - 1;
    size_t i = s->labels_hash & mask;
    for (; st->slots[i]; i = (i + 1) & mask) {
        const poh_series_t *o = st->slots[i];
        if (o->labels_hash == s->labels_hash && o->labels_len == s->labels_len &&
            memcmp(o->labels, s->labels, s->labels_len) == 0)
            return 1;
    }
    st->slots[i] = s;
    st->used++;
    return 0;
}

/* ---- low-level writers: the caller reserved room for the whole line --------- */

static inline char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* name{labels,le}  — braces only when there is something inside. */
static inline char *put_series(char *p, const poh_family_t *f, const char *suffix,
                               size_t suffix_len, const poh_series_t *s, const char *le,
                               size_t le_len)
{
    p = put(p, f->name, f->name_len);
    p = put(p, suffix, suffix_len);
    if (s->labels_len || le_len) {
        *p++ = '{';
        p = put(p, s->labels, s->labels_len);
        if (le_len) {
            if (s->labels_len)
                *p++ = ',';
            p = put(p, le, le_len);
        }
        *p++ = '}';
    }
    *p++ = ' ';
    return p;
}

static char *put_exemplar(char *p, const poh_exemplar_t *x)
{
    p = put(p, " # {", 4);
    if (x->trace_len) {
        p = put(p, "trace_id=\"", 10);
        p = put(p, x->trace_id, x->trace_len);
        *p++ = '"';
    }
    if (x->span_len) {
        if (x->trace_len)
            *p++ = ',';
        p = put(p, "span_id=\"", 9);
        p = put(p, x->span_id, x->span_len);
        *p++ = '"';
    }
    p = put(p, "} ", 2);
    p += poh_format_double(p, x->value);
    if (x->ts > 0) {
        *p++ = ' ';
        p += poh_format_timestamp(p, x->ts);
    }
    return p;
}

/* Upper bound of one rendered exemplar: braces, names, ids, two numbers. */
#define EXEMPLAR_MAX (4 + 10 + POH_TRACE_ID_MAX + 2 + 9 + POH_SPAN_ID_MAX + 3 + 2 * POH_NUM_MAX)

/* Text: HELP then TYPE, as Prometheus' own clients write it. OpenMetrics:
 * TYPE then HELP, the order its spec recommends. */
static void put_header(poh_strbuf_t *out, const poh_family_t *f, bool om)
{
    size_t nl;
    const char *name = group_key(f, om, &nl);
    size_t hl = om ? f->help_om_len : f->help_text_len;
    for (int pass = 0; pass < 2; pass++) {
        if ((pass == 0) == om) {
            poh_strbuf_append(out, "# TYPE ", 7);
            poh_strbuf_append(out, name, nl);
            poh_strbuf_putc(out, ' ');
            poh_strbuf_puts(out, poh_metric_type_name(f->type));
            poh_strbuf_putc(out, '\n');
        } else if (hl) {
            poh_strbuf_append(out, "# HELP ", 7);
            poh_strbuf_append(out, name, nl);
            poh_strbuf_putc(out, ' ');
            poh_strbuf_append(out, om ? f->help_om : f->help_text, hl);
            poh_strbuf_putc(out, '\n');
        }
    }
}

static int render_series(poh_strbuf_t *out, const poh_family_t *f, const poh_series_t *s,
                         bool om)
{
    size_t line = f->name_len + 8 + s->labels_len + 3 + f->le_max_len + POH_NUM_MAX + 2 +
                  (om ? EXEMPLAR_MAX : 0);
    size_t lines = f->type == POH_HISTOGRAM ? f->nbuckets + 3 : 1;
    if (poh_strbuf_reserve(out, line * lines) < 0)
        return -ENOMEM;
    char *p = out->data + out->len;
    poh_series_t *ms = (poh_series_t *)s;

    if (f->type != POH_HISTOGRAM) {
        double v = poh_bits_to_double(atomic_load_explicit(&ms->value, memory_order_relaxed));
        p = put_series(p, f, "", 0, s, NULL, 0);
        p += poh_format_double(p, v);
        poh_exemplar_t x;
        if (om && f->type == POH_COUNTER && poh_series_exemplars(s, &x, 1) && x.set)
            p = put_exemplar(p, &x);
        *p++ = '\n';
    } else {
        uint64_t cum[POH_MAX_BUCKETS + 1];
        poh_exemplar_t ex[POH_MAX_BUCKETS + 1];
        bool have_ex = om && poh_series_exemplars(s, ex, f->nbuckets + 1);
        poh_histogram_cumulative(s, cum);
        double sum = poh_bits_to_double(atomic_load_explicit(&ms->value, memory_order_relaxed));
        char *const *le = om ? f->le_om : f->le_text;
        const uint8_t *le_len = om ? f->le_om_len : f->le_text_len;
        for (size_t i = 0; i <= f->nbuckets; i++) {
            p = put_series(p, f, "_bucket", 7, s, le[i], le_len[i]);
            p += poh_format_u64(p, cum[i]);
            if (have_ex && ex[i].set)
                p = put_exemplar(p, &ex[i]);
            *p++ = '\n';
        }
        /* OpenMetrics: the Sum is a counter, so it is not exposed for negative
         * buckets or a negative sum, and _count appears if and only if _sum
         * does. */
        if (!(om && (f->negative_bounds || !(sum >= 0)))) {
            p = put_series(p, f, "_sum", 4, s, NULL, 0);
            p += poh_format_double(p, sum);
            *p++ = '\n';
            p = put_series(p, f, "_count", 6, s, NULL, 0);
            p += poh_format_u64(p, cum[f->nbuckets]);
            *p++ = '\n';
        }
    }
    out->len = (size_t)(p - out->data);
    out->data[out->len] = '\0';
    return 0;
}

static uint64_t ref_hash(const poh_name_ref_t *r)
{
    uint64_t h = poh_hash_bytes(POH_HASH_SEED, r->base, r->len);
    return poh_hash_bytes(h, r->suffix, strlen(r->suffix));
}

static bool same_family(const poh_family_t *a, const poh_family_t *b)
{
    return a->type == b->type && a->name_len == b->name_len && strcmp(a->name, b->name) == 0;
}

/* Walk the families in registry order and drop (set f = NULL) each one that
 * uses a name an earlier family of another name or type already uses in this
 * format. Families with the same name and type merge and share their names. */
static int drop_conflicts(entry_t *e, size_t n, bool om)
{
    size_t cap = 16;
    while (cap < n * 10)
        cap *= 2;
    claim_t *tab = calloc(cap, sizeof *tab);
    if (!tab)
        return -ENOMEM;
    for (size_t k = 0; k < n; k++) {
        poh_family_t *f = e[k].f;
        poh_name_ref_t refs[5];
        uint64_t hashes[5];
        size_t nr = poh_name_refs(f->type, f->name, f->name_len, om, refs);
        const entry_t *clash = NULL;
        for (size_t i = 0; i < nr && !clash; i++) {
            hashes[i] = ref_hash(&refs[i]);
            for (size_t j = hashes[i] & (cap - 1); tab[j].owner; j = (j + 1) & (cap - 1)) {
                if (tab[j].hash == hashes[i] && poh_name_ref_equal(&tab[j].ref, &refs[i])) {
                    if (!same_family(tab[j].owner->f, f))
                        clash = tab[j].owner;
                    break;
                }
            }
        }
        if (clash) {
            if (!atomic_exchange(&f->conflict_logged, true))
                POH_WARN("metrics", "%s %s in registry %zu clashes with %s %s in registry %zu; "
                                    "not rendered",
                         poh_metric_type_name(f->type), f->name, e[k].reg,
                         poh_metric_type_name(clash->f->type), clash->f->name, clash->reg);
            e[k].f = NULL;
            continue;
        }
        for (size_t i = 0; i < nr; i++) {
            size_t j = hashes[i] & (cap - 1);
            bool present = false;
            for (; tab[j].owner; j = (j + 1) & (cap - 1)) {
                if (tab[j].hash == hashes[i] && poh_name_ref_equal(&tab[j].ref, &refs[i])) {
                    present = true;
                    break;
                }
            }
            if (!present)
                tab[j] = (claim_t){.hash = hashes[i], .ref = refs[i], .owner = &e[k]};
        }
    }
    free(tab);
    return 0;
}

/* Render one group: the same family (name and type) from one or more
 * registries. A series whose labels an earlier registry already rendered is
 * skipped. */
static int render_group(poh_strbuf_t *out, entry_t *g, size_t n, bool om,
                        const poh_render_sink_t *sink)
{
    const poh_family_t *first = g[0].f;
    bool header = false;
    seen_t seen = {0};
    int rc = 0;

    for (size_t k = 0; k < n && rc == 0; k++) {
        poh_family_t *f = g[k].f;
        size_t ns;
        poh_series_t *const *arr = poh_family_snapshot(f, &ns);
        for (size_t i = 0; i < ns; i++) {
            const poh_series_t *s = arr[i];
            if (atomic_load_explicit(&((poh_series_t *)s)->removed, memory_order_acquire))
                continue;
            if (n > 1) {
                int d = seen_add(&seen, s);
                if (d < 0) {
                    rc = d;
                    break;
                }
                if (d > 0) {
                    if (!atomic_exchange(&f->dup_logged, true))
                        POH_WARN("metrics", "%s{%s} in registry %zu repeats an earlier "
                                            "registry's series; skipped",
                                 f->name, s->labels, g[k].reg);
                    continue;
                }
            }
            if (!header) {
                put_header(out, first, om);
                header = true;
            }
            rc = render_series(out, f, s, om);
            if (rc == 0 && sink && out->len >= POH_RENDER_CHUNK)
                rc = sink->take(sink->ctx, out);
            if (rc < 0)
                break;
        }
    }
    free(seen.slots);
    return rc;
}

/* Reserve the whole body once: no copies while growing, and for big bodies
 * ask for transparent huge pages, since faulting in a fresh multi-megabyte
 * buffer 4 KiB at a time costs more than rendering into it. */
static void reserve_estimate(poh_strbuf_t *out, const entry_t *e, size_t n)
{
    size_t est = 0;
    for (size_t k = 0; k < n; k++) {
        const poh_family_t *f = e[k].f;
        size_t ns;
        poh_series_t *const *arr = poh_family_snapshot(e[k].f, &ns);
        if (!ns)
            continue;
        size_t labels = (arr[0]->labels_len + arr[ns - 1]->labels_len) / 2;
        size_t lines = f->type == POH_HISTOGRAM ? f->nbuckets + 3 : 1;
        est += 256 + ns * lines * (f->name_len + 8 + labels + f->le_max_len + 24);
    }
    est += est / 16;
    if (poh_strbuf_reserve(out, est) < 0 || est < HUGE_ADVISE_MIN)
        return;
#ifdef MADV_HUGEPAGE
    uintptr_t start = (uintptr_t)(out->data + out->len);
    uintptr_t end = (uintptr_t)(out->data + out->cap);
    uintptr_t hp = (uintptr_t)2 << 20;
    start = (start + hp - 1) & ~(hp - 1);
    end &= ~(hp - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE); /* advisory: failure is fine */
#endif
}

int poh_render(poh_strbuf_t *out, poh_registry_t *const *regs, size_t nregs, poh_format_t fmt)
{
    return poh_render_to(out, regs, nregs, fmt, NULL);
}

int poh_render_to(poh_strbuf_t *out, poh_registry_t *const *regs, size_t nregs,
                  poh_format_t fmt, const poh_render_sink_t *sink)
{
    bool om = fmt == POH_FMT_OPENMETRICS;
    entry_t *entries = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    for (size_t r = 0; r < nregs; r++) {
        poh_registry_t *reg = regs[r];
        if (!reg)
            continue;
        pthread_mutex_lock(&reg->mu);
        if (n + reg->nfamilies > cap) {
            size_t ncap = (n + reg->nfamilies) * 2;
            entry_t *e = realloc(entries, ncap * sizeof *e);
            if (!e) {
                pthread_mutex_unlock(&reg->mu);
                rc = -ENOMEM;
                goto out;
            }
            entries = e;
            cap = ncap;
        }
        for (size_t i = 0; i < reg->nfamilies; i++)
            entries[n++] = (entry_t){.f = reg->families[i], .reg = r, .idx = i};
        pthread_mutex_unlock(&reg->mu);
    }

    rc = drop_conflicts(entries, n, om);
    if (rc < 0)
        goto out;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (entries[i].f)
            entries[kept++] = entries[i];
    n = kept;
    if (n > 1)
        qsort(entries, n, sizeof *entries, om ? entry_cmp_om : entry_cmp_text);
    if (!sink)
        reserve_estimate(out, entries, n);

    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i + 1;
        while (j < n && key_cmp(entries[i].f, entries[j].f, om) == 0)
            j++;
        rc = render_group(out, entries + i, j - i, om, sink);
        i = j;
    }
    if (rc == 0 && om)
        rc = poh_strbuf_append(out, "# EOF\n", 6);
out:
    free(entries);
    if (out->failed)
        rc = -ENOMEM;
    if (rc == 0 && sink && out->len)
        rc = sink->take(sink->ctx, out);
    return rc;
}
