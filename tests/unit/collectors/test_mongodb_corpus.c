/* SPDX-License-Identifier: Apache-2.0 */
/* The corpus of MongoDB reply shapes (tests/data/mongodb/, sources in its
 * SOURCES.md) through the exporter's parsers: replSetGetStatus through
 * poh_mongo_members_parse and poh_mongo_replication_lag, change events
 * through the stream spec and batch, serverStatus, the oplog's find and
 * collStats replies through the series the collector makes of them; hello
 * replies by the server-type rules drivers apply. Every .json file in the directory
 * must have an expectation here, so a new file cannot be forgotten. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/mongodb_replies.h"
#include "mongo/mongo_event.h"
#include "mongo/mongo_util.h"
#include "series_lookup.h"

#define CORPUS POH_SOURCE_DIR "/tests/data/mongodb"
#define NONE (-1.0) /* no lag / no latency observed */

typedef struct {
    const char *name;
    const char *state;
    int health;
    double optime;
    double lag; /* NONE: NaN expected */
} exp_member_t;

typedef struct {
    const char *file;
    int nmembers;
    exp_member_t m[6];
} exp_status_t;

static const exp_status_t statuses[] = {
    {"rs_status_7.0_all_states.json", 5, {
        {"m0.example.net:27017", "PRIMARY", 1, 1795621335, 0},
        {"m1.example.net:27017", "SECONDARY", 1, 1795621333, 2},
        {"m2.example.net:27017", "ARBITER", 1, 0, NONE},
        {"m3.example.net:27017", "DOWN", 0, 0, NONE},
        {"m4.example.net:27017", "RECOVERING", 1, 1795621000, 335},
    }},
    {"rs_status_6.0_startup2_rollback_removed.json", 5, {
        {"n0.example.net:27017", "PRIMARY", 1, 1795621335, 0},
        {"n1.example.net:27017", "SECONDARY", 1, 1795621325, 10},
        {"n2.example.net:27017", "STARTUP2", 1, 0, NONE},
        {"n3.example.net:27017", "ROLLBACK", 1, 1795621200, 135},
        {"n4.example.net:27017", "REMOVED", 1, 1795621330, 5},
    }},
    /* 8.0 reports written optimes too: the lag is the applied one's */
    {"rs_status_8.0_written_optimes.json", 3, {
        {"e0.example.net:27017", "PRIMARY", 1, 1795621335, 0},
        {"e1.example.net:27017", "SECONDARY", 1, 1795621332, 3},
        {"e2.example.net:27017", "SECONDARY", 1, 1795621335, 0},
    }},
    {"rs_status_5.0_down_no_optime.json", 3, {
        {"p0.example.net:27017", "PRIMARY", 1, 1795621335, 0},
        {"p1.example.net:27017", "DOWN", 0, 0, NONE},
        {"p2.example.net:27017", "SECONDARY", 1, 1795621330, 5},
    }},
};

typedef struct {
    const char *file;
    int op;            /* the operation counted, -1: none */
    double latency;    /* the storage latency observed, NONE: none */
    bool invalidated;
    bool fragment;     /* of a split event: alone it counts nothing (split_events below) */
} exp_event_t;

static const exp_event_t events[] = {
    {"event_insert_7.0.json", POH_OP_INSERT, 0.25, false},
    {"event_insert_5.0_no_walltime.json", POH_OP_INSERT, 1.0, false}, /* clusterTime */
    {"event_update_7.0_truncated_arrays.json", POH_OP_UPDATE, NONE, false},
    {"event_update_6.1_disambiguated_paths.json", POH_OP_UPDATE, NONE, false},
    {"event_update_7.0_full_document_null.json", POH_OP_UPDATE, NONE, false},
    {"event_replace_7.0.json", POH_OP_REPLACE, 0.25, false},
    {"event_delete_7.0.json", POH_OP_DELETE, NONE, false},
    {"event_drop_7.0.json", POH_OP_DROP, NONE, false},
    {"event_rename_7.0.json", POH_OP_RENAME, NONE, false},
    {"event_dropDatabase_7.0.json", POH_OP_DROP_DATABASE, NONE, false},
    {"event_invalidate_7.0.json", POH_OP_INVALIDATE, NONE, true},
    {"event_create_6.0_expanded.json", POH_OP_OTHER, NONE, false},
    {"event_createIndexes_6.0_expanded.json", POH_OP_OTHER, NONE, false},
    {"event_modify_6.0_expanded.json", POH_OP_OTHER, NONE, false},
    {"event_shardCollection_6.0_expanded.json", POH_OP_OTHER, NONE, false},
    /* a split event is counted once, with its last fragment (the joined
     * sequences are checked in test_split_events) */
    {"event_split_7.0_fragment1.json", -1, NONE, false, true},
    {"event_split_7.0_fragment2.json", -1, NONE, false, true},
    {"event_split_7.0_update_3of3_fragment1.json", -1, NONE, false, true},
    {"event_split_7.0_update_3of3_fragment2.json", -1, NONE, false, true},
    {"event_split_7.0_update_3of3_fragment3.json", -1, NONE, false, true},
};

/* Scrape-time replies: the series made of each (cluster "c"); a series
 * with a NULL label value is the cluster-only one; ABSENT: must not exist. */
#define ABSENT NAN
typedef struct {
    const char *metric;
    const char *label; /* the second label's name, NULL: cluster only */
    const char *value; /* its value */
    double v;
} exp_series_t;

typedef enum { R_SERVER_STATUS, R_OPLOG_FIND, R_COLL_STATS } reply_kind_t;

typedef struct {
    const char *file;
    reply_kind_t kind;
    exp_series_t s[20];
} exp_reply_t;

static const exp_reply_t replies[] = {
    {"server_status_7.0.json", R_SERVER_STATUS, {
        {"poh_mongodb_operations_total", "op", "insert", 2345001},
        {"poh_mongodb_operations_total", "op", "query", 120034},
        {"poh_mongodb_operations_total", "op", "update", 98001},
        {"poh_mongodb_operations_total", "op", "delete", 1203},
        {"poh_mongodb_operations_total", "op", "getmore", 77003},
        {"poh_mongodb_operations_total", "op", "command", 560001},
        {"poh_mongodb_operation_latency_seconds_total", "op_type", "reads", 98.765432},
        {"poh_mongodb_operation_latency_seconds_total", "op_type", "writes", 456.789012},
        {"poh_mongodb_operation_latency_seconds_total", "op_type", "commands", 3.456789},
        {"poh_mongodb_operation_latency_seconds_total", "op_type", "transactions", 2.5},
        {"poh_mongodb_operation_latency_ops_total", "op_type", "reads", 123456},
        {"poh_mongodb_operation_latency_ops_total", "op_type", "writes", 2345678},
        {"poh_mongodb_operation_latency_ops_total", "op_type", "commands", 34567},
        {"poh_mongodb_operation_latency_ops_total", "op_type", "transactions", 1000},
        {"poh_mongodb_transactions_total", "result", "started", 1000},
        {"poh_mongodb_transactions_total", "result", "committed", 987},
        {"poh_mongodb_transactions_total", "result", "aborted", 12},
    }},
    /* a 5.0 mongos: no opLatencies (mongos gained them later, SERVER-46478);
     * its transactions section has no currentPrepared but the same totals */
    {"server_status_5.0_mongos.json", R_SERVER_STATUS, {
        {"poh_mongodb_operations_total", "op", "insert", 17},
        {"poh_mongodb_operations_total", "op", "query", 3000},
        {"poh_mongodb_operations_total", "op", "command", 500},
        {"poh_mongodb_operation_latency_seconds_total", "op_type", "reads", ABSENT},
        {"poh_mongodb_operation_latency_ops_total", "op_type", "reads", ABSENT},
        {"poh_mongodb_transactions_total", "result", "started", 40},
        {"poh_mongodb_transactions_total", "result", "committed", 38},
        {"poh_mongodb_transactions_total", "result", "aborted", 2},
    }},
    {"oplog_first_7.0.json", R_OPLOG_FIND, {
        {"poh_mongodb_oplog_first_timestamp_seconds", NULL, NULL, 1795534935},
        {"poh_mongodb_oplog_window_seconds", NULL, NULL, 86400},
    }},
    {"oplog_empty_7.0.json", R_OPLOG_FIND, {
        {"poh_mongodb_oplog_first_timestamp_seconds", NULL, NULL, ABSENT},
        {"poh_mongodb_oplog_window_seconds", NULL, NULL, ABSENT},
    }},
    {"coll_stats_oplog_7.0.json", R_COLL_STATS, {
        {"poh_mongodb_oplog_size_bytes", NULL, NULL, 5348201776.0},
        {"poh_mongodb_oplog_max_size_bytes", NULL, NULL, 53687091200.0},
    }},
};

static bson_t *load(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", CORPUS, file);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    ck_assert_uint_lt(n, sizeof buf - 1);
    bson_error_t err;
    bson_t *doc = bson_new_from_json((const uint8_t *)buf, (ssize_t)n, &err);
    ck_assert_msg(doc, "%s: %s", file, err.message);
    return doc;
}

static void check_status(const exp_status_t *e)
{
    bson_t *doc = load(e->file);
    poh_mongo_member_t m[16];
    int n = poh_mongo_members_parse(doc, m, 16);
    ck_assert_int_eq(n, e->nmembers);
    for (int i = 0; i < n; i++) {
        const exp_member_t *x = &e->m[i];
        ck_assert_str_eq(m[i].name, x->name);
        ck_assert_msg(!strcmp(m[i].state_str, x->state), "%s %s: state %s, expected %s",
                      e->file, x->name, m[i].state_str, x->state);
        ck_assert_int_eq(m[i].health, x->health);
        ck_assert_msg(m[i].optime == x->optime, "%s %s: optime %f", e->file, x->name,
                      m[i].optime);
        double lag = poh_mongo_replication_lag(m, (size_t)n, (size_t)i);
        if (x->lag == NONE)
            ck_assert_msg(isnan(lag), "%s %s: lag %f, expected none", e->file, x->name, lag);
        else
            ck_assert_msg(lag == x->lag, "%s %s: lag %f", e->file, x->name, lag);
    }
    bson_destroy(doc);
}

/* A registry with the series the collector makes of the reply. The oplog
 * find reply stands for the first entry; the last is taken one day later
 * (1795621335), so the window is exact. */
static poh_registry_t *reply_series(const exp_reply_t *e, const bson_t *doc)
{
    poh_registry_t *r = poh_registry_new();
    ck_assert_ptr_nonnull(r);
    double first, last = 1795621335;
    switch (e->kind) {
    case R_SERVER_STATUS:
        poh_mongodb_put_server_status(r, "c", doc);
        break;
    case R_OPLOG_FIND:
        poh_mongodb_put_oplog_window(r, "c", NULL,
                                     poh_mongodb_oplog_edge_ts(doc, &first) ? &first : NULL, &last);
        break;
    case R_COLL_STATS:
        poh_mongodb_put_oplog_stats(r, "c", NULL, doc);
        break;
    }
    return r;
}

static void check_reply(const exp_reply_t *e)
{
    bson_t *doc = load(e->file);
    poh_registry_t *r = reply_series(e, doc);
    for (const exp_series_t *x = e->s; x->metric; x++) {
        const char *ln[] = {"cluster", x->label}, *lv[] = {"c", x->value};
        size_t nl = x->label ? 2 : 1;
        poh_metric_type_t t = strstr(x->metric, "_total") ? POH_COUNTER : POH_GAUGE;
        double v;
        bool found = series_find(r, t, x->metric, nl, ln, lv, &v);
        if (isnan(x->v))
            ck_assert_msg(!found, "%s: %s %s=%s is there (%g), expected absent", e->file,
                          x->metric, x->label ? x->label : "", x->value ? x->value : "", v);
        else
            ck_assert_msg(found && fabs(v - x->v) <= 1e-9 * fabs(x->v), "%s: %s %s=%s: %s %g",
                          e->file, x->metric, x->label ? x->label : "", x->value ? x->value : "",
                          found ? "value" : "absent", found ? v : 0);
    }
    poh_registry_free(r);
    bson_destroy(doc);
}

static char *on_ops[] = {"insert", "replace"};
static poh_config_mongo_latency_t lat_cfg[] = {
    {.name = "storage", .from_field = "created_at", .to = "commit", .on = on_ops,
     .on_count = 2, .epoch_unit = "ms", .max = 86400, .clock_skew = 1},
};
static double buckets[] = {0.1, 1, 10};
static poh_config_mongo_stream_t stream_cfg = {
    .name = "tx", .database = "dag", .collection = "transactions",
    .latencies = lat_cfg, .latencies_count = 1,
    .buckets = buckets, .buckets_count = 3, .traceparent_field = "traceparent",
};

static void check_event(const exp_event_t *e)
{
    poh_mongo_stream_spec_t spec;
    poh_mongo_batch_t b;
    ck_assert_int_eq(poh_mongo_stream_spec_init(&spec, &stream_cfg), 0);
    ck_assert_int_eq(poh_mongo_batch_init(&b, &spec), 0);
    bson_t *doc = load(e->file);
    ck_assert_int_eq(poh_mongo_batch_add(&b, &spec, bson_get_data(doc), doc->len), 0);
    /* A fragment alone: the first ones wait for the rest; a last one
     * without its start moves the position past the event, uncounted. */
    int64_t frag = 0, of = 0;
    bson_iter_t it;
    if (e->fragment) {
        ck_assert(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "splitEvent.of", &it));
        of = bson_iter_as_int64(&it);
        ck_assert(bson_iter_init(&it, doc) &&
                  bson_iter_find_descendant(&it, "splitEvent.fragment", &it));
        frag = bson_iter_as_int64(&it);
    }
    ck_assert_uint_eq(b.events, !e->fragment || frag == of ? 1 : 0);
    ck_assert(b.split.of == (e->fragment && frag == 1 && of > 1 ? of : 0));
    for (int op = 0; op < POH_OP_COUNT; op++)
        ck_assert_msg(b.ops[op] == (op == e->op ? 1u : 0u), "%s: %s counted %llu", e->file,
                      poh_mongo_op_name(op), (unsigned long long)b.ops[op]);
    if (e->latency == NONE) {
        ck_assert_uint_eq(b.lat[0].n, 0);
    } else {
        ck_assert_uint_eq(b.lat[0].n, 1);
        ck_assert_msg(b.lat[0].v[0] == e->latency, "%s: latency %f", e->file, b.lat[0].v[0]);
    }
    for (size_t f = 0; f < spec.nfields; f++)
        for (int r = 0; r < POH_FIELD_REASONS; r++)
            ck_assert_uint_eq(poh_mongo_batch_field_errors(&b, f, r), 0);
    ck_assert(b.invalidated == e->invalidated);
    bson_destroy(doc);
    poh_mongo_batch_free(&b, &spec);
    poh_mongo_stream_spec_free(&spec);
}

/* hello replies. The exporter reads none of hello itself: libmongoc's
 * topology scanning does, and decides from it whether a scrape takes the
 * router's way or the replica set's (e2e test_mongodb_corpus_sim.py puts
 * every file through libmongoc and pymongo). Here each file is checked to
 * be what its name says by the server-type rules of the Server Discovery
 * and Monitoring specification, and to carry the streaming protocol's
 * topologyVersion where 4.4+ servers send it. */
typedef struct {
    const char *file;
    const char *type; /* SDAM server type */
    int max_wire;
} exp_hello_t;

static const exp_hello_t hellos[] = {
    {"hello_5.0_rs_primary.json", "RSPrimary", 13},
    {"hello_6.0_rs_secondary.json", "RSSecondary", 17},
    {"hello_7.0_rs_arbiter.json", "RSArbiter", 21},
    {"hello_8.0_rs_primary.json", "RSPrimary", 25},
    {"hello_8.0_mongos.json", "Mongos", 25},
};

static bool flag(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && bson_iter_as_bool(&it);
}

static const char *sdam_type(const bson_t *doc)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "msg") && BSON_ITER_HOLDS_UTF8(&it) &&
        !strcmp(bson_iter_utf8(&it, NULL), "isdbgrid"))
        return "Mongos";
    if (flag(doc, "isreplicaset"))
        return "RSGhost";
    if (!bson_has_field(doc, "setName"))
        return "Standalone";
    if (flag(doc, "isWritablePrimary") || flag(doc, "ismaster"))
        return "RSPrimary";
    if (flag(doc, "secondary"))
        return "RSSecondary";
    return flag(doc, "arbiterOnly") ? "RSArbiter" : "RSOther";
}

static void check_hello(const exp_hello_t *e)
{
    bson_t *doc = load(e->file);
    ck_assert_msg(!strcmp(sdam_type(doc), e->type), "%s: %s", e->file, sdam_type(doc));
    bson_iter_t it;
    ck_assert(bson_iter_init_find(&it, doc, "maxWireVersion") && BSON_ITER_HOLDS_INT32(&it));
    ck_assert_int_eq(bson_iter_int32(&it), e->max_wire);
    ck_assert(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "topologyVersion.processId", &it) &&
              BSON_ITER_HOLDS_OID(&it));
    ck_assert(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "topologyVersion.counter", &it) &&
              BSON_ITER_HOLDS_INT64(&it));
    ck_assert(!flag(doc, "ismaster")); /* hello's answer; isMaster's says ismaster */
    if (strcmp(e->type, "Mongos"))
        ck_assert(bson_has_field(doc, "me") && bson_has_field(doc, "hosts") && bson_has_field(doc, "setVersion"));
    bson_destroy(doc);
}

/* Every file of the directory, each with its expectation. */
START_TEST(test_every_file)
{
    DIR *d = opendir(CORPUS);
    ck_assert_msg(d, "cannot open %s", CORPUS);
    struct dirent *de;
    int checked = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 5, ".json"))
            continue;
        bool found = false;
        for (size_t i = 0; i < sizeof statuses / sizeof *statuses && !found; i++)
            if (!strcmp(statuses[i].file, de->d_name)) {
                check_status(&statuses[i]);
                found = true;
            }
        for (size_t i = 0; i < sizeof events / sizeof *events && !found; i++)
            if (!strcmp(events[i].file, de->d_name)) {
                check_event(&events[i]);
                found = true;
            }
        for (size_t i = 0; i < sizeof replies / sizeof *replies && !found; i++)
            if (!strcmp(replies[i].file, de->d_name)) {
                check_reply(&replies[i]);
                found = true;
            }
        for (size_t i = 0; i < sizeof hellos / sizeof *hellos && !found; i++)
            if (!strcmp(hellos[i].file, de->d_name)) {
                check_hello(&hellos[i]);
                found = true;
            }
        ck_assert_msg(found, "corpus file %s has no expectation", de->d_name);
        checked++;
    }
    closedir(d);
    ck_assert_int_eq(checked, (int)(sizeof statuses / sizeof *statuses +
                                    sizeof events / sizeof *events +
                                    sizeof replies / sizeof *replies +
                                    sizeof hellos / sizeof *hellos));
}
END_TEST

/* Split events: the fragments joined, the event counted once with its last
 * fragment, its latency from fields of different fragments. */
static poh_config_mongo_latency_t split_lat_cfg[] = {
    {.name = "storage", .from_field = "created_at", .to = "commit", .on = on_ops,
     .on_count = 2, .epoch_unit = "ms", .max = 86400, .clock_skew = 1},
    {.name = "approval", .from_field = "created_at", .to_field = "approved_at",
     .epoch_unit = "ms", .max = 86400, .clock_skew = 1},
};

#define SPLIT3 "event_split_7.0_update_3of3_fragment"

typedef struct split_case {
    poh_mongo_stream_spec_t spec;
    poh_mongo_batch_t b;
    bson_t *f[3];
} split_case_t;

static void split_setup(split_case_t *c)
{
    poh_config_mongo_stream_t cfg = stream_cfg;
    cfg.latencies = split_lat_cfg;
    cfg.latencies_count = 2;
    ck_assert_int_eq(poh_mongo_stream_spec_init(&c->spec, &cfg), 0);
    ck_assert_int_eq(poh_mongo_batch_init(&c->b, &c->spec), 0);
    c->f[0] = load(SPLIT3 "1.json");
    c->f[1] = load(SPLIT3 "2.json");
    c->f[2] = load(SPLIT3 "3.json");
}

static void split_teardown(split_case_t *c)
{
    for (int i = 0; i < 3; i++)
        bson_destroy(c->f[i]);
    poh_mongo_batch_free(&c->b, &c->spec);
    poh_mongo_stream_spec_free(&c->spec);
}

static void split_add(split_case_t *c, int i)
{
    ck_assert_int_eq(poh_mongo_batch_add(&c->b, &c->spec, bson_get_data(c->f[i]), c->f[i]->len), 0);
}

/* The batch holds the joined event, counted once, after fragment 3's token. */
static void split_counted(const split_case_t *c)
{
    const poh_mongo_batch_t *b = &c->b;
    for (int op = 0; op < POH_OP_COUNT; op++)
        ck_assert_uint_eq(b->ops[op], op == POH_OP_UPDATE ? 1u : 0u);
    ck_assert_uint_eq(b->events, 1);
    ck_assert_uint_eq(b->lat[0].n, 0);             /* storage: not on updates */
    ck_assert_uint_eq(b->lat[1].n, 1);             /* approval: 16.5 - 14.0 */
    ck_assert(b->lat[1].v[0] == 2.5);
    for (size_t f = 0; f < c->spec.nfields; f++)
        for (int r = 0; r < POH_FIELD_REASONS; r++)
            ck_assert_uint_eq(poh_mongo_batch_field_errors(b, f, r), 0);
    const poh_mongo_exemplar_t *ex[8];
    ck_assert_uint_eq(poh_mongo_batch_exemplars(b, &c->spec, 1, ex), 1);
    ck_assert_str_eq(ex[0]->trace_id, "0af7651916cd43dd8448eb211c80319c");
    bson_iter_t it;
    ck_assert(bson_iter_init_find(&it, c->f[2], "_id"));
    uint32_t len;
    const uint8_t *id;
    bson_iter_document(&it, &len, &id);
    ck_assert(b->last_id == id && b->last_id_len == len);
    ck_assert(b->split.of == 0 && b->split.kept == NULL);
    ck_assert(b->newest_wall == 1795621336600.0);
}

START_TEST(test_split_events)
{
    split_case_t c;
    /* one batch */
    split_setup(&c);
    for (int i = 0; i < 3; i++)
        split_add(&c, i);
    split_counted(&c);
    split_teardown(&c);

    /* one fragment per batch: nothing counted, no position until the last */
    split_setup(&c);
    for (int i = 0; i < 2; i++) {
        poh_mongo_batch_reset(&c.b, &c.spec);
        split_add(&c, i);
        ck_assert_uint_eq(c.b.events, 0);
        ck_assert_ptr_null(c.b.last_id);
        ck_assert(c.b.split.of == 3 && c.b.split.next == i + 2);
        ck_assert_uint_eq(c.b.ops[POH_OP_UPDATE], 0);
    }
    poh_mongo_batch_reset(&c.b, &c.spec);
    split_add(&c, 2);
    split_counted(&c);
    split_teardown(&c);

    /* the stream reopened between fragments 2 and 3 (an error, or a restart
     * from the saved position): the server sends fragment 1 again */
    split_setup(&c);
    split_add(&c, 0);
    split_add(&c, 1);
    poh_mongo_batch_split_reset(&c.b);
    poh_mongo_batch_reset(&c.b, &c.spec);
    for (int i = 0; i < 3; i++)
        split_add(&c, i);
    split_counted(&c);
    split_teardown(&c);

    /* fragments 2 and 3 without 1 (a position inside the event saved by an
     * earlier version, which counted it with fragment 1): passed over */
    split_setup(&c);
    split_add(&c, 1);
    split_add(&c, 2);
    ck_assert_uint_eq(c.b.ops[POH_OP_UPDATE], 0);
    ck_assert_uint_eq(c.b.lat[1].n, 0);
    ck_assert_uint_eq(c.b.events, 1);
    ck_assert_ptr_nonnull(c.b.last_id);
    ck_assert(c.b.split.of == 0);
    split_teardown(&c);

    /* a whole event after fragment 1 (no server sends that): the unfinished
     * event is dropped, the whole one counted */
    split_setup(&c);
    split_add(&c, 0);
    bson_t *ins = load("event_insert_7.0.json");
    ck_assert_int_eq(poh_mongo_batch_add(&c.b, &c.spec, bson_get_data(ins), ins->len), 0);
    ck_assert_uint_eq(c.b.ops[POH_OP_INSERT], 1);
    ck_assert_uint_eq(c.b.ops[POH_OP_UPDATE], 0);
    ck_assert(c.b.split.of == 0);
    bson_destroy(ins);
    split_teardown(&c);
}
END_TEST

/* The two-fragment update of the corpus: counted once, as an update. */
START_TEST(test_split_pair)
{
    poh_mongo_stream_spec_t spec;
    poh_mongo_batch_t b;
    ck_assert_int_eq(poh_mongo_stream_spec_init(&spec, &stream_cfg), 0);
    ck_assert_int_eq(poh_mongo_batch_init(&b, &spec), 0);
    bson_t *f1 = load("event_split_7.0_fragment1.json"), *f2 = load("event_split_7.0_fragment2.json");
    ck_assert_int_eq(poh_mongo_batch_add(&b, &spec, bson_get_data(f1), f1->len), 0);
    ck_assert_int_eq(poh_mongo_batch_add(&b, &spec, bson_get_data(f2), f2->len), 0);
    for (int op = 0; op < POH_OP_COUNT; op++)
        ck_assert_uint_eq(b.ops[op], op == POH_OP_UPDATE ? 1u : 0u);
    ck_assert_uint_eq(b.events, 1);
    ck_assert_uint_eq(b.lat[0].n, 0);
    bson_destroy(f1);
    bson_destroy(f2);
    poh_mongo_batch_free(&b, &spec);
    poh_mongo_stream_spec_free(&spec);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mongodb_corpus");
    TCase *tc = tcase_create("corpus");
    tcase_add_test(tc, test_every_file);
    tcase_add_test(tc, test_split_events);
    tcase_add_test(tc, test_split_pair);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
