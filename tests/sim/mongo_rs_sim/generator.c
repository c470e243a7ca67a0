/* SPDX-License-Identifier: Apache-2.0 */
#include "generator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "shard.h"

#define TICK_MS 10
#define MAX_PER_TICK 20000
#define BURST_CHUNK 1024

typedef struct approval {
    bson_oid_t id;
    int64_t due_ms; /* monotonic */
    sim_coll_t *coll;
} approval_t;

struct sim_gen {
    sim_t *sim;
    pthread_t th;
    pthread_cond_t cond; /* CLOCK_MONOTONIC, with sim->mu */
    bool stop;
    double rate;
    int64_t rate_start_ms;
    uint64_t rate_done;
    approval_t *q;
    size_t qcap, qhead, qlen;
    uint64_t generated, approved, seq;
    uint64_t rng[2];
    bson_t doc, q_doc, u_doc;
};

static uint64_t rng_next(sim_gen_t *g)
{
    /* xorshift128+: fast and good enough for identifiers in test data. */
    uint64_t s1 = g->rng[0];
    const uint64_t s0 = g->rng[1];
    g->rng[0] = s0;
    s1 ^= s1 << 23;
    g->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return g->rng[1] + s0;
}

static void hex_into(char *out, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = hex[v & 15];
        v >>= 4;
    }
}

/* "00-<32 hex trace id>-<16 hex span id>-01"; ids are never all zero. */
static void traceparent(sim_gen_t *g, char out[56])
{
    uint64_t a = rng_next(g), b = rng_next(g) | 1, c = rng_next(g) | 1;
    memcpy(out, "00-", 3);
    hex_into(out + 3, a, 16);
    hex_into(out + 19, b, 16);
    out[35] = '-';
    hex_into(out + 36, c, 16);
    memcpy(out + 52, "-01", 4);
}

static int push_approval(sim_gen_t *g, const bson_oid_t *id, int64_t due, sim_coll_t *c)
{
    if (g->qlen == g->qcap) {
        size_t ncap = g->qcap ? g->qcap * 2 : 1024;
        approval_t *nq = malloc(ncap * sizeof *nq);
        if (!nq)
            return -ENOMEM;
        for (size_t i = 0; i < g->qlen; i++)
            nq[i] = g->q[(g->qhead + i) % g->qcap];
        free(g->q);
        g->q = nq;
        g->qcap = ncap;
        g->qhead = 0;
    }
    approval_t *a = &g->q[(g->qhead + g->qlen++) % g->qcap];
    a->id = *id;
    a->due_ms = due;
    a->coll = c;
    return 0;
}

/* Insert one generated document; caller holds sim->mu. */
static int gen_one(sim_gen_t *g, sim_coll_t *c)
{
    sim_t *sim = g->sim;
    uint64_t ts;
    int64_t wall;
    bson_oid_t oid;
    char tp[56], sender[32];
    sim_err_t e = {0};
    sim_store_t *st = sim->store;
    sim_coll_t *named = c;
    sim_t *shard = NULL;
    bson_oid_init(&oid, NULL);
    /* Sharded: the document goes to the shard its hashed _id belongs to. */
    if (sim->cluster && !(shard = sim_cluster_lock_oid(sim->cluster, c->db, c->name, &oid)))
        return -ENOMEM;
    if (shard && !(c = sim_store_coll((st = shard->store), named->db, named->name, true))) {
        sim_cluster_unlock(sim->cluster, shard);
        return -ENOMEM;
    }
    sim_store_tick(st, &ts, &wall);
    g->seq++;
    snprintf(sender, sizeof sender, "acct-%04u", (unsigned)(rng_next(g) % 1000));
    traceparent(g, tp);
    bson_reinit(&g->doc);
    BSON_APPEND_OID(&g->doc, "_id", &oid);
    BSON_APPEND_INT64(&g->doc, "seq", (int64_t)g->seq);
    BSON_APPEND_UTF8(&g->doc, "sender", sender);
    BSON_APPEND_INT64(&g->doc, "amount", (int64_t)(rng_next(g) % 1000000));
    BSON_APPEND_DATE_TIME(&g->doc, "created_at", wall - sim->cfg.commit_delay_ms);
    BSON_APPEND_UTF8(&g->doc, "traceparent", tp);
    BSON_APPEND_UTF8(&g->doc, "status", "pending");
    int rc = sim_store_insert_at(st, c, &g->doc, ts, wall, &e);
    if (shard)
        sim_cluster_unlock(sim->cluster, shard);
    if (rc < 0) {
        POH_WARN(SIM_LOG, "generator: insert failed: %s", e.msg);
        return -ENOMEM;
    }
    g->generated++;
    if (sim->cfg.approve_after_ms > 0)
        return push_approval(g, &oid, sim_mono_ms() + sim->cfg.approve_after_ms, named);
    return 0;
}

/* Apply approvals that are due; caller holds sim->mu. Returns how many. */
static size_t approve_due(sim_gen_t *g, int64_t now)
{
    size_t n = 0;
    while (g->qlen && g->q[g->qhead].due_ms <= now) {
        approval_t *a = &g->q[g->qhead];
        sim_update_result_t r;
        sim_err_t e = {0};
        bson_t set;
        bson_reinit(&g->q_doc);
        bson_reinit(&g->u_doc);
        BSON_APPEND_OID(&g->q_doc, "_id", &a->id);
        BSON_APPEND_DOCUMENT_BEGIN(&g->u_doc, "$set", &set);
        BSON_APPEND_DATE_TIME(&set, "approved_at", sim_now_ms());
        BSON_APPEND_UTF8(&set, "status", "approved");
        bson_append_document_end(&g->u_doc, &set);
        sim_store_t *st = g->sim->store;
        sim_coll_t *c = a->coll;
        sim_t *shard = g->sim->cluster ? sim_cluster_lock_oid(g->sim->cluster, c->db, c->name, &a->id) : NULL;
        if (g->sim->cluster)
            c = shard ? sim_store_coll((st = shard->store), a->coll->db, a->coll->name, false) : NULL;
        /* A document evicted by --max-docs is simply not approved. */
        if (c && sim_store_update(st, c, &g->q_doc, &g->u_doc, false, false, &r, &e) == 0 && r.modified)
            g->approved++;
        if (shard)
            sim_cluster_unlock(g->sim->cluster, shard);
        g->qhead = (g->qhead + 1) % g->qcap;
        g->qlen--;
        n++;
    }
    return n;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *gen_main(void *arg)
{
    sim_gen_t *g = arg;
    sim_t *sim = g->sim;
    pthread_mutex_lock(&sim->mu);
    sim_coll_t *c = sim_store_coll(sim->store, SIM_GEN_DB, SIM_GEN_COLL, true);
    while (!g->stop) {
        int64_t now = sim_mono_ms();
        size_t wrote = 0;
        if (g->rate > 0 && c) {
            uint64_t due = (uint64_t)((double)(now - g->rate_start_ms) * g->rate / 1000.0);
            for (uint64_t k = 0; g->rate_done < due && k < MAX_PER_TICK; k++, wrote++) {
                if (gen_one(g, c) < 0)
                    break;
                g->rate_done++;
            }
        }
        wrote += approve_due(g, now);
        if (wrote)
            pthread_cond_broadcast(&sim->wake);
        struct timespec ts;
        deadline_in(&ts, g->rate > 0 || g->qlen ? TICK_MS : 1000);
        pthread_cond_timedwait(&g->cond, &sim->mu, &ts);
    }
    pthread_mutex_unlock(&sim->mu);
    return NULL;
}

sim_gen_t *sim_gen_start(sim_t *sim)
{
    pthread_condattr_t ca;
    sim_gen_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->sim = sim;
    g->rate = sim->cfg.rate;
    g->rate_start_ms = sim_mono_ms();
    g->rng[0] = (uint64_t)sim_now_ms() * 0x9e3779b97f4a7c15ULL | 1;
    g->rng[1] = (uint64_t)(uintptr_t)g ^ 0xbf58476d1ce4e5b9ULL;
    bson_init(&g->doc);
    bson_init(&g->q_doc);
    bson_init(&g->u_doc);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&g->th, NULL, gen_main, g) != 0) {
        pthread_cond_destroy(&g->cond);
        bson_destroy(&g->doc);
        bson_destroy(&g->q_doc);
        bson_destroy(&g->u_doc);
        free(g);
        return NULL;
    }
    return g;
}

void sim_gen_stop(sim_gen_t *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->sim->mu);
    g->stop = true;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->sim->mu);
    pthread_join(g->th, NULL);
    pthread_cond_destroy(&g->cond);
    bson_destroy(&g->doc);
    bson_destroy(&g->q_doc);
    bson_destroy(&g->u_doc);
    free(g->q);
    free(g);
}

void sim_gen_set_rate(sim_gen_t *g, double rate)
{
    pthread_mutex_lock(&g->sim->mu);
    g->rate = rate;
    g->rate_start_ms = sim_mono_ms();
    g->rate_done = 0;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->sim->mu);
}

int sim_gen_burst(sim_gen_t *g, const char *db, const char *coll, uint64_t n, uint64_t *inserted)
{
    sim_t *sim = g->sim;
    sim_err_t e;
    int rc = 0;
    *inserted = 0;
    if (!sim_ns_writable(db, coll, &e))
        return -EINVAL;
    /* Chunks keep the lock hold short so readers interleave with a burst. */
    while (*inserted < n && rc == 0 && !atomic_load(&sim->stopping)) {
        pthread_mutex_lock(&sim->mu);
        sim_coll_t *c = sim_store_coll(sim->store, db, coll, true);
        if (!c)
            rc = -ENOMEM;
        for (int k = 0; c && k < BURST_CHUNK && *inserted < n; k++) {
            if (gen_one(g, c) < 0) {
                rc = -ENOMEM;
                break;
            }
            (*inserted)++;
        }
        pthread_cond_broadcast(&sim->wake);
        pthread_mutex_unlock(&sim->mu);
    }
    return rc;
}

void sim_gen_counts(const sim_gen_t *g, uint64_t *generated, uint64_t *approved, double *rate)
{
    *generated = g->generated;
    *approved = g->approved;
    *rate = g->rate;
}
