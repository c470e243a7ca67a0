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

static size_t field_index(poh_mongo_stream_spec_t *spec, const char *name, int *rc)
{
    for (size_t i = 0; i < spec->nfields; i++)
        if (!strcmp(spec->fields[i], name))
            return i;
    char *d = strdup(name);
    if (!d) {
        *rc = -ENOMEM;
        return 0;
    }
    spec->fields[spec->nfields] = d;
    return spec->nfields++;
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
    spec->nbounds = cfg->buckets_count;
    spec->bounds = calloc(spec->nbounds ? spec->nbounds : 1, sizeof *spec->bounds);
    if (!spec->lat || !spec->fields || !spec->bounds)
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
        l->from_err = field_index(spec, c->from_field, &rc);
        l->to_err = field_index(spec, c->to_field ? c->to_field : "wallTime", &rc);
        if (rc < 0)
            goto nomem;
        if (l->to_field || (l->on_mask & (1u << POH_OP_UPDATE)))
            spec->update_lookup = true;
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
    free(spec->lat);
    free(spec->fields);
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
    for (size_t i = 0; b->lat && i < spec->nlat; i++) {
        free(b->lat[i].v);
        free(b->lat[i].ex);
    }
    free(b->lat);
    free(b->field_errors);
    free(b->spans);
    memset(b, 0, sizeof *b);
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
    return strchr(path, '.') && bson_iter_recurse(holder, &it) &&
           bson_iter_find_descendant(&it, path, out);
}

/* A time field: 0 with *t set, or the reason it cannot be used. */
#define FIELD_OK (-1)

static int field_time(const bson_iter_t *holder, const char *path, poh_epoch_unit_t unit,
                      double *t)
{
    bson_iter_t f;
    if (!doc_find(holder, path, &f) || BSON_ITER_HOLDS_NULL(&f))
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

/* $changeStreamSplitLargeEvent (7.0, 6.0.9): fragments after the first
 * carry only _id, splitEvent and the large fields; the event is counted
 * once, by fragment 1. Whether this splitEvent is a later fragment. */
static bool split_continuation(const bson_iter_t *split)
{
    bson_iter_t se;
    return BSON_ITER_HOLDS_DOCUMENT(split) && bson_iter_recurse(split, &se) &&
           bson_iter_find(&se, "fragment") &&
           (BSON_ITER_HOLDS_INT32(&se) || BSON_ITER_HOLDS_INT64(&se)) &&
           bson_iter_as_int64(&se) > 1;
}

int poh_mongo_batch_add(poh_mongo_batch_t *b, const poh_mongo_stream_spec_t *spec,
                        const uint8_t *data, uint32_t len)
{
    bson_iter_t it, full, upd;
    bool have_full = false, have_upd = false;
    const uint8_t *id = NULL;
    uint32_t id_len = 0;
    int op = POH_OP_OTHER;
    double wall = NAN, ct = NAN;
    bool wall_out_of_range = false, continuation = false;
    if (!bson_iter_init_from_data(&it, data, len))
        return -EINVAL;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        switch (k[0]) {
        case '_':
            if (!strcmp(k, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it))
                bson_iter_document(&it, &id_len, &id);
            break;
        case 'o':
            if (!strcmp(k, "operationType") && BSON_ITER_HOLDS_UTF8(&it)) {
                uint32_t n;
                const char *s = bson_iter_utf8(&it, &n);
                op = n ? op_of(s, n) : POH_OP_OTHER;
            }
            break;
        case 'w':
            if (!strcmp(k, "wallTime") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
                int64_t w = bson_iter_date_time(&it);
                if (poh_mongo_time_in_range(w))
                    wall = (double)w;
                else
                    wall_out_of_range = true; /* clusterTime stands in, if there is one */
            }
            break;
        case 'c':
            if (!strcmp(k, "clusterTime") && BSON_ITER_HOLDS_TIMESTAMP(&it)) {
                uint32_t t, inc;
                bson_iter_timestamp(&it, &t, &inc);
                ct = t * 1000.0;
            }
            break;
        case 's':
            if (!strcmp(k, "splitEvent"))
                continuation = split_continuation(&it);
            break;
        case 'f':
            if (!strcmp(k, "fullDocument") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
                full = it;
                have_full = true;
            }
            break;
        case 'u':
            if (!strcmp(k, "updateDescription") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
                bson_iter_t d;
                if (bson_iter_recurse(&it, &d) && bson_iter_find(&d, "updatedFields") &&
                    BSON_ITER_HOLDS_DOCUMENT(&d)) {
                    upd = d;
                    have_upd = true;
                }
            }
            break;
        default:
            break;
        }
    }
    if (!id)
        return -EINVAL;
    b->events++;
    b->last_id = id;
    b->last_id_len = id_len;
    if (continuation)
        return 0; /* its resume token is kept; the event was counted */
    if (op == POH_OP_INVALIDATE)
        b->invalidated = true;
    double commit = isnan(wall) ? ct : wall;
    if (!isnan(commit) && commit > b->newest_wall)
        b->newest_wall = commit;
    if (!(spec->op_mask & (1u << op)))
        return 0;
    b->ops[op]++;

    char trace[POH_TRACE_ID_HEX_LEN + 1], span[POH_SPAN_ID_HEX_LEN + 1];
    poh_span_context_t ctx;
    bool traced = false, span_taken = false;
    if (spec->traceparent_field && have_full) {
        bson_iter_t tp;
        if (doc_find(&full, spec->traceparent_field, &tp) && BSON_ITER_HOLDS_UTF8(&tp)) {
            uint32_t n;
            const char *s = bson_iter_utf8(&tp, &n);
            traced = poh_traceparent_parse(s, n, &ctx) == 0;
        }
    }
    if (traced) {
        poh_hex_encode(ctx.trace_id, sizeof ctx.trace_id, trace);
        poh_hex_encode(ctx.span_id, sizeof ctx.span_id, span);
    }
    for (size_t i = 0; i < spec->nlat; i++) {
        const poh_mongo_latency_spec_t *l = &spec->lat[i];
        double from, to;
        int r;
        if (!l->to_field) {
            if (!(l->on_mask & (1u << op)))
                continue;
            if (isnan(commit)) {
                field_error(b, l->to_err,
                            wall_out_of_range ? POH_FIELD_OUT_OF_RANGE : POH_FIELD_MISSING);
                continue;
            }
            to = commit;
        } else {
            if (op == POH_OP_INSERT && have_full)
                r = field_time(&full, l->to_field, l->unit, &to);
            else if (op == POH_OP_UPDATE && have_upd)
                r = field_time(&upd, l->to_field, l->unit, &to);
            else
                continue;
            if (r == POH_FIELD_MISSING)
                continue; /* not the event that sets the field */
            if (r != FIELD_OK) {
                field_error(b, l->to_err, r);
                continue;
            }
        }
        r = have_full ? field_time(&full, l->from_field, l->unit, &from) : POH_FIELD_MISSING;
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
