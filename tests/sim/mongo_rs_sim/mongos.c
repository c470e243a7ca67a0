/* SPDX-License-Identifier: Apache-2.0 */
/* The mongos front of --shards mode: hello (msg "isdbgrid"), listShards,
 * balancerStatus, writes routed by the hashed _id, find/count merged over the
 * shards, the config database, and change streams merged in cluster-time
 * order. Commands that need nothing of the cluster (ping, buildInfo, sasl*,
 * endSessions, killCursors, getMore of find cursors) run on the front's own
 * replica-set code; cursors live in the front's store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "shard.h"

#define MAX_BATCH_BYTES (16 * 1024 * 1024 - 64 * 1024)
#define DEFAULT_FIRST_BATCH 101
#define AWAIT_DEFAULT_MS 1000
#define WAIT_SLICE_MS 100
#define MAX_WRITE_BATCH 100000
#define M_DROPPED 1

typedef struct mctx {
    sim_t *front;
    sim_cluster_t *cl;
    sim_client_t *cli;
    const sim_request_t *req;
    const char *db, *name;
    bson_t *reply;
    sim_err_t err;
    uint64_t op_time;
} mctx_t;

typedef int (*mfn)(mctx_t *x);

/* ---- small helpers ----------------------------------------------------------------- */

static bool get_str(const bson_t *b, const char *k, const char **out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, b, k) || !BSON_ITER_HOLDS_UTF8(&it))
        return false;
    *out = bson_iter_utf8(&it, NULL);
    return true;
}

static bool get_doc(const bson_t *b, const char *k, bson_t *out)
{
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    if (!bson_iter_init_find(&it, b, k) || !(BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)))
        return false;
    if (BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_iter_document(&it, &len, &data);
    else
        bson_iter_array(&it, &len, &data);
    return bson_init_static(out, data, len);
}

/* 1 found, 0 absent, -1 not a number. */
static int get_num(const bson_t *b, const char *k, int64_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, b, k))
        return 0;
    if (!BSON_ITER_HOLDS_NUMBER(&it))
        return -1;
    *out = bson_iter_as_int64(&it);
    return 1;
}

static bool get_bool(const bson_t *b, const char *k, bool dflt)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, b, k) ? bson_iter_as_bool(&it) : dflt;
}

static int fail(mctx_t *x, int code, const char *msg)
{
    return sim_err_set(&x->err, code, "%s", msg);
}

static void akey(uint32_t i, const char **key, size_t *len, char *buf)
{
    *len = bson_uint32_to_string(i, key, buf, 16);
}

static uint64_t clock_now(sim_cluster_t *cl)
{
    pthread_mutex_lock(&cl->clock.mu);
    uint64_t ts = cl->clock.last_ts;
    pthread_mutex_unlock(&cl->clock.mu);
    return ts;
}

static void append_cluster_time(bson_t *reply, uint64_t cluster, uint64_t op)
{
    static const uint8_t zero[20];
    bson_t ct, sig;
    BSON_APPEND_DOCUMENT_BEGIN(reply, "$clusterTime", &ct);
    BSON_APPEND_TIMESTAMP(&ct, "clusterTime", SIM_TS_T(cluster), SIM_TS_I(cluster));
    BSON_APPEND_DOCUMENT_BEGIN(&ct, "signature", &sig);
    BSON_APPEND_BINARY(&sig, "hash", BSON_SUBTYPE_BINARY, zero, 20);
    BSON_APPEND_INT64(&sig, "keyId", 0);
    bson_append_document_end(&ct, &sig);
    bson_append_document_end(reply, &ct);
    BSON_APPEND_TIMESTAMP(reply, "operationTime", SIM_TS_T(op), SIM_TS_I(op));
}

/* Snapshot of the active shards' replica sets. */
static int active(sim_cluster_t *cl, sim_t **out)
{
    int n = 0;
    pthread_mutex_lock(&cl->mu);
    for (int i = 0; i < cl->nshards; i++)
        if (!cl->shards[i].removed)
            out[n++] = cl->shards[i].sim;
    pthread_mutex_unlock(&cl->mu);
    return n;
}

/* ---- handshake and cluster commands --------------------------------------------------- */

static int m_hello(mctx_t *x)
{
    bson_t *r = x->reply;
    bool legacy = strcmp(x->name, "hello") != 0;
    sim_hello_await(x->front, x->cli, &x->req->body); /* a mongos' topology never moves */
    if (get_bool(&x->req->body, "helloOk", false))
        BSON_APPEND_BOOL(r, "helloOk", true);
    BSON_APPEND_BOOL(r, legacy ? "ismaster" : "isWritablePrimary", true);
    BSON_APPEND_UTF8(r, "msg", "isdbgrid");
    BSON_APPEND_INT32(r, "maxBsonObjectSize", 16 * 1024 * 1024);
    BSON_APPEND_INT32(r, "maxMessageSizeBytes", SIM_MAX_MESSAGE);
    BSON_APPEND_INT32(r, "maxWriteBatchSize", MAX_WRITE_BATCH);
    BSON_APPEND_DATE_TIME(r, "localTime", sim_now_ms());
    BSON_APPEND_INT32(r, "logicalSessionTimeoutMinutes", 30);
    BSON_APPEND_INT64(r, "connectionId", (int64_t)x->cli->conn_id);
    BSON_APPEND_INT32(r, "minWireVersion", 0);
    BSON_APPEND_INT32(r, "maxWireVersion", 17);
    BSON_APPEND_BOOL(r, "readOnly", false);
    pthread_mutex_lock(&x->front->mu);
    sim_append_topology_version(x->front, r);
    pthread_mutex_unlock(&x->front->mu);
    sim_auth_hello(&x->front->auth, &x->req->body, r);
    return 0;
}

static int m_list_shards(mctx_t *x)
{
    sim_doc_t **docs;
    bson_t arr;
    if (strcmp(x->db, "admin"))
        return fail(x, 13, "listShards may only be run against the admin database.");
    pthread_mutex_lock(&x->cl->mu);
    long n = sim_config_docs(x->cl, "shards", &docs);
    pthread_mutex_unlock(&x->cl->mu);
    if (n < 0)
        return fail(x, 146, "out of memory");
    BSON_APPEND_ARRAY_BEGIN(x->reply, "shards", &arr);
    for (long i = 0; i < n; i++) {
        char kb[16];
        const char *key;
        size_t kl;
        bson_t v;
        akey((uint32_t)i, &key, &kl, kb);
        sim_doc_view(docs[i], &v);
        bson_append_document(&arr, key, (int)kl, &v);
        sim_doc_unref(docs[i]);
    }
    bson_append_array_end(x->reply, &arr);
    free(docs);
    return 0;
}

static int m_balancer_status(mctx_t *x)
{
    if (strcmp(x->db, "admin"))
        return fail(x, 13, "balancerStatus may only be run against the admin database.");
    pthread_mutex_lock(&x->cl->mu);
    BSON_APPEND_UTF8(x->reply, "mode", x->cl->balancer_on ? "full" : "off");
    BSON_APPEND_BOOL(x->reply, "inBalancerRound", x->cl->in_round);
    BSON_APPEND_INT64(x->reply, "numBalancerRounds", x->cl->rounds);
    pthread_mutex_unlock(&x->cl->mu);
    return 0;
}

/* ---- writes ------------------------------------------------------------------------------ */

typedef struct stmts {
    const sim_seq_t *seq;
    uint32_t off;
    bson_iter_t arr;
} stmts_t;

static int stmts_init(mctx_t *x, const char *field, stmts_t *si)
{
    bson_iter_t it;
    memset(si, 0, sizeof *si);
    si->seq = sim_request_seq(x->req, field);
    if (si->seq)
        return si->seq->ndocs > 0 && si->seq->ndocs <= MAX_WRITE_BATCH
                   ? 0
                   : fail(x, 16, "Write batch sizes must be between 1 and 100000.");
    if (!bson_iter_init_find(&it, &x->req->body, field) || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &si->arr))
        return sim_err_set(&x->err, 9, "BSON field '%s.%s' is missing but a required field", x->name, field);
    return 0;
}

static bool stmts_next(stmts_t *si, bson_t *doc)
{
    uint32_t len;
    const uint8_t *data;
    if (si->seq)
        return sim_seq_next(si->seq, &si->off, doc);
    while (bson_iter_next(&si->arr)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&si->arr))
            continue;
        bson_iter_document(&si->arr, &len, &data);
        return bson_init_static(doc, data, len);
    }
    return false;
}

static void write_error(bson_t *errs, uint32_t *nerr, uint32_t index, const sim_err_t *e)
{
    char kb[16];
    const char *key;
    size_t kl;
    bson_t d;
    akey((*nerr)++, &key, &kl, kb);
    bson_append_document_begin(errs, key, (int)kl, &d);
    BSON_APPEND_INT32(&d, "index", (int32_t)index);
    BSON_APPEND_INT32(&d, "code", e->code);
    BSON_APPEND_UTF8(&d, "errmsg", e->msg);
    bson_append_document_end(errs, &d);
}

/* A shard whose set has no primary takes no writes. Caller holds its mu. */
static bool no_primary(sim_t *s, sim_err_t *e)
{
    if (s->primary >= 0)
        return false;
    sim_err_set(e, 133, "Could not find host matching read preference { mode: \"primary\" } for set %s",
                s->cfg.set_name);
    return true;
}

static void insert_one(mctx_t *x, const char *coll, const bson_t *doc, sim_err_t *e)
{
    bson_t with_id = BSON_INITIALIZER;
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id")) {
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        BSON_APPEND_OID(&with_id, "_id", &oid);
        bson_concat(&with_id, doc);
        doc = &with_id;
        bson_iter_init_find(&it, doc, "_id");
    }
    sim_t *s = sim_cluster_lock_id(x->cl, x->db, coll, bson_iter_value(&it));
    if (!s) {
        sim_err_set(e, 146, "out of memory routing the document");
    } else {
        if (!no_primary(s, e)) {
            sim_coll_t *c = sim_store_coll(s->store, x->db, coll, true);
            if (!c)
                sim_err_set(e, 146, "out of memory creating the collection");
            else
                sim_store_insert(s->store, c, doc, e);
        }
        sim_cluster_unlock(x->cl, s);
    }
    bson_destroy(&with_id);
}

static int m_insert(mctx_t *x)
{
    const char *coll;
    stmts_t si;
    bson_t doc, errs = BSON_INITIALIZER;
    uint32_t n = 0, nerr = 0, i = 0;
    if (!get_str(&x->req->body, "insert", &coll))
        return fail(x, 73, "collection name for insert must be a string");
    if (!sim_ns_writable(x->db, coll, &x->err) || stmts_init(x, "documents", &si) < 0) {
        bson_destroy(&errs);
        return -1;
    }
    bool ordered = get_bool(&x->req->body, "ordered", true);
    for (; stmts_next(&si, &doc); i++) {
        sim_err_t e = {0};
        insert_one(x, coll, &doc, &e);
        if (e.code) {
            write_error(&errs, &nerr, i, &e);
            if (ordered)
                break;
            continue;
        }
        n++;
    }
    BSON_APPEND_INT32(x->reply, "n", (int32_t)n);
    if (nerr)
        BSON_APPEND_ARRAY(x->reply, "writeErrors", &errs);
    bson_destroy(&errs);
    return 0;
}

typedef struct wr {
    bool update;
    const bson_t *q, *u;
    bool upsert, multi;
    uint32_t n, modified;
    bool upserted;
    bson_value_t upserted_id;
} wr_t;

/* Run one update/delete statement on shard s (locked). */
static void write_on(mctx_t *x, sim_t *s, const char *coll, wr_t *w, sim_err_t *e)
{
    if (no_primary(s, e))
        return;
    sim_coll_t *c = sim_store_coll(s->store, x->db, coll, w->update && w->upsert);
    if (!w->update) {
        uint32_t k = 0;
        if (sim_store_delete(s->store, c, w->q, w->multi, &k, e) == 0)
            w->n += k;
        return;
    }
    sim_update_result_t r = {0};
    if (sim_store_update(s->store, c, w->q, w->u, w->upsert, w->multi, &r, e) < 0)
        return;
    w->n += r.n;
    w->modified += r.modified;
    if (r.upserted) {
        w->upserted = true;
        w->upserted_id = r.upserted_id;
    }
}

/* Targeted by _id, or broadcast to every shard (single writes stop at the first match). */
static void route_write(mctx_t *x, const char *coll, wr_t *w, sim_err_t *e)
{
    bson_iter_t id;
    sim_t *shards[SIM_MAX_SHARDS];
    if (sim_filter_is_id_eq(w->q, &id)) {
        sim_t *s = sim_cluster_lock_id(x->cl, x->db, coll, bson_iter_value(&id));
        if (!s) {
            sim_err_set(e, 146, "out of memory routing the write");
            return;
        }
        write_on(x, s, coll, w, e);
        sim_cluster_unlock(x->cl, s);
        return;
    }
    if (w->update && w->upsert) {
        sim_err_set(e, 61, "Failed to target upsert by query :: could not extract exact shard key (the "
                           "simulated cluster shards on {_id: \"hashed\"})");
        return;
    }
    int n = active(x->cl, shards);
    for (int k = 0; k < n && !e->code; k++) {
        pthread_mutex_lock(&x->cl->mu);
        pthread_mutex_lock(&shards[k]->mu);
        sim_repl_tick(shards[k]);
        write_on(x, shards[k], coll, w, e);
        sim_cluster_unlock(x->cl, shards[k]);
        if (!w->multi && w->n)
            break;
    }
}

static void parse_stmt(mctx_t *x, const bson_t *st, wr_t *w, bson_t *q, bson_t *u, sim_err_t *e)
{
    char msg[160];
    int64_t limit = 0;
    if (!get_doc(st, "q", q) || (w->update && !get_doc(st, "u", u)))
        sim_err_set(e, 9, "%s statements need a 'q' document%s", x->name, w->update ? " and a 'u' document" : "");
    else if (!w->update && (get_num(st, "limit", &limit) < 0 || (limit != 0 && limit != 1)))
        sim_err_set(e, 9, "delete statements need 'limit' 0 or 1");
    else if (!sim_filter_check(q, msg, sizeof msg))
        sim_err_set(e, 2, "%s", msg);
    else if (w->update && !sim_update_check(u, e))
        return;
    w->q = q;
    w->u = u;
    w->upsert = w->update && get_bool(st, "upsert", false);
    w->multi = w->update ? get_bool(st, "multi", false) : limit == 0;
}

static void append_upserted(bson_t *ups, uint32_t *nups, uint32_t i, wr_t *w)
{
    char kb[16];
    const char *key;
    size_t kl;
    bson_t d;
    akey((*nups)++, &key, &kl, kb);
    bson_append_document_begin(ups, key, (int)kl, &d);
    BSON_APPEND_INT32(&d, "index", (int32_t)i);
    BSON_APPEND_VALUE(&d, "_id", &w->upserted_id);
    bson_append_document_end(ups, &d);
    bson_value_destroy(&w->upserted_id);
}

static int m_update_delete(mctx_t *x)
{
    const char *coll;
    stmts_t si;
    bool update = !strcmp(x->name, "update");
    bson_t st, errs = BSON_INITIALIZER, ups = BSON_INITIALIZER;
    uint32_t n = 0, modified = 0, nerr = 0, nups = 0, i = 0;
    if (!get_str(&x->req->body, x->name, &coll))
        return sim_err_set(&x->err, 73, "collection name for %s must be a string", x->name);
    if (!sim_ns_writable(x->db, coll, &x->err) || stmts_init(x, update ? "updates" : "deletes", &si) < 0)
        goto out;
    bool ordered = get_bool(&x->req->body, "ordered", true);
    for (; stmts_next(&si, &st); i++) {
        sim_err_t e = {0};
        wr_t w = {.update = update};
        bson_t q, u;
        parse_stmt(x, &st, &w, &q, &u, &e);
        if (!e.code)
            route_write(x, coll, &w, &e);
        n += w.n;
        modified += w.modified;
        if (w.upserted)
            append_upserted(&ups, &nups, i, &w);
        if (e.code) {
            write_error(&errs, &nerr, i, &e);
            if (ordered)
                break;
        }
    }
    BSON_APPEND_INT32(x->reply, "n", (int32_t)n);
    if (update)
        BSON_APPEND_INT32(x->reply, "nModified", (int32_t)modified);
    if (nups)
        BSON_APPEND_ARRAY(x->reply, "upserted", &ups);
    if (nerr)
        BSON_APPEND_ARRAY(x->reply, "writeErrors", &errs);
out:
    bson_destroy(&ups);
    bson_destroy(&errs);
    return x->err.code ? -1 : 0;
}

/* ---- reads ---------------------------------------------------------------------------------- */

typedef struct dvec {
    sim_doc_t **v;
    size_t n, cap;
    bool failed;
} dvec_t;

static void dvec_push_copy(dvec_t *dv, const bson_t *b)
{
    if (dv->failed)
        return;
    if (dv->n == dv->cap) {
        size_t ncap = dv->cap ? dv->cap * 2 : 64;
        sim_doc_t **nv = realloc(dv->v, ncap * sizeof *nv);
        if (!nv) {
            dv->failed = true;
            return;
        }
        dv->v = nv;
        dv->cap = ncap;
    }
    sim_doc_t *d = sim_doc_new_raw(b);
    if (d)
        dv->v[dv->n++] = d;
    else
        dv->failed = true;
}

static void dvec_cut(dvec_t *dv, size_t from, size_t to)
{
    for (size_t i = from; i < to && i < dv->n; i++)
        sim_doc_unref(dv->v[i]);
}

static void dvec_free(dvec_t *dv)
{
    dvec_cut(dv, 0, dv->n);
    free(dv->v);
    dv->v = NULL;
    dv->n = dv->cap = 0;
}

/* Keep only documents matching filter. */
static void dvec_filter(dvec_t *dv, const bson_t *filter)
{
    size_t k = 0;
    for (size_t i = 0; i < dv->n; i++) {
        bson_t v;
        sim_doc_view(dv->v[i], &v);
        if (sim_match(&v, filter))
            dv->v[k++] = dv->v[i];
        else
            sim_doc_unref(dv->v[i]);
    }
    dv->n = k;
}

/* Matching documents of db.coll: the config database, or copies gathered from every shard. */
static int gather(mctx_t *x, const char *coll, const bson_t *filter, dvec_t *dv)
{
    if (!strcmp(x->db, "config")) {
        sim_doc_t **docs;
        pthread_mutex_lock(&x->cl->mu);
        long n = sim_config_docs(x->cl, coll, &docs);
        pthread_mutex_unlock(&x->cl->mu);
        if (n < 0)
            return fail(x, 146, "out of memory");
        dv->v = docs;
        dv->n = dv->cap = (size_t)n;
        dvec_filter(dv, filter);
        return 0;
    }
    if (!strcmp(x->db, "local") || !strcmp(x->db, "admin"))
        return sim_err_set(&x->err, 20, "the simulated mongos does not serve the %s database", x->db);
    sim_t *shards[SIM_MAX_SHARDS];
    int n = active(x->cl, shards);
    for (int k = 0; k < n && !dv->failed; k++) {
        pthread_mutex_lock(&shards[k]->mu);
        const sim_coll_t *c = sim_store_coll(shards[k]->store, x->db, coll, false);
        for (const sim_doc_t *d = c ? c->head : NULL; d && !dv->failed; d = d->next) {
            bson_t v;
            sim_doc_view(d, &v);
            if (sim_match(&v, filter))
                dvec_push_copy(dv, &v);
        }
        pthread_mutex_unlock(&shards[k]->mu);
    }
    return dv->failed ? fail(x, 146, "out of memory running the query") : 0;
}

/* {cursor: {firstBatch, id, ns}}: what does not fit stays in a cursor of the front's store. */
static int reply_docs(mctx_t *x, const char *ns, dvec_t *dv, int64_t batch, bool single, const bson_t *proj_spec,
                      const sim_proj_t *proj)
{
    bson_t cd, arr;
    size_t pos = 0;
    int64_t id = 0;
    BSON_APPEND_DOCUMENT_BEGIN(x->reply, "cursor", &cd);
    BSON_APPEND_ARRAY_BEGIN(&cd, "firstBatch", &arr);
    sim_fill_docs(&arr, dv->v, dv->n, &pos, batch, proj);
    bson_append_array_end(&cd, &arr);
    if (pos < dv->n && !single) {
        pthread_mutex_lock(&x->front->mu);
        sim_cursor_t *cur = sim_cursor_new(x->front->store, SIM_CUR_FIND, ns);
        if (cur && proj_spec && !(cur->proj_spec = bson_copy(proj_spec))) {
            sim_cursor_free(x->front->store, cur);
            cur = NULL;
        }
        if (cur) {
            cur->docs = dv->v;
            cur->ndocs = dv->n;
            cur->pos = pos;
            cur->proj = *proj;
            cur->proj.spec = cur->proj_spec;
            dv->v = NULL;
            dv->n = 0;
            id = cur->id;
        }
        pthread_mutex_unlock(&x->front->mu);
    }
    BSON_APPEND_INT64(&cd, "id", id);
    BSON_APPEND_UTF8(&cd, "ns", ns);
    bson_append_document_end(x->reply, &cd);
    dvec_free(dv);
    return 0;
}

static int sort_cmp(const void *a, const void *b, void *arg)
{
    bson_t x, y;
    sim_doc_view(*(sim_doc_t *const *)a, &x);
    sim_doc_view(*(sim_doc_t *const *)b, &y);
    return sim_sort_cmp(&x, &y, arg);
}

/* Sort, skip and limit dv in place. */
static void shape(dvec_t *dv, const sim_sort_t *sort, int64_t skip, int64_t limit)
{
    if (sort->n && dv->n > 1)
        qsort_r(dv->v, dv->n, sizeof *dv->v, sort_cmp, (void *)sort);
    size_t first = (size_t)skip < dv->n ? (size_t)skip : dv->n;
    dvec_cut(dv, 0, first);
    if (first) /* dv->v is NULL when nothing matched */
        memmove(dv->v, dv->v + first, (dv->n - first) * sizeof *dv->v);
    dv->n -= first;
    if (limit && dv->n > (size_t)limit) {
        dvec_cut(dv, (size_t)limit, dv->n);
        dv->n = (size_t)limit;
    }
}

static int m_find(mctx_t *x)
{
    const bson_t *b = &x->req->body;
    const char *coll;
    bson_t filter = BSON_INITIALIZER, sort_spec, proj_spec;
    sim_sort_t sort;
    sim_proj_t proj;
    char msg[200], ns[400];
    int64_t skip = 0, limit = 0, batch = DEFAULT_FIRST_BATCH;
    dvec_t dv = {0};
    if (!get_str(b, "find", &coll))
        return fail(x, 73, "collection name for find must be a string");
    get_doc(b, "filter", &filter);
    bool has_sort = get_doc(b, "sort", &sort_spec), has_proj = get_doc(b, "projection", &proj_spec);
    int has_batch = get_num(b, "batchSize", &batch);
    if (get_num(b, "skip", &skip) < 0 || get_num(b, "limit", &limit) < 0 || has_batch < 0 || skip < 0 || batch < 0)
        return fail(x, 14, "skip, limit and batchSize must be non-negative numbers");
    if (!sim_filter_check(&filter, msg, sizeof msg) ||
        !sim_sort_parse(has_sort ? &sort_spec : NULL, &sort, msg, sizeof msg) ||
        !sim_proj_parse(has_proj ? &proj_spec : NULL, &proj, msg, sizeof msg))
        return fail(x, 2, msg);
    bool single = get_bool(b, "singleBatch", false) || limit < 0;
    if (limit < 0)
        limit = -limit;
    if (limit && (!has_batch || batch > limit))
        batch = limit;
    snprintf(ns, sizeof ns, "%s.%s", x->db, coll);
    if (gather(x, coll, &filter, &dv) < 0) {
        dvec_free(&dv);
        return -1;
    }
    shape(&dv, &sort, skip, limit);
    return reply_docs(x, ns, &dv, batch, single, has_proj ? &proj_spec : NULL, &proj);
}

static int m_count(mctx_t *x)
{
    const char *coll;
    bson_t q = BSON_INITIALIZER;
    char msg[200];
    dvec_t dv = {0};
    if (!get_str(&x->req->body, "count", &coll))
        return fail(x, 73, "collection name for count must be a string");
    get_doc(&x->req->body, "query", &q);
    if (!sim_filter_check(&q, msg, sizeof msg))
        return fail(x, 2, msg);
    int rc = gather(x, coll, &q, &dv);
    if (rc == 0)
        BSON_APPEND_INT64(x->reply, "n", (int64_t)dv.n);
    dvec_free(&dv);
    return rc;
}

static int m_create(mctx_t *x)
{
    const char *coll;
    sim_t *shards[SIM_MAX_SHARDS];
    if (!get_str(&x->req->body, "create", &coll))
        return fail(x, 73, "collection name for create must be a string");
    if (!sim_ns_writable(x->db, coll, &x->err))
        return -1;
    int n = active(x->cl, shards);
    for (int k = 0; k < n; k++) {
        pthread_mutex_lock(&shards[k]->mu);
        sim_store_coll(shards[k]->store, x->db, coll, true);
        pthread_mutex_unlock(&shards[k]->mu);
    }
    return 0;
}

/* ---- aggregation over gathered documents (config database or the shards'):
 *      $match, $group ($sum/$min/$max), $sort, $skip, $limit, $count, $project -------------------- */

static int pipeline(mctx_t *x, dvec_t *dv, bson_iter_t *stages);

static int m_aggregate_docs(mctx_t *x, bson_iter_t *stages)
{
    const char *coll;
    bson_t cur_opts;
    int64_t batch = DEFAULT_FIRST_BATCH;
    dvec_t dv = {0};
    char ns[400];
    bson_t all = BSON_INITIALIZER;
    sim_proj_t proj = {0};
    if (!get_str(&x->req->body, "aggregate", &coll))
        return fail(x, 73, "aggregate must name a collection (or open a $changeStream)");
    if (get_doc(&x->req->body, "cursor", &cur_opts) && (get_num(&cur_opts, "batchSize", &batch) < 0 || batch < 0))
        return fail(x, 14, "cursor.batchSize must be a non-negative number");
    if (gather(x, coll, &all, &dv) < 0 || pipeline(x, &dv, stages) < 0) {
        dvec_free(&dv);
        return -1;
    }
    snprintf(ns, sizeof ns, "%s.%s", x->db, coll);
    proj.id = true;
    return reply_docs(x, ns, &dv, batch, false, NULL, &proj);
}


#define MAX_ACCS 8

typedef struct acc_def {
    const char *field;
    int op; /* 0 $sum, 1 $min, 2 $max */
    const char *path; /* NULL: constant */
    double konst;
} acc_def_t;

typedef struct group {
    bson_t key; /* {_id: value} */
    int64_t isum[MAX_ACCS];
    double dsum[MAX_ACCS];
    bool dbl[MAX_ACCS], set[MAX_ACCS];
    bson_value_t best[MAX_ACCS];
} group_t;

/* Value at "$a.b" in doc into out (a copy); false when missing. */
static bool path_value(const bson_t *doc, const char *path, bson_value_t *out)
{
    bson_iter_t it, d;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path + 1, &d))
        return false;
    bson_value_copy(bson_iter_value(&d), out);
    return true;
}

/* {_id: <group key>} of doc: "$path", a document of "$path"s, or a constant. */
static void group_key(const bson_t *doc, bson_iter_t *idspec, bson_t *key)
{
    bson_value_t v;
    if (BSON_ITER_HOLDS_UTF8(idspec) && bson_iter_utf8(idspec, NULL)[0] == '$') {
        if (path_value(doc, bson_iter_utf8(idspec, NULL), &v)) {
            BSON_APPEND_VALUE(key, "_id", &v);
            bson_value_destroy(&v);
        } else {
            BSON_APPEND_NULL(key, "_id");
        }
    } else if (BSON_ITER_HOLDS_DOCUMENT(idspec)) {
        bson_iter_t f;
        bson_t sub;
        bson_iter_recurse(idspec, &f);
        BSON_APPEND_DOCUMENT_BEGIN(key, "_id", &sub);
        while (bson_iter_next(&f)) {
            const char *p = BSON_ITER_HOLDS_UTF8(&f) ? bson_iter_utf8(&f, NULL) : "";
            if (p[0] == '$' && path_value(doc, p, &v)) {
                bson_append_value(&sub, bson_iter_key(&f), -1, &v);
                bson_value_destroy(&v);
            } else if (p[0] != '$') {
                bson_append_iter(&sub, bson_iter_key(&f), -1, &f);
            }
        }
        bson_append_document_end(key, &sub);
    } else {
        bson_append_iter(key, "_id", 3, idspec);
    }
}

static void acc_add(group_t *g, int i, const acc_def_t *a, const bson_t *doc)
{
    bson_value_t v;
    if (a->op == 0 && !a->path) {
        g->isum[i] += (int64_t)a->konst;
        return;
    }
    if (!path_value(doc, a->path, &v))
        return;
    if (a->op == 0) {
        if (v.value_type == BSON_TYPE_INT32 || v.value_type == BSON_TYPE_INT64)
            g->isum[i] += v.value_type == BSON_TYPE_INT32 ? v.value.v_int32 : v.value.v_int64;
        else if (v.value_type == BSON_TYPE_DOUBLE) {
            g->dsum[i] += v.value.v_double;
            g->dbl[i] = true;
        }
        bson_value_destroy(&v);
        return;
    }
    int c = g->set[i] ? sim_value_cmp(&v, &g->best[i]) : 0;
    if (!g->set[i] || (a->op == 1 ? c < 0 : c > 0)) {
        if (g->set[i])
            bson_value_destroy(&g->best[i]);
        g->best[i] = v;
        g->set[i] = true;
    } else {
        bson_value_destroy(&v);
    }
}

static int parse_accs(mctx_t *x, const bson_t *spec, bson_iter_t *idspec, acc_def_t *accs, int *nacc)
{
    bson_iter_t it, op;
    static const char *const ops[] = {"$sum", "$min", "$max"};
    bool has_id = false;
    *nacc = 0;
    bson_iter_init(&it, spec);
    while (bson_iter_next(&it)) {
        if (!strcmp(bson_iter_key(&it), "_id")) {
            *idspec = it;
            has_id = true;
            continue;
        }
        if (*nacc == MAX_ACCS || !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &op) || !bson_iter_next(&op))
            return fail(x, 15952, "$group fields must be {$sum|$min|$max: ...} (at most 8)");
        acc_def_t *a = &accs[(*nacc)++];
        a->field = bson_iter_key(&it);
        a->op = -1;
        for (int k = 0; k < 3; k++)
            if (!strcmp(bson_iter_key(&op), ops[k]))
                a->op = k;
        a->path = BSON_ITER_HOLDS_UTF8(&op) && bson_iter_utf8(&op, NULL)[0] == '$' ? bson_iter_utf8(&op, NULL) : NULL;
        a->konst = BSON_ITER_HOLDS_NUMBER(&op) ? bson_iter_as_double(&op) : 0;
        if (a->op < 0 || (a->op > 0 && !a->path) || (!a->path && !BSON_ITER_HOLDS_NUMBER(&op)))
            return fail(x, 15952, "the simulated mongos supports $sum (a number or \"$path\"), $min and $max (\"$path\")");
    }
    return has_id ? 0 : fail(x, 15955, "a group specification must include an _id");
}

static void group_emit(group_t *g, const acc_def_t *accs, int nacc, dvec_t *out)
{
    bson_t d = BSON_INITIALIZER;
    bson_concat(&d, &g->key);
    for (int i = 0; i < nacc; i++) {
        if (accs[i].op == 0 && g->dbl[i])
            BSON_APPEND_DOUBLE(&d, accs[i].field, g->dsum[i] + (double)g->isum[i]);
        else if (accs[i].op == 0)
            BSON_APPEND_INT64(&d, accs[i].field, g->isum[i]);
        else if (g->set[i])
            BSON_APPEND_VALUE(&d, accs[i].field, &g->best[i]);
        else
            BSON_APPEND_NULL(&d, accs[i].field);
        if (g->set[i])
            bson_value_destroy(&g->best[i]);
    }
    dvec_push_copy(out, &d);
    bson_destroy(&d);
    bson_destroy(&g->key);
}

static int st_group(mctx_t *x, dvec_t *dv, const bson_t *spec)
{
    acc_def_t accs[MAX_ACCS];
    bson_iter_t idspec;
    int nacc;
    group_t *gs = NULL;
    size_t ng = 0, gcap = 0;
    dvec_t out = {0};
    if (parse_accs(x, spec, &idspec, accs, &nacc) < 0)
        return -1;
    for (size_t i = 0; i < dv->n && !out.failed; i++) {
        bson_t doc, key = BSON_INITIALIZER;
        sim_doc_view(dv->v[i], &doc);
        group_key(&doc, &idspec, &key);
        size_t g = 0;
        while (g < ng && !(gs[g].key.len == key.len && !memcmp(bson_get_data(&gs[g].key), bson_get_data(&key), key.len)))
            g++;
        if (g == ng) {
            group_t *n2 = ng == gcap ? realloc(gs, (gcap = gcap * 2 + 16) * sizeof *gs) : gs;
            if (!n2) {
                out.failed = true;
                bson_destroy(&key);
                break;
            }
            gs = n2;
            memset(&gs[ng], 0, sizeof gs[ng]);
            bson_init(&gs[ng].key);
            bson_concat(&gs[ng].key, &key);
            ng++;
        }
        bson_destroy(&key);
        for (int a = 0; a < nacc; a++)
            acc_add(&gs[g], a, &accs[a], &doc);
    }
    for (size_t g = 0; g < ng; g++)
        group_emit(&gs[g], accs, nacc, &out);
    free(gs);
    dvec_free(dv);
    *dv = out;
    return out.failed ? fail(x, 146, "out of memory grouping") : 0;
}

static int st_project(mctx_t *x, dvec_t *dv, const bson_t *spec)
{
    sim_proj_t proj;
    char msg[200];
    if (!sim_proj_parse(spec, &proj, msg, sizeof msg))
        return fail(x, 2, msg);
    dvec_t out = {0};
    for (size_t i = 0; i < dv->n; i++) {
        bson_t v, wrap = BSON_INITIALIZER, inner;
        bson_iter_t it;
        sim_doc_view(dv->v[i], &v);
        sim_proj_append(&wrap, "d", 1, &v, &proj);
        if (bson_iter_init_find(&it, &wrap, "d") && get_doc(&wrap, "d", &inner))
            dvec_push_copy(&out, &inner);
        bson_destroy(&wrap);
    }
    dvec_free(dv);
    *dv = out;
    return out.failed ? fail(x, 146, "out of memory projecting") : 0;
}

static int st_simple(mctx_t *x, dvec_t *dv, const char *op, bson_iter_t *arg, const bson_t *spec)
{
    char msg[200];
    sim_sort_t sort = {0};
    if (!strcmp(op, "$match")) {
        if (!spec || !sim_filter_check(spec, msg, sizeof msg))
            return fail(x, 2, spec ? msg : "$match needs a document");
        dvec_filter(dv, spec);
        return 0;
    }
    if (!strcmp(op, "$sort")) {
        if (!spec || !sim_sort_parse(spec, &sort, msg, sizeof msg))
            return fail(x, 2, spec ? msg : "$sort needs a document");
        shape(dv, &sort, 0, 0);
        return 0;
    }
    if (!strcmp(op, "$count")) {
        if (!BSON_ITER_HOLDS_UTF8(arg) || !bson_iter_utf8(arg, NULL)[0])
            return fail(x, 40156, "the count field must be a non-empty string");
        size_t n = dv->n;
        bson_t d = BSON_INITIALIZER;
        BSON_APPEND_INT32(&d, bson_iter_utf8(arg, NULL), (int32_t)n);
        dvec_free(dv);
        if (n)
            dvec_push_copy(dv, &d);
        bson_destroy(&d);
        return dv->failed ? fail(x, 146, "out of memory") : 0;
    }
    int64_t v = BSON_ITER_HOLDS_NUMBER(arg) ? bson_iter_as_int64(arg) : -1;
    if (v < 0 || (strcmp(op, "$skip") && strcmp(op, "$limit")))
        return sim_err_set(&x->err, 40324, "Unrecognized pipeline stage name: '%.64s' (the simulated mongos "
                                           "runs $match, $group, $sort, $skip, $limit, $count, $project)", op);
    shape(dv, &sort, !strcmp(op, "$skip") ? v : 0, !strcmp(op, "$limit") ? (v ? v : 1) : 0);
    return 0;
}

static int pipeline(mctx_t *x, dvec_t *dv, bson_iter_t *stages)
{
    while (bson_iter_next(stages)) {
        uint32_t len;
        const uint8_t *data;
        bson_t stage, spec;
        bson_iter_t it;
        if (!BSON_ITER_HOLDS_DOCUMENT(stages))
            return fail(x, 14, "pipeline stages must be documents");
        bson_iter_document(stages, &len, &data);
        if (!bson_init_static(&stage, data, len) || !bson_iter_init(&it, &stage) || !bson_iter_next(&it))
            return fail(x, 40323, "A pipeline stage specification object must contain exactly one field.");
        const char *op = bson_iter_key(&it);
        bool has_spec = BSON_ITER_HOLDS_DOCUMENT(&it) && get_doc(&stage, op, &spec);
        int rc;
        if (!strcmp(op, "$group"))
            rc = has_spec ? st_group(x, dv, &spec) : fail(x, 15947, "a group's fields must be specified in an object");
        else if (!strcmp(op, "$project"))
            rc = has_spec ? st_project(x, dv, &spec) : fail(x, 15969, "$project specification must be an object");
        else
            rc = st_simple(x, dv, op, &it, has_spec ? &spec : NULL);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- change streams merged over the shards ----------------------------------------------------- */

typedef struct ev {
    uint64_t ts;
    const uint8_t *data;
    uint32_t len;
} ev_t;

static int ev_cmp(const void *a, const void *b)
{
    uint64_t x = ((const ev_t *)a)->ts, y = ((const ev_t *)b)->ts;
    return x < y ? -1 : x > y;
}

/* Read shard s's events after `after` into part; lower *bound to the shard's scan
 * position when it has more events at or below the watermark w. */
static long shard_events(sim_t *s, const sim_cursor_t *tmpl, uint64_t after, uint64_t w, size_t max, size_t bytes,
                         bson_t *part, uint64_t *bound, bson_t *scratch, sim_err_t *e)
{
    sim_cursor_t sub = *tmpl;
    uint32_t idx = 0;
    sub.coll = NULL;
    sub.split = false; /* the merge goes by event: an event over 16 MB fails with 10334 here */
    pthread_mutex_lock(&s->mu);
    long n = sim_cs_position(s->store, &sub, after, e);
    if (n == 0)
        n = sim_cs_fill(s->store, &sub, part, &idx, max, bytes, scratch, e);
    if (n >= 0 && sub.next_seq < s->store->end_seq && sim_oplog_at(s->store, sub.next_seq)->ts <= w &&
        sub.after < *bound)
        *bound = sub.after;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static size_t collect_events(bson_t *parts, int n, ev_t *evs, uint64_t bound)
{
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        bson_iter_t it, f;
        if (!bson_iter_init(&it, &parts[i]))
            continue;
        while (bson_iter_next(&it)) {
            uint32_t len, t, inc;
            const uint8_t *data;
            bson_t ev;
            bson_iter_document(&it, &len, &data);
            if (!bson_init_static(&ev, data, len) || !bson_iter_init_find(&f, &ev, "clusterTime"))
                continue;
            bson_iter_timestamp(&f, &t, &inc);
            if (SIM_TS(t, inc) <= bound)
                evs[k++] = (ev_t){SIM_TS(t, inc), data, len};
        }
    }
    qsort(evs, k, sizeof *evs, ev_cmp);
    return k;
}

/* Append the events after *after, in cluster-time order, up to max; advance
 * *after to the position scanned (the postBatchResumeToken). *w gets the
 * watermark read. Returns the count or -1 with e set. */
static long merged_fill(mctx_t *x, const sim_cursor_t *tmpl, uint64_t *after, bson_t *arr, size_t max,
                        uint64_t *w, sim_err_t *e)
{
    sim_t *shards[SIM_MAX_SHARDS];
    bson_t parts[SIM_MAX_SHARDS];
    pthread_mutex_lock(&x->cl->mu);
    int n = x->cl->nshards; /* removed shards too: their earlier events stay in the history */
    for (int i = 0; i < n; i++)
        shards[i] = x->cl->shards[i].sim;
    pthread_mutex_unlock(&x->cl->mu);
    *w = clock_now(x->cl);
    uint64_t bound = *w;
    long total = 0, rc = 0;
    for (int i = 0; i < n; i++)
        bson_init(&parts[i]);
    for (int i = 0; i < n && rc >= 0; i++) {
        rc = shard_events(shards[i], tmpl, *after, *w, max, MAX_BATCH_BYTES / (size_t)n, &parts[i], &bound,
                          &x->cli->scratch, e);
        total += rc > 0 ? rc : 0;
    }
    ev_t *evs = rc >= 0 && total ? malloc((size_t)total * sizeof *evs) : NULL;
    size_t k = evs ? collect_events(parts, n, evs, bound) : 0, out = 0;
    if (rc >= 0 && total && !evs)
        rc = sim_err_set(e, 146, "out of memory merging change events");
    for (; rc >= 0 && out < k && out < max; out++) {
        char kb[16];
        const char *key;
        size_t kl;
        bson_t ev;
        akey((uint32_t)out, &key, &kl, kb);
        bson_init_static(&ev, evs[out].data, evs[out].len);
        bson_append_document(arr, key, (int)kl, &ev);
    }
    if (rc >= 0) {
        uint64_t pos = out < k ? evs[out - 1].ts : bound;
        if (pos > *after)
            *after = pos;
    }
    free(evs);
    for (int i = 0; i < n; i++)
        bson_destroy(&parts[i]);
    return rc < 0 ? -1 : (long)out;
}

/* Wait until the clock moves past w, the deadline passes or the client goes. */
static void await_tick(mctx_t *x, uint64_t w, int64_t deadline)
{
    sim_clock_t *c = &x->cl->clock;
    int64_t left = deadline - sim_mono_ms();
    if (left <= 0)
        return;
    if (left > WAIT_SLICE_MS)
        left = WAIT_SLICE_MS;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)left * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    if (c->last_ts <= w)
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    pthread_mutex_unlock(&c->mu);
}

/* Take cursor id of the front's store for a merged read: a copy of it in *tmpl. */
static int cursor_take(mctx_t *x, int64_t id, sim_cursor_t *tmpl)
{
    pthread_mutex_lock(&x->front->mu);
    sim_cursor_t *cur = sim_cursor_get(x->front->store, id);
    int rc = 0;
    if (!cur || cur->killed)
        rc = sim_err_set(&x->err, 43, "cursor id %lld not found", (long long)id);
    else if (cur->in_use)
        rc = sim_err_set(&x->err, 292, "cursor id %lld is already in use", (long long)id);
    else {
        cur->in_use = true;
        *tmpl = *cur;
    }
    pthread_mutex_unlock(&x->front->mu);
    return rc;
}

static void cursor_give(mctx_t *x, int64_t id, uint64_t after, bool drop)
{
    pthread_mutex_lock(&x->front->mu);
    sim_cursor_t *cur = sim_cursor_get(x->front->store, id);
    if (cur) {
        cur->after = after;
        cur->in_use = false;
        cur->last_used_ms = sim_mono_ms();
        if (drop || cur->killed)
            sim_cursor_free(x->front->store, cur);
    }
    pthread_mutex_unlock(&x->front->mu);
}

static void cs_reply(mctx_t *x, const char *batch_name, bson_t *arr, uint64_t after, int64_t id, const char *ns)
{
    bson_t cd;
    BSON_APPEND_DOCUMENT_BEGIN(x->reply, "cursor", &cd);
    BSON_APPEND_ARRAY(&cd, batch_name, arr);
    sim_token_append(&cd, "postBatchResumeToken", after);
    BSON_APPEND_INT64(&cd, "id", id);
    BSON_APPEND_UTF8(&cd, "ns", ns);
    bson_append_document_end(x->reply, &cd);
}

static int m_get_more_change(mctx_t *x, int64_t id)
{
    const bson_t *b = &x->req->body;
    int64_t batch = 0, max_time = -1;
    sim_cursor_t tmpl;
    bson_t arr = BSON_INITIALIZER;
    uint64_t w;
    long n = 0;
    if (get_num(b, "batchSize", &batch) < 0 || batch < 0 || get_num(b, "maxTimeMS", &max_time) < 0)
        return fail(x, 14, "batchSize and maxTimeMS must be non-negative numbers");
    if (cursor_take(x, id, &tmpl) < 0)
        return -1;
    uint64_t after = tmpl.after;
    int64_t deadline = sim_mono_ms() + (max_time >= 0 ? max_time : AWAIT_DEFAULT_MS);
    for (int spins = 0; spins < 1000000; spins++) {
        n = merged_fill(x, &tmpl, &after, &arr, batch ? (size_t)batch : SIZE_MAX / 2, &w, &x->err);
        if (n != 0 || sim_mono_ms() >= deadline)
            break;
        if (atomic_load(&x->cli->dropped) || atomic_load(&x->front->stopping)) {
            cursor_give(x, id, after, false);
            bson_destroy(&arr);
            return M_DROPPED;
        }
        await_tick(x, w, deadline);
    }
    if (n < 0)
        x->err.label = "NonResumableChangeStreamError";
    else
        cs_reply(x, "nextBatch", &arr, after, id, tmpl.ns);
    cursor_give(x, id, after, n < 0);
    bson_destroy(&arr);
    return n < 0 ? -1 : 0;
}

/* After the front opened the stream (options parsed, cursor made), position it
 * on the cluster clock and answer the first batch merged from the shards. */
static int m_change_stream_opened(mctx_t *x, const bson_t *cs_spec, int64_t id)
{
    bson_t cur_opts, arr = BSON_INITIALIZER;
    int64_t batch = DEFAULT_FIRST_BATCH;
    sim_cursor_t tmpl;
    uint64_t w;
    bool has_start = bson_has_field(cs_spec, "resumeAfter") || bson_has_field(cs_spec, "startAfter") ||
                     bson_has_field(cs_spec, "startAtOperationTime");
    if (get_doc(&x->req->body, "cursor", &cur_opts))
        get_num(&cur_opts, "batchSize", &batch);
    if (cursor_take(x, id, &tmpl) < 0)
        return -1;
    uint64_t after = has_start ? tmpl.after : clock_now(x->cl);
    if (!has_start)
        x->op_time = after + 1;
    long n = batch > 0 ? merged_fill(x, &tmpl, &after, &arr, (size_t)batch, &w, &x->err) : 0;
    if (n < 0)
        x->err.label = "NonResumableChangeStreamError";
    else
        cs_reply(x, "firstBatch", &arr, after, id, tmpl.ns);
    cursor_give(x, id, after, n < 0);
    bson_destroy(&arr);
    return n < 0 ? -1 : 0;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    mfn fn;
} mcommands[] = {
    {"balancerStatus", m_balancer_status}, {"count", m_count},         {"create", m_create},
    {"delete", m_update_delete},           {"find", m_find},           {"hello", m_hello},
    {"insert", m_insert},                  {"isMaster", m_hello},      {"ismaster", m_hello},
    {"listShards", m_list_shards},         {"update", m_update_delete},
};

/* Run on the front's replica-set code: nothing of the cluster in them. */
static const char *const front_cmds[] = {"buildInfo",   "buildinfo",   "endSessions",  "killCursors",
                                         "ping",        "saslContinue", "saslStart",   "serverStatus"};

static void error_reply(bson_t *reply, const sim_err_t *e)
{
    bson_reinit(reply);
    BSON_APPEND_DOUBLE(reply, "ok", 0.0);
    BSON_APPEND_UTF8(reply, "errmsg", e->msg);
    BSON_APPEND_INT32(reply, "code", e->code);
    if (e->label) {
        bson_t labels;
        BSON_APPEND_ARRAY_BEGIN(reply, "errorLabels", &labels);
        BSON_APPEND_UTF8(&labels, "0", e->label);
        bson_append_array_end(reply, &labels);
    }
}

static int finish(mctx_t *x, int rc)
{
    if (rc == M_DROPPED)
        return SIM_CLOSE;
    if (rc < 0)
        error_reply(x->reply, &x->err);
    else
        BSON_APPEND_DOUBLE(x->reply, "ok", 1.0);
    uint64_t now = clock_now(x->cl), op = x->op_time ? x->op_time : now;
    append_cluster_time(x->reply, now > op ? now : op, op);
    return x->req->more_to_come ? SIM_NO_REPLY : SIM_REPLY;
}

/* The first stage of an aggregate's pipeline; false when there is none. */
static bool first_stage(const bson_t *body, bson_iter_t *stages, const char **op, bson_t *spec)
{
    bson_iter_t it, first;
    uint32_t len;
    const uint8_t *data;
    bson_t stage;
    if (!bson_iter_init_find(&it, body, "pipeline") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, stages))
        return false;
    first = *stages;
    if (!bson_iter_next(&first) || !BSON_ITER_HOLDS_DOCUMENT(&first))
        return false;
    bson_iter_document(&first, &len, &data);
    if (!bson_init_static(&stage, data, len) || !bson_iter_init(&it, &stage) || !bson_iter_next(&it))
        return false;
    *op = bson_iter_key(&it);
    return get_doc(&stage, *op, spec) || true;
}

/* aggregate: a $changeStream opens on the front (option parsing, cursor) and is
 * then answered from the shards; the config database runs a small pipeline. */
static int m_aggregate(mctx_t *x, int *handled)
{
    bson_iter_t stages;
    const char *op = "";
    bson_t spec = BSON_INITIALIZER;
    bool any = first_stage(&x->req->body, &stages, &op, &spec);
    *handled = 1;
    if (any && !strcmp(op, "$changeStream")) {
        *handled = 0;
        return 0;
    }
    return m_aggregate_docs(x, &stages);
}

/* A $changeStream aggregate: let the front parse it, then answer from the shards. */
static int change_stream(mctx_t *x, sim_client_t *cli, const sim_request_t *req, bson_t *reply)
{
    bson_iter_t stages, it;
    const char *op;
    bson_t spec = BSON_INITIALIZER;
    int rc = sim_dispatch(x->front, cli, req, reply);
    if (rc != SIM_REPLY && rc != SIM_NO_REPLY)
        return rc;
    if (!bson_iter_init_find(&it, reply, "ok") || bson_iter_as_double(&it) != 1.0 ||
        !bson_iter_init_find(&it, reply, "cursor") || !bson_iter_recurse(&it, &it) || !bson_iter_find(&it, "id"))
        return rc; /* the front's error reply stands */
    int64_t id = bson_iter_as_int64(&it);
    first_stage(&req->body, &stages, &op, &spec);
    bson_reinit(reply);
    return finish(x, m_change_stream_opened(x, &spec, id));
}

/* A getMore of a change-stream cursor is merged here; other cursors are the front's. */
static bool is_change_cursor(mctx_t *x, int64_t *id)
{
    bool cs = false;
    if (get_num(&x->req->body, "getMore", id) != 1)
        return false;
    pthread_mutex_lock(&x->front->mu);
    sim_cursor_t *cur = sim_cursor_get(x->front->store, *id);
    cs = cur && cur->kind == SIM_CUR_CHANGE;
    pthread_mutex_unlock(&x->front->mu);
    return cs;
}

static mfn find_mcommand(const char *name)
{
    for (size_t i = 0; i < sizeof mcommands / sizeof mcommands[0]; i++)
        if (!strcmp(mcommands[i].name, name))
            return mcommands[i].fn;
    return NULL;
}

static bool is_front_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof front_cmds / sizeof front_cmds[0]; i++)
        if (!strcmp(front_cmds[i], name))
            return true;
    return false;
}

/* Commands answered by the first shard as a stand-in for the cluster. */
static bool is_shard_cmd(const char *name)
{
    return !strcmp(name, "listCollections") || !strcmp(name, "listDatabases") || !strcmp(name, "collStats");
}

static int precheck(mctx_t *x, mfn fn)
{
    if (!x->db && !get_str(&x->req->body, "$db", &x->db))
        return fail(x, 40571, "OP_MSG requests require a $db argument");
    if (x->req->opcode == SIM_OP_QUERY && fn != m_hello)
        return sim_err_set(&x->err, 352, "Unsupported OP_QUERY command: %s", x->name);
    if (x->front->auth.on && !x->cli->auth.authenticated && fn != m_hello)
        return sim_err_set(&x->err, 13, "command %s requires authentication", x->name);
    if (fn) { /* the front's own commands (balancerStatus, find, ...) honour FAIL_COMMAND */
        pthread_mutex_lock(&x->front->mu);
        int inject = sim_take_fault(x->front, x->name);
        pthread_mutex_unlock(&x->front->mu);
        if (inject)
            return sim_err_set(&x->err, inject, "simulated %s failure (control channel FAIL_COMMAND)", x->name);
    }
    return 0;
}

int sim_mongos_dispatch(sim_t *front, sim_client_t *cli, const sim_request_t *req, bson_t *reply)
{
    mctx_t x = {.front = front, .cl = front->cluster, .cli = cli, .req = req, .reply = reply, .db = req->db};
    bson_iter_t it;
    char name[64] = "";
    int64_t id = 0; /* set by is_change_cursor when it is one */
    if (bson_iter_init(&it, &req->body) && bson_iter_next(&it))
        snprintf(name, sizeof name, "%s", bson_iter_key(&it));
    x.name = name;
    if (is_front_cmd(name) || (!strcmp(name, "getMore") && !is_change_cursor(&x, &id)))
        return sim_dispatch(front, cli, req, reply);
    if (is_shard_cmd(name)) {
        sim_t *shards[SIM_MAX_SHARDS];
        sim_count_command(front, name);
        return active(x.cl, shards) ? sim_dispatch(shards[0], cli, req, reply) : sim_dispatch(front, cli, req, reply);
    }
    mfn fn = find_mcommand(name);
    if (!strcmp(name, "aggregate")) {
        int handled = 1, rc = precheck(&x, NULL);
        if (rc == 0)
            rc = m_aggregate(&x, &handled);
        if (!handled)
            return change_stream(&x, cli, req, reply);
        sim_count_command(front, name);
        return finish(&x, rc);
    }
    sim_count_command(front, name[0] ? name : "<empty>");
    if (!strcmp(name, "getMore"))
        return finish(&x, precheck(&x, NULL) < 0 ? -1 : m_get_more_change(&x, id));
    if (!fn)
        return finish(&x, sim_err_set(&x.err, 59, "no such command: '%.60s' (the simulated mongos implements: hello, "
                                                  "isMaster, listShards, balancerStatus, insert, update, delete, "
                                                  "find, count, aggregate, getMore, create, killCursors, ...)",
                                      name));
    return finish(&x, precheck(&x, fn) < 0 ? -1 : fn(&x));
}
