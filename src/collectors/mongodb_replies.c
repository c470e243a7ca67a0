/* SPDX-License-Identifier: Apache-2.0 */
/* MongoDB scrape replies into series (see mongodb_replies.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "collectors/mongodb_replies.h"
#include "mongo/mongo_util.h"

static const char *const l_cluster[] = {"cluster"};
static const char *const l_cluster_member[] = {"cluster", "member"};
static const char *const l_member_state[] = {"cluster", "member", "state"};
static const char *const l_cluster_op[] = {"cluster", "op"};
static const char *const l_cluster_op_type[] = {"cluster", "op_type"};
static const char *const l_cluster_result[] = {"cluster", "result"};

static void put(poh_registry_t *reg, poh_metric_type_t t, const char *name, const char *help,
                size_t nl, const char *const *ln, const char *const *lv, double v)
{
    poh_family_t *f = poh_registry_family(reg, t, name, help, nl, ln, NULL, 0);
    poh_series_t *s = poh_family_series(f, lv);
    if (t == POH_COUNTER)
        poh_counter_add(s, v);
    else
        poh_gauge_set(s, v);
}

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

static void put_member(poh_registry_t *out, const char *cluster, const poh_mongo_member_t *m,
                       size_t n, size_t i)
{
    static const int states[] = {0, 1, 2, 3, 5, 6, 7, 8, 9, 10};
    const char *lv[] = {cluster, m[i].name, NULL};
    bool known = false;
    for (size_t k = 0; k < sizeof states / sizeof *states; k++) {
        lv[2] = poh_mongo_state_name(states[k]);
        known |= !strcmp(lv[2], m[i].state_str);
        put(out, POH_GAUGE, "poh_mongodb_member_state",
            "1 for the replica set member's current state, 0 for the others.", 3,
            l_member_state, lv, !strcmp(lv[2], m[i].state_str));
    }
    if (!known && m[i].state_str[0]) {
        lv[2] = m[i].state_str;
        put(out, POH_GAUGE, "poh_mongodb_member_state",
            "1 for the replica set member's current state, 0 for the others.", 3,
            l_member_state, lv, 1);
    }
    if (m[i].health >= 0)
        put(out, POH_GAUGE, "poh_mongodb_member_health",
            "1 if the member is healthy as the replica set sees it.", 2, l_cluster_member, lv,
            m[i].health);
    double lag = poh_mongo_replication_lag(m, n, i);
    if (!isnan(lag))
        put(out, POH_GAUGE, "poh_mongodb_replication_lag_seconds",
            "Primary optime minus the member's optime, at least 0; unhealthy members "
            "and members without an optime are left out.",
            2, l_cluster_member, lv, lag);
}

void poh_mongodb_put_replset(poh_registry_t *out, const char *cluster, const bson_t *reply)
{
    poh_mongo_member_t m[64];
    int n = poh_mongo_members_parse(reply, m, sizeof m / sizeof *m);
    for (int i = 0; i < n; i++)
        put_member(out, cluster, m, (size_t)n, (size_t)i);
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

void poh_mongodb_put_oplog_window(poh_registry_t *out, const char *cluster, const double *first,
                                  const double *last)
{
    const char *lv[] = {cluster};
    if (first)
        put(out, POH_GAUGE, "poh_mongodb_oplog_first_timestamp_seconds",
            "Time of the oldest oplog entry.", 1, l_cluster, lv, *first);
    if (last)
        put(out, POH_GAUGE, "poh_mongodb_oplog_last_timestamp_seconds",
            "Time of the newest oplog entry.", 1, l_cluster, lv, *last);
    if (first && last)
        put(out, POH_GAUGE, "poh_mongodb_oplog_window_seconds",
            "Newest minus oldest oplog entry: how far back a change stream can resume.", 1,
            l_cluster, lv, poh_mongo_lag_clamp(*last, *first));
}

void poh_mongodb_put_oplog_stats(poh_registry_t *out, const char *cluster,
                                 const bson_t *coll_stats)
{
    const char *lv[] = {cluster};
    double v;
    if (doc_num(coll_stats, "size", &v))
        put(out, POH_GAUGE, "poh_mongodb_oplog_size_bytes", "Size of the oplog's documents.", 1,
            l_cluster, lv, v);
    if (doc_num(coll_stats, "maxSize", &v))
        put(out, POH_GAUGE, "poh_mongodb_oplog_max_size_bytes",
            "Configured maximum size of the oplog.", 1, l_cluster, lv, v);
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
            put(out, POH_COUNTER, "poh_mongodb_operation_latency_seconds_total",
                "Total server time spent in operations of this type (opLatencies).", 2,
                l_cluster_op_type, lv, v / 1e6);
        snprintf(path, sizeof path, "opLatencies.%s.ops", op_types[i]);
        if (doc_num(reply, path, &v))
            put(out, POH_COUNTER, "poh_mongodb_operation_latency_ops_total",
                "Operations counted in poh_mongodb_operation_latency_seconds_total.", 2,
                l_cluster_op_type, lv, v);
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
            put(out, POH_COUNTER, "poh_mongodb_operations_total",
                "Operations the server executed since it started, by type (opcounters).", 2,
                l_cluster_op, lv, v);
    }
    put_op_latencies(out, cluster, reply);
    for (size_t i = 0; i < sizeof txn / sizeof *txn; i++) {
        const char *lv[] = {cluster, txn[i].result};
        snprintf(path, sizeof path, "transactions.%s", txn[i].field);
        if (doc_num(reply, path, &v))
            put(out, POH_COUNTER, "poh_mongodb_transactions_total",
                "Transactions started, committed and aborted since the server started.", 2,
                l_cluster_result, lv, v);
    }
}
