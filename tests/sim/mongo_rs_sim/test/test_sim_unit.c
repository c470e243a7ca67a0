/* SPDX-License-Identifier: Apache-2.0 */
/* In-process tests of the simulator's parts: wire framing, the matcher,
 * store/oplog/change-stream semantics and the control protocol. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bsonutil.h"
#include "control.h"
#include "generator.h"
#include "sim.h"
#include "store.h"
#include "wire.h"

/* ---- message builders ---------------------------------------------------- */

typedef struct msg {
    uint8_t b[4096];
    size_t n;
} msg_t;

static void put32(msg_t *m, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        m->b[m->n++] = (uint8_t)(v >> (8 * i));
}

static void put_bytes(msg_t *m, const void *p, size_t n)
{
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void put_json_doc(msg_t *m, const char *json)
{
    bson_error_t err;
    bson_t *d = bson_new_from_json((const uint8_t *)json, -1, &err);
    ck_assert_msg(d != NULL, "%s", err.message);
    put_bytes(m, bson_get_data(d), d->len);
    bson_destroy(d);
}

static void header(msg_t *m, int32_t opcode)
{
    m->n = 0;
    put32(m, 0);
    put32(m, 7);
    put32(m, 0);
    put32(m, (uint32_t)opcode);
}

static void finish(msg_t *m)
{
    uint32_t n = (uint32_t)m->n;
    for (int i = 0; i < 4; i++)
        m->b[i] = (uint8_t)(n >> (8 * i));
}

static void op_msg(msg_t *m, uint32_t flags, const char *body)
{
    header(m, SIM_OP_MSG);
    put32(m, flags);
    m->b[m->n++] = 0;
    put_json_doc(m, body);
}

static void kind1(msg_t *m, const char *ident, const char *const *docs, int ndocs)
{
    size_t at;
    m->b[m->n++] = 1;
    at = m->n;
    put32(m, 0);
    put_bytes(m, ident, strlen(ident) + 1);
    for (int i = 0; i < ndocs; i++)
        put_json_doc(m, docs[i]);
    uint32_t size = (uint32_t)(m->n - at);
    for (int i = 0; i < 4; i++)
        m->b[at + i] = (uint8_t)(size >> (8 * i));
}

static int parse(msg_t *m, sim_request_t *req, const char **why)
{
    return sim_wire_parse(m->b, m->n, req, why);
}

/* ---- wire ------------------------------------------------------------------- */

START_TEST(test_wire_op_msg)
{
    msg_t m;
    sim_request_t req;
    const char *why = NULL;
    const char *docs[] = {"{\"_id\": 1}", "{\"_id\": 2}", "{\"_id\": 3}"};
    op_msg(&m, 0, "{\"insert\": \"c\", \"$db\": \"d\"}");
    kind1(&m, "documents", docs, 3);
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), 0);
    ck_assert_int_eq(req.opcode, SIM_OP_MSG);
    ck_assert_int_eq(req.request_id, 7);
    ck_assert_int_eq(req.nseq, 1);
    const sim_seq_t *s = sim_request_seq(&req, "documents");
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->ndocs, 3);
    uint32_t off = 0;
    bson_t d;
    int n = 0;
    while (sim_seq_next(s, &off, &d))
        n++;
    ck_assert_int_eq(n, 3);

    /* checksumPresent: the trailing CRC-32C is skipped, not parsed as a section */
    op_msg(&m, SIM_MSG_CHECKSUM, "{\"ping\": 1, \"$db\": \"admin\"}");
    put32(&m, 0xdeadbeef);
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), 0);

    op_msg(&m, SIM_MSG_MORE_TO_COME, "{\"insert\": \"c\", \"$db\": \"d\"}");
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), 0);
    ck_assert(req.more_to_come);

    uint8_t rh[SIM_REPLY_HDR_MAX];
    ck_assert_uint_eq(sim_wire_reply_header(rh, &req, 9, 100), 21);
    ck_assert_int_eq(sim_le32(rh), 121);
    ck_assert_int_eq(sim_le32(rh + 8), 7);
    ck_assert_int_eq(sim_le32(rh + 12), SIM_OP_MSG);
}
END_TEST

START_TEST(test_wire_op_query)
{
    msg_t m;
    sim_request_t req;
    const char *why = NULL;
    header(&m, SIM_OP_QUERY);
    put32(&m, 0);
    put_bytes(&m, "admin.$cmd", 11);
    put32(&m, 0);
    put32(&m, (uint32_t)-1);
    put_json_doc(&m, "{\"$query\": {\"isMaster\": 1, \"helloOk\": true}, \"$readPreference\": {\"mode\": \"primary\"}}");
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), 0);
    ck_assert_str_eq(req.db, "admin");
    bson_iter_t it;
    ck_assert(bson_iter_init(&it, &req.body) && bson_iter_next(&it));
    ck_assert_str_eq(bson_iter_key(&it), "isMaster");
    uint8_t rh[SIM_REPLY_HDR_MAX];
    ck_assert_uint_eq(sim_wire_reply_header(rh, &req, 9, 50), 36);
    ck_assert_int_eq(sim_le32(rh + 12), SIM_OP_REPLY);
    ck_assert_int_eq(sim_le32(rh + 32), 1);
}
END_TEST

/* Malformed messages: each must be rejected with a reason, never crash. */
START_TEST(test_wire_rejects)
{
    msg_t m;
    sim_request_t req;
    const char *why;
    const char *docs[] = {"{\"a\": 1}"};

    op_msg(&m, 0, "{\"ping\": 1}");
    finish(&m);
    m.b[0]++; /* length disagrees with the buffer */
    why = NULL;
    ck_assert_int_eq(parse(&m, &req, &why), -1);
    ck_assert_ptr_nonnull(why);

    op_msg(&m, 0x4, "{\"ping\": 1}"); /* unknown required bit */
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), -1);
    ck_assert_str_eq(why, "OP_MSG has unknown required flag bits");

    op_msg(&m, 0, "{\"ping\": 1}");
    m.b[m.n++] = 0;
    put_json_doc(&m, "{\"ping\": 2}");
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), -1);
    ck_assert_str_eq(why, "OP_MSG has more than one kind-0 section");

    op_msg(&m, 0, "{\"ping\": 1}");
    kind1(&m, "documents", docs, 1);
    /* size field precedes "documents\0" (10 bytes) and {"a": 1} (12 bytes) */
    m.b[m.n - 12 - 10 - 4 + 3] = 0x7f; /* a sequence larger than the message */
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), -1);

    op_msg(&m, 0, "{\"ping\": 1}");
    m.b[m.n++] = 7;
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), -1);
    ck_assert_str_eq(why, "OP_MSG section kind is unknown");

    header(&m, SIM_OP_MSG);
    put32(&m, 0);
    m.b[m.n++] = 1;
    put32(&m, 9);
    put_bytes(&m, "docs", 5);
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), -1);

    op_msg(&m, 0, "{\"ping\": 1}");
    m.n -= 3; /* truncated body */
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), -1);

    header(&m, SIM_OP_QUERY);
    put32(&m, 0);
    put_bytes(&m, "test.coll", 10);
    put32(&m, 0);
    put32(&m, 1);
    put_json_doc(&m, "{}");
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), -1);
    ck_assert_str_eq(why, "OP_QUERY is only accepted for commands on <db>.$cmd");

    header(&m, SIM_OP_COMPRESSED);
    put32(&m, 0);
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), -1);
    header(&m, 2002); /* legacy OP_INSERT */
    put32(&m, 0);
    finish(&m);
    ck_assert_int_eq(parse(&m, &req, &why), -1);
    ck_assert_str_eq(why, "unsupported opcode");
}
END_TEST

static bson_t *nested(int depth)
{
    bson_t *root = bson_new();
    bson_t *stack = calloc((size_t)depth + 1, sizeof *stack);
    bson_t *cur = root;
    for (int i = 0; i < depth; i++) {
        bson_append_document_begin(cur, "a", 1, &stack[i]);
        cur = &stack[i];
    }
    for (int i = depth - 1; i >= 0; i--)
        bson_append_document_end(i ? &stack[i - 1] : root, &stack[i]);
    free(stack);
    return root;
}

START_TEST(test_bson_depth_limit)
{
    bson_t *ok = nested(SIM_MAX_DEPTH - 1), *deep = nested(5000);
    ck_assert(sim_bson_ok(ok, SIM_MAX_DEPTH));
    ck_assert(!sim_bson_ok(deep, SIM_MAX_DEPTH));
    bson_destroy(ok);
    bson_destroy(deep);
    /* {a: [<"1": 5>]}: an array whose first key is not "0" */
    static const uint8_t bad_array[] = {20, 0, 0, 0, 4, 'a', 0, 12, 0, 0, 0, 16, '1', 0, 5, 0, 0, 0, 0, 0};
    bson_t b;
    ck_assert(bson_init_static(&b, bad_array, sizeof bad_array));
    ck_assert(!sim_bson_ok(&b, SIM_MAX_DEPTH));
}
END_TEST

/* ---- matcher -------------------------------------------------------------------- */

static const struct {
    const char *filter, *doc;
    bool match;
} match_table[] = {
    {"{}", "{\"a\": 1}", true},
    {"{\"a\": 1}", "{\"a\": 1}", true},
    {"{\"a\": 1}", "{\"a\": 1.0}", true},
    {"{\"a\": 1}", "{\"a\": {\"$numberLong\": \"1\"}}", true},
    {"{\"a\": 2}", "{\"a\": 1}", false},
    {"{\"a\": null}", "{\"b\": 1}", true},
    {"{\"a\": \"x\"}", "{\"a\": [\"y\", \"x\"]}", true},
    {"{\"a\": {\"$gt\": 1}}", "{\"a\": 2}", true},
    {"{\"a\": {\"$gt\": 1}}", "{\"a\": \"2\"}", false},
    {"{\"a\": {\"$gte\": 2, \"$lt\": 3}}", "{\"a\": 2}", true},
    {"{\"a\": {\"$lte\": 1}}", "{\"b\": 0}", false},
    {"{\"a\": {\"$in\": [1, 2]}}", "{\"a\": 2}", true},
    {"{\"a\": {\"$nin\": [1, 2]}}", "{\"a\": 3}", true},
    {"{\"a\": {\"$ne\": 1}}", "{\"b\": 1}", true},
    {"{\"a\": {\"$exists\": false}}", "{\"b\": 1}", true},
    {"{\"a\": {\"$exists\": true}}", "{\"b\": 1}", false},
    {"{\"a.b\": 5}", "{\"a\": {\"b\": 5}}", true},
    {"{\"$or\": [{\"a\": 1}, {\"b\": 1}]}", "{\"b\": 1}", true},
    {"{\"$and\": [{\"a\": 1}, {\"b\": 1}]}", "{\"b\": 1}", false},
    {"{\"$nor\": [{\"a\": 1}]}", "{\"a\": 2}", true},
    {"{\"ts\": {\"$gt\": {\"$timestamp\": {\"t\": 5, \"i\": 1}}}}", "{\"ts\": {\"$timestamp\": {\"t\": 5, \"i\": 2}}}", true},
    {"{\"ts\": {\"$gt\": {\"$timestamp\": {\"t\": 5, \"i\": 1}}}}", "{\"ts\": {\"$timestamp\": {\"t\": 4, \"i\": 9}}}", false},
    {"{\"operationType\": {\"$in\": [\"insert\", \"update\"]}}", "{\"operationType\": \"delete\"}", false},
};

START_TEST(test_match_table)
{
    bson_error_t err;
    char msg[200];
    bson_t *f = bson_new_from_json((const uint8_t *)match_table[_i].filter, -1, &err);
    bson_t *d = bson_new_from_json((const uint8_t *)match_table[_i].doc, -1, &err);
    ck_assert(f && d);
    ck_assert_msg(sim_filter_check(f, msg, sizeof msg), "%s", msg);
    ck_assert_msg(sim_match(d, f) == match_table[_i].match, "%s on %s", match_table[_i].filter, match_table[_i].doc);
    bson_destroy(f);
    bson_destroy(d);
}
END_TEST

START_TEST(test_filter_check_rejects)
{
    static const char *const bad[] = {"{\"a\": {\"$mod\": [2, 0]}}", "{\"$where\": \"1\"}", "{\"$or\": 1}",
                                      "{\"$or\": []}", "{\"a\": {\"$in\": 5}}"};
    bson_error_t err;
    char msg[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bson_t *f = bson_new_from_json((const uint8_t *)bad[i], -1, &err);
        ck_assert_msg(!sim_filter_check(f, msg, sizeof msg), "%s accepted", bad[i]);
        ck_assert(msg[0]);
        bson_destroy(f);
    }
}
END_TEST

START_TEST(test_sort_and_projection)
{
    bson_error_t err;
    char msg[200];
    sim_sort_t s;
    sim_proj_t p;
    bson_t *spec = bson_new_from_json((const uint8_t *)"{\"a\": -1, \"b\": 1}", -1, &err);
    bson_t *x = bson_new_from_json((const uint8_t *)"{\"a\": 1, \"b\": 2}", -1, &err);
    bson_t *y = bson_new_from_json((const uint8_t *)"{\"a\": 1, \"b\": 1}", -1, &err);
    ck_assert(sim_sort_parse(spec, &s, msg, sizeof msg));
    ck_assert_int_gt(sim_sort_cmp(x, y, &s), 0);
    bson_destroy(spec);
    spec = bson_new_from_json((const uint8_t *)"{\"$natural\": -1, \"a\": 1}", -1, &err);
    ck_assert(!sim_sort_parse(spec, &s, msg, sizeof msg));
    bson_destroy(spec);

    spec = bson_new_from_json((const uint8_t *)"{\"b\": 1, \"_id\": 0}", -1, &err);
    ck_assert(sim_proj_parse(spec, &p, msg, sizeof msg));
    bson_t out = BSON_INITIALIZER, *src = bson_new_from_json((const uint8_t *)"{\"_id\": 1, \"a\": 1, \"b\": 2}", -1, &err);
    sim_proj_append(&out, "d", 1, src, &p);
    char *json = bson_as_relaxed_extended_json(&out, NULL);
    ck_assert_str_eq(json, "{ \"d\" : { \"b\" : 2 } }");
    bson_free(json);
    bson_destroy(&out);
    bson_destroy(spec);
    spec = bson_new_from_json((const uint8_t *)"{\"a\": 1, \"b\": 0}", -1, &err);
    ck_assert(!sim_proj_parse(spec, &p, msg, sizeof msg));
    bson_destroy(spec);
    bson_destroy(src);
    bson_destroy(x);
    bson_destroy(y);
}
END_TEST

/* ---- store, oplog and change streams ------------------------------------------ */

static sim_store_t *st;

static void store_setup(void)
{
    st = sim_store_new(1 << 20, 0);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(sim_store_noop(st, "initiating set"), 0);
    st->evicted_max = st->last_ts - 1;
}

static void store_teardown(void)
{
    sim_store_destroy(st);
}

static void insert_json(sim_coll_t *c, const char *json)
{
    bson_error_t berr;
    sim_err_t e = {0};
    bson_t *d = bson_new_from_json((const uint8_t *)json, -1, &berr);
    ck_assert_int_eq(sim_store_insert(st, c, d, &e), 0);
    bson_destroy(d);
}

START_TEST(test_token_roundtrip)
{
    bson_t b = BSON_INITIALIZER, tok;
    uint64_t ts;
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    sim_token_append(&b, "_id", SIM_TS(1700000000, 42));
    ck_assert(bson_iter_init_find(&it, &b, "_id"));
    bson_iter_document(&it, &len, &data);
    bson_init_static(&tok, data, len);
    ck_assert(sim_token_parse(&tok, &ts));
    ck_assert_uint_eq(ts, SIM_TS(1700000000, 42));
    bson_destroy(&b);
    static const char *const bad[] = {"{}", "{\"_data\": 5}", "{\"_data\": \"82ZZ\"}", "{\"_data\": \"8100000000000000000\"}",
                                      "{\"_data\": \"82000000000000000G\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bson_error_t err;
        bson_t *t = bson_new_from_json((const uint8_t *)bad[i], -1, &err);
        ck_assert_msg(!sim_token_parse(t, &ts), "%s parsed", bad[i]);
        bson_destroy(t);
    }
}
END_TEST

START_TEST(test_writes_reach_oplog_and_stream)
{
    bson_error_t berr;
    sim_err_t e = {0};
    sim_coll_t *c = sim_store_coll(st, "dag", "tx", true);
    sim_cursor_t *cur = sim_cursor_new(st, SIM_CUR_CHANGE, "dag.tx");
    cur->scope = SIM_SCOPE_COLL;
    cur->db = strdup("dag");
    cur->coll_name = strdup("tx");
    cur->lookup = true;
    ck_assert_int_eq(sim_cs_position(st, cur, st->last_ts, &e), 0);
    insert_json(c, "{\"_id\": 1, \"v\": 1}");
    insert_json(c, "{\"_id\": 2, \"v\": 1}");
    bson_t *dup = bson_new_from_json((const uint8_t *)"{\"_id\": 1}", -1, &berr);
    ck_assert_int_eq(sim_store_insert(st, c, dup, &e), -1);
    ck_assert_int_eq(e.code, 11000);
    bson_destroy(dup);
    bson_t *q = bson_new_from_json((const uint8_t *)"{\"_id\": 1}", -1, &berr);
    bson_t *u = bson_new_from_json((const uint8_t *)"{\"$set\": {\"v\": 2, \"w\": 3}}", -1, &berr);
    sim_update_result_t r;
    ck_assert_int_eq(sim_store_update(st, c, q, u, false, false, &r, &e), 0);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.modified, 1);
    /* Same values again: matched, not modified, no oplog entry. */
    ck_assert_int_eq(sim_store_update(st, c, q, u, false, false, &r, &e), 0);
    ck_assert_int_eq(r.modified, 0);
    uint32_t n;
    ck_assert_int_eq(sim_store_delete(st, c, q, false, &n, &e), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(sim_oplog_count(st), 5); /* noop, 2 inserts, update, delete */
    ck_assert_int_eq(st->counts[SIM_EV_INSERT], 2);
    ck_assert_int_eq(st->counts[SIM_EV_UPDATE], 1);
    ck_assert_int_eq(st->counts[SIM_EV_DELETE], 1);
    ck_assert_int_eq(c->count, 1);

    bson_t reply = BSON_INITIALIZER, arr, scratch = BSON_INITIALIZER;
    uint32_t idx = 0;
    bson_append_array_begin(&reply, "a", 1, &arr);
    ck_assert_int_eq(sim_cs_fill(st, cur, &arr, &idx, 2, 1 << 24, &scratch, &e), 2);
    ck_assert_int_eq(sim_cs_fill(st, cur, &arr, &idx, 100, 1 << 24, &scratch, &e), 2);
    ck_assert_int_eq(sim_cs_fill(st, cur, &arr, &idx, 100, 1 << 24, &scratch, &e), 0);
    bson_append_array_end(&reply, &arr);
    char *json = bson_as_relaxed_extended_json(&reply, NULL);
    ck_assert_ptr_nonnull(strstr(json, "\"operationType\" : \"update\""));
    ck_assert_ptr_nonnull(strstr(json, "\"updatedFields\" : { \"v\" : 2, \"w\" : 3 }"));
    /* updateLookup at delivery time: the document is gone by then. */
    ck_assert_ptr_nonnull(strstr(json, "\"fullDocument\" : null"));
    ck_assert_ptr_nonnull(strstr(json, "\"operationType\" : \"delete\""));
    bson_free(json);
    ck_assert_uint_eq(cur->after, st->last_ts);
    bson_destroy(&reply);
    bson_destroy(&scratch);
    bson_destroy(q);
    bson_destroy(u);
    sim_cursor_free(st, cur);
}
END_TEST

START_TEST(test_history_lost)
{
    sim_err_t e = {0};
    sim_coll_t *c = sim_store_coll(st, "dag", "tx", true);
    insert_json(c, "{\"_id\": 1}");
    uint64_t token = st->last_ts;
    insert_json(c, "{\"_id\": 2}");
    insert_json(c, "{\"_id\": 3}");
    sim_cursor_t *cur = sim_cursor_new(st, SIM_CUR_CHANGE, "dag.tx");
    cur->scope = SIM_SCOPE_DB;
    cur->db = strdup("dag");
    ck_assert_int_eq(sim_cs_position(st, cur, token, &e), 0);
    ck_assert_int_eq(sim_oplog_truncate(st, 1), 3);
    /* The open cursor had not read entry 2: it is gone. */
    bson_t arr = BSON_INITIALIZER, scratch = BSON_INITIALIZER;
    uint32_t idx = 0;
    ck_assert_int_eq(sim_cs_fill(st, cur, &arr, &idx, 10, 1 << 24, &scratch, &e), -1);
    ck_assert_int_eq(e.code, 286);
    ck_assert_int_eq(sim_cs_position(st, cur, token, &e), -1);
    ck_assert_int_eq(e.code, 286);
    /* Resuming from the newest evicted entry loses nothing. */
    ck_assert_int_eq(sim_cs_position(st, cur, st->evicted_max, &e), 0);
    ck_assert_int_eq(sim_cs_fill(st, cur, &arr, &idx, 10, 1 << 24, &scratch, &e), 1);
    bson_destroy(&arr);
    bson_destroy(&scratch);
    sim_cursor_free(st, cur);
}
END_TEST

START_TEST(test_oplog_bounded_by_bytes)
{
    sim_store_t *small = sim_store_new(4096, 0);
    sim_coll_t *c = sim_store_coll(small, "d", "c", true);
    char json[128];
    for (int i = 0; i < 1000; i++) {
        sim_err_t e = {0};
        bson_error_t berr;
        snprintf(json, sizeof json, "{\"_id\": %d, \"pad\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}", i);
        bson_t *d = bson_new_from_json((const uint8_t *)json, -1, &berr);
        ck_assert_int_eq(sim_store_insert(small, c, d, &e), 0);
        bson_destroy(d);
    }
    ck_assert_uint_le(small->oplog_bytes, 4096);
    ck_assert_uint_gt(sim_oplog_count(small), 10);
    ck_assert_uint_lt(sim_oplog_count(small), 1000);
    ck_assert_uint_eq(sim_oplog_at(small, small->end_seq - 1)->ts, small->last_ts);
    ck_assert_int_eq(c->count, 1000); /* documents stay; only history is bounded */
    sim_store_destroy(small);
}
END_TEST

START_TEST(test_max_docs_eviction)
{
    sim_store_t *s = sim_store_new(1 << 20, 3);
    sim_coll_t *c = sim_store_coll(s, "d", "c", true);
    for (int i = 0; i < 5; i++) {
        sim_err_t e = {0};
        bson_t *d = BCON_NEW("_id", BCON_INT32(i));
        ck_assert_int_eq(sim_store_insert(s, c, d, &e), 0);
        bson_destroy(d);
    }
    ck_assert_int_eq(c->count, 3);
    ck_assert_uint_eq(s->docs_evicted, 2);
    bson_t *k = BCON_NEW("_id", BCON_INT32(0));
    bson_iter_t it;
    bson_iter_init_find(&it, k, "_id");
    ck_assert_ptr_null(sim_coll_find_iter(c, &it));
    bson_destroy(k);
    ck_assert_uint_eq(s->counts[SIM_EV_INSERT], 5);
    sim_store_destroy(s);
}
END_TEST

/* ---- control protocol ---------------------------------------------------------- */

static const struct {
    const char *line;
    const char *prefix;
} control_table[] = {
    {"PING", "OK"},
    {"ping", "OK"},
    {"", "ERR empty command"},
    {"NOPE", "ERR unknown command \"NOPE\""},
    {"STALL", "ERR usage: STALL"},
    {"STALL -1", "ERR usage: STALL"},
    {"STALL 100 find", "OK"},
    {"STALL 0", "OK"},
    {"FAIL_GETMORE 91", "OK"},
    {"FAIL_GETMORE x", "ERR code must be"},
    {"FAIL_COMMAND find 13436 2", "OK"},
    {"FAIL_COMMAND find", "ERR usage: FAIL_COMMAND"},
    {"CLEAR_FAULTS", "OK"},
    {"LAG 1 5", "OK"},
    {"LAG 9 5", "ERR unknown member"},
    {"LAG 1 -5", "ERR lag must be"},
    {"HEALTH 1 down", "OK"},
    {"HEALTH 0 down", "ERR member 0 is the simulator itself"},
    {"HEALTH 1 sideways", "ERR usage: HEALTH"},
    {"OPTIME 1 zero", "OK"},
    {"TRUNCATE_OPLOG 0", "OK {\"removed\":1}"},
    {"INSERT 0", "ERR usage: INSERT"},
    {"INSERT 3 admin.x", "ERR namespace is not writable"},
    {"INSERT 3 nodot", "ERR namespace must be db.collection"},
    {"INSERT 3 d.c", "OK {\"inserted\":3"},
    {"COLLECTIONS 5 many", "OK {\"created\":5}"},
    {"COLLECTIONS 5 many", "OK {\"created\":0}"},
    {"RATE -1", "ERR rate must be"},
    {"RATE 0", "OK"},
    {"COUNTS", "{\"insert\":3,"},
    {"STEPDOWN 0", "OK {\"primary\":null"}, /* member 1 is down: nobody can take over */
    {"STEPUP", "OK {\"term\":3}"},
    {"A B C D E F G H I", "ERR too many arguments"},
};

START_TEST(test_control_table)
{
    sim_config_t cfg = {.bind = "127.0.0.1", .set_name = "rs0", .secondaries = 1, .oplog_max_bytes = 1 << 20};
    sim_t *sim = sim_new(&cfg);
    ck_assert_ptr_nonnull(sim);
    sim->gen = sim_gen_start(sim);
    ck_assert_ptr_nonnull(sim->gen);
    poh_strbuf_t out = POH_STRBUF_INIT;
    for (size_t i = 0; i < sizeof control_table / sizeof control_table[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, "%s", control_table[i].line);
        poh_strbuf_reset(&out);
        sim_control_exec(sim, line, &out);
        ck_assert_msg(out.data && !strncmp(out.data, control_table[i].prefix, strlen(control_table[i].prefix)),
                      "%s -> %s (want %s...)", control_table[i].line, out.data ? out.data : "", control_table[i].prefix);
    }
    /* The faults armed above were cleared; the member settings stuck. */
    ck_assert_int_eq(sim->nfaults, 0);
    ck_assert_int_eq(sim->members[1].lag_s, 5);
    ck_assert(sim->members[1].unhealthy && sim->members[1].zero_optime);
    poh_strbuf_free(&out);
    sim_gen_stop(sim->gen);
    sim_destroy(sim);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mongo_rs_sim_unit");
    TCase *wire = tcase_create("wire");
    tcase_add_test(wire, test_wire_op_msg);
    tcase_add_test(wire, test_wire_op_query);
    tcase_add_test(wire, test_wire_rejects);
    tcase_add_test(wire, test_bson_depth_limit);
    suite_add_tcase(s, wire);
    TCase *match = tcase_create("match");
    tcase_add_loop_test(match, test_match_table, 0, sizeof match_table / sizeof match_table[0]);
    tcase_add_test(match, test_filter_check_rejects);
    tcase_add_test(match, test_sort_and_projection);
    suite_add_tcase(s, match);
    TCase *store = tcase_create("store");
    tcase_add_checked_fixture(store, store_setup, store_teardown);
    tcase_add_test(store, test_token_roundtrip);
    tcase_add_test(store, test_writes_reach_oplog_and_stream);
    tcase_add_test(store, test_history_lost);
    tcase_add_test(store, test_oplog_bounded_by_bytes);
    tcase_add_test(store, test_max_docs_eviction);
    suite_add_tcase(s, store);
    TCase *control = tcase_create("control");
    tcase_add_test(control, test_control_table);
    suite_add_tcase(s, control);
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
