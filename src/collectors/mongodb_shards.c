/* SPDX-License-Identifier: Apache-2.0 */
/* Sharded clusters (issue 17): when a mongodb entry's URI names a mongos
 * (hello msg "isdbgrid", which libmongoc reports as server type Mongos), each
 * scrape lists the shards (listShards) and runs the replica-set status
 * commands (replSetGetStatus, the oplog's bounds, collStats) on every shard's
 * replica set, reached with the entry's own credentials and TLS options. The
 * series are the replica set's own names with a shard label. Shards added or
 * removed show up at the next scrape; one cached client per shard. The
 * shards are asked one after another, each within its share of what is left
 * of the scrape deadline, so a down or hung shard costs its share only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collectors/mongodb_internal.h"
#include "collectors/mongodb_metrics.h"
#include "core/clock.h"
#include "core/log.h"

#define MODULE "mongodb"
#define DEADLINE_MARGIN 0.02
#define MAX_SHARDS 256

typedef struct shard_client {
    char *name, *host; /* listShards _id and host ("set/h1,h2") */
    mongoc_client_t *client;
    int timeout_ms;
} shard_client_t;

struct mongo_shards {
    pthread_mutex_t mu; /* held by one scrape at a time */
    shard_client_t *v;
    size_t n;
};

mongo_shards_t *mongo_shards_new(void)
{
    mongo_shards_t *s = calloc(1, sizeof *s);
    if (s)
        pthread_mutex_init(&s->mu, NULL);
    return s;
}

static void shard_client_free(shard_client_t *c)
{
    if (c->client)
        mongo_client_retire(c->client);
    free(c->name);
    free(c->host);
    memset(c, 0, sizeof *c);
}

void mongo_shards_free(mongo_shards_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].client) /* the collector is going: nothing waits */
            mongoc_client_destroy(s->v[i].client);
        s->v[i].client = NULL;
        shard_client_free(&s->v[i]);
    }
    free(s->v);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void cap(mongoc_uri_t *u, const char *opt, int ms)
{
    int32_t have = mongoc_uri_get_option_as_int32(u, opt, 0);
    mongoc_uri_set_option_as_int32(u, opt, have > 0 && have < ms ? have : ms);
}

/* Every option of base except those naming the router's topology. */
static void copy_options(const mongoc_uri_t *base, mongoc_uri_t *u)
{
    static const char *const skip[] = {MONGOC_URI_REPLICASET, MONGOC_URI_DIRECTCONNECTION,
                                       MONGOC_URI_LOADBALANCED, "srvservicename", "srvmaxhosts"};
    const bson_t *opts = mongoc_uri_get_options(base);
    bson_iter_t it;
    if (!opts || !bson_iter_init(&it, opts))
        return;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        bool skipped = false;
        for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
            skipped |= !strcasecmp(k, skip[i]);
        if (skipped)
            continue;
        if (BSON_ITER_HOLDS_BOOL(&it))
            mongoc_uri_set_option_as_bool(u, k, bson_iter_bool(&it));
        else if (BSON_ITER_HOLDS_INT32(&it))
            mongoc_uri_set_option_as_int32(u, k, bson_iter_int32(&it));
        else if (BSON_ITER_HOLDS_INT64(&it))
            mongoc_uri_set_option_as_int64(u, k, bson_iter_int64(&it));
        else if (BSON_ITER_HOLDS_UTF8(&it))
            mongoc_uri_set_option_as_utf8(u, k, bson_iter_utf8(&it, NULL));
    }
}

mongoc_uri_t *mongo_shards_uri(const mongoc_uri_t *base, const char *host, int ms)
{
    const char *slash = strchr(host, '/');
    const char *hosts = slash ? slash + 1 : host;
    char *s = bson_strdup_printf("mongodb://%s/", hosts);
    mongoc_uri_t *u = mongoc_uri_new_with_error(s, NULL);
    bson_free(s);
    if (!u)
        return NULL;
    copy_options(base, u);
    const char *user = mongoc_uri_get_username(base), *pw = mongoc_uri_get_password(base);
    const char *mech = mongoc_uri_get_auth_mechanism(base);
    bson_t props;
    if (user)
        mongoc_uri_set_username(u, user);
    if (pw)
        mongoc_uri_set_password(u, pw);
    if (mech)
        mongoc_uri_set_auth_mechanism(u, mech);
    if (mongoc_uri_get_auth_source(base))
        mongoc_uri_set_auth_source(u, mongoc_uri_get_auth_source(base));
    if (mongoc_uri_get_mechanism_properties(base, &props))
        mongoc_uri_set_mechanism_properties(u, &props);
    if (slash) {
        char set[256];
        snprintf(set, sizeof set, "%.*s", (int)(slash - host), host);
        mongoc_uri_set_option_as_utf8(u, MONGOC_URI_REPLICASET, set);
    }
    cap(u, MONGOC_URI_CONNECTTIMEOUTMS, ms);
    cap(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, ms);
    cap(u, MONGOC_URI_SOCKETTIMEOUTMS, ms);
    return u;
}

/* A new client for shard c at its host, with timeouts ms. */
static void shard_client_make(mongo_cluster_t *cl, shard_client_t *c, int ms)
{
    mongoc_uri_t *u = mongo_shards_uri(cl->uri, c->host, ms);
    c->timeout_ms = ms;
    c->client = u ? mongoc_client_new_from_uri(u) : NULL;
    mongoc_uri_destroy(u);
    if (!c->client)
        return;
    mongoc_client_set_error_api(c->client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(c->client, "poh_exporter");
    mongoc_apm_callbacks_t *cbs = mongo_apm_callbacks_new();
    if (cbs)
        mongoc_client_set_apm_callbacks(c->client, cbs, cl);
    mongoc_apm_callbacks_destroy(cbs);
}

/* The cached client of shard name at host, made (again) when the host
 * changed or its timeouts do not fit a share of slice_ms (mongo_timeout_fits).
 * Caller holds s->mu. */
static shard_client_t *shard_client(mongo_cluster_t *cl, const char *name, const char *host,
                                    int slice_ms)
{
    int ms = mongo_timeout_pick(slice_ms);
    mongo_shards_t *s = cl->shards;
    shard_client_t *c = NULL;
    for (size_t i = 0; i < s->n && !c; i++)
        if (!strcmp(s->v[i].name, name))
            c = &s->v[i];
    if (c && (strcmp(c->host, host) || !mongo_timeout_fits(c->timeout_ms, slice_ms)))
        shard_client_free(c);
    if (c && c->client)
        return c;
    if (!c) {
        shard_client_t *nv = realloc(s->v, (s->n + 1) * sizeof *nv);
        if (!nv)
            return NULL;
        s->v = nv;
        c = &s->v[s->n++];
        memset(c, 0, sizeof *c);
    }
    if ((!c->name && !(c->name = strdup(name))) || (!c->host && !(c->host = strdup(host))))
        return NULL;
    shard_client_make(cl, c, ms);
    return c->client ? c : NULL;
}

/* Drop cached clients of shards no longer listed. Caller holds s->mu. */
static void forget_others(mongo_shards_t *s, char **names, size_t n)
{
    for (size_t i = 0; i < s->n;) {
        bool listed = false;
        for (size_t k = 0; k < n && !listed; k++)
            listed = !strcmp(s->v[i].name, names[k]);
        if (listed) {
            i++;
            continue;
        }
        shard_client_free(&s->v[i]);
        s->v[i] = s->v[--s->n];
    }
}

/* The replica-set status of one shard with its client c, by deadline: its
 * series labelled shard, and poh_mongodb_up{shard} 1 if a member answered.
 * Status comes from a secondary while the shard has no primary. */
static void shard_status(const mongo_status_run_t *router, shard_client_t *c, double deadline)
{
    mongo_status_run_t r = {.cl = router->cl, .client = c->client, .timeout_ms = c->timeout_ms,
                            .out = router->out, .deadline = deadline, .shard = c->name,
                            .trace = router->trace};
    bson_error_t err;
    mongoc_read_prefs_t *prefs = mongoc_read_prefs_new(MONGOC_READ_PRIMARY_PREFERRED);
    mongoc_server_description_t *sd = mongoc_client_select_server(c->client, false, prefs, &err);
    mongoc_read_prefs_destroy(prefs);
    if (sd) {
        r.server_id = mongoc_server_description_id(sd);
        mongoc_server_description_destroy(sd);
        mongo_status_replset(&r);
    } else {
        char msg[200];
        mongo_cluster_scrub(r.cl, err.message, msg, sizeof msg);
        snprintf(r.error, sizeof r.error, "server selection: %s", msg);
    }
    if (!r.answered)
        POH_DEBUG(MODULE, "cluster %s: shard %s does not answer: %s", r.cl->name, c->name,
                  r.error);
    const char *lv[] = {r.cl->name, c->name};
    poh_mongodb_put(r.out, POH_MONGODB_M_UP, lv, r.answered);
}

/* listShards' (_id, host) pairs, borrowed from reply. */
static size_t parse_shards(const bson_t *reply, char **names, char **hosts, size_t max)
{
    bson_iter_t it, arr, doc;
    size_t n = 0;
    if (!bson_iter_init_find(&it, reply, "shards") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
        return 0;
    while (bson_iter_next(&arr) && n < max) {
        const char *id = NULL, *host = NULL;
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &doc))
            continue;
        while (bson_iter_next(&doc)) {
            if (!strcmp(bson_iter_key(&doc), "_id") && BSON_ITER_HOLDS_UTF8(&doc))
                id = bson_iter_utf8(&doc, NULL);
            else if (!strcmp(bson_iter_key(&doc), "host") && BSON_ITER_HOLDS_UTF8(&doc))
                host = bson_iter_utf8(&doc, NULL);
        }
        if (id && host && id[0] && host[0]) {
            names[n] = (char *)id;
            hosts[n++] = (char *)host;
        }
    }
    return n;
}

/* Each shard in turn, within an equal share of what is left of the
 * deadline (time a shard does not use goes to the ones after it). Caller
 * holds cl->shards->mu. */
static void shards_status(const mongo_status_run_t *r, char **names, char **hosts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double now = poh_now_mono();
        double share = (r->deadline - now - DEADLINE_MARGIN) / (double)(n - i);
        int slice_ms = share > 0 ? (int)(share * 1000) : 0;
        bool asked = mongo_timeout_pick(slice_ms) > 0;
        shard_client_t *c = asked ? shard_client(r->cl, names[i], hosts[i], slice_ms) : NULL;
        if (!c) {
            /* Not asked: not up in this scrape, rather than no series. */
            POH_DEBUG(MODULE, "cluster %s: shard %s skipped this scrape (%s)", r->cl->name,
                      names[i], asked ? "no client" : "deadline");
            const char *lv[] = {r->cl->name, names[i]};
            poh_mongodb_put(r->out, POH_MONGODB_M_UP, lv, 0);
            continue;
        }
        shard_status(r, c, now + share);
    }
}

bool mongo_shards_collect(mongo_status_run_t *r)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    char *names[MAX_SHARDS], *hosts[MAX_SHARDS];
    BSON_APPEND_INT32(&cmd, "listShards", 1);
    bool ok = mongo_status_cmd(r, "admin", &cmd, "listShards", &reply);
    bson_destroy(&cmd);
    if (!ok) {
        bson_destroy(&reply);
        return false;
    }
    size_t n = parse_shards(&reply, names, hosts, MAX_SHARDS);
    const char *lv[] = {r->cl->name};
    poh_mongodb_put(r->out, POH_MONGODB_M_SHARDS, lv, (double)n);
    /* One scrape at a time asks the shards (their clients are single-threaded);
     * a concurrent one reports the count only. */
    if (pthread_mutex_trylock(&r->cl->shards->mu) == 0) {
        forget_others(r->cl->shards, names, n);
        shards_status(r, names, hosts, n);
        pthread_mutex_unlock(&r->cl->shards->mu);
    }
    bson_destroy(&reply);
    return true;
}
