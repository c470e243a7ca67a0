/* SPDX-License-Identifier: Apache-2.0 */
/* mongo/mongo_event: change events → operation counts, latency values and
 * field errors, exactly as the configuration says (to: commit on inserts,
 * to_field on the event that sets the field, filters, units, exemplars). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongo/mongo_event.h"

#define T0 1795621335000LL /* ms */
#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static char *ops_insert_update[] = {"insert", "update"};

/* The window is the loader's default (1d, 1s). */
static poh_config_mongo_latency_t lats[] = {
    {.name = "storage", .from_field = "created_at", .to = "commit", .epoch_unit = "ms",
     .max = 86400, .clock_skew = 1},
    {.name = "approval", .from_field = "created_at", .to_field = "approved_at", .epoch_unit = "ms",
     .max = 86400, .clock_skew = 1},
};

static poh_config_mongo_stream_t stream_cfg = {
    .name = "tx",
    .database = "dag",
    .collection = "transactions",
    .latencies = lats,
    .latencies_count = 2,
    .buckets = buckets,
    .buckets_count = sizeof buckets / sizeof *buckets,
    .traceparent_field = "traceparent",
};

static poh_mongo_stream_spec_t spec;
static poh_mongo_batch_t batch;
static int64_t seq;

static void setup_with(const poh_config_mongo_stream_t *cfg)
{
    ck_assert_int_eq(poh_mongo_stream_spec_init(&spec, cfg), 0);
    ck_assert_int_eq(poh_mongo_batch_init(&batch, &spec), 0);
    seq = 0;
}

static void setup(void)
{
    setup_with(&stream_cfg);
}

static void teardown(void)
{
    poh_mongo_batch_free(&batch, &spec);
    poh_mongo_stream_spec_free(&spec);
}

/* Start over with the stream's other settings and these latencies. */
static void restart_with_latencies(poh_config_mongo_latency_t *l, size_t n)
{
    teardown();
    poh_config_mongo_stream_t cfg = stream_cfg;
    cfg.latencies = l;
    cfg.latencies_count = n;
    setup_with(&cfg);
}

static int add(bson_t *ev)
{
    int rc = poh_mongo_batch_add(&batch, &spec, bson_get_data(ev), ev->len);
    bson_destroy(ev);
    return rc;
}

/* An insert committed at T0 + commit_ms of a document created at created_ms. */
static bson_t *insert_ev(int64_t created_ms, int64_t commit_ms)
{
    seq++;
    return BCON_NEW("_id", "{", "_data", BCON_INT64(seq), "}", "operationType", "insert",
                    "clusterTime", BCON_TIMESTAMP((uint32_t)((T0 + commit_ms) / 1000), 1),
                    "wallTime", BCON_DATE_TIME(T0 + commit_ms), "ns", "{", "db", "dag", "coll",
                    "transactions", "}", "documentKey", "{", "_id", BCON_INT64(seq), "}",
                    "fullDocument", "{", "_id", BCON_INT64(seq), "created_at",
                    BCON_DATE_TIME(T0 + created_ms), "}");
}

static size_t field(const char *name)
{
    for (size_t i = 0; i < spec.nfields; i++)
        if (!strcmp(spec.fields[i], name))
            return i;
    ck_abort_msg("no field %s", name);
    return 0;
}

/* Field errors of a field for one reason, and for all reasons. */
static uint64_t errs(const char *name, poh_mongo_field_reason_t reason)
{
    return poh_mongo_batch_field_errors(&batch, field(name), reason);
}

static uint64_t all_errs(const char *name)
{
    uint64_t n = 0;
    for (int r = 0; r < POH_FIELD_REASONS; r++)
        n += errs(name, (poh_mongo_field_reason_t)r);
    return n;
}

START_TEST(test_inserts_commit_latency)
{
    for (int i = 0; i < 99; i++)
        ck_assert_int_eq(add(insert_ev(0, 50)), 0);
    /* last_id points into the event, so keep the last one alive */
    bson_t *ev = insert_ev(0, 50);
    ck_assert_int_eq(poh_mongo_batch_add(&batch, &spec, bson_get_data(ev), ev->len), 0);
    ck_assert_uint_eq(batch.events, 100);
    ck_assert_uint_eq(batch.ops[POH_OP_INSERT], 100);
    ck_assert_uint_eq(batch.lat[0].n, 100);
    ck_assert_uint_eq(batch.lat[1].n, 0); /* not approved yet: no approval, no error */
    for (size_t i = 0; i < batch.lat[0].n; i++)
        ck_assert(batch.lat[0].v[i] == 0.05);
    ck_assert(batch.newest_wall == (double)(T0 + 50));
    ck_assert_uint_eq(all_errs("created_at"), 0);
    /* the position to resume from is the last event's _id */
    bson_t last;
    ck_assert(bson_init_static(&last, batch.last_id, batch.last_id_len));
    bson_iter_t it;
    ck_assert(bson_iter_init_find(&it, &last, "_data"));
    ck_assert_int_eq(bson_iter_int64(&it), 100);
    bson_destroy(ev);
    ck_assert(spec.update_lookup);

    poh_mongo_batch_reset(&batch, &spec);
    ck_assert_uint_eq(batch.events, 0);
    ck_assert_uint_eq(batch.lat[0].n, 0);
    ck_assert_ptr_null(batch.last_id);
}
END_TEST

START_TEST(test_approval_on_update_and_insert)
{
    /* update that sets approved_at 300 ms after created_at */
    bson_t *upd = BCON_NEW(
        "_id", "{", "_data", BCON_INT64(1), "}", "operationType", "update", "wallTime",
        BCON_DATE_TIME(T0 + 400), "updateDescription", "{", "updatedFields", "{", "approved_at",
        BCON_DATE_TIME(T0 + 300), "}", "removedFields", "[", "]", "}", "fullDocument", "{",
        "created_at", BCON_DATE_TIME(T0), "approved_at", BCON_DATE_TIME(T0 + 300), "}");
    ck_assert_int_eq(add(upd), 0);
    /* an update of another field: counted, not observed */
    bson_t *other = BCON_NEW("_id", "{", "_data", BCON_INT64(2), "}", "operationType", "update",
                             "wallTime", BCON_DATE_TIME(T0 + 500), "updateDescription", "{",
                             "updatedFields", "{", "status", "ok", "}", "}", "fullDocument", "{",
                             "created_at", BCON_DATE_TIME(T0), "approved_at",
                             BCON_DATE_TIME(T0 + 300), "}");
    ck_assert_int_eq(add(other), 0);
    /* an insert that is already approved, in RFC 3339 and epoch ms */
    bson_t *ins = BCON_NEW("_id", "{", "_data", BCON_INT64(3), "}", "operationType", "insert",
                           "wallTime", BCON_DATE_TIME(T0 + 2000), "fullDocument", "{",
                           "created_at", "2026-11-25T15:42:15.000Z", "approved_at",
                           BCON_INT64(T0 + 1250), "}");
    ck_assert_int_eq(add(ins), 0);
    ck_assert_uint_eq(batch.ops[POH_OP_UPDATE], 2);
    ck_assert_uint_eq(batch.ops[POH_OP_INSERT], 1);
    ck_assert_uint_eq(batch.lat[1].n, 2);
    ck_assert(batch.lat[1].v[0] == 0.3);
    ck_assert(batch.lat[1].v[1] == 1.25);
    ck_assert_uint_eq(batch.lat[0].n, 1); /* storage only on the insert */
    ck_assert(batch.lat[0].v[0] == 2.0);
    ck_assert(batch.newest_wall == (double)(T0 + 2000));
}
END_TEST

START_TEST(test_field_errors)
{
    /* insert without created_at: storage cannot be measured */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(1), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0), "fullDocument", "{",
                                  "x", BCON_INT32(1), "}")),
                     0);
    /* created_at that is not a time */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(2), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0), "fullDocument", "{",
                                  "created_at", "last tuesday", "}")),
                     0);
    /* approved_at that is not a time, on an update */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(3), "}", "operationType",
                                  "update", "wallTime", BCON_DATE_TIME(T0), "updateDescription",
                                  "{", "updatedFields", "{", "approved_at", BCON_BOOL(true), "}",
                                  "}", "fullDocument", "{", "created_at", BCON_DATE_TIME(T0), "}")),
                     0);
    /* the document was deleted before the update was looked up */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(4), "}", "operationType",
                                  "update", "wallTime", BCON_DATE_TIME(T0), "updateDescription",
                                  "{", "updatedFields", "{", "approved_at", BCON_DATE_TIME(T0),
                                  "}", "}", "fullDocument", BCON_NULL)),
                     0);
    /* no wallTime and no clusterTime */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(5), "}", "operationType",
                                  "insert", "fullDocument", "{", "created_at",
                                  BCON_DATE_TIME(T0), "}")),
                     0);
    /* absent on the first insert and in the deleted document; a string
     * that is not a time on the second insert */
    ck_assert_uint_eq(errs("created_at", POH_FIELD_MISSING), 2);
    ck_assert_uint_eq(errs("created_at", POH_FIELD_NOT_A_TIME), 1);
    ck_assert_uint_eq(all_errs("created_at"), 3);
    ck_assert_uint_eq(errs("approved_at", POH_FIELD_NOT_A_TIME), 1);
    ck_assert_uint_eq(all_errs("approved_at"), 1);
    ck_assert_uint_eq(errs("wallTime", POH_FIELD_MISSING), 1);
    ck_assert_uint_eq(all_errs("wallTime"), 1);
    ck_assert_uint_eq(batch.lat[0].n, 0);
    ck_assert_uint_eq(batch.lat[1].n, 0);
    ck_assert_uint_eq(batch.ops[POH_OP_INSERT], 3);
    ck_assert_uint_eq(batch.ops[POH_OP_UPDATE], 2);
    ck_assert_uint_eq(batch.events, 5);
}
END_TEST

/* Servers before 6.0 have no wallTime: clusterTime seconds stand in. */
START_TEST(test_cluster_time_fallback)
{
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(1), "}", "operationType",
                                  "insert", "clusterTime", BCON_TIMESTAMP(1795621337, 4),
                                  "fullDocument", "{", "created_at", BCON_DATE_TIME(T0 + 500),
                                  "}")),
                     0);
    ck_assert_uint_eq(batch.lat[0].n, 1);
    ck_assert(batch.lat[0].v[0] == 1.5);
    ck_assert(batch.newest_wall == 1795621337000.0);
}
END_TEST

START_TEST(test_negative_clamped)
{
    ck_assert_int_eq(add(insert_ev(250, 50)), 0); /* writer's clock ahead of the server */
    ck_assert_uint_eq(batch.lat[0].n, 1);
    ck_assert(batch.lat[0].v[0] == 0);
}
END_TEST

/* The document of issue 14: times at the ends of the double range. Both
 * are refused as out of range before any arithmetic; nothing is observed
 * (the histogram's sum would be +Inf) and each latency counts one error. */
START_TEST(test_hostile_times)
{
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(1), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0), "fullDocument", "{",
                                  "created_at", BCON_DOUBLE(-1.7e308), "approved_at",
                                  BCON_DOUBLE(1.7e308), "}")),
                     0);
    ck_assert_uint_eq(batch.ops[POH_OP_INSERT], 1);
    ck_assert_uint_eq(batch.lat[0].n, 0);
    ck_assert_uint_eq(batch.lat[1].n, 0);
    ck_assert_uint_eq(errs("created_at", POH_FIELD_OUT_OF_RANGE), 1); /* storage */
    ck_assert_uint_eq(errs("approved_at", POH_FIELD_OUT_OF_RANGE), 1); /* approval */
    ck_assert_uint_eq(all_errs("created_at") + all_errs("approved_at"), 2);

    /* epoch seconds whose milliseconds overflow int64; Dates at the int64
     * ends; an update setting approved_at to such a Date */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(2), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0), "fullDocument", "{",
                                  "created_at", BCON_DATE_TIME(INT64_MIN), "}")),
                     0);
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(3), "}", "operationType",
                                  "update", "wallTime", BCON_DATE_TIME(T0), "updateDescription",
                                  "{", "updatedFields", "{", "approved_at",
                                  BCON_DATE_TIME(INT64_MAX), "}", "}", "fullDocument", "{",
                                  "created_at", BCON_DATE_TIME(T0), "}")),
                     0);
    ck_assert_uint_eq(errs("created_at", POH_FIELD_OUT_OF_RANGE), 2);
    ck_assert_uint_eq(errs("approved_at", POH_FIELD_OUT_OF_RANGE), 2);
    ck_assert_uint_eq(batch.lat[0].n, 0);
    ck_assert_uint_eq(batch.lat[1].n, 0);

    /* a server wallTime far outside any real time: the commit time is
     * clusterTime when there is one, else an out_of_range error on wallTime;
     * the newest wall time never takes the absurd value */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(4), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(INT64_MAX), "fullDocument",
                                  "{", "created_at", BCON_DATE_TIME(T0), "}")),
                     0);
    ck_assert_uint_eq(errs("wallTime", POH_FIELD_OUT_OF_RANGE), 1);
    ck_assert_uint_eq(batch.lat[0].n, 0);
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(5), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(INT64_MAX), "clusterTime",
                                  BCON_TIMESTAMP((uint32_t)(T0 / 1000) + 2, 1), "fullDocument",
                                  "{", "created_at", BCON_DATE_TIME(T0), "}")),
                     0);
    ck_assert_uint_eq(batch.lat[0].n, 1);
    ck_assert(batch.lat[0].v[0] == 2.0);
    ck_assert(batch.newest_wall == (double)(T0 + 2000));
}
END_TEST

/* Finite, in-range times whose difference is implausible: more than the
 * window's max (default a day), or negative beyond the clock-skew
 * allowance (default 1 s). Counted against from_field, not observed. */
START_TEST(test_plausible_window)
{
    ck_assert_int_eq(add(insert_ev(-86400000, 0)), 0);     /* exactly a day: observed */
    ck_assert_int_eq(add(insert_ev(-86400001, 0)), 0);     /* a day and 1 ms: too large */
    ck_assert_int_eq(add(insert_ev(-T0, 0)), 0);           /* created in 1970 */
    ck_assert_int_eq(add(insert_ev(1000, 0)), 0);          /* 1 s in the future: observed as 0 */
    ck_assert_int_eq(add(insert_ev(1001, 0)), 0);          /* beyond the allowance */
    ck_assert_int_eq(add(insert_ev(3600000, 0)), 0);       /* an hour ahead */
    ck_assert_uint_eq(batch.lat[0].n, 2);
    ck_assert(batch.lat[0].v[0] == 86400.0);
    ck_assert(batch.lat[0].v[1] == 0.0);
    ck_assert_uint_eq(errs("created_at", POH_FIELD_TOO_LARGE), 2);
    ck_assert_uint_eq(errs("created_at", POH_FIELD_NEGATIVE), 2);
    ck_assert_uint_eq(all_errs("created_at"), 4);
    ck_assert_uint_eq(batch.ops[POH_OP_INSERT], 6);

    /* approval from a 1970 created_at to a real approved_at */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(99), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0), "fullDocument", "{",
                                  "created_at", BCON_INT64(0), "approved_at", BCON_DATE_TIME(T0),
                                  "}")),
                     0);
    ck_assert_uint_eq(batch.lat[1].n, 0);
    ck_assert_uint_eq(errs("created_at", POH_FIELD_TOO_LARGE), 4); /* storage and approval */

    /* a window of its own: max 10 s, no clock-skew allowance */
    poh_config_mongo_latency_t l[] = {
        {.name = "storage", .from_field = "created_at", .to = "commit", .epoch_unit = "ms",
         .max = 10, .clock_skew = 0},
    };
    restart_with_latencies(l, 1);
    ck_assert_int_eq(add(insert_ev(0, 10000)), 0);  /* 10 s: observed */
    ck_assert_int_eq(add(insert_ev(0, 10001)), 0);  /* too large */
    ck_assert_int_eq(add(insert_ev(1, 0)), 0);      /* 1 ms negative */
    ck_assert_int_eq(add(insert_ev(0, 0)), 0);      /* 0: observed */
    ck_assert_uint_eq(batch.lat[0].n, 2);
    ck_assert(batch.lat[0].v[0] == 10.0 && batch.lat[0].v[1] == 0.0);
    ck_assert_uint_eq(errs("created_at", POH_FIELD_TOO_LARGE), 1);
    ck_assert_uint_eq(errs("created_at", POH_FIELD_NEGATIVE), 1);

    /* a configuration built by hand without max gets the default day */
    l[0].max = 0;
    restart_with_latencies(l, 1);
    ck_assert_int_eq(add(insert_ev(-86400000, 0)), 0);
    ck_assert_int_eq(add(insert_ev(-86400001, 0)), 0);
    ck_assert_uint_eq(batch.lat[0].n, 1);
    ck_assert_uint_eq(errs("created_at", POH_FIELD_TOO_LARGE), 1);
}
END_TEST

/* Reason labels and the "<reason>:<field>" keys of the state file; keys
 * saved before reasons existed are whole field names. */
START_TEST(test_reason_keys)
{
    static const char *const names[] = {"missing", "not_a_time", "out_of_range", "negative",
                                        "too_large"};
    for (int r = 0; r < POH_FIELD_REASONS; r++) {
        char key[128];
        int back = -2;
        ck_assert_str_eq(poh_mongo_field_reason_name(r), names[r]);
        poh_mongo_field_error_key(key, sizeof key, "meta.created:at", r);
        ck_assert_str_eq(poh_mongo_field_error_split(key, &back), "meta.created:at");
        ck_assert_int_eq(back, r);
    }
    ck_assert_str_eq(poh_mongo_field_reason_name(-1), "unknown");
    ck_assert_str_eq(poh_mongo_field_reason_name(POH_FIELD_REASONS), "unknown");
    int r = 0;
    ck_assert_str_eq(poh_mongo_field_error_split("created_at", &r), "created_at");
    ck_assert_int_eq(r, -1);
    ck_assert_str_eq(poh_mongo_field_error_split("missing", &r), "missing");
    ck_assert_int_eq(r, -1);
    ck_assert_str_eq(poh_mongo_field_error_split("negative:", &r), "");
    ck_assert_int_eq(r, POH_FIELD_NEGATIVE);
}
END_TEST

START_TEST(test_not_change_events)
{
    ck_assert_int_eq(add(BCON_NEW("operationType", "insert")), -EINVAL);
    ck_assert_int_eq(add(BCON_NEW("_id", "abc", "operationType", "insert")), -EINVAL);
    uint8_t junk[] = {5, 0, 0, 0, 1};
    ck_assert_int_eq(poh_mongo_batch_add(&batch, &spec, junk, sizeof junk), -EINVAL);
    ck_assert_uint_eq(batch.events, 0);
}
END_TEST

START_TEST(test_operations_and_invalidate)
{
    static const char *const types[] = {"insert", "update", "replace", "delete", "drop",
                                        "rename", "dropDatabase", "createIndexes", "invalidate"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64((int64_t)i), "}",
                                      "operationType", BCON_UTF8(types[i]), "wallTime",
                                      BCON_DATE_TIME(T0 + (int64_t)i))),
                         0);
    for (int op = 0; op < POH_OP_COUNT; op++)
        ck_assert_uint_eq(batch.ops[op], 1);
    ck_assert(batch.invalidated);
    ck_assert_str_eq(poh_mongo_op_name(POH_OP_OTHER), "other");
    ck_assert_str_eq(poh_mongo_op_name(POH_OP_DROP_DATABASE), "dropDatabase");
    ck_assert_int_eq(poh_mongo_op_parse("dropDatabase"), POH_OP_DROP_DATABASE);
    ck_assert_int_eq(poh_mongo_op_parse("other"), -1);
    ck_assert_int_eq(poh_mongo_op_parse("Insert"), -1);
}
END_TEST

START_TEST(test_operation_filter)
{
    teardown();
    poh_config_mongo_stream_t cfg = stream_cfg;
    cfg.operations = ops_insert_update;
    cfg.operations_count = 2;
    setup_with(&cfg);
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(1), "}", "operationType",
                                  "delete", "wallTime", BCON_DATE_TIME(T0 + 900))),
                     0);
    ck_assert_int_eq(add(insert_ev(0, 10)), 0);
    ck_assert_uint_eq(batch.ops[POH_OP_DELETE], 0);
    ck_assert_uint_eq(batch.ops[POH_OP_INSERT], 1);
    /* skipped events still move the position and the newest wall time */
    ck_assert_uint_eq(batch.events, 2);
    ck_assert(batch.newest_wall == (double)(T0 + 900));
}
END_TEST

START_TEST(test_units_and_paths)
{
    static char *on_update[] = {"update", "replace"};
    poh_config_mongo_latency_t l[] = {
        {.name = "meta", .from_field = "meta.created", .to_field = "meta.approved",
         .epoch_unit = "s"},
        {.name = "touch", .from_field = "meta.created", .to = "commit", .on = on_update,
         .on_count = 2, .epoch_unit = "s"},
    };
    restart_with_latencies(l, 2);
    ck_assert(spec.update_lookup);
    /* updatedFields keys are dotted paths */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(1), "}", "operationType",
                                  "update", "wallTime", BCON_DATE_TIME(T0 + 4000),
                                  "updateDescription", "{", "updatedFields", "{", "meta.approved",
                                  BCON_DOUBLE(1795621337.5), "}", "}", "fullDocument", "{",
                                  "meta", "{", "created", BCON_INT32(1795621335), "}", "}")),
                     0);
    /* an insert with the nested field set */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(2), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0 + 4000), "fullDocument",
                                  "{", "meta", "{", "created", BCON_INT32(1795621335), "approved",
                                  BCON_INT32(1795621336), "}", "}")),
                     0);
    /* replace: observed by the commit latency (on: [update, replace]) */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(3), "}", "operationType",
                                  "replace", "wallTime", BCON_DATE_TIME(T0 + 3000), "fullDocument",
                                  "{", "meta", "{", "created", BCON_INT32(1795621335), "}", "}")),
                     0);
    ck_assert_uint_eq(batch.lat[0].n, 2);
    ck_assert(batch.lat[0].v[0] == 2.5);
    ck_assert(batch.lat[0].v[1] == 1.0);
    ck_assert_uint_eq(batch.lat[1].n, 2); /* update and replace, not the insert */
    ck_assert(batch.lat[1].v[0] == 4.0);
    ck_assert(batch.lat[1].v[1] == 3.0);
}
END_TEST

START_TEST(test_exemplars)
{
    /* three traced inserts: 50 ms, 50 ms (replaces the first in its bucket), 2 s */
    int64_t commits[] = {50, 50, 2000};
    for (int i = 0; i < 3; i++) {
        seq++;
        ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(seq), "}",
                                      "operationType", "insert", "wallTime",
                                      BCON_DATE_TIME(T0 + commits[i]), "fullDocument", "{",
                                      "created_at", BCON_DATE_TIME(T0), "traceparent", TP, "}")),
                         0);
    }
    /* an untraced one and one with a bad traceparent */
    ck_assert_int_eq(add(insert_ev(0, 7)), 0);
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(99), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0 + 7), "fullDocument",
                                  "{", "created_at", BCON_DATE_TIME(T0), "traceparent", "00-zz",
                                  "}")),
                     0);
    const poh_mongo_exemplar_t *ex[16];
    size_t n = poh_mongo_batch_exemplars(&batch, &spec, 0, ex);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ex[0]->idx, 1); /* the later of the two in the 0.05 bucket */
    ck_assert_int_eq(ex[1]->idx, 2);
    ck_assert_str_eq(ex[0]->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(ex[0]->span_id, "00f067aa0ba902b7");
    ck_assert(ex[0]->ts == (double)(T0 + 50) / 1000);
    ck_assert_uint_eq(poh_mongo_batch_exemplars(&batch, &spec, 1, ex), 0);
    /* no traceparent_field: no exemplars */
    teardown();
    poh_config_mongo_stream_t cfg = stream_cfg;
    cfg.traceparent_field = "";
    setup_with(&cfg);
    ck_assert_ptr_null(spec.traceparent_field);
}
END_TEST

START_TEST(test_spec_fields)
{
    /* distinct field names, plus wallTime for the commit latency */
    ck_assert_uint_eq(spec.nfields, 3);
    ck_assert_str_eq(spec.fields[spec.lat[0].from_err], "created_at");
    ck_assert_str_eq(spec.fields[spec.lat[0].to_err], "wallTime");
    ck_assert_str_eq(spec.fields[spec.lat[1].to_err], "approved_at");
    ck_assert_uint_eq(spec.lat[0].on_mask, 1u << POH_OP_INSERT);
    ck_assert_uint_eq(spec.op_mask, (1u << POH_OP_COUNT) - 1);
}
END_TEST

/* The document paths a stream reads are found in one pass over the
 * document, with bson_iter_find's answers: the first of duplicate keys, a
 * whole dotted key before nested keys, paths beyond the one-pass table
 * looked up on their own, and a path two latencies share read once. */
START_TEST(test_document_paths)
{
    /* created_at, approved_at, traceparent: each once, shared by both latencies */
    ck_assert_uint_eq(spec.npaths, 3);
    ck_assert_uint_eq(spec.lat[0].from_path, spec.lat[1].from_path);
    ck_assert_str_eq(spec.paths[spec.lat[0].from_path], "created_at");
    ck_assert_str_eq(spec.paths[spec.lat[1].to_path], "approved_at");
    ck_assert_str_eq(spec.paths[spec.trace_path], "traceparent");
    /* duplicate keys: the first counts, for both latencies */
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(1), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0 + 50), "fullDocument",
                                  "{", "created_at", BCON_DATE_TIME(T0 - 100), "approved_at",
                                  BCON_DATE_TIME(T0 + 400), "created_at", BCON_DATE_TIME(T0 - 5000),
                                  "approved_at", BCON_DATE_TIME(T0 + 9000), "}")),
                     0);
    ck_assert_uint_eq(batch.lat[0].n, 1);
    ck_assert(batch.lat[0].v[0] == 0.15);
    ck_assert_uint_eq(batch.lat[1].n, 1);
    ck_assert(batch.lat[1].v[0] == 0.5);

    /* a whole dotted key wins over the nested path, wherever it is */
    poh_config_mongo_latency_t dotted[] = {
        {.name = "d", .from_field = "meta.created", .to = "commit", .epoch_unit = "ms",
         .max = 86400, .clock_skew = 1},
    };
    restart_with_latencies(dotted, 1);
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(2), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0 + 1000), "fullDocument",
                                  "{", "meta", "{", "created", BCON_DATE_TIME(T0), "}",
                                  "meta.created", BCON_DATE_TIME(T0 + 750), "}")),
                     0);
    ck_assert_int_eq(add(BCON_NEW("_id", "{", "_data", BCON_INT64(3), "}", "operationType",
                                  "insert", "wallTime", BCON_DATE_TIME(T0 + 1000), "fullDocument",
                                  "{", "meta", "{", "created", BCON_DATE_TIME(T0 + 500), "}", "}")),
                     0);
    ck_assert_uint_eq(batch.lat[0].n, 2);
    ck_assert(batch.lat[0].v[0] == 0.25);
    ck_assert(batch.lat[0].v[1] == 0.5);

    /* 20 latencies from 20 fields, plus the traceparent: 21 paths, more than
     * one pass holds; each latency reads its own field */
    enum { NL = 20 };
    static char names[NL][8], froms[NL][8];
    poh_config_mongo_latency_t many[NL];
    memset(many, 0, sizeof many);
    for (int i = 0; i < NL; i++) {
        snprintf(names[i], sizeof names[i], "l%d", i);
        snprintf(froms[i], sizeof froms[i], "f%d", i);
        many[i] = (poh_config_mongo_latency_t){.name = names[i], .from_field = froms[i],
                                               .to = "commit", .epoch_unit = "ms",
                                               .max = 86400, .clock_skew = 1};
    }
    restart_with_latencies(many, NL);
    ck_assert_uint_eq(spec.npaths, NL + 1);
    ck_assert_uint_eq(spec.trace_path, NL);
    bson_t *ev = BCON_NEW("_id", "{", "_data", BCON_INT64(4), "}", "operationType", "insert",
                          "wallTime", BCON_DATE_TIME(T0 + 1000));
    bson_t doc;
    BSON_APPEND_DOCUMENT_BEGIN(ev, "fullDocument", &doc);
    BSON_APPEND_UTF8(&doc, "traceparent", TP);
    for (int i = NL - 1; i >= 0; i--) /* in reverse, so no path is where its index is */
        BSON_APPEND_DATE_TIME(&doc, froms[i], T0 + 1000 - 10 * (i + 1));
    bson_append_document_end(ev, &doc);
    ck_assert_int_eq(add(ev), 0);
    for (int i = 0; i < NL; i++) {
        ck_assert_uint_eq(batch.lat[i].n, 1);
        ck_assert_msg(batch.lat[i].v[0] == 0.01 * (i + 1), "latency %d: %g", i,
                      batch.lat[i].v[0]);
    }
    const poh_mongo_exemplar_t *ex[16];
    ck_assert_uint_eq(poh_mongo_batch_exemplars(&batch, &spec, NL - 1, ex), 1);
    ck_assert_str_eq(ex[0]->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}
END_TEST

/* Large batches grow the value arrays. */
START_TEST(test_large_batch)
{
    for (int i = 0; i < 100000; i++)
        ck_assert_int_eq(add(insert_ev(0, i % 1000)), 0);
    ck_assert_uint_eq(batch.lat[0].n, 100000);
    double sum = 0;
    for (size_t i = 0; i < batch.lat[0].n; i++)
        sum += batch.lat[0].v[i];
    ck_assert(fabs(sum - 100 * 499.5) < 1e-6);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mongodb_event");
    TCase *tc = tcase_create("event");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_inserts_commit_latency);
    tcase_add_test(tc, test_approval_on_update_and_insert);
    tcase_add_test(tc, test_field_errors);
    tcase_add_test(tc, test_cluster_time_fallback);
    tcase_add_test(tc, test_negative_clamped);
    tcase_add_test(tc, test_hostile_times);
    tcase_add_test(tc, test_plausible_window);
    tcase_add_test(tc, test_reason_keys);
    tcase_add_test(tc, test_not_change_events);
    tcase_add_test(tc, test_operations_and_invalidate);
    tcase_add_test(tc, test_operation_filter);
    tcase_add_test(tc, test_units_and_paths);
    tcase_add_test(tc, test_exemplars);
    tcase_add_test(tc, test_spec_fields);
    tcase_add_test(tc, test_document_paths);
    tcase_add_test(tc, test_large_batch);
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
