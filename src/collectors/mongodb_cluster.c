/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster-level series of a mongodb entry whose URI names mongos routers
 * (issue 17 item 4). Every scrape sends the same commands whatever the
 * number of chunks:
 *   - hello to each router of the URI (its own direct connection): up;
 *   - balancerStatus (admin): mode (enabled) and inBalancerRound (running);
 *     config.settings {_id: "balancer"} when the command is refused;
 *   - one aggregate on config.chunks grouping by shard, collection (uuid on
 *     5.0+, ns before) and jumbo flag: a reply of shards x collections
 *     documents, never one per chunk, and one find on config.collections
 *     for the uuid -> namespace map;
 *   - one find on config.changelog for moveChunk.commit / moveChunk.error
 *     entries at or after the newest time already counted (at most
 *     MAX_CHANGELOG per scrape; the rest at the next): each entry counted
 *     once, the watermark and the totals saved in the state directory so a
 *     restart neither counts an entry again nor loses one. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "collectors/mongodb_internal.h"
#include "collectors/mongodb_metrics.h"
#include "core/clock.h"
#include "core/log.h"
#include "mongo/mongo_state.h"

#define MODULE "mongodb"
#define DEADLINE_MARGIN 0.02
#define MAX_GROUPS 20000    /* (shard, collection, jumbo) rows read per scrape */
#define MAX_CHANGELOG 1000  /* changelog entries read per scrape */
#define MAX_TIES 64         /* entries remembered at the watermark's millisecond */
#define MAX_ROUTERS 64


typedef struct router {
    char *host;
    mongoc_client_t *client;
    int timeout_ms;
} router_t;

struct mongo_cluster_level {
    pthread_mutex_t mu; /* one scrape at a time queries; others report the counters */
    router_t routers[MAX_ROUTERS];
    size_t nrouters;
    bool loaded;        /* the state file was read (or found absent) */
    bool baseline;      /* a watermark exists: entries after it are counted */
    int64_t last_ms;    /* time of the newest entry counted */
    char *ids[MAX_TIES]; /* _ids of the entries counted at last_ms */
    size_t nids;
    bool warned;
    int lockfd;         /* mongodb@<cluster>.migrations.lock, -1 until opened */
    bool locked;        /* this collector owns the state file's counts */
    _Atomic uint64_t succeeded, failed;
};

typedef struct ctx {
    mongo_cluster_t *cl;
    mongo_cluster_level_t *cv;
    mongo_status_run_t *r; /* the router's run: client, deadline, spans, first error */
} ctx_t;

mongo_cluster_level_t *mongo_cluster_level_new(void)
{
    mongo_cluster_level_t *cv = calloc(1, sizeof *cv);
    if (cv) {
        pthread_mutex_init(&cv->mu, NULL);
        cv->lockfd = -1;
    }
    return cv;
}

static void router_free(router_t *r)
{
    if (r->client)
        mongoc_client_destroy(r->client);
    free(r->host);
    memset(r, 0, sizeof *r);
}

static void ids_clear(mongo_cluster_level_t *cv)
{
    for (size_t i = 0; i < cv->nids; i++)
        free(cv->ids[i]);
    cv->nids = 0;
}

void mongo_cluster_level_free(mongo_cluster_level_t *cv)
{
    if (!cv)
        return;
    for (size_t i = 0; i < cv->nrouters; i++)
        router_free(&cv->routers[i]);
    ids_clear(cv);
    if (cv->lockfd >= 0)
        close(cv->lockfd); /* releases the flock */
    pthread_mutex_destroy(&cv->mu);
    free(cv);
}

static bool time_left(const ctx_t *x, int ms)
{
    return (x->r->deadline - poh_now_mono() - DEADLINE_MARGIN) * 1000 >= ms;
}

/* ------------------------------------------------------------- routers */

/* Router r's direct client to host, kept while its timeouts fit budget_ms
 * (selection plus one hello; mongo_timeout_fits). */
static mongoc_client_t *router_client(mongo_cluster_t *cl, router_t *r, const char *host,
                                      int budget_ms)
{
    if (r->client && (strcmp(r->host, host) || !mongo_timeout_fits(r->timeout_ms, budget_ms)))
        router_free(r);
    if (r->client)
        return r->client;
    router_free(r);
    int ms = mongo_timeout_pick(budget_ms);
    mongoc_uri_t *u = ms ? mongo_shards_uri(cl->uri, host, ms) : NULL;
    if (u)
        mongoc_uri_set_option_as_bool(u, MONGOC_URI_DIRECTCONNECTION, true);
    r->host = strdup(host);
    r->timeout_ms = ms;
    r->client = u && r->host ? mongoc_client_new_from_uri(u) : NULL;
    mongoc_uri_destroy(u);
    if (r->client) {
        mongoc_client_set_error_api(r->client, MONGOC_ERROR_API_VERSION_2);
        mongoc_client_set_appname(r->client, "poh_exporter");
    }
    return r->client;
}

static bool router_hello(mongo_cluster_t *cl, mongoc_client_t *c, const char *host)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t err;
    BSON_APPEND_INT32(&cmd, "hello", 1);
    bool ok = mongoc_client_command_simple(c, "admin", &cmd, NULL, &reply, &err);
    if (!ok) {
        char msg[200];
        mongo_cluster_scrub(cl, err.message, msg, sizeof msg);
        POH_DEBUG(MODULE, "cluster %s: router %s does not answer: %s", cl->name, host, msg);
    }
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return ok;
}

/* hello on every router the URI names, each over its own direct connection. */
static void routers(ctx_t *x)
{
    const mongoc_host_list_t *h = mongoc_uri_get_hosts(x->cl->uri);
    size_t n = 0;
    for (const mongoc_host_list_t *p = h; p; p = p->next)
        n++;
    int ms = x->r->timeout_ms / (int)(n + 1) > 5 ? x->r->timeout_ms / (int)(n + 1) : 5;
    const char *lv[] = {x->cl->name, NULL};
    size_t i = 0;
    for (; h && i < MAX_ROUTERS; h = h->next, i++) {
        router_t *r = &x->cv->routers[i];
        if (i >= x->cv->nrouters)
            memset(r, 0, sizeof *r);
        mongoc_client_t *c = time_left(x, 2 * ms) ? router_client(x->cl, r, h->host_and_port, 2 * ms) : NULL;
        lv[1] = h->host_and_port;
        poh_mongodb_put(x->r->out, POH_MONGODB_M_MONGOS_UP, lv,
                        c && router_hello(x->cl, c, h->host_and_port));
    }
    for (size_t k = i; k < x->cv->nrouters; k++)
        router_free(&x->cv->routers[k]);
    x->cv->nrouters = i;
}

/* ------------------------------------------------------------ balancer */

/* balancerStatus; config.settings {_id: "balancer"} when it is refused
 * (then whether a round runs is not known). */
static void balancer(ctx_t *x)
{
    bson_t cmd = BSON_INITIALIZER, reply, filter;
    bson_iter_t it, doc;
    const char *lv[] = {x->cl->name};
    BSON_APPEND_INT32(&cmd, "balancerStatus", 1);
    if (mongo_status_try(x->r, "admin", &cmd, "balancerStatus", &reply)) {
        bool on = bson_iter_init_find(&it, &reply, "mode") && BSON_ITER_HOLDS_UTF8(&it) &&
                  strcmp(bson_iter_utf8(&it, NULL), "off");
        bool round = bson_iter_init_find(&it, &reply, "inBalancerRound") && bson_iter_as_bool(&it);
        poh_mongodb_put(x->r->out, POH_MONGODB_M_BALANCER_ENABLED, lv, on);
        poh_mongodb_put(x->r->out, POH_MONGODB_M_BALANCER_RUNNING, lv, round);
        bson_destroy(&reply);
        bson_destroy(&cmd);
        return;
    }
    bson_destroy(&reply);
    bson_reinit(&cmd);
    BSON_APPEND_UTF8(&cmd, "find", "settings");
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
    BSON_APPEND_UTF8(&filter, "_id", "balancer");
    bson_append_document_end(&cmd, &filter);
    BSON_APPEND_INT32(&cmd, "limit", 1);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);
    if (mongo_status_cmd(x->r, "config", &cmd, "find config.settings", &reply)) {
        bool on = true; /* no document: the default, enabled */
        if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.firstBatch.0", &doc) &&
            BSON_ITER_HOLDS_DOCUMENT(&doc) && bson_iter_recurse(&doc, &it))
            while (bson_iter_next(&it)) {
                if (!strcmp(bson_iter_key(&it), "stopped") && bson_iter_as_bool(&it))
                    on = false;
                if (!strcmp(bson_iter_key(&it), "mode") && BSON_ITER_HOLDS_UTF8(&it) &&
                    !strcmp(bson_iter_utf8(&it, NULL), "off"))
                    on = false;
            }
        poh_mongodb_put(x->r->out, POH_MONGODB_M_BALANCER_ENABLED, lv, on);
    }
    bson_destroy(&reply);
    bson_destroy(&cmd);
}

/* -------------------------------------------------------------- chunks */

typedef struct group {
    const char *shard;
    const uint8_t *uuid; /* 16 bytes (5.0+), or NULL */
    const char *ns;      /* before 5.0, or resolved from uuid */
    int64_t chunks, jumbo;
} group_t;

/* One {_id: {shard, uuid|ns, jumbo}, n} row into g; false when unusable. */
static bool parse_group(bson_iter_t *row, group_t *g)
{
    bson_iter_t d, k;
    int64_t n = 0;
    bool jumbo = false;
    memset(g, 0, sizeof *g);
    if (!BSON_ITER_HOLDS_DOCUMENT(row) || !bson_iter_recurse(row, &d))
        return false;
    while (bson_iter_next(&d)) {
        if (!strcmp(bson_iter_key(&d), "n") && BSON_ITER_HOLDS_NUMBER(&d))
            n = bson_iter_as_int64(&d);
        if (strcmp(bson_iter_key(&d), "_id") || !BSON_ITER_HOLDS_DOCUMENT(&d) || !bson_iter_recurse(&d, &k))
            continue;
        while (bson_iter_next(&k)) {
            const char *key = bson_iter_key(&k);
            bson_subtype_t st;
            uint32_t len;
            if (!strcmp(key, "shard") && BSON_ITER_HOLDS_UTF8(&k))
                g->shard = bson_iter_utf8(&k, NULL);
            else if (!strcmp(key, "ns") && BSON_ITER_HOLDS_UTF8(&k))
                g->ns = bson_iter_utf8(&k, NULL);
            else if (!strcmp(key, "jumbo"))
                jumbo = bson_iter_as_bool(&k);
            else if (!strcmp(key, "uuid") && BSON_ITER_HOLDS_BINARY(&k)) {
                bson_iter_binary(&k, &st, &len, &g->uuid);
                if (len != 16)
                    g->uuid = NULL;
            }
        }
    }
    g->chunks = n;
    g->jumbo = jumbo ? n : 0;
    return g->shard && (g->uuid || g->ns) && n >= 0;
}

/* uuid -> namespace from config.collections (reply kept by the caller). */
static const char *ns_of(const bson_t *colls, const uint8_t *uuid)
{
    bson_iter_t it, arr, d;
    if (!bson_iter_init(&it, colls) || !bson_iter_find_descendant(&it, "cursor.firstBatch", &arr) ||
        !BSON_ITER_HOLDS_ARRAY(&arr) || !bson_iter_recurse(&arr, &it))
        return NULL;
    while (bson_iter_next(&it)) {
        const char *id = NULL;
        const uint8_t *u = NULL;
        uint32_t len = 0;
        bson_subtype_t st;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &d))
            continue;
        while (bson_iter_next(&d)) {
            if (!strcmp(bson_iter_key(&d), "_id") && BSON_ITER_HOLDS_UTF8(&d))
                id = bson_iter_utf8(&d, NULL);
            else if (!strcmp(bson_iter_key(&d), "uuid") && BSON_ITER_HOLDS_BINARY(&d))
                bson_iter_binary(&d, &st, &len, &u);
        }
        if (id && u && len == 16 && !memcmp(u, uuid, 16))
            return id;
    }
    return NULL;
}

static void chunks_command(bson_t *cmd)
{
    bson_t pipe, stage, grp, id, n, cur;
    BSON_APPEND_UTF8(cmd, "aggregate", "chunks");
    BSON_APPEND_ARRAY_BEGIN(cmd, "pipeline", &pipe);
    BSON_APPEND_DOCUMENT_BEGIN(&pipe, "0", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$group", &grp);
    BSON_APPEND_DOCUMENT_BEGIN(&grp, "_id", &id);
    BSON_APPEND_UTF8(&id, "shard", "$shard");
    BSON_APPEND_UTF8(&id, "uuid", "$uuid");
    BSON_APPEND_UTF8(&id, "ns", "$ns");
    BSON_APPEND_UTF8(&id, "jumbo", "$jumbo");
    bson_append_document_end(&grp, &id);
    BSON_APPEND_DOCUMENT_BEGIN(&grp, "n", &n);
    BSON_APPEND_INT32(&n, "$sum", 1);
    bson_append_document_end(&grp, &n);
    bson_append_document_end(&stage, &grp);
    bson_append_document_end(&pipe, &stage);
    bson_append_array_end(cmd, &pipe);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "cursor", &cur);
    BSON_APPEND_INT32(&cur, "batchSize", MAX_GROUPS);
    bson_append_document_end(cmd, &cur);
}

static void collections_command(bson_t *cmd)
{
    bson_t f, ne, proj;
    BSON_APPEND_UTF8(cmd, "find", "collections");
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &f);
    BSON_APPEND_DOCUMENT_BEGIN(&f, "dropped", &ne);
    BSON_APPEND_BOOL(&ne, "$ne", true);
    bson_append_document_end(&f, &ne);
    bson_append_document_end(cmd, &f);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 1);
    BSON_APPEND_INT32(&proj, "uuid", 1);
    bson_append_document_end(cmd, &proj);
    BSON_APPEND_INT32(cmd, "batchSize", MAX_GROUPS);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}

/* Rows of the same (shard, collection) (a jumbo and a plain row) summed. */
static size_t merge_groups(group_t *g, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < m && !(!strcmp(g[k].shard, g[i].shard) && !strcmp(g[k].ns, g[i].ns)))
            k++;
        if (k == m)
            g[m++] = g[i];
        else {
            g[k].chunks += g[i].chunks;
            g[k].jumbo += g[i].jumbo;
        }
    }
    return m;
}

static void emit_groups(ctx_t *x, group_t *g, size_t n)
{
    const char *lv[] = {x->cl->name, NULL, NULL};
    n = merge_groups(g, n);
    for (size_t i = 0; i < n; i++) {
        lv[1] = g[i].shard;
        lv[2] = g[i].ns;
        poh_mongodb_put(x->r->out, POH_MONGODB_M_CHUNKS, lv, (double)g[i].chunks);
        poh_mongodb_put(x->r->out, POH_MONGODB_M_JUMBO_CHUNKS, lv, (double)g[i].jumbo);
    }
}

static void chunks(ctx_t *x)
{
    bson_t cmd = BSON_INITIALIZER, reply, colls = BSON_INITIALIZER;
    bson_iter_t it, arr;
    group_t *g = NULL;
    size_t n = 0;
    bool have_colls = false;
    chunks_command(&cmd);
    bool ok = mongo_status_cmd(x->r, "config", &cmd, "aggregate config.chunks", &reply);
    if (ok && bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.firstBatch", &arr) &&
        BSON_ITER_HOLDS_ARRAY(&arr) && bson_iter_recurse(&arr, &it) && (g = calloc(MAX_GROUPS, sizeof *g))) {
        while (bson_iter_next(&it) && n < MAX_GROUPS) {
            if (!parse_group(&it, &g[n]))
                continue;
            if (!g[n].ns && !have_colls) {
                bson_t ccmd = BSON_INITIALIZER;
                collections_command(&ccmd);
                bson_destroy(&colls);
                have_colls = mongo_status_cmd(x->r, "config", &ccmd, "find config.collections", &colls);
                bson_destroy(&ccmd);
                if (!have_colls)
                    break;
            }
            if (!g[n].ns)
                g[n].ns = ns_of(&colls, g[n].uuid); /* NULL: dropped since; left out */
            n += g[n].ns != NULL;
        }
        emit_groups(x, g, n);
    }
    free(g);
    bson_destroy(&colls);
    bson_destroy(&reply);
    bson_destroy(&cmd);
}

/* ---------------------------------------------------------- migrations */

#define STATE_NS "config.changelog"

static void warn_state(mongo_cluster_level_t *cv, const mongo_cluster_t *cl, const char *what, int rc)
{
    if (cv->warned)
        return;
    cv->warned = true;
    POH_WARN(MODULE, "cluster %s: %s the migration counts in %s: %s; counting in memory only", cl->name, what,
             cl->state_dir, poh_mongo_state_strerror(rc));
}

static char *state_file(const mongo_cluster_t *cl)
{
    char *f = NULL;
    return asprintf(&f, "mongodb@%s.migrations", cl->name) < 0 ? NULL : f;
}

/* The saved counts are this collector's while it holds the state file's
 * lock: two collectors counting one changelog into one file would count
 * entries twice across restarts. The other is another exporter on this
 * state_dir, or (for a scrape's time) this one's configuration before a
 * reload. Tried again every scrape; until then no migration is counted.
 * A lock that cannot be had for another reason (no state_dir, say) does
 * not stop counting: the state file cannot be written either, and the
 * counts live in memory (warn_state). */
static bool migrations_lock(mongo_cluster_level_t *cv, const mongo_cluster_t *cl)
{
    if (cv->locked)
        return true;
    if (cv->lockfd < 0) {
        char *name = NULL;
        int dirfd = open(cl->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = dirfd < 0 ? -errno
                 : asprintf(&name, "mongodb@%s.migrations.lock", cl->name) < 0 ? -ENOMEM
                                                                              : 0;
        if (rc == 0)
            rc = poh_mongo_state_open_lock(dirfd, name);
        if (dirfd >= 0)
            close(dirfd);
        free(name);
        if (rc < 0) {
            warn_state(cv, cl, "cannot open the lock of", rc);
            return true;
        }
        cv->lockfd = rc;
    }
    if (flock(cv->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) {
            warn_state(cv, cl, "cannot lock", -errno);
            return true;
        }
        if (!cv->warned) {
            cv->warned = true;
            POH_WARN(MODULE, "cluster %s: the migration counts in %s are locked by another "
                     "collector (another poh_exporter on this state_dir); not counting "
                     "migrations until it lets go", cl->name, cl->state_dir);
        }
        return false;
    }
    cv->locked = true;
    return true;
}

/* Read the saved watermark and totals once (no file: no watermark yet). */
static void migrations_load(mongo_cluster_level_t *cv, const mongo_cluster_t *cl)
{
    poh_mongo_state_t st = {0};
    bson_t ids;
    bson_iter_t it;
    char *file = state_file(cl);
    int dirfd = open(cl->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = !file ? -ENOMEM : dirfd < 0 ? -errno : poh_mongo_state_load(dirfd, file, &st);
    cv->loaded = true;
    if (rc == 0 && st.ns && !strcmp(st.ns, STATE_NS)) {
        cv->baseline = true;
        cv->last_ms = st.last_wall_ms;
        for (size_t i = 0; i < st.nchanges; i++) {
            if (!strcmp(st.changes[i].name, "succeeded"))
                atomic_store(&cv->succeeded, st.changes[i].n);
            else if (!strcmp(st.changes[i].name, "failed"))
                atomic_store(&cv->failed, st.changes[i].n);
        }
        if (st.token && bson_init_static(&ids, bson_get_data(st.token), st.token->len) && bson_iter_init(&it, &ids))
            while (bson_iter_next(&it) && cv->nids < MAX_TIES)
                if (BSON_ITER_HOLDS_UTF8(&it) && (cv->ids[cv->nids] = strdup(bson_iter_utf8(&it, NULL))))
                    cv->nids++;
    } else if (rc < 0 && rc != -ENOENT) {
        warn_state(cv, cl, "cannot read", rc);
    }
    poh_mongo_state_clear(&st);
    if (dirfd >= 0)
        close(dirfd);
    free(file);
}

static void migrations_save(mongo_cluster_level_t *cv, const mongo_cluster_t *cl)
{
    poh_mongo_state_t st = {0};
    bson_t ids = BSON_INITIALIZER;
    char *file = state_file(cl);
    for (size_t i = 0; i < cv->nids; i++) {
        char k[24];
        snprintf(k, sizeof k, "%zu", i);
        BSON_APPEND_UTF8(&ids, k, cv->ids[i]);
    }
    st.last_wall_ms = cv->last_ms;
    *poh_mongo_count_slot(st.changes, &st.nchanges, "succeeded") = atomic_load(&cv->succeeded);
    *poh_mongo_count_slot(st.changes, &st.nchanges, "failed") = atomic_load(&cv->failed);
    int dirfd = open(cl->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = !file ? -ENOMEM : poh_mongo_state_set_ns(&st, STATE_NS);
    if (rc == 0)
        rc = poh_mongo_state_set_token(&st, bson_get_data(&ids), ids.len);
    if (rc == 0)
        rc = dirfd < 0 ? -errno : poh_mongo_state_save(dirfd, file, &st);
    if (rc < 0)
        warn_state(cv, cl, "cannot save", rc);
    poh_mongo_state_clear(&st);
    bson_destroy(&ids);
    if (dirfd >= 0)
        close(dirfd);
    free(file);
}

/* find config.changelog: migration commits and errors at or after the
 * watermark, oldest first; the newest one only when there is no watermark. */
static void changelog_command(const mongo_cluster_level_t *cv, bson_t *cmd)
{
    bson_t f, what, in, tm, sort, proj;
    BSON_APPEND_UTF8(cmd, "find", "changelog");
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &f);
    BSON_APPEND_DOCUMENT_BEGIN(&f, "what", &what);
    BSON_APPEND_ARRAY_BEGIN(&what, "$in", &in);
    BSON_APPEND_UTF8(&in, "0", "moveChunk.commit");
    BSON_APPEND_UTF8(&in, "1", "moveChunk.error");
    bson_append_array_end(&what, &in);
    bson_append_document_end(&f, &what);
    if (cv->baseline) {
        BSON_APPEND_DOCUMENT_BEGIN(&f, "time", &tm);
        BSON_APPEND_DATE_TIME(&tm, "$gte", cv->last_ms);
        bson_append_document_end(&f, &tm);
    }
    bson_append_document_end(cmd, &f);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "sort", &sort);
    BSON_APPEND_INT32(&sort, "time", cv->baseline ? 1 : -1);
    bson_append_document_end(cmd, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "projection", &proj);
    BSON_APPEND_INT32(&proj, "what", 1);
    BSON_APPEND_INT32(&proj, "time", 1);
    bson_append_document_end(cmd, &proj);
    BSON_APPEND_INT32(cmd, "limit", cv->baseline ? MAX_CHANGELOG : 1);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
}

/* Count one entry (id, what, time) unless already counted; move the watermark. */
static bool count_entry(mongo_cluster_level_t *cv, const char *id, const char *what, int64_t ms)
{
    if (ms < cv->last_ms)
        return false;
    if (ms == cv->last_ms)
        for (size_t i = 0; i < cv->nids; i++)
            if (!strcmp(cv->ids[i], id))
                return false;
    if (ms > cv->last_ms) {
        ids_clear(cv);
        cv->last_ms = ms;
    }
    if (cv->nids < MAX_TIES && (cv->ids[cv->nids] = strdup(id)))
        cv->nids++;
    if (cv->baseline)
        atomic_fetch_add(!strcmp(what, "moveChunk.commit") ? &cv->succeeded : &cv->failed, 1);
    return true;
}

static bool changelog_read(ctx_t *x)
{
    mongo_cluster_level_t *cv = x->cv;
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_iter_t it, arr, d;
    bool changed = !cv->baseline;
    changelog_command(cv, &cmd);
    bool ok = mongo_status_cmd(x->r, "config", &cmd, "find config.changelog", &reply);
    if (ok && bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.firstBatch", &arr) &&
        BSON_ITER_HOLDS_ARRAY(&arr) && bson_iter_recurse(&arr, &it)) {
        while (bson_iter_next(&it)) {
            const char *id = NULL, *what = NULL;
            int64_t ms = -1;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &d))
                continue;
            while (bson_iter_next(&d)) {
                const char *k = bson_iter_key(&d);
                if (!strcmp(k, "_id") && BSON_ITER_HOLDS_UTF8(&d))
                    id = bson_iter_utf8(&d, NULL);
                else if (!strcmp(k, "what") && BSON_ITER_HOLDS_UTF8(&d))
                    what = bson_iter_utf8(&d, NULL);
                else if (!strcmp(k, "time") && BSON_ITER_HOLDS_DATE_TIME(&d))
                    ms = bson_iter_date_time(&d);
            }
            if (id && what && ms >= 0)
                changed |= count_entry(cv, id, what, ms);
        }
        cv->baseline = true;
    }
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return ok && changed;
}

static void emit_migrations(mongo_cluster_t *cl, mongo_cluster_level_t *cv, poh_registry_t *out)
{
    const char *lv[] = {cl->name, "succeeded"};
    poh_family_t *f = poh_registry_family_desc(out, &poh_mongodb_metrics[POH_MONGODB_M_MIGRATIONS]);
    poh_counter_add(poh_family_series(f, lv), (double)atomic_load(&cv->succeeded));
    lv[1] = "failed";
    poh_counter_add(poh_family_series(f, lv), (double)atomic_load(&cv->failed));
}

/* ---------------------------------------------------------------- scrape */

void mongo_cluster_level_collect(mongo_status_run_t *r)
{
    mongo_cluster_t *cl = r->cl;
    mongo_cluster_level_t *cv = cl->level;
    ctx_t x = {.cl = cl, .cv = cv, .r = r};
    if (!cv)
        return;
    /* One scrape at a time asks; a concurrent one reports the counters only. */
    if (pthread_mutex_trylock(&cv->mu) == 0) {
        balancer(&x);
        chunks(&x);
        if (migrations_lock(cv, cl)) {
            if (!cv->loaded)
                migrations_load(cv, cl);
            if (changelog_read(&x))
                migrations_save(cv, cl);
        }
        routers(&x);
        pthread_mutex_unlock(&cv->mu);
    }
    if (cv->loaded)
        emit_migrations(cl, cv, r->out);
}
