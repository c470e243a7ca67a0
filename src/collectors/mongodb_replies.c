/* SPDX-License-Identifier: Apache-2.0 */
/* MongoDB scrape replies into series (see mongodb_replies.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "collectors/mongodb_metrics.h"
#include "collectors/mongodb_replies.h"
#include "mongo/mongo_util.h"

static bool iter_num(const bson_iter_t *it, double *v)
{
    if (!BSON_ITER_HOLDS_NUMBER(it))
        return false;
    *v = bson_iter_as_double(it);
    return isfinite(*v);
}

static bool doc_num(const bson_t *doc, const char *path, double *v)
{
    bson_iter_t it, f;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &f) &&
           iter_num(&f, v);
}

static void put_member(poh_registry_t *out, const char *cluster, const char *shard,
                       const poh_mongo_member_t *m, size_t n, size_t i)
{
    static const int states[] = {0, 1, 2, 3, 5, 6, 7, 8, 9, 10};
    const char *lv[] = {cluster, shard, m[i].name, NULL};
    bool known = false;
    for (size_t k = 0; k < sizeof states / sizeof *states; k++) {
        lv[3] = poh_mongo_state_name(states[k]);
        known |= !strcmp(lv[3], m[i].state_str);
        poh_mongodb_put(out, POH_MONGODB_M_MEMBER_STATE, lv, !strcmp(lv[3], m[i].state_str));
    }
    if (!known && m[i].state_str[0]) {
        lv[3] = m[i].state_str;
        poh_mongodb_put(out, POH_MONGODB_M_MEMBER_STATE, lv, 1);
    }
    if (m[i].health >= 0)
        poh_mongodb_put(out, POH_MONGODB_M_MEMBER_HEALTH, lv, m[i].health);
    double lag = poh_mongo_replication_lag(m, n, i);
    if (!isnan(lag))
        poh_mongodb_put(out, POH_MONGODB_M_REPLICATION_LAG, lv, lag);
}

void poh_mongodb_put_replset(poh_registry_t *out, const char *cluster, const char *shard,
                             const bson_t *reply)
{
    poh_mongo_member_t m[64];
    int n = poh_mongo_members_parse(reply, m, sizeof m / sizeof *m);
    for (int i = 0; i < n; i++)
        put_member(out, cluster, shard, m, (size_t)n, (size_t)i);
}

bool poh_mongodb_oplog_edge_ts(const bson_t *find_reply, double *ts)
{
    bson_iter_t it, f;
    if (!bson_iter_init(&it, find_reply) ||
        !bson_iter_find_descendant(&it, "cursor.firstBatch.0.ts", &f) ||
        !BSON_ITER_HOLDS_TIMESTAMP(&f))
        return false;
    uint32_t t, inc;
    bson_iter_timestamp(&f, &t, &inc);
    *ts = t;
    return true;
}

void poh_mongodb_put_oplog_window(poh_registry_t *out, const char *cluster, const char *shard,
                                  const double *first, const double *last)
{
    const char *lv[] = {cluster, shard};
    if (first)
        poh_mongodb_put(out, POH_MONGODB_M_OPLOG_FIRST, lv, *first);
    if (last)
        poh_mongodb_put(out, POH_MONGODB_M_OPLOG_LAST, lv, *last);
    if (first && last)
        poh_mongodb_put(out, POH_MONGODB_M_OPLOG_WINDOW, lv, poh_mongo_lag_clamp(*last, *first));
}

void poh_mongodb_put_oplog_stats(poh_registry_t *out, const char *cluster, const char *shard,
                                 const bson_t *coll_stats)
{
    const char *lv[] = {cluster, shard};
    double v;
    if (doc_num(coll_stats, "size", &v))
        poh_mongodb_put(out, POH_MONGODB_M_OPLOG_SIZE, lv, v);
    if (doc_num(coll_stats, "maxSize", &v))
        poh_mongodb_put(out, POH_MONGODB_M_OPLOG_MAX_SIZE, lv, v);
}

void poh_mongodb_server_status_exclude(bson_t *cmd)
{
    static const char *const excluded[] = {"repl", "metrics", "locks", "wiredTiger", "tcmalloc"};
    for (size_t i = 0; i < sizeof excluded / sizeof *excluded; i++)
        BSON_APPEND_INT32(cmd, excluded[i], 0);
}

static void put_op_latencies(poh_registry_t *out, const char *cluster, const bson_t *reply)
{
    static const char *const op_types[] = {"reads", "writes", "commands", "transactions"};
    char path[64];
    double v;
    for (size_t i = 0; i < sizeof op_types / sizeof *op_types; i++) {
        const char *lv[] = {cluster, op_types[i]};
        snprintf(path, sizeof path, "opLatencies.%s.latency", op_types[i]);
        if (doc_num(reply, path, &v))
            poh_mongodb_put(out, POH_MONGODB_M_OP_LATENCY_SECONDS, lv, v / 1e6);
        snprintf(path, sizeof path, "opLatencies.%s.ops", op_types[i]);
        if (doc_num(reply, path, &v))
            poh_mongodb_put(out, POH_MONGODB_M_OP_LATENCY_OPS, lv, v);
    }
}

void poh_mongodb_put_server_status(poh_registry_t *out, const char *cluster, const bson_t *reply)
{
    static const char *const opcounters[] = {"insert", "query", "update", "delete", "getmore",
                                             "command"};
    static const struct {
        const char *field, *result;
    } txn[] = {{"totalStarted", "started"}, {"totalCommitted", "committed"},
               {"totalAborted", "aborted"}};
    char path[64];
    double v;
    for (size_t i = 0; i < sizeof opcounters / sizeof *opcounters; i++) {
        const char *lv[] = {cluster, opcounters[i]};
        snprintf(path, sizeof path, "opcounters.%s", opcounters[i]);
        if (doc_num(reply, path, &v))
            poh_mongodb_put(out, POH_MONGODB_M_OPERATIONS, lv, v);
    }
    put_op_latencies(out, cluster, reply);
    for (size_t i = 0; i < sizeof txn / sizeof *txn; i++) {
        const char *lv[] = {cluster, txn[i].result};
        snprintf(path, sizeof path, "transactions.%s", txn[i].field);
        if (doc_num(reply, path, &v))
            poh_mongodb_put(out, POH_MONGODB_M_TRANSACTIONS, lv, v);
    }
}
