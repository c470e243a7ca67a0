/* SPDX-License-Identifier: Apache-2.0 */
/* Change events → counts and latency observations (see mongo_event.h). */
#include "mongo/mongo_event.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[POH_OP_COUNT] = {
    "insert", "update", "replace", "delete", "drop", "rename", "dropDatabase", "invalidate",
    "other",
};

const char *poh_mongo_op_name(int op)
{
    return op >= 0 && op < POH_OP_COUNT ? op_names[op] : "other";
}

int poh_mongo_op_parse(const char *s)
{
    for (int i = 0; i < POH_OP_OTHER; i++)
        if (!strcmp(op_names[i], s))
            return i;
    return -1;
}

static const char *const reason_names[POH_FIELD_REASONS] = {
    "missing", "not_a_time", "out_of_range", "negative", "too_large",
};

const char *poh_mongo_field_reason_name(int reason)
{
    return reason >= 0 && reason < POH_FIELD_REASONS ? reason_names[reason] : "unknown";
}

void poh_mongo_field_error_key(char *buf, size_t size, const char *field, int reason)
{
    snprintf(buf, size, "%s:%s", poh_mongo_field_reason_name(reason), field);
}

const char *poh_mongo_field_error_split(const char *key, int *reason)
{
    for (int r = 0; r < POH_FIELD_REASONS; r++) {
        size_t n = strlen(reason_names[r]);
        if (!strncmp(key, reason_names[r], n) && key[n] == ':') {
            *reason = r;
            return key + n + 1;
        }
    }
    *reason = -1;
    return key;
}

static int op_of(const char *s, uint32_t n)
{
    /* First letter then full compare: this runs once per event. */
    switch (s[0]) {
    case 'i':
        if (n == 6 && !memcmp(s, "insert", 6))
            return POH_OP_INSERT;
        if (n == 10 && !memcmp(s, "invalidate", 10))
            return POH_OP_INVALIDATE;
        break;
    case 'u':
        if (n == 6 && !memcmp(s, "update", 6))
            return POH_OP_UPDATE;
        break;
    case 'r':
        if (n == 7 && !memcmp(s, "replace", 7))
            return POH_OP_REPLACE;
        if (n == 6 && !memcmp(s, "rename", 6))
            return POH_OP_RENAME;
        break;
    case 'd':
        if (n == 6 && !memcmp(s, "delete", 6))
            return POH_OP_DELETE;
        if (n == 4 && !memcmp(s, "drop", 4))
            return POH_OP_DROP;
        if (n == 12 && !memcmp(s, "dropDatabase", 12))
            return POH_OP_DROP_DATABASE;
        break;
    default:
        break;
    }
    return POH_OP_OTHER;
}

/* ----------------------------------------------------------------- spec */

/* Index of name in names[0..*n), added once (the arrays are sized for every
 * name a spec can have); *rc = -ENOMEM when the copy fails. */
static size_t name_index(char **names, size_t *n, const char *name, int *rc)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(names[i], name))
            return i;
    char *d = strdup(name);
    if (!d) {
        *rc = -ENOMEM;
        return 0;
    }
    names[*n] = d;
    return (*n)++;
}

int poh_mongo_stream_spec_init(poh_mongo_stream_spec_t *spec,
                               const poh_config_mongo_stream_t *cfg)
{
    int rc = 0;
    memset(spec, 0, sizeof *spec);
    for (size_t i = 0; i < cfg->operations_count; i++) {
        int op = poh_mongo_op_parse(cfg->operations[i]);
        if (op >= 0)
            spec->op_mask |= 1u << op;
    }
    if (!cfg->operations_count)
        spec->op_mask = (1u << POH_OP_COUNT) - 1;
    spec->nlat = cfg->latencies_count;
    spec->lat = calloc(spec->nlat ? spec->nlat : 1, sizeof *spec->lat);
    spec->fields = calloc(2 * spec->nlat + 1, sizeof *spec->fields);
    spec->paths = calloc(2 * spec->nlat + 1, sizeof *spec->paths);
    spec->nbounds = cfg->buckets_count;
    spec->bounds = calloc(spec->nbounds ? spec->nbounds : 1, sizeof *spec->bounds);
    if (!spec->lat || !spec->fields || !spec->paths || !spec->bounds)
        goto nomem;
    if (spec->nbounds)
        memcpy(spec->bounds, cfg->buckets, spec->nbounds * sizeof *spec->bounds);
    if (cfg->traceparent_field && *cfg->traceparent_field &&
        !(spec->traceparent_field = strdup(cfg->traceparent_field)))
        goto nomem;
    for (size_t i = 0; i < spec->nlat; i++) {
        const poh_config_mongo_latency_t *c = &cfg->latencies[i];
        poh_mongo_latency_spec_t *l = &spec->lat[i];
        if (!(l->name = strdup(c->name)) || !(l->from_field = strdup(c->from_field)) ||
            (c->to_field && !(l->to_field = strdup(c->to_field))))
            goto nomem;
        l->unit = c->epoch_unit && !strcmp(c->epoch_unit, "s") ? POH_EPOCH_S : POH_EPOCH_MS;
        l->max_ms = (c->max > 0 ? c->max : POH_MONGO_DEFAULT_MAX_LATENCY) * 1000.0;
        l->min_ms = -(c->clock_skew > 0 ? c->clock_skew : 0) * 1000.0;
        for (size_t j = 0; j < c->on_count; j++) {
            int op = poh_mongo_op_parse(c->on[j]);
            if (op >= 0)
                l->on_mask |= 1u << op;
        }
        if (!c->on_count)
            l->on_mask = 1u << POH_OP_INSERT;
        l->from_err = name_index(spec->fields, &spec->nfields, c->from_field, &rc);
        l->to_err = name_index(spec->fields, &spec->nfields,
                               c->to_field ? c->to_field : "wallTime", &rc);
        l->from_path = name_index(spec->paths, &spec->npaths, c->from_field, &rc);
        if (c->to_field)
            l->to_path = name_index(spec->paths, &spec->npaths, c->to_field, &rc);
        if (rc < 0)
            goto nomem;
        if (l->to_field || (l->on_mask & (1u << POH_OP_UPDATE)))
            spec->update_lookup = true;
    }
    if (spec->traceparent_field) {
        spec->trace_path = name_index(spec->paths, &spec->npaths, spec->traceparent_field, &rc);
        if (rc < 0)
            goto nomem;
    }
    return 0;
nomem:
    poh_mongo_stream_spec_free(spec);
    return -ENOMEM;
}

void poh_mongo_stream_spec_free(poh_mongo_stream_spec_t *spec)
{
    for (size_t i = 0; spec->lat && i < spec->nlat; i++) {
        free(spec->lat[i].name);
        free(spec->lat[i].from_field);
        free(spec->lat[i].to_field);
    }
    for (size_t i = 0; spec->fields && i < spec->nfields; i++)
        free(spec->fields[i]);
    for (size_t i = 0; spec->paths && i < spec->npaths; i++)
        free(spec->paths[i]);
    free(spec->lat);
    free(spec->fields);
    free(spec->paths);
    free(spec->bounds);
    free(spec->traceparent_field);
    memset(spec, 0, sizeof *spec);
}

/* ---------------------------------------------------------------- batch */

int poh_mongo_batch_init(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec)
{
    memset(b, 0, sizeof *b);
    b->field_errors = calloc((spec->nfields ? spec->nfields : 1) * POH_FIELD_REASONS,
                             sizeof *b->field_errors);
    b->lat = calloc(spec->nlat ? spec->nlat : 1, sizeof *b->lat);
    b->spans = calloc(POH_MONGO_MAX_COMMIT_SPANS, sizeof *b->spans);
    if (!b->field_errors || !b->lat || !b->spans)
        goto nomem;
    for (size_t i = 0; i < spec->nlat; i++) {
        b->lat[i].ex = calloc(spec->nbounds + 1, sizeof *b->lat[i].ex);
        if (!b->lat[i].ex)
            goto nomem;
    }
    poh_mongo_batch_reset(b, spec);
    return 0;
nomem:
    poh_mongo_batch_free(b, spec);
    return -ENOMEM;
}

void poh_mongo_batch_reset(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec)
{
    memset(b->ops, 0, sizeof b->ops);
    memset(b->field_errors, 0,
           (spec->nfields ? spec->nfields : 1) * POH_FIELD_REASONS * sizeof *b->field_errors);
    for (size_t i = 0; i < spec->nlat; i++) {
        b->lat[i].n = 0;
        for (size_t j = 0; j <= spec->nbounds; j++)
            b->lat[i].ex[j].idx = -1;
    }
    b->newest_wall = 0;
    b->events = 0;
    b->last_id = NULL;
    b->last_id_len = 0;
    b->invalidated = false;
    b->nspans = 0;
}

void poh_mongo_batch_free(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec)
{
    poh_mongo_batch_split_reset(b);
    for (size_t i = 0; b->lat && i < spec->nlat; i++) {
        free(b->lat[i].v);
        free(b->lat[i].ex);
    }
    free(b->lat);
    free(b->field_errors);
    free(b->spans);
    memset(b, 0, sizeof *b);
}

/* path as nested keys ("a.b") in the document held by holder. */
static bool doc_descend(const bson_iter_t *holder, const char *path, bson_iter_t *out)
{
    bson_iter_t it;
    return strchr(path, '.') && bson_iter_recurse(holder, &it) &&
           bson_iter_find_descendant(&it, path, out);
}

/* Find path in the document held by holder: first as one key (updatedFields
 * keys are dotted paths), then as a path of nested keys. */
static bool doc_find(const bson_iter_t *holder, const char *path, bson_iter_t *out)
{
    bson_iter_t it;
    if (!bson_iter_recurse(holder, &it))
        return false;
    if (bson_iter_find(&it, path)) {
        *out = it;
        return true;
    }
    return doc_descend(holder, path, out);
}

/* The stream's paths in one document of an event (fullDocument or
 * updatedFields), as doc_find finds them, but found as whole keys in one
 * pass over the document: bson_iter_find walks it once per path, and a path
 * most events lack (an approval's to_field on inserts) walks all of it every
 * time. Paths from index DOC_SCAN_MAX on are looked up on their own. */
#define DOC_SCAN_MAX 16

typedef struct doc_hit {
    bson_iter_t it; /* a struct: libbson aligns bson_iter_t beyond its size */
} doc_hit_t;

typedef struct doc_fields {
    const bson_iter_t *holder; /* NULL: the event has no such document */
    bool scanned;
    uint32_t found;            /* bit j: at[j] is path j as a whole key */
    doc_hit_t at[DOC_SCAN_MAX];
} doc_fields_t;

static void doc_fields_init(doc_fields_t *df, const bson_iter_t *holder)
{
    df->holder = holder;
    df->scanned = false;
    df->found = 0;
}

static void doc_scan(doc_fields_t *df, const poh_mongo_stream_spec_t *spec)
{
    size_t n = spec->npaths < DOC_SCAN_MAX ? spec->npaths : DOC_SCAN_MAX;
    uint32_t all = (1u << n) - 1;
    bson_iter_t it;
    df->scanned = true;
    if (!bson_iter_recurse(df->holder, &it))
        return;
    /* The first key equal to a path is its value, as with bson_iter_find;
     * the paths are distinct, so a key is at most one of them. */
    while (df->found != all && bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        for (size_t j = 0; j < n; j++) {
            if (!(df->found & (1u << j)) && !strcmp(k, spec->paths[j])) {
                df->at[j].it = it;
                df->found |= 1u << j;
                break;
            }
        }
    }
}

static bool doc_get(doc_fields_t *df, const poh_mongo_stream_spec_t *spec, size_t j,
                    bson_iter_t *out)
{
    if (!df->holder)
        return false;
    if (j >= DOC_SCAN_MAX)
        return doc_find(df->holder, spec->paths[j], out);
    if (!df->scanned)
        doc_scan(df, spec);
    if (df->found & (1u << j)) {
        *out = df->at[j].it;
        return true;
    }
    return doc_descend(df->holder, spec->paths[j], out);
}

/* A time field: 0 with *t set, or the reason it cannot be used. */
#define FIELD_OK (-1)

static int field_time(doc_fields_t *df, const poh_mongo_stream_spec_t *spec, size_t path,
                      poh_epoch_unit_t unit, double *t)
{
    bson_iter_t f;
    if (!doc_get(df, spec, path, &f) || BSON_ITER_HOLDS_NULL(&f))
        return POH_FIELD_MISSING;
    int rc = poh_mongo_time_value(&f, unit, t);
    return rc == 0 ? FIELD_OK : rc == -ERANGE ? POH_FIELD_OUT_OF_RANGE : POH_FIELD_NOT_A_TIME;
}

static void field_error(poh_mongo_batch_t *b, size_t field, int reason)
{
    b->field_errors[field * POH_FIELD_REASONS + (size_t)reason]++;
}

static int observe(poh_mongo_lat_values_t *lv, const poh_mongo_stream_spec_t *spec, double v,
                   const char *trace, const char *span, double ts)
{
    if (lv->n == lv->cap) {
        size_t ncap = lv->cap ? lv->cap * 2 : 256;
        double *nv = realloc(lv->v, ncap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        lv->v = nv;
        lv->cap = ncap;
    }
    lv->v[lv->n++] = v;
    if (trace) {
        size_t k = 0;
        while (k < spec->nbounds && v > spec->bounds[k])
            k++;
        poh_mongo_exemplar_t *e = &lv->ex[k];
        e->idx = (int64_t)lv->n - 1;
        e->ts = ts;
        memcpy(e->trace_id, trace, sizeof e->trace_id);
        memcpy(e->span_id, span, sizeof e->span_id);
    }
    return 0;
}

/* The fields of one change event the batch reads (iterators point into the
 * event). frag/of: its splitEvent, 0 when it is whole. */
typedef struct ev_view {
    const uint8_t *id;
    uint32_t id_len;
    int op;
    double wall, ct;
    bool wall_out_of_range;
    bson_iter_t full, upd;  /* fullDocument, updateDescription.updatedFields */
    bool have_full, have_upd;
    int64_t frag, of;
} ev_view_t;

/* A fragment cap far above what 16 MB fragments of a 48 MB message need. */
#define SPLIT_MAX_OF 4096

/* splitEvent {fragment, of} of $changeStreamSplitLargeEvent (7.0, 6.0.9);
 * one that does not make sense leaves the event whole. */
static void scan_split(const bson_iter_t *it, ev_view_t *ev)
{
    bson_iter_t se;
    int64_t frag = 0, of = 0;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &se))
        return;
    while (bson_iter_next(&se)) {
        if (!BSON_ITER_HOLDS_INT32(&se) && !BSON_ITER_HOLDS_INT64(&se))
            continue;
        if (!strcmp(bson_iter_key(&se), "fragment"))
            frag = bson_iter_as_int64(&se);
        else if (!strcmp(bson_iter_key(&se), "of"))
            of = bson_iter_as_int64(&se);
    }
    if (frag >= 1 && frag <= of && of <= SPLIT_MAX_OF) {
        ev->frag = frag;
        ev->of = of;
    }
}

/* The top-level fields of an event the batch reads. */
typedef enum {
    EV_OTHER, EV_ID, EV_OP, EV_WALL, EV_CLUSTER_TIME, EV_SPLIT, EV_FULL, EV_UPDATE
} ev_field_t;

/* Which of them key k is. This runs for every field of every event, so the
 * first letter picks the one key it can be and one strcmp decides. */
static ev_field_t field_of(const char *k)
{
    const char *name;
    ev_field_t f;
    switch (k[0]) {
    case '_': name = "_id", f = EV_ID; break;
    case 'o': name = "operationType", f = EV_OP; break;
    case 'w': name = "wallTime", f = EV_WALL; break;
    case 'c': name = "clusterTime", f = EV_CLUSTER_TIME; break;
    case 's': name = "splitEvent", f = EV_SPLIT; break;
    case 'f': name = "fullDocument", f = EV_FULL; break;
    case 'u': name = "updateDescription", f = EV_UPDATE; break;
    default: return EV_OTHER;
    }
    return strcmp(k + 1, name + 1) ? EV_OTHER : f;
}

static void scan_update(const bson_iter_t *it, ev_view_t *ev)
{
    bson_iter_t d;
    if (BSON_ITER_HOLDS_DOCUMENT(it) && bson_iter_recurse(it, &d) &&
        bson_iter_find(&d, "updatedFields") && BSON_ITER_HOLDS_DOCUMENT(&d)) {
        ev->upd = d;
        ev->have_upd = true;
    }
}

static void scan_field(const bson_iter_t *it, ev_field_t f, ev_view_t *ev)
{
    if (f == EV_ID && BSON_ITER_HOLDS_DOCUMENT(it)) {
        bson_iter_document(it, &ev->id_len, &ev->id);
    } else if (f == EV_OP && BSON_ITER_HOLDS_UTF8(it)) {
        uint32_t n;
        const char *s = bson_iter_utf8(it, &n);
        ev->op = n ? op_of(s, n) : POH_OP_OTHER;
    } else if (f == EV_WALL && BSON_ITER_HOLDS_DATE_TIME(it)) {
        int64_t w = bson_iter_date_time(it);
        if (poh_mongo_time_in_range(w))
            ev->wall = (double)w;
        else
            ev->wall_out_of_range = true; /* clusterTime stands in, if there is one */
    } else if (f == EV_CLUSTER_TIME && BSON_ITER_HOLDS_TIMESTAMP(it)) {
        uint32_t t, inc;
        bson_iter_timestamp(it, &t, &inc);
        ev->ct = t * 1000.0;
    } else if (f == EV_SPLIT) {
        scan_split(it, ev);
    } else if (f == EV_FULL && BSON_ITER_HOLDS_DOCUMENT(it)) {
        ev->full = *it;
        ev->have_full = true;
    } else if (f == EV_UPDATE) {
        scan_update(it, ev);
    }
}

static bool scan_event(const uint8_t *data, uint32_t len, ev_view_t *ev)
{
    bson_iter_t it;
    memset(ev, 0, sizeof *ev);
    ev->op = POH_OP_OTHER;
    ev->wall = ev->ct = NAN;
    if (!bson_iter_init_from_data(&it, data, len))
        return false;
    while (bson_iter_next(&it)) {
        ev_field_t f = field_of(bson_iter_key(&it));
        if (f != EV_OTHER)
            scan_field(&it, f, ev);
    }
    return ev->id != NULL;
}

/* The event's traceparent, when the stream has one configured. */
static bool event_trace(const poh_mongo_stream_spec_t *spec, doc_fields_t *full,
                        poh_span_context_t *ctx, char *trace, char *span)
{
    bson_iter_t tp;
    if (!spec->traceparent_field || !doc_get(full, spec, spec->trace_path, &tp) ||
        !BSON_ITER_HOLDS_UTF8(&tp))
        return false;
    uint32_t n;
    const char *s = bson_iter_utf8(&tp, &n);
    if (poh_traceparent_parse(s, n, ctx) != 0)
        return false;
    poh_hex_encode(ctx->trace_id, sizeof ctx->trace_id, trace);
    poh_hex_encode(ctx->span_id, sizeof ctx->span_id, span);
    return true;
}

/* The `to` time of latency l for the event: 0 with *to set, 1 when the
 * latency does not apply, or -1 after counting a field error. */
static int latency_to(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                      const poh_mongo_latency_spec_t *l, const ev_view_t *ev,
                      doc_fields_t *docs, double commit, double *to)
{
    if (!l->to_field) {
        if (!(l->on_mask & (1u << ev->op)))
            return 1;
        if (isnan(commit)) {
            field_error(b, l->to_err,
                        ev->wall_out_of_range ? POH_FIELD_OUT_OF_RANGE : POH_FIELD_MISSING);
            return -1;
        }
        *to = commit;
        return 0;
    }
    int r;
    if (ev->op == POH_OP_INSERT && ev->have_full)
        r = field_time(&docs[0], spec, l->to_path, l->unit, to);
    else if (ev->op == POH_OP_UPDATE && ev->have_upd)
        r = field_time(&docs[1], spec, l->to_path, l->unit, to);
    else
        return 1;
    if (r == POH_FIELD_MISSING)
        return 1; /* not the event that sets the field */
    if (r != FIELD_OK) {
        field_error(b, l->to_err, r);
        return -1;
    }
    return 0;
}

/* Observe the event's latencies. */
static int observe_latencies(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                             const ev_view_t *ev, double commit)
{
    char trace[POH_TRACE_ID_HEX_LEN + 1], span[POH_SPAN_ID_HEX_LEN + 1];
    poh_span_context_t ctx;
    doc_fields_t docs[2]; /* fullDocument, updatedFields */
    doc_fields_init(&docs[0], ev->have_full ? &ev->full : NULL);
    doc_fields_init(&docs[1], ev->have_upd ? &ev->upd : NULL);
    bool traced = event_trace(spec, &docs[0], &ctx, trace, span), span_taken = false;
    for (size_t i = 0; i < spec->nlat; i++) {
        const poh_mongo_latency_spec_t *l = &spec->lat[i];
        double from, to;
        if (latency_to(b, spec, l, ev, docs, commit, &to) != 0)
            continue;
        int r = field_time(&docs[0], spec, l->from_path, l->unit, &from);
        if (r != FIELD_OK) {
            field_error(b, l->from_err, r);
            continue;
        }
        /* Both times are in range, so the difference is exact and finite.
         * Outside the plausible window it is counted against the document's
         * from_field instead of observed: a writer's clock far off, or a
         * bogus value, must not skew the histogram. Slight clock skew
         * between the writer and the server is observed as 0. */
        double d = to - from;
        if (d < l->min_ms || d > l->max_ms) {
            field_error(b, l->from_err, d < 0 ? POH_FIELD_NEGATIVE : POH_FIELD_TOO_LARGE);
            continue;
        }
        if (d < 0)
            d = 0;
        if (observe(&b->lat[i], spec, d / 1000.0, traced ? trace : NULL, span,
                    isnan(commit) ? 0 : commit / 1000.0) < 0)
            return -ENOMEM;
        if (traced && !l->to_field && !span_taken && b->nspans < POH_MONGO_MAX_COMMIT_SPANS) {
            b->spans[b->nspans++] = (poh_mongo_commit_span_t){ctx, from, to};
            span_taken = true;
        }
    }
    return 0;
}

/* Count a whole event (or a split one joined) and observe its latencies. */
static int fold_event(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                      const ev_view_t *ev)
{
    b->events++;
    b->last_id = ev->id;
    b->last_id_len = ev->id_len;
    if (ev->op == POH_OP_INVALIDATE)
        b->invalidated = true;
    double commit = isnan(ev->wall) ? ev->ct : ev->wall;
    if (!isnan(commit) && commit > b->newest_wall)
        b->newest_wall = commit;
    if (!(spec->op_mask & (1u << ev->op)))
        return 0;
    b->ops[ev->op]++;
    return observe_latencies(b, spec, ev, commit);
}

/* ------------------------------------------------------- split events */

void poh_mongo_batch_split_reset(poh_mongo_batch_t *b)
{
    if (b->split.kept)
        bson_destroy(b->split.kept);
    memset(&b->split, 0, sizeof b->split);
}

#define KEEP_MAX_STRING 128   /* longer strings are no time and no traceparent */
#define KEEP_MAX_BYTES 65536  /* a joined event's kept fields, whatever the fragments hold */

/* Copy the value at path in the document held by holder under the key path
 * (doc_find finds a whole key first): small values as they are, anything
 * else as false, which reads as not a time and not a traceparent, as the
 * value itself would. */
static void keep_path(bson_t *out, const bson_iter_t *holder, const char *path)
{
    bson_iter_t v;
    if (!doc_find(holder, path, &v))
        return;
    switch (bson_iter_type(&v)) {
    case BSON_TYPE_UTF8:
    case BSON_TYPE_DATE_TIME:
    case BSON_TYPE_TIMESTAMP:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128:
    case BSON_TYPE_BOOL:
    case BSON_TYPE_NULL: {
        uint32_t n = 0;
        if (BSON_ITER_HOLDS_UTF8(&v))
            bson_iter_utf8(&v, &n);
        if (n <= KEEP_MAX_STRING) {
            bson_append_iter(out, path, -1, &v);
            return;
        }
        break;
    }
    default:
        break;
    }
    bson_append_bool(out, path, -1, false);
}

/* The fields the stream reads from a document (fullDocument or
 * updatedFields) held by holder, into out as document key, each once. */
static void keep_doc(bson_t *out, const char *key, const bson_iter_t *holder,
                     const poh_mongo_stream_spec_t *spec)
{
    bson_t d;
    bson_append_document_begin(out, key, -1, &d);
    for (size_t j = 0; j < spec->npaths; j++)
        keep_path(&d, holder, spec->paths[j]);
    bson_append_document_end(out, &d);
}

/* Keep what the stream reads of one fragment: the small top-level fields
 * and, of fullDocument and updatedFields, only the configured fields. */
static void keep_fragment(bson_t *kept, const poh_mongo_stream_spec_t *spec,
                          const uint8_t *data, uint32_t len, const ev_view_t *ev)
{
    bson_iter_t it;
    if (kept->len > KEEP_MAX_BYTES || !bson_iter_init_from_data(&it, data, len))
        return;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        uint32_t n = 0;
        if ((!strcmp(k, "operationType") && BSON_ITER_HOLDS_UTF8(&it) &&
             bson_iter_utf8(&it, &n) && n <= KEEP_MAX_STRING) ||
            (!strcmp(k, "clusterTime") && BSON_ITER_HOLDS_TIMESTAMP(&it)) ||
            (!strcmp(k, "wallTime") && BSON_ITER_HOLDS_DATE_TIME(&it)))
            bson_append_iter(kept, k, -1, &it);
        else if (!strcmp(k, "fullDocument") && BSON_ITER_HOLDS_NULL(&it))
            bson_append_null(kept, k, -1);
    }
    if (ev->have_full)
        keep_doc(kept, "fullDocument", &ev->full, spec);
    if (ev->have_upd) {
        bson_t ud;
        bson_append_document_begin(kept, "updateDescription", -1, &ud);
        keep_doc(&ud, "updatedFields", &ev->upd, spec);
        bson_append_document_end(kept, &ud);
    }
}

/* One fragment of a split event. Fragments from the first on are joined
 * (only the fields the stream reads are kept) and the event is counted
 * once, with its last fragment: its resume token is the first position
 * after the whole event. Until then b->last_id stays at the last whole
 * event, so a token saved mid-event makes a restarted stream read the event
 * again from its first fragment: never counted twice, never lost. A later
 * fragment without its start (a token saved inside an event by an earlier
 * version, which counted the event with its first fragment) is passed over;
 * its last fragment moves the position past the event. */
static int add_fragment(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                        const ev_view_t *ev, const uint8_t *data, uint32_t len)
{
    poh_mongo_split_t *sp = &b->split;
    if (!ev->of) { /* a whole event ends an unfinished one (no server does that) */
        poh_mongo_batch_split_reset(b);
        return fold_event(b, spec, ev);
    }
    if (ev->frag == 1) {
        poh_mongo_batch_split_reset(b);
        if (!(sp->kept = bson_new()))
            return -ENOMEM;
        sp->of = ev->of;
        sp->next = 1;
    } else if (!sp->kept || ev->frag != sp->next || ev->of != sp->of) {
        poh_mongo_batch_split_reset(b);
        if (ev->frag == ev->of) {
            b->events++;
            b->last_id = ev->id;
            b->last_id_len = ev->id_len;
        }
        return 0;
    }
    keep_fragment(sp->kept, spec, data, len, ev);
    sp->next++;
    if (ev->frag < ev->of)
        return 0;
    ev_view_t whole;
    scan_event(bson_get_data(sp->kept), sp->kept->len, &whole);
    whole.id = ev->id; /* the last fragment's token: after the whole event */
    whole.id_len = ev->id_len;
    int rc = fold_event(b, spec, &whole);
    poh_mongo_batch_split_reset(b);
    return rc;
}

int poh_mongo_batch_add(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                        const uint8_t *data, uint32_t len)
{
    ev_view_t ev;
    if (!scan_event(data, len, &ev))
        return -EINVAL;
    if (ev.of || b->split.of)
        return add_fragment(b, spec, &ev, data, len);
    return fold_event(b, spec, &ev);
}

static int ex_cmp(const void *a, const void *b)
{
    const poh_mongo_exemplar_t *x = *(const poh_mongo_exemplar_t *const *)a;
    const poh_mongo_exemplar_t *y = *(const poh_mongo_exemplar_t *const *)b;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

size_t poh_mongo_batch_exemplars(const poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                                 size_t l, const poh_mongo_exemplar_t **out)
{
    size_t n = 0;
    for (size_t k = 0; k <= spec->nbounds; k++)
        if (b->lat[l].ex[k].idx >= 0)
            out[n++] = &b->lat[l].ex[k];
    qsort(out, n, sizeof *out, ex_cmp);
    return n;
}
