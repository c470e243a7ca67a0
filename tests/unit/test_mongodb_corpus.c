/* SPDX-License-Identifier: Apache-2.0 */
/* The corpus of MongoDB reply shapes (tests/data/mongodb/, sources in its
 * SOURCES.md) through the exporter's parsers: replSetGetStatus through
 * poh_mongo_members_parse and poh_mongo_replication_lag, change events
 * through the stream spec and batch. Every .json file in the directory
 * must have an expectation here, so a new file cannot be forgotten. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongo/mongo_event.h"
#include "mongo/mongo_util.h"

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
    {"event_split_7.0_fragment1.json", POH_OP_UPDATE, NONE, false},
    /* a later fragment continues the event fragment 1 counted */
    {"event_split_7.0_fragment2.json", -1, NONE, false},
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
    ck_assert_uint_eq(b.events, 1);
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
        ck_assert_msg(found, "corpus file %s has no expectation", de->d_name);
        checked++;
    }
    closedir(d);
    ck_assert_int_eq(checked, (int)(sizeof statuses / sizeof *statuses +
                                    sizeof events / sizeof *events));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mongodb_corpus");
    TCase *tc = tcase_create("corpus");
    tcase_add_test(tc, test_every_file);
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
