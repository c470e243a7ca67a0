/* SPDX-License-Identifier: Apache-2.0 */
/* Sharded cluster mode: the shared clock, the shards, the chunk map of
 * collections sharded on {_id: "hashed"}, migrations, the balancer and the
 * config database (see shard.h for the lock order). */
#include "shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control.h"
#include "core/log.h"
#include "generator.h"
#include "server.h"

#define BALANCER_ROUND_MS 1000

/* ---- the shared clock ------------------------------------------------------- */

void sim_clock_next(struct sim_clock *c, uint64_t *ts, int64_t *wall_ms)
{
    pthread_mutex_lock(&c->mu);
    int64_t now = sim_now_ms();
    if (now < c->last_wall_ms)
        now = c->last_wall_ms;
    uint32_t t = (uint32_t)(now / 1000);
    c->last_ts = t > SIM_TS_T(c->last_ts) ? SIM_TS(t, 1) : c->last_ts + 1;
    c->last_wall_ms = now;
    *ts = c->last_ts;
    *wall_ms = now;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static uint64_t clock_now(sim_clock_t *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t ts = c->last_ts;
    pthread_mutex_unlock(&c->mu);
    return ts;
}

/* ---- hashing ------------------------------------------------------------------- */

static int64_t hash_raw(uint8_t type, const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ type;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    /* splitmix64 finaliser: FNV alone spreads short keys poorly over the range. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return (int64_t)h;
}

int64_t sim_shard_hash(const bson_value_t *v)
{
    bson_t tmp = BSON_INITIALIZER;
    bson_iter_t it;
    int64_t h = 0;
    if (bson_append_value(&tmp, "k", 1, v) && bson_iter_init_find(&it, &tmp, "k"))
        h = hash_raw((uint8_t)bson_iter_type(&it), bson_get_data(&tmp) + it.d1, it.next_off - it.d1);
    bson_destroy(&tmp);
    return h;
}

static int64_t doc_hash(const sim_doc_t *d)
{
    return hash_raw(d->id_type, d->data + d->id_off, d->id_len);
}

/* ---- shards -------------------------------------------------------------------- */

static int active_shards(const sim_cluster_t *cl, int *idx)
{
    int n = 0;
    for (int i = 0; i < cl->nshards; i++)
        if (!cl->shards[i].removed)
            idx[n++] = i;
    return n;
}

static int shard_find(const sim_cluster_t *cl, const char *spec)
{
    char *end;
    long v = strtol(spec, &end, 10);
    if (*spec && !*end)
        return v >= 0 && v < cl->nshards && !cl->shards[v].removed ? (int)v : -1;
    for (int i = 0; i < cl->nshards; i++)
        if (!cl->shards[i].removed && !strcmp(cl->shards[i].name, spec))
            return i;
    return -1;
}

/* Start shard number nshards; caller holds mu (or is starting up). */
static int shard_add(sim_cluster_t *cl)
{
    if (cl->nshards == SIM_MAX_SHARDS)
        return -ENOSPC;
    int k = cl->nshards;
    sim_shard_t *sh = &cl->shards[k];
    sim_config_t cfg = cl->front->cfg;
    snprintf(sh->name, sizeof sh->name, "shard%d", k);
    snprintf(cfg.set_name, sizeof cfg.set_name, "%s", sh->name);
    cfg.port = 0;
    cfg.rate = 0;
    cfg.approve_after_ms = 0;
    cfg.collections = 0;
    cfg.shards = 0;
    sim_t *s = sim_new(&cfg);
    if (!s)
        return -ENOMEM;
    s->auth = cl->front->auth;
    s->main_thread = cl->front->main_thread;
    pthread_mutex_lock(&cl->clock.mu);
    if (s->store->last_ts > cl->clock.last_ts) {
        cl->clock.last_ts = s->store->last_ts;
        cl->clock.last_wall_ms = s->store->last_wall_ms;
    }
    pthread_mutex_unlock(&cl->clock.mu);
    s->store->clock = &cl->clock;
    if (cl->start_floor)
        s->store->evicted_max = cl->start_floor;
    s->server = sim_server_start(s, sh->name, cfg.bind, 0, cfg.max_connections, sim_serve_mongo);
    if (s->server)
        s->gen = sim_gen_start(s);
    if (!s->server || !s->gen) {
        sim_server_stop(s->server);
        sim_destroy(s);
        return -EIO;
    }
    s->port = sim_server_port(s->server);
    snprintf(s->members[0].host, sizeof s->members[0].host, "%s:%d", cfg.bind, s->port);
    sh->sim = s;
    sh->removed = false;
    cl->nshards++;
    POH_INFO(SIM_LOG, "shard %s: replica set primary on %s", sh->name, s->members[0].host);
    return k;
}

/* "setName/host1,host2,..." */
static void shard_host(const sim_shard_t *sh, char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "%s/", sh->name);
    for (int i = 0; i < sh->sim->nmembers && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "," : "", sh->sim->members[i].host);
}

/* ---- chunks ---------------------------------------------------------------------- */

static bool chunk_has(const sim_chunk_t *c, int64_t h)
{
    return (c->min_key || h >= c->min) && (c->max_key || h < c->max);
}

static size_t chunk_of(const sim_shcoll_t *sc, int64_t h)
{
    size_t lo = 0, hi = sc->nchunks;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (sc->chunks[mid].min <= h)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Fill n chunks splitting [lo, hi] evenly (lo/hi: MinKey/MaxKey flags kept). */
static void split_range(sim_chunk_t *out, size_t n, const sim_chunk_t *parent, uint32_t major)
{
    uint64_t a = parent->min_key ? 0 : (uint64_t)parent->min ^ (1ULL << 63);
    uint64_t b = parent->max_key ? UINT64_MAX : ((uint64_t)parent->max ^ (1ULL << 63)) - 1;
    uint64_t step = (b - a) / n + (n == 1 ? 0 : 1);
    for (size_t i = 0; i < n; i++) {
        sim_chunk_t *c = &out[i];
        *c = *parent;
        bson_oid_init(&c->id, NULL);
        c->major = major;
        c->min = (int64_t)((a + step * i) ^ (1ULL << 63));
        c->max = (int64_t)((a + step * (i + 1)) ^ (1ULL << 63));
        c->min_key = i == 0 && parent->min_key;
        if (i == 0)
            c->min = parent->min;
        c->max_key = i == n - 1 && parent->max_key;
        if (i == n - 1)
            c->max = parent->max;
    }
}

static sim_shcoll_t *shcoll_new(sim_cluster_t *cl, const char *ns)
{
    int idx[SIM_MAX_SHARDS];
    int n = active_shards(cl, idx);
    if (n == 0)
        return NULL;
    if (cl->ncolls == cl->ccap) {
        size_t ncap = cl->ccap * 2 + 8;
        sim_shcoll_t **nc = realloc(cl->colls, ncap * sizeof *nc);
        if (!nc)
            return NULL;
        cl->colls = nc;
        cl->ccap = ncap;
    }
    sim_shcoll_t *sc = calloc(1, sizeof *sc);
    if (!sc || !(sc->chunks = calloc((size_t)n * 2, sizeof *sc->chunks))) {
        free(sc);
        return NULL;
    }
    snprintf(sc->ns, sizeof sc->ns, "%s", ns);
    for (int i = 0; i < 16; i++)
        sc->uuid[i] = (uint8_t)(rand() & 0xff);
    sc->uuid[6] = (uint8_t)((sc->uuid[6] & 0x0f) | 0x40);
    sc->uuid[8] = (uint8_t)((sc->uuid[8] & 0x3f) | 0x80);
    bson_oid_init(&sc->epoch, NULL);
    sc->created_ts = clock_now(&cl->clock);
    sc->created_ms = sim_now_ms();
    sc->major = 1;
    sim_chunk_t all = {.min = INT64_MIN, .max = INT64_MAX, .min_key = true, .max_key = true,
                       .valid_after = sc->created_ts};
    sc->nchunks = (size_t)n * 2;
    split_range(sc->chunks, sc->nchunks, &all, 1);
    for (size_t i = 0; i < sc->nchunks; i++)
        sc->chunks[i].shard = idx[i / 2];
    cl->colls[cl->ncolls++] = sc;
    return sc;
}

static sim_shcoll_t *shcoll_get(sim_cluster_t *cl, const char *ns, bool create)
{
    for (size_t i = 0; i < cl->ncolls; i++)
        if (!strcmp(cl->colls[i]->ns, ns))
            return cl->colls[i];
    return create ? shcoll_new(cl, ns) : NULL;
}

/* Split every chunk of sc so that there are about total chunks; owners kept. */
static int shcoll_split(sim_shcoll_t *sc, size_t total)
{
    size_t per = total / sc->nchunks + (total % sc->nchunks ? 1 : 0);
    if (per < 2)
        return 0;
    sim_chunk_t *nc = calloc(sc->nchunks * per, sizeof *nc);
    if (!nc)
        return -ENOMEM;
    sc->major++;
    for (size_t i = 0; i < sc->nchunks; i++)
        split_range(nc + i * per, per, &sc->chunks[i], sc->major);
    free(sc->chunks);
    sc->chunks = nc;
    sc->nchunks *= per;
    return 0;
}

sim_t *sim_cluster_lock_id(sim_cluster_t *cl, const char *db, const char *coll, const bson_value_t *id)
{
    char ns[400];
    snprintf(ns, sizeof ns, "%s.%s", db, coll);
    pthread_mutex_lock(&cl->mu);
    sim_shcoll_t *sc = shcoll_get(cl, ns, true);
    if (!sc) {
        pthread_mutex_unlock(&cl->mu);
        return NULL;
    }
    sim_t *s = cl->shards[sc->chunks[chunk_of(sc, sim_shard_hash(id))].shard].sim;
    pthread_mutex_lock(&s->mu);
    sim_repl_tick(s);
    return s;
}

sim_t *sim_cluster_lock_oid(sim_cluster_t *cl, const char *db, const char *coll, const bson_oid_t *oid)
{
    bson_value_t v = {.value_type = BSON_TYPE_OID};
    bson_oid_copy(oid, &v.value.v_oid);
    return sim_cluster_lock_id(cl, db, coll, &v);
}

void sim_cluster_unlock(sim_cluster_t *cl, sim_t *shard)
{
    pthread_cond_broadcast(&shard->wake);
    pthread_mutex_unlock(&shard->mu);
    pthread_mutex_unlock(&cl->mu);
}

/* ---- changelog and migrations ------------------------------------------------------ */

static void append_bound(bson_t *b, const char *k, int64_t v, bool minkey, bool maxkey)
{
    bson_t d;
    BSON_APPEND_DOCUMENT_BEGIN(b, k, &d);
    if (minkey)
        BSON_APPEND_MINKEY(&d, "_id");
    else if (maxkey)
        BSON_APPEND_MAXKEY(&d, "_id");
    else
        BSON_APPEND_INT64(&d, "_id", v);
    bson_append_document_end(b, &d);
}

static void changelog_add(sim_cluster_t *cl, const char *what, const char *ns, const sim_chunk_t *c, int from,
                          int to, const char *errmsg)
{
    bson_t *e = bson_new(), det;
    bson_oid_t oid;
    char id[200];
    int64_t now = sim_now_ms();
    bson_oid_init(&oid, NULL);
    char hex[25];
    bson_oid_to_string(&oid, hex);
    snprintf(id, sizeof id, "%s-%lld-%s", cl->front->members[0].host, (long long)now, hex);
    BSON_APPEND_UTF8(e, "_id", id);
    BSON_APPEND_UTF8(e, "server", cl->front->members[0].host);
    BSON_APPEND_UTF8(e, "shard", cl->shards[from].name);
    BSON_APPEND_UTF8(e, "clientAddr", "");
    BSON_APPEND_DATE_TIME(e, "time", now);
    BSON_APPEND_UTF8(e, "what", what);
    BSON_APPEND_UTF8(e, "ns", ns);
    BSON_APPEND_DOCUMENT_BEGIN(e, "details", &det);
    append_bound(&det, "min", c->min, c->min_key, false);
    append_bound(&det, "max", c->max, false, c->max_key);
    BSON_APPEND_UTF8(&det, "from", cl->shards[from].name);
    BSON_APPEND_UTF8(&det, "to", cl->shards[to].name);
    if (errmsg)
        BSON_APPEND_UTF8(&det, "errmsg", errmsg);
    bson_append_document_end(e, &det);
    if (!cl->changelog)
        cl->changelog = calloc(SIM_MAX_CHANGELOG, sizeof *cl->changelog);
    if (!cl->changelog) {
        bson_destroy(e);
        return;
    }
    size_t slot = cl->log_seq++ % SIM_MAX_CHANGELOG;
    if (cl->changelog[slot])
        bson_destroy(cl->changelog[slot]);
    cl->changelog[slot] = e;
    if (cl->nlog < SIM_MAX_CHANGELOG)
        cl->nlog++;
}

/* Move the documents of chunk c of sc from shard from to shard to; caller
 * holds mu. No change events: migrations write fromMigrate entries. */
static int move_docs(sim_cluster_t *cl, const sim_shcoll_t *sc, const sim_chunk_t *c, int from, int to)
{
    char db[256];
    const char *dot = strchr(sc->ns, '.');
    snprintf(db, sizeof db, "%.*s", (int)(dot - sc->ns), sc->ns);
    sim_t *a = cl->shards[from].sim, *b = cl->shards[to].sim;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    pthread_mutex_lock(&b->mu);
    sim_coll_t *fc = sim_store_coll(a->store, db, dot + 1, false);
    sim_coll_t *tc = fc && fc->count ? sim_store_coll(b->store, db, dot + 1, true) : NULL;
    if (fc && fc->count && !tc)
        rc = -ENOMEM;
    for (sim_doc_t *d = tc ? fc->head : NULL, *next; d && rc == 0; d = next) {
        next = d->next;
        if (!chunk_has(c, doc_hash(d)))
            continue;
        if (sim_coll_find_id(tc, d->id_type, d->data + d->id_off, d->id_len))
            continue; /* already there (written directly to the shard): keep the donor's */
        rc = sim_coll_move_doc(fc, tc, d);
    }
    pthread_cond_broadcast(&b->wake);
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* Migrate chunk ci of sc to shard to; caller holds mu. 0 committed, -1 failed. */
static int migrate(sim_cluster_t *cl, sim_shcoll_t *sc, size_t ci, int to, bool fail)
{
    sim_chunk_t *c = &sc->chunks[ci];
    int from = c->shard;
    changelog_add(cl, "moveChunk.start", sc->ns, c, from, to, NULL);
    const char *why = fail ? "simulated migration failure (control channel MIGRATE ... fail)"
                           : c->jumbo ? "chunk is jumbo and cannot be moved" : NULL;
    if (!why && move_docs(cl, sc, c, from, to) < 0)
        why = "out of memory moving documents";
    if (why) {
        changelog_add(cl, "moveChunk.error", sc->ns, c, from, to, why);
        cl->migrations_failed++;
        POH_INFO(SIM_LOG, "migration of a %s chunk from %s to %s failed: %s", sc->ns, cl->shards[from].name,
                 cl->shards[to].name, why);
        return -1;
    }
    c->shard = to;
    c->major = ++sc->major;
    c->valid_after = clock_now(&cl->clock);
    changelog_add(cl, "moveChunk.commit", sc->ns, c, from, to, NULL);
    cl->migrations_ok++;
    return 0;
}

/* One balancer round: per collection, move one chunk from the shard with the
 * most to the one with the fewest when they differ by 2 or more, and move
 * chunks off removed shards. Caller holds mu. */
static void balancer_round(sim_cluster_t *cl)
{
    int idx[SIM_MAX_SHARDS];
    int n = active_shards(cl, idx);
    cl->rounds++;
    if (n == 0)
        return;
    cl->in_round = true;
    for (size_t k = 0; k < cl->ncolls; k++) {
        sim_shcoll_t *sc = cl->colls[k];
        size_t count[SIM_MAX_SHARDS] = {0};
        for (size_t i = 0; i < sc->nchunks; i++)
            count[sc->chunks[i].shard]++;
        int hi = idx[0], lo = idx[0];
        for (int j = 1; j < n; j++) {
            if (count[idx[j]] > count[hi])
                hi = idx[j];
            if (count[idx[j]] < count[lo])
                lo = idx[j];
        }
        if (count[hi] < count[lo] + 2)
            continue;
        for (size_t i = 0; i < sc->nchunks; i++)
            if (sc->chunks[i].shard == hi && !sc->chunks[i].jumbo) {
                migrate(cl, sc, i, lo, false);
                break;
            }
    }
    cl->in_round = false;
}

static void *balancer_main(void *arg)
{
    sim_cluster_t *cl = arg;
    pthread_mutex_lock(&cl->mu);
    while (!cl->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += BALANCER_ROUND_MS / 1000;
        pthread_cond_timedwait(&cl->bal_cv, &cl->mu, &ts);
        if (!cl->stop && cl->balancer_on)
            balancer_round(cl);
    }
    pthread_mutex_unlock(&cl->mu);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------------ */

static void init_sync(sim_cluster_t *cl)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cl->clock.cv, &ca);
    pthread_cond_init(&cl->bal_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&cl->clock.mu, NULL);
    pthread_mutex_init(&cl->mu, NULL);
}

sim_cluster_t *sim_cluster_start(sim_t *front, int n)
{
    sim_cluster_t *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->front = front;
    cl->balancer_on = true;
    init_sync(cl);
    cl->clock.last_ts = front->store->last_ts;
    cl->clock.last_wall_ms = front->store->last_wall_ms;
    front->store->clock = &cl->clock;
    for (int i = 0; i < n; i++) {
        int rc = shard_add(cl);
        if (rc < 0) {
            POH_ERROR(SIM_LOG, "cannot start shard %d: %s", i, strerror(-rc));
            sim_cluster_stop(cl);
            return NULL;
        }
    }
    cl->start_floor = cl->shards[0].sim->store->evicted_max;
    if (pthread_create(&cl->balancer, NULL, balancer_main, cl) != 0) {
        POH_ERROR(SIM_LOG, "cannot start the balancer thread");
        cl->stop = true;
        sim_cluster_stop(cl);
        return NULL;
    }
    return cl;
}

void sim_cluster_stop(sim_cluster_t *cl)
{
    if (!cl)
        return;
    pthread_mutex_lock(&cl->mu);
    bool had_thread = !cl->stop;
    cl->stop = true;
    pthread_cond_broadcast(&cl->bal_cv);
    pthread_mutex_unlock(&cl->mu);
    if (had_thread && cl->balancer)
        pthread_join(cl->balancer, NULL);
    int busy = 0;
    for (int i = 0; i < cl->nshards; i++) {
        sim_t *s = cl->shards[i].sim;
        atomic_store(&s->stopping, true);
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->mu);
        int b = sim_server_stop(s->server);
        sim_gen_stop(s->gen);
        busy |= b;
        if (!b)
            sim_destroy(s);
    }
    if (busy)
        return; /* a connection thread still runs: leave the cluster allocated */
    for (size_t i = 0; i < cl->ncolls; i++) {
        free(cl->colls[i]->chunks);
        free(cl->colls[i]);
    }
    free(cl->colls);
    for (size_t i = 0; cl->changelog && i < SIM_MAX_CHANGELOG; i++)
        if (cl->changelog[i])
            bson_destroy(cl->changelog[i]);
    free(cl->changelog);
    pthread_cond_destroy(&cl->bal_cv);
    pthread_cond_destroy(&cl->clock.cv);
    pthread_mutex_destroy(&cl->clock.mu);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

/* ---- the config database --------------------------------------------------------------- */

typedef struct docs_out {
    sim_doc_t **v;
    size_t n, cap;
    bool failed;
} docs_out_t;

static void push_doc(docs_out_t *o, const bson_t *b)
{
    if (o->failed)
        return;
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 64;
        sim_doc_t **nv = realloc(o->v, ncap * sizeof *nv);
        if (!nv) {
            o->failed = true;
            return;
        }
        o->v = nv;
        o->cap = ncap;
    }
    sim_doc_t *d = sim_doc_new_raw(b);
    if (!d)
        o->failed = true;
    else
        o->v[o->n++] = d;
}

static void config_shards(sim_cluster_t *cl, docs_out_t *o, bson_t *b)
{
    for (int i = 0; i < cl->nshards; i++) {
        char host[1024];
        if (cl->shards[i].removed)
            continue;
        shard_host(&cl->shards[i], host, sizeof host);
        bson_reinit(b);
        BSON_APPEND_UTF8(b, "_id", cl->shards[i].name);
        BSON_APPEND_UTF8(b, "host", host);
        BSON_APPEND_INT32(b, "state", 1);
        push_doc(o, b);
    }
}

static void config_chunks(sim_cluster_t *cl, docs_out_t *o, bson_t *b)
{
    for (size_t k = 0; k < cl->ncolls && !o->failed; k++) {
        const sim_shcoll_t *sc = cl->colls[k];
        for (size_t i = 0; i < sc->nchunks && !o->failed; i++) {
            const sim_chunk_t *c = &sc->chunks[i];
            bson_t hist, h;
            bson_reinit(b);
            BSON_APPEND_OID(b, "_id", &c->id);
            BSON_APPEND_BINARY(b, "uuid", BSON_SUBTYPE_UUID, sc->uuid, 16);
            append_bound(b, "min", c->min, c->min_key, false);
            append_bound(b, "max", c->max, false, c->max_key);
            BSON_APPEND_UTF8(b, "shard", cl->shards[c->shard].name);
            BSON_APPEND_TIMESTAMP(b, "lastmod", c->major, (uint32_t)i);
            if (c->jumbo)
                BSON_APPEND_BOOL(b, "jumbo", true);
            BSON_APPEND_ARRAY_BEGIN(b, "history", &hist);
            BSON_APPEND_DOCUMENT_BEGIN(&hist, "0", &h);
            BSON_APPEND_TIMESTAMP(&h, "validAfter", SIM_TS_T(c->valid_after), SIM_TS_I(c->valid_after));
            BSON_APPEND_UTF8(&h, "shard", cl->shards[c->shard].name);
            bson_append_document_end(&hist, &h);
            bson_append_array_end(b, &hist);
            push_doc(o, b);
        }
    }
}

static void config_collections(sim_cluster_t *cl, docs_out_t *o, bson_t *b)
{
    for (size_t k = 0; k < cl->ncolls; k++) {
        const sim_shcoll_t *sc = cl->colls[k];
        bson_t key;
        bson_reinit(b);
        BSON_APPEND_UTF8(b, "_id", sc->ns);
        BSON_APPEND_OID(b, "lastmodEpoch", &sc->epoch);
        BSON_APPEND_DATE_TIME(b, "lastmod", sc->created_ms);
        BSON_APPEND_TIMESTAMP(b, "timestamp", SIM_TS_T(sc->created_ts), SIM_TS_I(sc->created_ts));
        BSON_APPEND_BINARY(b, "uuid", BSON_SUBTYPE_UUID, sc->uuid, 16);
        BSON_APPEND_DOCUMENT_BEGIN(b, "key", &key);
        BSON_APPEND_UTF8(&key, "_id", "hashed");
        bson_append_document_end(b, &key);
        BSON_APPEND_BOOL(b, "unique", false);
        BSON_APPEND_BOOL(b, "noBalance", false);
        push_doc(o, b);
    }
}

static void config_misc(sim_cluster_t *cl, const char *name, docs_out_t *o, bson_t *b)
{
    if (!strcmp(name, "settings")) {
        BSON_APPEND_UTF8(b, "_id", "balancer");
        BSON_APPEND_UTF8(b, "mode", cl->balancer_on ? "full" : "off");
        BSON_APPEND_BOOL(b, "stopped", !cl->balancer_on);
        push_doc(o, b);
    } else if (!strcmp(name, "mongos")) {
        sim_t *f = cl->front;
        BSON_APPEND_UTF8(b, "_id", f->members[0].host);
        BSON_APPEND_DATE_TIME(b, "ping", sim_now_ms());
        BSON_APPEND_INT64(b, "up", (sim_mono_ms() - f->start_mono_ms) / 1000);
        BSON_APPEND_BOOL(b, "waiting", true);
        BSON_APPEND_UTF8(b, "mongoVersion", "6.0.0");
        push_doc(o, b);
    } else if (!strcmp(name, "changelog")) {
        size_t first = cl->log_seq - cl->nlog;
        for (size_t q = first; q < cl->log_seq; q++)
            push_doc(o, cl->changelog[q % SIM_MAX_CHANGELOG]);
    } else if (!strcmp(name, "databases")) {
        for (size_t k = 0; k < cl->ncolls; k++) {
            const char *ns = cl->colls[k]->ns, *dot = strchr(ns, '.');
            bool seen = false;
            for (size_t j = 0; j < k && !seen; j++)
                seen = !strncmp(cl->colls[j]->ns, ns, (size_t)(dot - ns + 1));
            if (seen)
                continue;
            bson_reinit(b);
            bson_append_utf8(b, "_id", 3, ns, (int)(dot - ns));
            BSON_APPEND_UTF8(b, "primary", cl->shards[0].name);
            BSON_APPEND_BOOL(b, "partitioned", true);
            push_doc(o, b);
        }
    }
}

long sim_config_docs(sim_cluster_t *cl, const char *name, sim_doc_t ***out)
{
    static const char *const known[] = {"shards", "chunks", "collections", "settings",
                                        "mongos", "changelog", "databases"};
    docs_out_t o = {0};
    bson_t b = BSON_INITIALIZER;
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        ok |= !strcmp(name, known[i]);
    *out = NULL;
    if (!ok)
        return 0; /* another config collection: exists, empty */
    if (!strcmp(name, "shards"))
        config_shards(cl, &o, &b);
    else if (!strcmp(name, "chunks"))
        config_chunks(cl, &o, &b);
    else if (!strcmp(name, "collections"))
        config_collections(cl, &o, &b);
    else
        config_misc(cl, name, &o, &b);
    bson_destroy(&b);
    if (o.failed) {
        for (size_t i = 0; i < o.n; i++)
            sim_doc_unref(o.v[i]);
        free(o.v);
        return -1;
    }
    *out = o.v;
    return (long)o.n;
}

/* ---- control commands ------------------------------------------------------------------ */

static int cerr(poh_strbuf_t *out, const char *msg)
{
    poh_strbuf_printf(out, "ERR %s", msg);
    return -EINVAL;
}

static void json_str(poh_strbuf_t *sb, const char *s)
{
    poh_strbuf_putc(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            poh_strbuf_printf(sb, "\\%c", *p);
        else if (*p < 0x20)
            poh_strbuf_printf(sb, "\\u%04x", *p);
        else
            poh_strbuf_putc(sb, (char)*p);
    }
    poh_strbuf_putc(sb, '"');
}

static void json_counts(poh_strbuf_t *o, const uint64_t counts[SIM_EV_COUNT])
{
    uint64_t total = 0;
    for (int i = 0; i < SIM_EV_COUNT; i++) {
        poh_strbuf_printf(o, "\"%s\":%llu,", sim_ev_names[i], (unsigned long long)counts[i]);
        total += counts[i];
    }
    poh_strbuf_printf(o, "\"total\":%llu", (unsigned long long)total);
}

typedef struct ns_sum {
    char ns[256];
    uint64_t counts[SIM_EV_COUNT];
    uint64_t docs;
} ns_sum_t;

/* Add shard s's per-collection counts into sums (at most max). */
static size_t sum_ns(const sim_store_t *s, ns_sum_t *sums, size_t n, size_t max)
{
    for (size_t i = 0; i < s->ccount; i++) {
        const sim_coll_t *c = s->clist[i];
        uint64_t any = c->count;
        for (int k = 0; k < SIM_EV_COUNT; k++)
            any |= c->counts[k];
        if (!any)
            continue;
        size_t j = 0;
        while (j < n && strcmp(sums[j].ns, c->ns))
            j++;
        if (j == n) {
            if (n == max)
                continue;
            memset(&sums[n], 0, sizeof sums[n]);
            snprintf(sums[n].ns, sizeof sums[n].ns, "%s", c->ns);
            n++;
        }
        for (int k = 0; k < SIM_EV_COUNT; k++)
            sums[j].counts[k] += c->counts[k];
        sums[j].docs += c->count;
    }
    return n;
}

static void shard_counts_json(const sim_shard_t *sh, poh_strbuf_t *o, uint64_t total[SIM_EV_COUNT])
{
    const sim_store_t *s = sh->sim->store;
    uint64_t docs = 0;
    for (size_t i = 0; i < s->ccount; i++)
        docs += s->clist[i]->count;
    json_str(o, sh->name);
    poh_strbuf_puts(o, ":{");
    json_counts(o, s->counts);
    poh_strbuf_printf(o, ",\"docs\":%llu,\"removed\":%s}", (unsigned long long)docs, sh->removed ? "true" : "false");
    for (int k = 0; k < SIM_EV_COUNT; k++)
        total[k] += s->counts[k];
}

/* COUNTS: totals over every shard (change events through mongos), per shard, per namespace. */
static int c_counts(sim_cluster_t *cl, poh_strbuf_t *o)
{
    uint64_t total[SIM_EV_COUNT] = {0}, generated, approved;
    double rate;
    enum { MAX_NS = 256 };
    ns_sum_t *sums = calloc(MAX_NS, sizeof *sums);
    size_t nns = 0;
    if (!sums)
        return cerr(o, "out of memory");
    pthread_mutex_lock(&cl->front->mu);
    sim_gen_counts(cl->front->gen, &generated, &approved, &rate);
    pthread_mutex_unlock(&cl->front->mu);
    pthread_mutex_lock(&cl->mu);
    poh_strbuf_puts(o, "{\"shards\":{");
    for (int i = 0; i < cl->nshards; i++) {
        sim_t *s = cl->shards[i].sim;
        pthread_mutex_lock(&s->mu);
        if (i)
            poh_strbuf_putc(o, ',');
        shard_counts_json(&cl->shards[i], o, total);
        nns = sum_ns(s->store, sums, nns, MAX_NS);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&cl->mu);
    poh_strbuf_puts(o, "},");
    json_counts(o, total);
    poh_strbuf_printf(o, ",\"generated\":%llu,\"approved\":%llu,\"last_ts\":{\"t\":%u,\"i\":%u},\"ns\":{",
                      (unsigned long long)generated, (unsigned long long)approved,
                      SIM_TS_T(clock_now(&cl->clock)), SIM_TS_I(clock_now(&cl->clock)));
    for (size_t j = 0; j < nns; j++) {
        if (j)
            poh_strbuf_putc(o, ',');
        json_str(o, sums[j].ns);
        poh_strbuf_puts(o, ":{");
        json_counts(o, sums[j].counts);
        poh_strbuf_printf(o, ",\"docs\":%llu}", (unsigned long long)sums[j].docs);
    }
    poh_strbuf_puts(o, "}}");
    free(sums);
    return 0;
}

static int c_status(sim_cluster_t *cl, poh_strbuf_t *o)
{
    sim_t *f = cl->front;
    size_t nchunks = 0;
    pthread_mutex_lock(&cl->mu);
    poh_strbuf_printf(o, "{\"port\":%d,\"control_port\":%d,\"mongos\":true,\"shards\":[", f->port, f->control_port);
    for (int i = 0; i < cl->nshards; i++) {
        sim_t *s = cl->shards[i].sim;
        char host[1024];
        shard_host(&cl->shards[i], host, sizeof host);
        pthread_mutex_lock(&s->mu);
        sim_repl_tick(s);
        poh_strbuf_printf(o, "%s{\"name\":", i ? "," : "");
        json_str(o, cl->shards[i].name);
        poh_strbuf_printf(o, ",\"port\":%d,\"host\":", s->port);
        json_str(o, host);
        poh_strbuf_printf(o, ",\"removed\":%s,\"state\":\"%s\",\"term\":%lld}", cl->shards[i].removed ? "true" : "false",
                          sim_is_primary(s) ? "PRIMARY" : "SECONDARY", (long long)s->store->term);
        pthread_mutex_unlock(&s->mu);
    }
    for (size_t k = 0; k < cl->ncolls; k++)
        nchunks += cl->colls[k]->nchunks;
    poh_strbuf_printf(o, "],\"balancer\":{\"mode\":\"%s\",\"rounds\":%lld},\"migrations\":{\"ok\":%llu,\"failed\":%llu},"
                         "\"collections\":%zu,\"chunks\":%zu,\"changelog\":%zu}",
                      cl->balancer_on ? "full" : "off", (long long)cl->rounds, (unsigned long long)cl->migrations_ok,
                      (unsigned long long)cl->migrations_failed, cl->ncolls, nchunks, cl->nlog);
    pthread_mutex_unlock(&cl->mu);
    return 0;
}

/* MIGRATE <ns> <from> <to> [fail]: the first chunk of ns on from. Caller holds mu. */
static int c_migrate(sim_cluster_t *cl, int argc, char **argv, poh_strbuf_t *o)
{
    if (argc < 4 || argc > 5 || (argc == 5 && strcasecmp(argv[4], "fail")))
        return cerr(o, "usage: MIGRATE <db.coll> <from shard> <to shard> [fail]");
    sim_shcoll_t *sc = strchr(argv[1], '.') ? shcoll_get(cl, argv[1], true) : NULL;
    int from = shard_find(cl, argv[2]), to = shard_find(cl, argv[3]);
    if (!sc)
        return cerr(o, "no such namespace (give db.coll)");
    if (from < 0 || to < 0 || from == to)
        return cerr(o, "from and to must be two different shards of the cluster");
    for (size_t i = 0; i < sc->nchunks; i++) {
        if (sc->chunks[i].shard != from)
            continue;
        int rc = migrate(cl, sc, i, to, argc == 5);
        poh_strbuf_printf(o, "OK {\"result\":\"%s\",\"chunk\":%zu}", rc == 0 ? "commit" : "error", i);
        return 0;
    }
    return cerr(o, "the from shard owns no chunk of that namespace");
}

/* REMOVE_SHARD <shard>: move all its chunks away (round robin), then drop it from config.shards. */
static int c_remove_shard(sim_cluster_t *cl, int argc, char **argv, poh_strbuf_t *o)
{
    int idx[SIM_MAX_SHARDS], moved = 0, failed = 0;
    int k = argc == 2 ? shard_find(cl, argv[1]) : -1;
    if (k < 0)
        return cerr(o, "usage: REMOVE_SHARD <shard name or index of an active shard>");
    int n = active_shards(cl, idx);
    if (n < 2)
        return cerr(o, "cannot remove the last shard");
    int next = 0;
    for (size_t c = 0; c < cl->ncolls; c++)
        for (size_t i = 0; i < cl->colls[c]->nchunks; i++) {
            sim_chunk_t *ch = &cl->colls[c]->chunks[i];
            if (ch->shard != k)
                continue;
            if (idx[next % n] == k)
                next++;
            bool was_jumbo = ch->jumbo;
            ch->jumbo = false; /* draining moves jumbo chunks too */
            int rc = migrate(cl, cl->colls[c], i, idx[next++ % n], false);
            ch->jumbo = was_jumbo;
            if (rc == 0)
                moved++;
            else
                failed++;
        }
    if (failed)
        return cerr(o, "some chunks could not be moved; the shard stays");
    cl->shards[k].removed = true;
    POH_INFO(SIM_LOG, "shard %s removed from the cluster (%d chunks moved)", cl->shards[k].name, moved);
    poh_strbuf_printf(o, "OK {\"moved\":%d}", moved);
    return 0;
}

/* SPLIT <ns> <total> and JUMBO <ns> <shard> <n>. Caller holds mu. */
static int c_chunks(sim_cluster_t *cl, int argc, char **argv, poh_strbuf_t *o)
{
    bool split = !strcasecmp(argv[0], "SPLIT");
    char *end;
    long v = argc == (split ? 3 : 4) ? strtol(argv[argc - 1], &end, 10) : -1;
    if (v < 1 || v > 1000000 || *end)
        return cerr(o, split ? "usage: SPLIT <db.coll> <total chunks 1..1000000>" : "usage: JUMBO <db.coll> <shard> <n>");
    sim_shcoll_t *sc = strchr(argv[1], '.') ? shcoll_get(cl, argv[1], true) : NULL;
    if (!sc)
        return cerr(o, "no such namespace (give db.coll)");
    if (split) {
        if (shcoll_split(sc, (size_t)v) < 0)
            return cerr(o, "out of memory");
        poh_strbuf_printf(o, "OK {\"chunks\":%zu}", sc->nchunks);
        return 0;
    }
    int k = shard_find(cl, argv[2]);
    long marked = 0;
    if (k < 0)
        return cerr(o, "no such shard");
    for (size_t i = 0; i < sc->nchunks && marked < v; i++)
        if (sc->chunks[i].shard == k && !sc->chunks[i].jumbo) {
            sc->chunks[i].jumbo = true;
            marked++;
        }
    poh_strbuf_printf(o, "OK {\"marked\":%ld}", marked);
    return 0;
}

/* SHARD <shard> <command...>: run a replica-set control command on one shard. */
static int c_shard(sim_cluster_t *cl, int argc, char **argv, poh_strbuf_t *o)
{
    char line[1100];
    size_t len = 0;
    pthread_mutex_lock(&cl->mu);
    int k = argc >= 3 ? shard_find(cl, argv[1]) : -1;
    sim_t *s = k >= 0 ? cl->shards[k].sim : NULL;
    pthread_mutex_unlock(&cl->mu);
    if (!s)
        return cerr(o, "usage: SHARD <shard name or index> <command> [args] (a replica-set control command)");
    if (!strcasecmp(argv[2], "SHUTDOWN") || !strcasecmp(argv[2], "SHARD"))
        return cerr(o, "SHUTDOWN and SHARD are cluster-wide");
    line[0] = 0;
    for (int i = 2; i < argc; i++)
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%s", i > 2 ? " " : "", argv[i]);
    return sim_control_exec(s, line, o);
}

static int c_cluster_locked(sim_cluster_t *cl, int argc, char **argv, poh_strbuf_t *o)
{
    const char *cmd = argv[0];
    if (!strcasecmp(cmd, "ADD_SHARD")) {
        int k = argc == 1 ? shard_add(cl) : -EINVAL;
        if (k < 0)
            return cerr(o, k == -EINVAL ? "usage: ADD_SHARD" : "cannot start another shard");
        poh_strbuf_printf(o, "OK {\"shard\":\"%s\",\"port\":%d}", cl->shards[k].name, cl->shards[k].sim->port);
        return 0;
    }
    if (!strcasecmp(cmd, "BALANCER")) {
        if (argc != 2 || (strcasecmp(argv[1], "on") && strcasecmp(argv[1], "off")))
            return cerr(o, "usage: BALANCER on|off");
        cl->balancer_on = !strcasecmp(argv[1], "on");
        poh_strbuf_puts(o, "OK");
        return 0;
    }
    if (!strcasecmp(cmd, "MIGRATE"))
        return c_migrate(cl, argc, argv, o);
    if (!strcasecmp(cmd, "REMOVE_SHARD"))
        return c_remove_shard(cl, argc, argv, o);
    return c_chunks(cl, argc, argv, o);
}

int sim_cluster_control(sim_t *front, int argc, char **argv, poh_strbuf_t *out)
{
    static const char *const locked[] = {"ADD_SHARD", "BALANCER", "MIGRATE", "REMOVE_SHARD", "SPLIT", "JUMBO"};
    sim_cluster_t *cl = front->cluster;
    const char *cmd = argv[0];
    if (!strcasecmp(cmd, "COUNTS"))
        return c_counts(cl, out);
    if (!strcasecmp(cmd, "STATUS"))
        return c_status(cl, out);
    if (!strcasecmp(cmd, "SHARD"))
        return c_shard(cl, argc, argv, out);
    for (size_t i = 0; i < sizeof locked / sizeof locked[0]; i++) {
        if (strcasecmp(cmd, locked[i]))
            continue;
        pthread_mutex_lock(&cl->mu);
        int rc = c_cluster_locked(cl, argc, argv, out);
        pthread_mutex_unlock(&cl->mu);
        return rc;
    }
    static const char *const rs_only[] = {"STEPDOWN", "STEPUP", "LAG", "HEALTH", "OPTIME", "TRUNCATE_OPLOG"};
    for (size_t i = 0; i < sizeof rs_only / sizeof rs_only[0]; i++)
        if (!strcasecmp(cmd, rs_only[i]))
            return cerr(out, "a replica-set command: give it to one shard with SHARD <shard> <command>");
    return -ENOENT;
}
