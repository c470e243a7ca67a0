/* SPDX-License-Identifier: Apache-2.0 */
/* The metric families the mongodb collector writes (mongodb.c,
 * mongodb_replies.c, mongodb_shards.c, mongodb_cluster.c, mongodb_stream.c), in one table
 * indexed by the enum below. The README's reference is checked against it
 * (tests/e2e/test_metric_reference.py, poh_exporter --print-metric-table).
 * Not in the table: the change streams' latency histograms, whose names
 * (poh_<name>_latency_seconds) and buckets the configuration gives.
 *
 * The shard label: a mongos entry's shards report up, member, lag and oplog
 * series under the replica set's names with shard="<listShards _id>"; the
 * label is optional in those rows (poh_family_desc_t.optional), so a replica
 * set's series (shard NULL, "") carry no shard label at all, as before. */
#ifndef POH_MONGODB_METRICS_H
#define POH_MONGODB_METRICS_H

#include "metrics/metrics.h"

enum {
    /* Scrape time, per cluster. */
    POH_MONGODB_M_UP,
    POH_MONGODB_M_SHARDS,
    /* Cluster level, a mongos entry (mongodb_cluster.c). */
    POH_MONGODB_M_MONGOS_UP,
    POH_MONGODB_M_BALANCER_ENABLED,
    POH_MONGODB_M_BALANCER_RUNNING,
    POH_MONGODB_M_CHUNKS,
    POH_MONGODB_M_JUMBO_CHUNKS,
    POH_MONGODB_M_MIGRATIONS,
    /* Change streams: persistent counters, then scrape-time gauges. */
    POH_MONGODB_M_CHANGES,
    POH_MONGODB_M_FIELD_ERRORS,
    POH_MONGODB_M_RESUMES,
    POH_MONGODB_M_HISTORY_LOST,
    POH_MONGODB_M_INVALIDATIONS,
    POH_MONGODB_M_HISTORY_LOST_SECONDS,
    POH_MONGODB_M_TOO_LARGE,
    POH_MONGODB_M_STREAM_UP,
    POH_MONGODB_M_STREAM_LAG,
    /* replSetGetStatus and the oplog. */
    POH_MONGODB_M_MEMBER_STATE,
    POH_MONGODB_M_MEMBER_HEALTH,
    POH_MONGODB_M_REPLICATION_LAG,
    POH_MONGODB_M_OPLOG_FIRST,
    POH_MONGODB_M_OPLOG_LAST,
    POH_MONGODB_M_OPLOG_WINDOW,
    POH_MONGODB_M_OPLOG_SIZE,
    POH_MONGODB_M_OPLOG_MAX_SIZE,
    /* serverStatus. */
    POH_MONGODB_M_OPERATIONS,
    POH_MONGODB_M_OP_LATENCY_SECONDS,
    POH_MONGODB_M_OP_LATENCY_OPS,
    POH_MONGODB_M_TRANSACTIONS,
    /* libmongoc APM (persistent). */
    POH_MONGODB_M_COMMAND_DURATION,
};
extern const poh_family_desc_t poh_mongodb_metrics[];

/* The series lv of table row id set to v (a gauge) or increased by v (a
 * counter). */
void poh_mongodb_put(poh_registry_t *reg, int id, const char *const *lv, double v);

#endif
