/* SPDX-License-Identifier: Apache-2.0 */
/* libmongoc against mongo_rs_sim: every test starts the real simulator binary
 * on ephemeral loopback ports and drives it with the real driver. */
#include <check.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "simproc.h"

static simproc_t sim;
static mongoc_client_t *client;

static void start_with(const char *const *args)
{
    ck_assert_int_eq(simproc_start(&sim, args), 0);
    client = mongoc_client_new(sim.uri);
    ck_assert_ptr_nonnull(client);
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
}

static void setup(void)
{
    start_with(NULL);
}

/* For tests that need command-line options: replace the fixture's simulator. */
static void restart_with(const char *const *args)
{
    mongoc_client_destroy(client);
    ck_assert_int_eq(simproc_stop(&sim), 0);
    start_with(args);
}

static void teardown(void)
{
    mongoc_client_destroy(client);
    client = NULL;
    ck_assert_int_eq(simproc_stop(&sim), 0);
}

static void ctl_ok(const char *line)
{
    char reply[4096];
    ck_assert_msg(simproc_ctl(&sim, line, reply, sizeof reply) == 0, "%s -> %s", line, reply);
}

static bool run(const char *db, const bson_t *cmd, bson_t *reply, bson_error_t *err)
{
    return mongoc_client_command_simple(client, db, cmd, NULL, reply, err);
}

static long long get_int(const bson_t *doc, const char *path)
{
    bson_iter_t it, f;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &f))
        return -1;
    return bson_iter_as_int64(&f);
}

static const char *get_str(const bson_t *doc, const char *path)
{
    bson_iter_t it, f;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &f) || !BSON_ITER_HOLDS_UTF8(&f))
        return NULL;
    return bson_iter_utf8(&f, NULL);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static mongoc_change_stream_t *watch(mongoc_collection_t *coll, const char *opts_json)
{
    bson_error_t err;
    bson_t pipeline = BSON_INITIALIZER;
    bson_t *opts = bson_new_from_json((const uint8_t *)(opts_json ? opts_json : "{}"), -1, &err);
    ck_assert_ptr_nonnull(opts);
    mongoc_change_stream_t *cs = mongoc_collection_watch(coll, &pipeline, opts);
    bson_destroy(opts);
    bson_destroy(&pipeline);
    ck_assert_ptr_nonnull(cs);
    return cs;
}

/* Next event within timeout_s, copied; NULL on timeout or stream error (err set). */
static bson_t *next_event(mongoc_change_stream_t *cs, double timeout_s, bson_error_t *err)
{
    const bson_t *ev, *reply;
    double end = simproc_now() + timeout_s;
    memset(err, 0, sizeof *err);
    while (simproc_now() < end) {
        if (mongoc_change_stream_next(cs, &ev))
            return bson_copy(ev);
        if (mongoc_change_stream_error_document(cs, err, &reply))
            return NULL;
    }
    return NULL;
}

/* ---- handshake and commands ------------------------------------------------ */

START_TEST(test_handshake)
{
    bson_error_t err;
    bson_t reply;
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    ck_assert_msg(run("admin", ping, &reply, &err), "ping: %s", err.message);
    bson_destroy(&reply);

    mongoc_server_description_t *sd = mongoc_client_select_server(client, true, NULL, &err);
    ck_assert_msg(sd != NULL, "no writable server: %s", err.message);
    ck_assert_str_eq(mongoc_server_description_type(sd), "RSPrimary");
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", sim.port);
    ck_assert_str_eq(mongoc_server_description_host(sd)->host_and_port, want);
    const bson_t *hello = mongoc_server_description_hello_response(sd);
    ck_assert_str_eq(get_str(hello, "setName"), "rs0");
    ck_assert_str_eq(get_str(hello, "me"), want);
    ck_assert_str_eq(get_str(hello, "primary"), want);
    ck_assert_int_eq(get_int(hello, "maxWireVersion"), 17);
    ck_assert_int_eq(get_int(hello, "minWireVersion"), 0);
    mongoc_server_description_destroy(sd);

    /* libmongoc 1.23 opens with a legacy OP_QUERY isMaster, then uses OP_MSG. */
    ck_assert_int_ge(simproc_command_count(&sim, "isMaster"), 1);
    ck_assert_int_eq(simproc_command_count(&sim, "ping"), 1);
    bson_destroy(ping);
}
END_TEST

/* An awaitable hello (the streaming protocol of 4.4+) of a second client,
 * on its own thread: its reply, and how long it took. */
typedef struct {
    const char *uri;
    bson_oid_t pid;
    int64_t counter;
    int max_await_ms;
    bson_t reply;
    bool ok;
    double took;
} await_t;

static void *await_main(void *p)
{
    await_t *a = p;
    bson_error_t err;
    mongoc_client_t *c = mongoc_client_new(a->uri);
    bson_t *cmd = BCON_NEW("hello", BCON_INT32(1), "topologyVersion", "{", "processId", BCON_OID(&a->pid),
                           "counter", BCON_INT64(a->counter), "}", "maxAwaitTimeMS", BCON_INT32(a->max_await_ms));
    double t0 = simproc_now();
    a->ok = c && mongoc_client_command_simple(c, "admin", cmd, NULL, &a->reply, &err);
    a->took = simproc_now() - t0;
    bson_destroy(cmd);
    mongoc_client_destroy(c);
    return NULL;
}

static void await_hello(await_t *a)
{
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, await_main, a), 0);
    pthread_join(th, NULL);
    ck_assert(a->ok);
}

/* hello carries topologyVersion {processId, counter} as mongod 4.4+ does; an
 * awaitable hello with the current one waits maxAwaitTimeMS, one with a
 * stale one answers at once, and a step-down answers a waiting one with
 * the next counter (drivers see a failover at once, not a heartbeat later). */
START_TEST(test_awaitable_hello)
{
    bson_error_t err;
    bson_t reply;
    bson_t *hello = BCON_NEW("hello", BCON_INT32(1));
    ck_assert_msg(run("admin", hello, &reply, &err), "hello: %s", err.message);
    bson_iter_t it;
    ck_assert(bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "topologyVersion.processId", &it) &&
              BSON_ITER_HOLDS_OID(&it));
    await_t a = {.uri = sim.uri, .max_await_ms = 500};
    bson_oid_copy(bson_iter_oid(&it), &a.pid);
    a.counter = get_int(&reply, "topologyVersion.counter");
    ck_assert_int_eq(a.counter, 0);
    bson_destroy(&reply);

    await_hello(&a); /* nothing changes: the whole 500 ms */
    ck_assert_msg(a.took >= 0.45, "answered after %.3f s", a.took);
    ck_assert_int_eq(get_int(&a.reply, "topologyVersion.counter"), 0);
    bson_destroy(&a.reply);

    a.counter = -1; /* stale: at once (the bound is far above any delay) */
    a.max_await_ms = 30000;
    await_hello(&a);
    ck_assert_msg(a.took < 15, "answered after %.3f s", a.took);
    bson_destroy(&a.reply);

    a.counter = 0; /* a step-down while it waits */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, await_main, &a), 0);
    sleep_ms(300);
    ctl_ok("STEPDOWN 0");
    pthread_join(th, NULL);
    ck_assert(a.ok);
    ck_assert_msg(a.took < 15, "answered after %.3f s", a.took);
    ck_assert_int_eq(get_int(&a.reply, "topologyVersion.counter"), 1);
    ck_assert(!bson_iter_init_find(&it, &a.reply, "isWritablePrimary") || !bson_iter_as_bool(&it));
    bson_destroy(&a.reply);
    bson_destroy(hello);
}
END_TEST

START_TEST(test_commands)
{
    bson_error_t err;
    bson_t reply;
    bson_t *cmd = BCON_NEW("buildInfo", BCON_INT32(1));
    ck_assert_msg(run("admin", cmd, &reply, &err), "%s", err.message);
    ck_assert_str_eq(get_str(&reply, "version"), "6.0.0");
    bson_destroy(&reply);
    bson_destroy(cmd);

    mongoc_collection_t *coll = mongoc_client_get_collection(client, "shop", "orders");
    for (int i = 0; i < 10; i++) {
        bson_t *doc = BCON_NEW("_id", BCON_INT32(i), "sku", BCON_UTF8(i % 2 ? "odd" : "even"), "qty", BCON_INT32(i * 10));
        ck_assert_msg(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err), "%s", err.message);
        bson_destroy(doc);
    }
    /* Duplicate _id is a write error, not a crash. */
    bson_t *dup = BCON_NEW("_id", BCON_INT32(3));
    ck_assert(!mongoc_collection_insert_one(coll, dup, NULL, NULL, &err));
    ck_assert_int_eq(err.code, 11000);
    bson_destroy(dup);

    bson_t *q = BCON_NEW("_id", BCON_INT32(4)), *u = BCON_NEW("$set", "{", "qty", BCON_INT32(99), "}");
    ck_assert_msg(mongoc_collection_update_one(coll, q, u, NULL, &reply, &err), "%s", err.message);
    ck_assert_int_eq(get_int(&reply, "modifiedCount"), 1);
    bson_destroy(&reply);
    bson_destroy(q);
    bson_destroy(u);
    q = BCON_NEW("_id", BCON_INT32(5));
    ck_assert(mongoc_collection_delete_one(coll, q, NULL, &reply, &err));
    ck_assert_int_eq(get_int(&reply, "deletedCount"), 1);
    bson_destroy(&reply);
    bson_destroy(q);

    /* find: equality filter, sort, limit, projection */
    bson_t *filter = BCON_NEW("sku", BCON_UTF8("even"));
    bson_t *fopts = BCON_NEW("sort", "{", "qty", BCON_INT32(-1), "}", "limit", BCON_INT64(2), "projection", "{",
                             "qty", BCON_INT32(1), "_id", BCON_INT32(0), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, fopts, NULL);
    const bson_t *doc;
    long long got[3] = {0};
    int n = 0;
    while (mongoc_cursor_next(cur, &doc) && n < 3) {
        ck_assert(!bson_has_field(doc, "_id"));
        got[n++] = get_int(doc, "qty");
    }
    ck_assert_msg(!mongoc_cursor_error(cur, &err), "%s", err.message);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(got[0], 99); /* _id 4 after the update */
    ck_assert_int_eq(got[1], 80);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(fopts);

    /* A cursor spanning several batches. */
    filter = bson_new();
    fopts = BCON_NEW("batchSize", BCON_INT32(3));
    cur = mongoc_collection_find_with_opts(coll, filter, fopts, NULL);
    n = 0;
    while (mongoc_cursor_next(cur, &doc))
        n++;
    ck_assert_msg(!mongoc_cursor_error(cur, &err), "%s", err.message);
    ck_assert_int_eq(n, 9);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(fopts);
    cmd = BCON_NEW("count", BCON_UTF8("orders"), "query", "{", "sku", BCON_UTF8("odd"), "}");
    ck_assert_msg(run("shop", cmd, &reply, &err), "%s", err.message);
    ck_assert_int_eq(get_int(&reply, "n"), 4); /* 1, 3, 7, 9: 5 was deleted */
    bson_destroy(&reply);
    bson_destroy(cmd);

    cmd = BCON_NEW("serverStatus", BCON_INT32(1));
    ck_assert_msg(run("admin", cmd, &reply, &err), "%s", err.message);
    ck_assert_int_eq(get_int(&reply, "opcounters.insert"), 11);
    ck_assert_int_eq(get_int(&reply, "opcounters.update"), 1);
    ck_assert_int_eq(get_int(&reply, "opcounters.delete"), 1);
    ck_assert_int_ge(get_int(&reply, "connections.current"), 1);
    ck_assert_int_ge(get_int(&reply, "opLatencies.writes.ops"), 13);
    ck_assert_int_ge(get_int(&reply, "uptimeMillis"), 0);
    ck_assert_int_eq(get_int(&reply, "transactions.totalCommitted"), 0);
    bson_destroy(&reply);
    bson_destroy(cmd);

    cmd = BCON_NEW("noSuchThing", BCON_INT32(1));
    ck_assert(!run("admin", cmd, &reply, &err));
    ck_assert_int_eq(err.code, 59);
    ck_assert_ptr_nonnull(strstr(err.message, "noSuchThing"));
    bson_destroy(&reply);
    bson_destroy(cmd);

    bson_t *counts = simproc_ctl_json(&sim, "COUNTS");
    ck_assert_int_eq(simproc_json_int(counts, "insert"), 10);
    ck_assert_int_eq(simproc_json_int(counts, "update"), 1);
    ck_assert_int_eq(simproc_json_int(counts, "delete"), 1);
    bson_destroy(counts);
    mongoc_collection_destroy(coll);
}
END_TEST

START_TEST(test_repl_set_get_status)
{
    bson_error_t err;
    bson_t reply;
    bson_iter_t it, members;
    static const char *const args[] = {"--secondaries", "3", NULL};
    restart_with(args);
    bson_t *cmd = BCON_NEW("replSetGetStatus", BCON_INT32(1));
    ctl_ok("INSERT 3");
    ctl_ok("LAG 1 7");
    ctl_ok("HEALTH 2 down");
    ctl_ok("OPTIME 3 zero");
    ck_assert_msg(run("admin", cmd, &reply, &err), "%s", err.message);
    ck_assert_str_eq(get_str(&reply, "set"), "rs0");
    ck_assert_int_eq(get_int(&reply, "myState"), 1);
    ck_assert(bson_iter_init_find(&it, &reply, "members") && bson_iter_recurse(&it, &members));
    int64_t dates[4] = {0};
    int states[4] = {0}, n = 0;
    double health[4] = {0};
    uint32_t ts_t[4] = {0};
    while (bson_iter_next(&members) && n < 4) {
        bson_t m;
        uint32_t len, inc;
        const uint8_t *data;
        bson_iter_t f;
        bson_iter_document(&members, &len, &data);
        bson_init_static(&m, data, len);
        states[n] = (int)get_int(&m, "state");
        ck_assert(bson_iter_init_find(&f, &m, "health"));
        health[n] = bson_iter_as_double(&f);
        ck_assert(bson_iter_init_find(&f, &m, "optimeDate"));
        dates[n] = bson_iter_date_time(&f);
        ck_assert(bson_iter_init(&f, &m) && bson_iter_find_descendant(&f, "optime.ts", &f));
        bson_iter_timestamp(&f, &ts_t[n], &inc);
        n++;
    }
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(states[0], 1);
    ck_assert_int_eq(states[1], 2);
    ck_assert_int_eq(states[2], 8);
    ck_assert(health[2] == 0.0 && health[0] == 1.0);
    ck_assert_int_eq(dates[0] - dates[1], 7000); /* exactly the configured lag */
    ck_assert_uint_eq(ts_t[0] - ts_t[1], 7);
    ck_assert_int_eq(dates[3], 0); /* zero optime */
    ck_assert_uint_eq(ts_t[3], 0);
    bson_destroy(&reply);
    /* Only on admin, like mongod. */
    ck_assert(!run("test", cmd, &reply, &err));
    ck_assert_int_eq(err.code, 13);
    bson_destroy(&reply);
    bson_destroy(cmd);
}
END_TEST

/* ---- change streams ------------------------------------------------------- */

START_TEST(test_watch_sees_writes)
{
    bson_error_t err;
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "dag", "transactions");
    mongoc_change_stream_t *cs = watch(coll, "{\"fullDocument\": \"updateLookup\", \"maxAwaitTimeMS\": 200}");
    bson_t *doc = BCON_NEW("_id", BCON_UTF8("a"), "v", BCON_INT32(1));
    ck_assert(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err));
    bson_destroy(doc);
    ctl_ok("INSERT 5");
    bson_t *q = BCON_NEW("_id", BCON_UTF8("a")), *u = BCON_NEW("$set", "{", "v", BCON_INT32(2), "}", "$unset", "{", "gone", BCON_INT32(1), "}");
    ck_assert(mongoc_collection_update_one(coll, q, u, NULL, NULL, &err));

    const char *want[] = {"insert", "insert", "insert", "insert", "insert", "insert", "update", "delete"};
    for (int i = 0; i < 8; i++) {
        /* Delete only after the update event was read: updateLookup shows the
         * document as it is when the event is delivered. */
        if (i == 7)
            ck_assert(mongoc_collection_delete_one(coll, q, NULL, NULL, &err));
        bson_t *ev = next_event(cs, 10, &err);
        ck_assert_msg(ev != NULL, "event %d: %s", i, err.message);
        ck_assert_str_eq(get_str(ev, "operationType"), want[i]);
        ck_assert_str_eq(get_str(ev, "ns.db"), "dag");
        ck_assert_str_eq(get_str(ev, "ns.coll"), "transactions");
        ck_assert(bson_has_field(ev, "_id._data"));
        ck_assert(bson_has_field(ev, "clusterTime"));
        ck_assert(bson_has_field(ev, "wallTime"));
        ck_assert(bson_has_field(ev, "documentKey._id"));
        if (i == 0)
            ck_assert_int_eq(get_int(ev, "fullDocument.v"), 1);
        if (i > 0 && i < 6) {
            ck_assert(bson_has_field(ev, "fullDocument.created_at"));
            ck_assert(bson_has_field(ev, "fullDocument.traceparent"));
        }
        if (i == 6) {
            ck_assert_int_eq(get_int(ev, "updateDescription.updatedFields.v"), 2);
            ck_assert_int_eq(get_int(ev, "fullDocument.v"), 2); /* updateLookup */
        }
        if (i == 7)
            ck_assert(!bson_has_field(ev, "fullDocument"));
        bson_destroy(ev);
    }
    bson_destroy(q);
    bson_destroy(u);
    mongoc_change_stream_destroy(cs);
    mongoc_collection_destroy(coll);
    bson_t *counts = simproc_ctl_json(&sim, "COUNTS");
    ck_assert_int_eq(simproc_json_int(counts, "insert"), 6);
    ck_assert_int_eq(simproc_json_int(counts, "update"), 1);
    ck_assert_int_eq(simproc_json_int(counts, "delete"), 1);
    ck_assert_int_eq(simproc_json_int(counts, "total"), 8);
    bson_destroy(counts);
}
END_TEST

static long long seq_of(const bson_t *ev)
{
    return get_int(ev, "fullDocument.seq");
}

START_TEST(test_resume_token_exact)
{
    bson_error_t err;
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "dag", "transactions");
    mongoc_change_stream_t *cs = watch(coll, "{\"maxAwaitTimeMS\": 200}");
    ctl_ok("INSERT 6");
    bson_t *token = NULL;
    for (int i = 1; i <= 3; i++) {
        bson_t *ev = next_event(cs, 10, &err);
        ck_assert_msg(ev != NULL, "%s", err.message);
        ck_assert_int_eq(seq_of(ev), i);
        if (i == 3) {
            bson_iter_t it;
            uint32_t len;
            const uint8_t *data;
            ck_assert(bson_iter_init_find(&it, ev, "_id"));
            bson_iter_document(&it, &len, &data);
            token = bson_new_from_data(data, len);
        }
        bson_destroy(ev);
    }
    mongoc_change_stream_destroy(cs);

    char *tok_json = bson_as_canonical_extended_json(token, NULL);
    char opts[512];
    snprintf(opts, sizeof opts, "{\"resumeAfter\": %s, \"maxAwaitTimeMS\": 200}", tok_json);
    cs = watch(coll, opts);
    for (int i = 4; i <= 6; i++) {
        bson_t *ev = next_event(cs, 10, &err);
        ck_assert_msg(ev != NULL, "%s", err.message);
        ck_assert_int_eq(seq_of(ev), i);
        bson_destroy(ev);
    }
    mongoc_change_stream_destroy(cs);
    bson_free(tok_json);
    bson_destroy(token);
    mongoc_collection_destroy(coll);
}
END_TEST

START_TEST(test_start_at_operation_time)
{
    bson_error_t err;
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "dag", "transactions");
    bson_t *counts = simproc_ctl_json(&sim, "COUNTS");
    long long t = simproc_json_int(counts, "last_ts.t"), i = simproc_json_int(counts, "last_ts.i");
    bson_destroy(counts);
    ctl_ok("INSERT 4");
    char opts[256];
    /* The next cluster time after last_ts: the first inserted document. */
    snprintf(opts, sizeof opts, "{\"startAtOperationTime\": {\"$timestamp\": {\"t\": %lld, \"i\": %lld}}, \"maxAwaitTimeMS\": 200}",
             t, i + 1);
    mongoc_change_stream_t *cs = watch(coll, opts);
    for (int k = 1; k <= 4; k++) {
        bson_t *ev = next_event(cs, 10, &err);
        ck_assert_msg(ev != NULL, "event %d: %s", k, err.message);
        ck_assert_int_eq(seq_of(ev), k);
        bson_destroy(ev);
    }
    mongoc_change_stream_destroy(cs);
    mongoc_collection_destroy(coll);
}
END_TEST

START_TEST(test_resume_after_drop)
{
    /* Simulated secondaries in the topology, as the exporter will see it. */
    static const char *const args[] = {"--secondaries", "2", NULL};
    bson_error_t err;
    restart_with(args);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "dag", "transactions");
    mongoc_change_stream_t *cs = watch(coll, "{\"maxAwaitTimeMS\": 200}");
    ctl_ok("INSERT 10");
    for (int i = 1; i <= 10; i++) {
        bson_t *ev = next_event(cs, 10, &err);
        ck_assert_msg(ev != NULL, "%s", err.message);
        ck_assert_int_eq(seq_of(ev), i);
        bson_destroy(ev);
    }
    long long aggregates = simproc_command_count(&sim, "aggregate");
    char reply[256];
    ck_assert_int_eq(simproc_ctl(&sim, "DROP", reply, sizeof reply), 0);
    ck_assert_ptr_nonnull(strstr(reply, "\"closed\":"));
    ctl_ok("INSERT 10");
    /* Exactly once, in order, across the dropped connection. */
    for (int i = 11; i <= 20; i++) {
        bson_t *ev = next_event(cs, 20, &err);
        ck_assert_msg(ev != NULL, "event %d: %s", i, err.message);
        ck_assert_int_eq(seq_of(ev), i);
        bson_destroy(ev);
    }
    ck_assert_int_eq(simproc_command_count(&sim, "aggregate"), aggregates + 1);
    mongoc_change_stream_destroy(cs);
    mongoc_collection_destroy(coll);
}
END_TEST

START_TEST(test_fail_getmore)
{
    bson_error_t err;
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "dag", "transactions");
    mongoc_change_stream_t *cs = watch(coll, "{\"maxAwaitTimeMS\": 200}");
    ctl_ok("INSERT 2");
    for (int i = 1; i <= 2; i++) {
        bson_t *ev = next_event(cs, 10, &err);
        ck_assert_msg(ev != NULL, "%s", err.message);
        bson_destroy(ev);
    }
    long long aggregates = simproc_command_count(&sim, "aggregate");
    ctl_ok("FAIL_GETMORE 91");
    ctl_ok("INSERT 2");
    for (int i = 3; i <= 4; i++) {
        bson_t *ev = next_event(cs, 20, &err);
        ck_assert_msg(ev != NULL, "resumable error was not resumed: %s", err.message);
        ck_assert_int_eq(seq_of(ev), i);
        bson_destroy(ev);
    }
    ck_assert_int_eq(simproc_command_count(&sim, "aggregate"), aggregates + 1);

    ctl_ok("FAIL_GETMORE 286");
    ctl_ok("INSERT 1");
    bson_t *ev = next_event(cs, 20, &err);
    ck_assert_ptr_null(ev);
    ck_assert_int_eq(err.code, 286);
    mongoc_change_stream_destroy(cs);
    mongoc_collection_destroy(coll);
}
END_TEST

START_TEST(test_truncated_oplog_history_lost)
{
    bson_error_t err;
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "dag", "transactions");
    mongoc_change_stream_t *cs = watch(coll, "{\"maxAwaitTimeMS\": 200}");
    ctl_ok("INSERT 1");
    bson_t *ev = next_event(cs, 10, &err);
    ck_assert_msg(ev != NULL, "%s", err.message);
    char *tok = bson_as_canonical_extended_json(mongoc_change_stream_get_resume_token(cs), NULL);
    bson_destroy(ev);
    mongoc_change_stream_destroy(cs);
    ctl_ok("INSERT 5");
    ctl_ok("TRUNCATE_OPLOG 2");
    char opts[512];
    snprintf(opts, sizeof opts, "{\"resumeAfter\": %s, \"maxAwaitTimeMS\": 200}", tok);
    cs = watch(coll, opts);
    ev = next_event(cs, 10, &err);
    ck_assert_ptr_null(ev);
    ck_assert_int_eq(err.code, 286);
    mongoc_change_stream_destroy(cs);
    bson_free(tok);
    mongoc_collection_destroy(coll);
}
END_TEST

/* ---- oplog ---------------------------------------------------------------------------- */

static bson_t *oplog_one(mongoc_collection_t *oplog, const char *filter_json, int dir)
{
    bson_error_t err;
    const bson_t *doc;
    bson_t *filter = bson_new_from_json((const uint8_t *)filter_json, -1, &err);
    bson_t *opts = BCON_NEW("sort", "{", "$natural", BCON_INT32(dir), "}", "limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(oplog, filter, opts, NULL);
    bson_t *out = mongoc_cursor_next(cur, &doc) ? bson_copy(doc) : NULL;
    ck_assert_msg(!mongoc_cursor_error(cur, &err), "%s", err.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    return out;
}

START_TEST(test_oplog_queries)
{
    bson_error_t err;
    bson_t reply;
    ctl_ok("INSERT 20");
    mongoc_collection_t *oplog = mongoc_client_get_collection(client, "local", "oplog.rs");
    bson_t *counts = simproc_ctl_json(&sim, "COUNTS");
    long long last_t = simproc_json_int(counts, "last_ts.t"), last_i = simproc_json_int(counts, "last_ts.i");
    long long first_t = simproc_json_int(counts, "oplog.first_ts.t"), first_i = simproc_json_int(counts, "oplog.first_ts.i");
    long long count = simproc_json_int(counts, "oplog.count");
    bson_destroy(counts);
    ck_assert_int_eq(count, 21); /* "initiating set" + 20 inserts */

    bson_iter_t it;
    uint32_t t, i;
    bson_t *newest = oplog_one(oplog, "{}", -1);
    ck_assert_ptr_nonnull(newest);
    ck_assert(bson_iter_init_find(&it, newest, "ts"));
    bson_iter_timestamp(&it, &t, &i);
    ck_assert_int_eq(t, last_t);
    ck_assert_int_eq(i, last_i);
    ck_assert_str_eq(get_str(newest, "op"), "i");
    ck_assert_str_eq(get_str(newest, "ns"), "dag.transactions");
    ck_assert(bson_has_field(newest, "wall"));
    bson_destroy(newest);

    bson_t *oldest = oplog_one(oplog, "{}", 1);
    ck_assert(bson_iter_init_find(&it, oldest, "ts"));
    bson_iter_timestamp(&it, &t, &i);
    ck_assert_int_eq(t, first_t);
    ck_assert_int_eq(i, first_i);
    ck_assert_str_eq(get_str(oldest, "op"), "n");
    bson_destroy(oldest);

    /* ts $gt filter: everything after the first entry. */
    char filter[160];
    snprintf(filter, sizeof filter, "{\"ts\": {\"$gt\": {\"$timestamp\": {\"t\": %lld, \"i\": %lld}}}}", first_t, first_i);
    bson_t *f = bson_new_from_json((const uint8_t *)filter, -1, &err);
    bson_t *cmd = BCON_NEW("count", BCON_UTF8("oplog.rs"), "query", BCON_DOCUMENT(f));
    ck_assert_msg(run("local", cmd, &reply, &err), "%s", err.message);
    ck_assert_int_eq(get_int(&reply, "n"), 20);
    bson_destroy(&reply);
    bson_destroy(cmd);
    bson_t *next = oplog_one(oplog, filter, 1);
    ck_assert_str_eq(get_str(next, "op"), "i");
    bson_destroy(next);
    bson_destroy(f);

    cmd = BCON_NEW("collStats", BCON_UTF8("oplog.rs"));
    ck_assert_msg(run("local", cmd, &reply, &err), "%s", err.message);
    ck_assert_int_eq(get_int(&reply, "count"), 21);
    ck_assert_int_gt(get_int(&reply, "size"), 0);
    ck_assert_int_eq(get_int(&reply, "maxSize"), 64LL * 1024 * 1024);
    bson_destroy(&reply);
    bson_destroy(cmd);
    mongoc_collection_destroy(oplog);
}
END_TEST

/* ---- awaiting, concurrency, faults ----------------------------------------------------- */

static void *insert_later(void *arg)
{
    (void)arg;
    sleep_ms(300);
    simproc_t *p = &sim;
    char reply[256];
    /* A separate control connection: the main thread owns the shared one. */
    simproc_t other = *p;
    other.ctl_fd = -1;
    simproc_ctl(&other, "INSERT 1", reply, sizeof reply);
    close(other.ctl_fd);
    return NULL;
}

START_TEST(test_getmore_awaits_without_spinning)
{
    bson_error_t err;
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "dag", "transactions");
    mongoc_change_stream_t *cs = watch(coll, "{\"maxAwaitTimeMS\": 1000}");
    const bson_t *ev;
    double cpu0 = simproc_cpu_seconds(&sim), t0 = simproc_now();
    ck_assert(!mongoc_change_stream_next(cs, &ev));
    ck_assert(!mongoc_change_stream_next(cs, &ev));
    double waited = simproc_now() - t0, cpu = simproc_cpu_seconds(&sim) - cpu0;
    ck_assert(!mongoc_change_stream_error_document(cs, &err, NULL));
    ck_assert_msg(waited >= 1.9, "getMore returned after %.3fs, not after maxTimeMS", waited);
    ck_assert_msg(cpu < 0.3, "simulator burned %.3fs CPU while awaiting", cpu);

    /* An event that arrives while a getMore waits is delivered at once. */
    pthread_t th;
    pthread_create(&th, NULL, insert_later, NULL);
    t0 = simproc_now();
    bson_t *got = next_event(cs, 10, &err);
    double latency = simproc_now() - t0;
    pthread_join(th, NULL);
    ck_assert_msg(got != NULL, "%s", err.message);
    ck_assert_msg(latency < 0.9, "event took %.3fs to arrive", latency);
    bson_destroy(got);
    mongoc_change_stream_destroy(cs);
    mongoc_collection_destroy(coll);
}
END_TEST

#define POOL_THREADS 24
#define PER_THREAD 50

static mongoc_client_pool_t *pool;

static void *pool_worker(void *arg)
{
    long id = (long)arg;
    mongoc_client_t *c = mongoc_client_pool_pop(pool);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "load", "items");
    long ok = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        bson_error_t err;
        bson_t *doc = BCON_NEW("_id", BCON_INT64(id * 1000 + i), "w", BCON_INT64(id));
        ok += mongoc_collection_insert_one(coll, doc, NULL, NULL, &err);
        bson_destroy(doc);
    }
    mongoc_collection_destroy(coll);
    mongoc_client_pool_push(pool, c);
    return (void *)ok;
}

START_TEST(test_many_connections)
{
    mongoc_uri_t *uri = mongoc_uri_new(sim.uri);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_MAXPOOLSIZE, POOL_THREADS);
    pool = mongoc_client_pool_new(uri);
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    pthread_t th[POOL_THREADS];
    for (long i = 0; i < POOL_THREADS; i++)
        pthread_create(&th[i], NULL, pool_worker, (void *)i);
    long total = 0;
    for (int i = 0; i < POOL_THREADS; i++) {
        void *r;
        pthread_join(th[i], &r);
        total += (long)r;
    }
    bson_t *status = simproc_ctl_json(&sim, "STATUS");
    long long conns = simproc_json_int(status, "connections");
    bson_destroy(status);
    mongoc_client_pool_destroy(pool);
    mongoc_uri_destroy(uri);
    ck_assert_int_eq(total, POOL_THREADS * PER_THREAD);
    ck_assert_msg(conns >= POOL_THREADS / 2, "only %lld concurrent connections", conns);
    bson_t *counts = simproc_ctl_json(&sim, "COUNTS");
    ck_assert_int_eq(simproc_json_int(counts, "insert"), POOL_THREADS * PER_THREAD);
    bson_destroy(counts);
}
END_TEST

START_TEST(test_stall)
{
    bson_error_t err;
    bson_t reply;
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    ck_assert(run("admin", ping, &reply, &err));
    bson_destroy(&reply);
    ctl_ok("STALL 400 ping");
    double t0 = simproc_now();
    ck_assert(run("admin", ping, &reply, &err));
    double took = simproc_now() - t0;
    bson_destroy(&reply);
    ck_assert_msg(took >= 0.39, "stalled ping took %.3fs", took);
    ctl_ok("STALL 0");
    t0 = simproc_now();
    ck_assert(run("admin", ping, &reply, &err));
    ck_assert_msg(simproc_now() - t0 < 0.3, "ping still stalled");
    bson_destroy(&reply);
    ctl_ok("FAIL_COMMAND ping 262 1");
    ck_assert(!run("admin", ping, &reply, &err));
    ck_assert_int_eq(err.code, 262);
    bson_destroy(&reply);
    bson_destroy(ping);
}
END_TEST

START_TEST(test_stepdown)
{
    static const char *const args[] = {"--secondaries", "1", NULL};
    bson_error_t err;
    bson_t reply;
    restart_with(args);
    mongoc_client_t *direct = mongoc_client_new(sim.direct_uri);
    mongoc_client_set_error_api(direct, MONGOC_ERROR_API_VERSION_2);
    bson_t *hello = BCON_NEW("hello", BCON_INT32(1));
    bson_t *status = BCON_NEW("replSetGetStatus", BCON_INT32(1));
    ck_assert(mongoc_client_command_simple(direct, "admin", status, NULL, &reply, &err));
    long long term = get_int(&reply, "term");
    bson_destroy(&reply);

    char out[256];
    ck_assert_int_eq(simproc_ctl(&sim, "STEPDOWN 1", out, sizeof out), 0);
    ck_assert(mongoc_client_command_simple(direct, "admin", hello, NULL, &reply, &err));
    bson_iter_t it;
    ck_assert(bson_iter_init_find(&it, &reply, "isWritablePrimary") && !bson_iter_as_bool(&it));
    const char *primary = get_str(&reply, "primary");
    ck_assert_ptr_nonnull(primary);
    char me[64];
    snprintf(me, sizeof me, "127.0.0.1:%d", sim.port);
    ck_assert_str_ne(primary, me);
    bson_destroy(&reply);

    mongoc_collection_t *coll = mongoc_client_get_collection(direct, "x", "y");
    bson_t *doc = BCON_NEW("a", BCON_INT32(1));
    ck_assert(!mongoc_collection_insert_one(coll, doc, NULL, NULL, &err));
    ck_assert_int_eq(err.code, 10107);

    /* Re-elected after the step-down period, with a higher term. */
    bool primary_again = false;
    for (int i = 0; i < 100 && !primary_again; i++) {
        sleep_ms(50);
        ck_assert(mongoc_client_command_simple(direct, "admin", hello, NULL, &reply, &err));
        primary_again = bson_iter_init_find(&it, &reply, "isWritablePrimary") && bson_iter_as_bool(&it);
        bson_destroy(&reply);
    }
    ck_assert(primary_again);
    ck_assert(mongoc_client_command_simple(direct, "admin", status, NULL, &reply, &err));
    ck_assert_int_eq(get_int(&reply, "term"), term + 2);
    bson_destroy(&reply);
    ck_assert_msg(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err), "%s", err.message);
    bson_destroy(doc);
    mongoc_collection_destroy(coll);
    bson_destroy(hello);
    bson_destroy(status);
    mongoc_client_destroy(direct);
}
END_TEST

START_TEST(test_generator_documents)
{
    static const char *const args[] = {"--rate", "400", "--approve-after", "100", "--commit-delay-ms", "50", NULL};
    bson_error_t err;
    regex_t tp;
    restart_with(args);
    ck_assert_int_eq(regcomp(&tp, "^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", REG_EXTENDED | REG_NOSUB), 0);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "dag", "transactions");
    mongoc_change_stream_t *cs = watch(coll, "{\"maxAwaitTimeMS\": 200}");
    int inserts = 0, updates = 0;
    for (int k = 0; k < 400 && (inserts < 20 || updates < 5); k++) {
        bson_t *ev = next_event(cs, 10, &err);
        ck_assert_msg(ev != NULL, "%s", err.message);
        bson_iter_t it;
        ck_assert(bson_iter_init_find(&it, ev, "wallTime"));
        int64_t wall = bson_iter_date_time(&it);
        if (!strcmp(get_str(ev, "operationType"), "insert")) {
            ck_assert(bson_iter_init(&it, ev) && bson_iter_find_descendant(&it, "fullDocument.created_at", &it));
            ck_assert_int_eq(wall - bson_iter_date_time(&it), 50);
            ck_assert_int_eq(regexec(&tp, get_str(ev, "fullDocument.traceparent"), 0, NULL, 0), 0);
            inserts++;
        } else {
            ck_assert_str_eq(get_str(ev, "operationType"), "update");
            ck_assert(bson_has_field(ev, "updateDescription.updatedFields.approved_at"));
            ck_assert_str_eq(get_str(ev, "updateDescription.updatedFields.status"), "approved");
            updates++;
        }
        bson_destroy(ev);
    }
    ck_assert_int_ge(inserts, 20);
    ck_assert_int_ge(updates, 5);
    regfree(&tp);
    mongoc_change_stream_destroy(cs);
    mongoc_collection_destroy(coll);
}
END_TEST

START_TEST(test_many_collections)
{
    static const char *const args[] = {"--collections", "10000", NULL};
    bson_error_t err;
    double t0 = simproc_now();
    restart_with(args);
    mongoc_database_t *db = mongoc_client_get_database(client, "bulk");
    char **names = mongoc_database_get_collection_names_with_opts(db, NULL, &err);
    ck_assert_msg(names != NULL, "%s", err.message);
    int n = 0;
    while (names[n])
        n++;
    bson_strfreev(names);
    mongoc_database_destroy(db);
    ck_assert_int_eq(n, 10000);
    ck_assert_msg(simproc_now() - t0 < 20, "10000 collections took %.1fs", simproc_now() - t0);
    ctl_ok("COLLECTIONS 20000");
    bson_t *status = simproc_ctl_json(&sim, "STATUS");
    ck_assert_int_eq(simproc_json_int(status, "collections"), 20001); /* + dag.transactions */
    bson_destroy(status);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mongo_rs_sim_libmongoc");
    TCase *tc = tcase_create("libmongoc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_handshake);
    tcase_add_test(tc, test_awaitable_hello);
    tcase_add_test(tc, test_commands);
    tcase_add_test(tc, test_repl_set_get_status);
    tcase_add_test(tc, test_watch_sees_writes);
    tcase_add_test(tc, test_resume_token_exact);
    tcase_add_test(tc, test_start_at_operation_time);
    tcase_add_test(tc, test_resume_after_drop);
    tcase_add_test(tc, test_fail_getmore);
    tcase_add_test(tc, test_truncated_oplog_history_lost);
    tcase_add_test(tc, test_oplog_queries);
    tcase_add_test(tc, test_getmore_awaits_without_spinning);
    tcase_add_test(tc, test_many_connections);
    tcase_add_test(tc, test_stall);
    tcase_add_test(tc, test_stepdown);
    tcase_add_test(tc, test_generator_documents);
    tcase_add_test(tc, test_many_collections);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    mongoc_init();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    mongoc_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
