/* SPDX-License-Identifier: Apache-2.0 */
/* MongoDB collectors: clusters and their scrape-time status (see mongodb.h).
 * The change stream threads live in mongodb_stream.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collectors/mongodb_internal.h"
#include "collectors/mongodb_metrics.h"
#include "collectors/mongodb_replies.h"
#include "core/clock.h"
#include "core/log.h"
#include "mongo/mongo_state.h"
#include "mongo/mongo_util.h"

#define MODULE "mongodb"
/* Room kept between the last command's timeout and the scrape deadline. */
#define DEADLINE_MARGIN 0.02

void mongo_cluster_scrub(const mongo_cluster_t *cl, const char *msg, char *buf, size_t size)
{
    poh_strbuf_t sb = POH_STRBUF_INIT;
    poh_mongo_scrub(&sb, msg ? msg : "", cl->password);
    snprintf(buf, size, "%s", sb.data && !sb.failed ? sb.data : "(message hidden)");
    if (sb.data)
        explicit_bzero(sb.data, sb.cap);
    poh_strbuf_free(&sb);
}

/* ------------------------------------------------------------------ APM */

static void apm_observe(mongo_cluster_t *cl, const char *command, int64_t usec)
{
    const char *lv[] = {cl->name, command};
    poh_histogram_observe(poh_family_series(cl->cmd_duration, lv), (double)usec / 1e6);
}

static void apm_succeeded(const mongoc_apm_command_succeeded_t *ev)
{
    apm_observe(mongoc_apm_command_succeeded_get_context(ev),
                mongoc_apm_command_succeeded_get_command_name(ev),
                mongoc_apm_command_succeeded_get_duration(ev));
}

static void apm_failed(const mongoc_apm_command_failed_t *ev)
{
    apm_observe(mongoc_apm_command_failed_get_context(ev),
                mongoc_apm_command_failed_get_command_name(ev),
                mongoc_apm_command_failed_get_duration(ev));
}

mongoc_apm_callbacks_t *mongo_apm_callbacks_new(void)
{
    mongoc_apm_callbacks_t *cbs = mongoc_apm_callbacks_new();
    if (cbs) {
        mongoc_apm_set_command_succeeded_cb(cbs, apm_succeeded);
        mongoc_apm_set_command_failed_cb(cbs, apm_failed);
    }
    return cbs;
}

/* ------------------------------------------------------- status client */

/* opt = min(value in the URI, ms). */
static void cap_option(mongoc_uri_t *u, const char *opt, int ms)
{
    int32_t have = mongoc_uri_get_option_as_int32(u, opt, 0);
    mongoc_uri_set_option_as_int32(u, opt, have > 0 && have < ms ? have : ms);
}

static mongoc_client_t *status_client_new(mongo_cluster_t *cl, int ms)
{
    mongoc_uri_t *u = mongoc_uri_copy(cl->uri);
    mongoc_client_t *c = NULL;
    mongoc_apm_callbacks_t *cbs = NULL;
    bson_error_t err;
    if (!u)
        return NULL;
    cap_option(u, MONGOC_URI_CONNECTTIMEOUTMS, ms);
    cap_option(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, ms);
    cap_option(u, MONGOC_URI_SOCKETTIMEOUTMS, ms);
    c = mongoc_client_new_from_uri_with_error(u, &err);
    if (!c) {
        char msg[256];
        mongo_cluster_scrub(cl, err.message, msg, sizeof msg);
        POH_ERROR(MODULE, "cluster %s: cannot create a client: %s", cl->name, msg);
        goto out;
    }
    mongoc_client_set_error_api(c, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(c, "poh_exporter");
    cbs = mongo_apm_callbacks_new();
    if (cbs)
        mongoc_client_set_apm_callbacks(c, cbs, cl);
out:
    mongoc_apm_callbacks_destroy(cbs);
    mongoc_uri_destroy(u);
    return c;
}

/* Destroying a client ends its server sessions with a command that can
 * wait for a whole socket timeout on a stalled server; a scrape must not,
 * so a replaced client is destroyed on a detached thread. */
static void *reap_main(void *client)
{
    mongoc_client_destroy(client);
    return NULL;
}

void mongo_client_retire(mongoc_client_t *c)
{
    pthread_t th;
    pthread_attr_t attr;
    mongoc_client_set_apm_callbacks(c, NULL, NULL); /* the cluster may be gone first */
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, reap_main, c) != 0)
        mongoc_client_destroy(c);
    pthread_attr_destroy(&attr);
}

int mongo_timeout_pick(int budget_ms)
{
    int ideal = (int)((long)budget_ms * 45 / 100);
    if (ideal < 5)
        return 0;
    int t = 25;
    while (t <= ideal / 2)
        t *= 2;
    return t <= ideal ? t : ideal;
}

bool mongo_timeout_fits(int have_ms, int budget_ms)
{
    return have_ms > 0 && 2L * have_ms <= budget_ms && 4L * have_ms >= mongo_timeout_pick(budget_ms);
}

/* ----------------------------------------------------------------- scrape */

static void set_error(mongo_status_run_t *r, const char *what, const bson_error_t *err)
{
    if (r->error[0])
        return;
    char msg[200];
    mongo_cluster_scrub(r->cl, err->message, msg, sizeof msg);
    snprintf(r->error, sizeof r->error, "%s: %s", what, msg);
}

/* expected_refusal: a server error is logged at debug level only, not kept
 * as the scrape's error (the caller has another way to the answer). */
static bool status_cmd(mongo_status_run_t *r, const char *db, const bson_t *cmd, const char *what,
                       bson_t *reply, bool expected_refusal)
{
    bson_error_t err;
    /* A stalled server costs up to the client's socket timeout: only start
     * a command that can time out before the deadline. */
    double left = r->deadline - poh_now_mono() - DEADLINE_MARGIN;
    if (r->gone || left * 1000 < r->timeout_ms) {
        bson_init(reply);
        if (!r->gone && !r->error[0])
            snprintf(r->error, sizeof r->error, "%s: skipped, too close to the scrape deadline",
                     what);
        return false;
    }
    bson_iter_t first;
    const char *op = bson_iter_init(&first, cmd) && bson_iter_next(&first) ? bson_iter_key(&first)
                                                                           : "command";
    char name[128];
    snprintf(name, sizeof name, "%s %s", op, db);
    poh_span_t *span = poh_span_start_child(&r->trace, name, POH_SPAN_KIND_CLIENT);
    poh_span_set_str(span, "db.system", "mongodb");
    poh_span_set_str(span, "db.operation", op);
    poh_span_set_str(span, "db.name", db);
    bool ok = mongoc_client_command_simple_with_server_id(r->client, db, cmd, NULL,
                                                          r->server_id, reply, &err);
    bool server = err.domain == MONGOC_ERROR_SERVER || err.domain == MONGOC_ERROR_QUERY;
    if (ok || server)
        r->answered = true;
    else
        r->gone = true;
    if (!ok) {
        char msg[200];
        mongo_cluster_scrub(r->cl, err.message, msg, sizeof msg);
        if (!(expected_refusal && server))
            set_error(r, what, &err);
        POH_DEBUG(MODULE, "cluster %s: %s failed: %s", r->cl->name, what, msg);
        poh_span_set_status(span, POH_SPAN_STATUS_ERROR, msg);
    }
    poh_span_end(span);
    return ok;
}

bool mongo_status_cmd(mongo_status_run_t *r, const char *db, const bson_t *cmd, const char *what,
                      bson_t *reply)
{
    return status_cmd(r, db, cmd, what, reply, false);
}

bool mongo_status_try(mongo_status_run_t *r, const char *db, const bson_t *cmd, const char *what,
                      bson_t *reply)
{
    return status_cmd(r, db, cmd, what, reply, true);
}

/* replSetGetStatus, the oplog's bounds and size, serverStatus: each reply
 * becomes series in mongodb_replies.c. */
static void replset_status(mongo_status_run_t *r)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "replSetGetStatus", 1);
    if (mongo_status_cmd(r, "admin", &cmd, "replSetGetStatus", &reply))
        poh_mongodb_put_replset(r->out, r->cl->name, r->shard, &reply);
    bson_destroy(&reply);
    bson_destroy(&cmd);
}

/* ts of the first document of find's first batch, in seconds. */
static bool oplog_edge(mongo_status_run_t *r, int direction, double *ts)
{
    bson_t cmd = BSON_INITIALIZER, sort, proj, reply;
    BSON_APPEND_UTF8(&cmd, "find", "oplog.rs");
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "sort", &sort);
    BSON_APPEND_INT32(&sort, "$natural", direction);
    bson_append_document_end(&cmd, &sort);
    BSON_APPEND_INT32(&cmd, "limit", 1);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "projection", &proj);
    BSON_APPEND_INT32(&proj, "ts", 1);
    bson_append_document_end(&cmd, &proj);
    BSON_APPEND_BOOL(&cmd, "singleBatch", true);
    bool found = mongo_status_cmd(r, "local", &cmd, direction > 0 ? "oplog first" : "oplog last", &reply) &&
                 poh_mongodb_oplog_edge_ts(&reply, ts);
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return found;
}

static void oplog_status(mongo_status_run_t *r)
{
    double first, last;
    bool have_first = oplog_edge(r, 1, &first);
    bool have_last = oplog_edge(r, -1, &last);
    poh_mongodb_put_oplog_window(r->out, r->cl->name, r->shard, have_first ? &first : NULL,
                                 have_last ? &last : NULL);
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_UTF8(&cmd, "collStats", "oplog.rs");
    if (mongo_status_cmd(r, "local", &cmd, "collStats", &reply))
        poh_mongodb_put_oplog_stats(r->out, r->cl->name, r->shard, &reply);
    bson_destroy(&reply);
    bson_destroy(&cmd);
}

static void server_status(mongo_status_run_t *r)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "serverStatus", 1);
    poh_mongodb_server_status_exclude(&cmd);
    if (mongo_status_cmd(r, "admin", &cmd, "serverStatus", &reply))
        poh_mongodb_put_server_status(r->out, r->cl->name, &reply);
    bson_destroy(&reply);
    bson_destroy(&cmd);
}

void mongo_status_replset(mongo_status_run_t *r)
{
    replset_status(r);
    oplog_status(r);
}

/* The cached status client, taken for one run (NULL if another run holds
 * it: mongoc clients are single-threaded, so that run makes its own). */
static void status_client_take(mongo_cluster_t *cl, mongoc_client_t **c, int *timeout_ms)
{
    pthread_mutex_lock(&cl->mu);
    *c = cl->status;
    *timeout_ms = cl->status_timeout_ms;
    cl->status = NULL;
    pthread_mutex_unlock(&cl->mu);
}

/* Give a run's client back to the cache, or retire it if the cache was
 * filled meanwhile. */
static void status_client_give(mongo_cluster_t *cl, mongoc_client_t *c, int timeout_ms)
{
    if (!c)
        return;
    pthread_mutex_lock(&cl->mu);
    if (!cl->status) {
        cl->status = c;
        cl->status_timeout_ms = timeout_ms;
        c = NULL;
    }
    pthread_mutex_unlock(&cl->mu);
    if (c)
        mongo_client_retire(c);
}

/* Up to five commands on one member, with r->client; false when the
 * cluster did not answer. */
static bool status_commands(mongo_status_run_t *r, char *error, size_t errlen)
{
    mongo_cluster_t *cl = r->cl;
    /* Status can come from a secondary while the set has no primary, unless
     * the URI says where to read. */
    const char *raw = mongoc_uri_get_string(cl->uri);
    mongoc_read_prefs_t *prefs = strcasestr(raw, "readpreference=")
                                     ? mongoc_read_prefs_copy(mongoc_uri_get_read_prefs_t(cl->uri))
                                     : mongoc_read_prefs_new(MONGOC_READ_PRIMARY_PREFERRED);
    bson_error_t err;
    mongoc_server_description_t *sd = mongoc_client_select_server(r->client, false, prefs, &err);
    mongoc_read_prefs_destroy(prefs);
    if (!sd) {
        char msg[200];
        mongo_cluster_scrub(cl, err.message, msg, sizeof msg);
        snprintf(error, errlen, "server selection: %s", msg);
        return false;
    }
    r->server_id = mongoc_server_description_id(sd);
    /* libmongoc types a server that says msg "isdbgrid" Mongos. */
    bool mongos = !strcmp(mongoc_server_description_type(sd), "Mongos");
    mongoc_server_description_destroy(sd);
    if (mongos) {
        server_status(r);
        if (!r->gone) /* a fixed few commands on the router first; the shards share the rest */
            mongo_cluster_level_collect(r);
        if (!r->gone)
            mongo_shards_collect(r);
    } else {
        mongo_status_replset(r);
        server_status(r);
    }
    snprintf(error, errlen, "%s", r->error);
    return r->answered;
}

/* The status client's timeouts come from the scrape budget
 * (mongo_timeout_pick): selection plus one stalled command still end by the
 * deadline, and a command starts only while that much time is left. The
 * client is kept while mongo_timeout_fits, so it is rarely remade. Two
 * scrapes with different deadlines can run at once (see collectors.c): the
 * second makes a client of its own. */
static bool status_scrape(mongo_cluster_t *cl, poh_scrape_t *sc, char *error, size_t errlen)
{
    mongo_status_run_t r = {.cl = cl, .out = sc->out, .deadline = sc->deadline, .trace = sc->trace};
    double left = sc->deadline - poh_now_mono() - DEADLINE_MARGIN;
    int budget = left > 0 ? (int)(left * 1000) : 0;
    int ms = mongo_timeout_pick(budget);
    if (!ms) {
        snprintf(error, errlen, "no time left before the scrape deadline");
        return false;
    }
    status_client_take(cl, &r.client, &r.timeout_ms);
    if (r.client && !mongo_timeout_fits(r.timeout_ms, budget)) {
        mongo_client_retire(r.client);
        r.client = NULL;
    }
    if (!r.client) {
        r.client = status_client_new(cl, ms);
        r.timeout_ms = ms;
    }
    if (!r.client) {
        snprintf(error, errlen, "cannot create a client (see the log)");
        return false;
    }
    bool up = status_commands(&r, error, errlen);
    status_client_give(cl, r.client, r.timeout_ms);
    return up;
}

static int mongodb_collect(void *state, poh_scrape_t *sc)
{
    mongo_cluster_t *cl = state;
    double t0 = poh_now_mono();
    char error[256] = "";
    bool up = status_scrape(cl, sc, error, sizeof error);
    const char *lv[] = {cl->name, NULL}; /* the router or replica set: no shard label */
    poh_mongodb_put(sc->out, POH_MONGODB_M_UP, lv, up);
    for (size_t i = 0; i < cl->nstreams; i++)
        mongo_stream_collect(cl->streams[i], sc->out);
    if (!up)
        POH_DEBUG(MODULE, "cluster %s is down: %s", cl->name, error);
    pthread_mutex_lock(&cl->mu);
    cl->ran = true;
    cl->last_up = up;
    cl->last_duration = poh_now_mono() - t0;
    snprintf(cl->last_error, sizeof cl->last_error, "%s", error);
    pthread_mutex_unlock(&cl->mu);
    return 0;
}

static void mongodb_status(void *state, poh_status_rows_t *rows)
{
    mongo_cluster_t *cl = state;
    pthread_mutex_lock(&cl->mu);
    bool ran = cl->ran, up = cl->last_up;
    double dur = cl->last_duration;
    char error[sizeof cl->last_error];
    memcpy(error, cl->last_error, sizeof error);
    pthread_mutex_unlock(&cl->mu);
    poh_status_text_t text = {
        .kind = "mongodb",
        .name = cl->name,
        .target = cl->uri_redacted,
        .result = !ran ? "not scraped yet" : up ? "up" : "down",
        .error = error,
    };
    poh_status_rows_add(rows, &text, ran ? POH_STATUS_LATENCY_S : POH_STATUS_LATENCY_NONE, dur);
    for (size_t i = 0; i < cl->nstreams; i++)
        mongo_stream_status(cl->streams[i], rows);
}

/* --------------------------------------------------------------- cluster */

static void cluster_destroy(void *state)
{
    mongo_cluster_t *cl = state;
    if (!cl)
        return;
    /* Ask every stream first so they wind down together, then join. */
    for (size_t i = 0; i < cl->nstreams; i++)
        mongo_stream_request_stop(cl->streams[i]);
    for (size_t i = 0; i < cl->nstreams; i++)
        mongo_stream_destroy(cl->streams[i]);
    free(cl->streams);
    if (cl->status)
        mongoc_client_destroy(cl->status);
    mongo_shards_free(cl->shards);
    mongo_cluster_level_free(cl->level);
    if (cl->pool)
        mongoc_client_pool_destroy(cl->pool);
    if (cl->uri)
        mongoc_uri_destroy(cl->uri);
    if (cl->password) {
        explicit_bzero(cl->password, strlen(cl->password));
        free(cl->password);
    }
    free(cl->name);
    free(cl->uri_redacted);
    free(cl->state_dir);
    if (cl->own_store)
        poh_mongodb_store_free(cl->store);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

static const poh_collector_ops_t mongodb_ops = {
    .kind = "mongodb",
    .collect = mongodb_collect,
    .destroy = cluster_destroy,
    .status = mongodb_status,
};

/* Pool settings for long-lived change stream clients: an await getMore must
 * fit in socketTimeoutMS, and stopping should not wait for a long server
 * selection. Values in the URI win. */
static void default_option(mongoc_uri_t *u, const char *opt, int32_t ms)
{
    if (!mongoc_uri_has_option(u, opt))
        mongoc_uri_set_option_as_int32(u, opt, ms);
}

static int cluster_pool_new(mongo_cluster_t *cl)
{
    mongoc_uri_t *u = mongoc_uri_copy(cl->uri);
    mongoc_apm_callbacks_t *cbs = NULL;
    bson_error_t err;
    int rc = -ENOMEM;
    if (!u)
        return rc;
    default_option(u, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
    default_option(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 2000);
    default_option(u, MONGOC_URI_CONNECTTIMEOUTMS, 2000);
    cl->pool = mongoc_client_pool_new_with_error(u, &err);
    if (!cl->pool) {
        char msg[256];
        mongo_cluster_scrub(cl, err.message, msg, sizeof msg);
        POH_ERROR(MODULE, "cluster %s: cannot create a client pool: %s", cl->name, msg);
        rc = -EINVAL;
        goto out;
    }
    mongoc_client_pool_set_error_api(cl->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(cl->pool, "poh_exporter");
    /* Every stream keeps one client for its lifetime. */
    mongoc_client_pool_max_size(cl->pool, (uint32_t)(cl->nstreams + 100));
    cbs = mongo_apm_callbacks_new();
    if (!cbs || !mongoc_client_pool_set_apm_callbacks(cl->pool, cbs, cl))
        goto out;
    rc = 0;
out:
    mongoc_apm_callbacks_destroy(cbs);
    mongoc_uri_destroy(u);
    return rc;
}

/* state_dir must exist (one level is created) and be a directory we can
 * write: exactly-once counting depends on it. It must also be ours alone
 * (owned by the effective uid, not writable by group or others): whoever
 * else can write there could replace or plant state files. Returns 0, or a
 * negative errno with the reason in why. */
static int state_dir_ready(const char *dir, char *why, size_t whylen)
{
    struct stat st;
    int rc;
    if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || stat(dir, &st) < 0) {
        rc = -errno;
        snprintf(why, whylen, "is not a writable directory (%s)", strerror(-rc));
        return rc;
    }
    if ((rc = poh_mongo_state_dir_check(&st, geteuid(), why, whylen)) < 0)
        return rc;
    if (access(dir, W_OK | X_OK) < 0) {
        rc = -errno;
        snprintf(why, whylen, "is not a writable directory (%s)", strerror(-rc));
        return rc;
    }
    return 0;
}

static mongo_cluster_t *cluster_new(const poh_config_t *cfg, const poh_config_mongodb_t *c,
                                    const poh_collector_env_t *env)
{
    bson_error_t err;
    mongo_cluster_t *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    pthread_mutex_init(&cl->mu, NULL);
    cl->persistent = env->persistent;
    cl->tracer = env->tracer;
    cl->store = env->mongodb_store;
    cl->own_store = !cl->store; /* no app: a store of its own */
    if (cl->own_store && !(cl->store = poh_mongodb_store_new()))
        goto err;
    poh_strbuf_t red = POH_STRBUF_INIT;
    poh_mongo_redact_uri(&red, c->uri);
    cl->uri_redacted = poh_strbuf_steal(&red);
    cl->name = strdup(c->name);
    cl->state_dir = strdup(cfg->state_dir);
    if (!cl->uri_redacted || !cl->name || !cl->state_dir)
        goto err;
    /* Half of the buffer limit is for change-stream batches, shared evenly
     * by every stream of every cluster. */
    size_t all_streams = 0;
    for (size_t i = 0; i < cfg->mongodb_count; i++)
        all_streams += cfg->mongodb[i].change_streams_count;
    cl->stream_batch_bytes = cfg->memory.buffer_limit / 2 / (all_streams ? all_streams : 1);
    if (c->password && !(cl->password = strdup(c->password)))
        goto err;
    if (!cl->password) {
        /* Scrub an inline password too. */
        const char *sep = strstr(c->uri, "://"), *at = strrchr(c->uri, '@');
        const char *colon = sep && at ? memchr(sep + 3, ':', (size_t)(at - sep - 3)) : NULL;
        if (colon && !(cl->password = strndup(colon + 1, (size_t)(at - colon - 1))))
            goto err;
    }
    if (!(cl->shards = mongo_shards_new()) || !(cl->level = mongo_cluster_level_new()))
        goto err;
    cl->uri = mongoc_uri_new_with_error(c->uri, &err);
    if (!cl->uri) {
        char msg[256];
        mongo_cluster_scrub(cl, err.message, msg, sizeof msg);
        POH_ERROR(MODULE, "cluster %s: invalid URI %s: %s", cl->name, cl->uri_redacted, msg);
        goto err;
    }
    if (c->password && !mongoc_uri_set_password(cl->uri, c->password)) {
        POH_ERROR(MODULE, "cluster %s: the password is not valid UTF-8", cl->name);
        goto err;
    }
    cl->cmd_duration = poh_registry_family_desc(
        cl->persistent, &poh_mongodb_metrics[POH_MONGODB_M_COMMAND_DURATION]);
    if (!cl->cmd_duration)
        goto err;
    if (c->change_streams_count) {
        char why[128];
        if (state_dir_ready(cl->state_dir, why, sizeof why) < 0) {
            POH_ERROR(MODULE,
                      "cluster %s: state_dir %s %s; it holds the change stream resume tokens "
                      "and must be a directory of the exporter's user that only it can write",
                      cl->name, cl->state_dir, why);
            goto err;
        }
        cl->streams = calloc(c->change_streams_count, sizeof *cl->streams);
        if (!cl->streams)
            goto err;
        cl->nstreams = c->change_streams_count;
        if (cluster_pool_new(cl) < 0)
            goto err;
        for (size_t i = 0; i < c->change_streams_count; i++)
            if (!(cl->streams[i] = mongo_stream_new(cl, &c->change_streams[i])))
                goto err;
    }
    return cl;
err:
    cluster_destroy(cl);
    return NULL;
}

/* Persistent series labelled cluster (and stream) are kept while confs have
 * that cluster (and stream). */
static bool mongodb_series_keep(const void *confs, size_t nconfs, const char *family,
                                const char *const *names, const char *const *values, size_t n)
{
    if (strncmp(family, "poh_", 4) != 0)
        return true;
    const char *cluster = poh_label_value(names, values, n, "cluster");
    const char *stream = poh_label_value(names, values, n, "stream");
    if (!cluster)
        return true;
    for (size_t i = 0; i < nconfs; i++) {
        const poh_config_mongodb_t *c = (const poh_config_mongodb_t *)confs + i;
        if (strcmp(c->name, cluster) != 0)
            continue;
        if (!stream)
            return true;
        for (size_t k = 0; k < c->change_streams_count; k++)
            if (strcmp(c->change_streams[k].name, stream) == 0)
                return true;
    }
    return false;
}

static int mongodb_kind_create(const poh_config_t *cfg, const void *confs, size_t nclusters,
                               const poh_collector_env_t *env, poh_collector_list_t *list)
{
    if (!nclusters)
        return 0;
    poh_mongo_global_init();
    for (size_t i = 0; i < nclusters; i++) {
        const poh_config_mongodb_t *c = (const poh_config_mongodb_t *)confs + i;
        mongo_cluster_t *cl = cluster_new(cfg, c, env);
        if (!cl)
            return -EINVAL;
        for (size_t k = 0; k < cl->nstreams; k++) {
            int rc = mongo_stream_start(cl->streams[k]);
            if (rc < 0) {
                cluster_destroy(cl);
                return rc;
            }
        }
        char name[96];
        snprintf(name, sizeof name, "mongodb/%s", c->name);
        int rc = poh_collector_list_push(list, &mongodb_ops, cl, name);
        if (rc < 0)
            return rc;
        POH_INFO(MODULE, "cluster %s: %s with %zu change stream(s)", cl->name, cl->uri_redacted,
                 cl->nstreams);
    }
    return 0;
}

/* A cluster's checks (mongo_schema.c), then its latency histograms' names
 * against the exporter's fixed metric tables: "mongodb_operation" would make
 * poh_mongodb_operation_latency_seconds, the OpenMetrics family name of
 * poh_mongodb_operation_latency_seconds_total, and one of the two would be
 * left out of every scrape. */
static int validate_cluster(poh_cfg_ctx_t *ctx, void *obj)
{
    int rc = poh_cfg_mongodb_validate(ctx, obj);
    const poh_config_mongodb_t *c = obj;
    for (size_t i = 0; i < c->change_streams_count; i++) {
        const poh_config_mongo_stream_t *st = &c->change_streams[i];
        for (size_t j = 0; j < st->latencies_count; j++) {
            char family[160];
            const char *kind = NULL;
            snprintf(family, sizeof family, "poh_%s_latency_seconds", st->latencies[j].name);
            const poh_family_desc_t *d = poh_collector_fixed_clash(POH_HISTOGRAM, family, &kind);
            if (d) {
                poh_cfg_error(ctx, "change_streams",
                              "stream \"%s\": latency \"%s\" would be exported as %s, which "
                              "clashes with %s of the %s collector",
                              st->name, st->latencies[j].name, family, d->name, kind);
                rc = -EINVAL;
            }
        }
    }
    return rc;
}

const poh_cfg_section_t poh_cfg_mongodb_section = {sizeof(poh_config_mongodb_t),
                                                   poh_cfg_mongodb_entries, validate_cluster, NULL};

const poh_collector_kind_t poh_mongodb_kind = {
    .name = "mongodb",
    .section = &poh_cfg_mongodb_section,
    .conf_size = sizeof(poh_config_mongodb_t),
    .create = mongodb_kind_create,
    .keep = mongodb_series_keep,
    .ops = &mongodb_ops,
    .metrics = (const poh_collector_metrics_t[]){{"/metrics", poh_mongodb_metrics}, {NULL, NULL}},
};
