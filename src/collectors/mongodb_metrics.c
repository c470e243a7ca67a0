/* SPDX-License-Identifier: Apache-2.0 */
/* The mongodb collector's metric families (mongodb_metrics.h). */
#include "collectors/mongodb_metrics.h"

static const char *const l_c[] = {"cluster"};
/* shard (index 1) is optional: a sharded cluster's shards have it, a replica
 * set's series are as they were (mongodb_metrics.h). */
static const char *const l_cs[] = {"cluster", "shard"};
static const char *const l_csm[] = {"cluster", "shard", "member"};
static const char *const l_csms[] = {"cluster", "shard", "member", "state"};
static const char *const l_crt[] = {"cluster", "router"};
static const char *const l_csc[] = {"cluster", "shard", "collection"};
static const char *const l_cst[] = {"cluster", "stream"};
static const char *const l_csto[] = {"cluster", "stream", "operation"};
static const char *const l_cstfr[] = {"cluster", "stream", "field", "reason"};
static const char *const l_cop[] = {"cluster", "op"};
static const char *const l_cot[] = {"cluster", "op_type"};
static const char *const l_cr[] = {"cluster", "result"};
static const char *const l_ccmd[] = {"cluster", "command"};

#define ROW(id, n, t, h, labels)                                                                   \
    [id] = {n, t, h, sizeof labels / sizeof *labels, labels, 0}
/* A row whose label 1 (shard) is left out when empty. */
#define ROW_SHARD(id, n, t, h, labels)                                                             \
    [id] = {n, t, h, sizeof labels / sizeof *labels, labels, 1u << 1}

const poh_family_desc_t poh_mongodb_metrics[] = {
    ROW_SHARD(POH_MONGODB_M_UP, "poh_mongodb_up", POH_GAUGE,
              "1 if the cluster answered this scrape.", l_cs),
    ROW(POH_MONGODB_M_SHARDS, "poh_mongodb_shards", POH_GAUGE,
        "Shards the router lists (listShards).", l_c),
    ROW(POH_MONGODB_M_MONGOS_UP, "poh_mongodb_mongos_up", POH_GAUGE,
        "1 if the mongos router answered hello this scrape.", l_crt),
    ROW(POH_MONGODB_M_BALANCER_ENABLED, "poh_mongodb_balancer_enabled", POH_GAUGE,
        "1 if the balancer is enabled (mode is not off).", l_c),
    ROW(POH_MONGODB_M_BALANCER_RUNNING, "poh_mongodb_balancer_running", POH_GAUGE,
        "1 if the balancer is in a balancing round.", l_c),
    ROW(POH_MONGODB_M_CHUNKS, "poh_mongodb_chunks", POH_GAUGE,
        "Chunks of the sharded collection on the shard (config.chunks).", l_csc),
    ROW(POH_MONGODB_M_JUMBO_CHUNKS, "poh_mongodb_jumbo_chunks", POH_GAUGE,
        "Chunks of the collection on the shard flagged jumbo.", l_csc),
    ROW(POH_MONGODB_M_MIGRATIONS, "poh_mongodb_chunk_migrations_total", POH_COUNTER,
        "Chunk migrations the config changelog records (moveChunk.commit: succeeded, "
        "moveChunk.error: failed), each counted once.",
        l_cr),
    ROW(POH_MONGODB_M_CHANGES, "poh_mongodb_changes_total", POH_COUNTER,
        "Change events processed, by operation; rate() of inserts is transactions per second.",
        l_csto),
    ROW(POH_MONGODB_M_FIELD_ERRORS, "poh_mongodb_change_field_errors_total", POH_COUNTER,
        "Change events that gave no latency value, by field and reason (missing, not_a_time, "
        "out_of_range, negative, too_large).",
        l_cstfr),
    ROW(POH_MONGODB_M_RESUMES, "poh_mongodb_change_stream_resumes_total", POH_COUNTER,
        "Times the change stream was reopened after an error from its saved position.", l_cst),
    ROW(POH_MONGODB_M_HISTORY_LOST, "poh_mongodb_change_stream_history_lost_total", POH_COUNTER,
        "Times the saved position was gone from the oplog and the stream restarted from now.",
        l_cst),
    ROW(POH_MONGODB_M_INVALIDATIONS, "poh_mongodb_change_stream_invalidations_total",
        POH_COUNTER,
        "Times an invalidate event (the collection dropped or renamed, or its database dropped) "
        "closed the change stream and it was reopened after it with startAfter.",
        l_cst),
    ROW(POH_MONGODB_M_HISTORY_LOST_SECONDS, "poh_mongodb_change_stream_history_lost_seconds_total",
        POH_COUNTER,
        "Seconds of cluster time whose events the stream never saw after its saved position "
        "left the oplog (from that position to the restart); the number of those events is "
        "not knowable.",
        l_cst),
    ROW(POH_MONGODB_M_TOO_LARGE, "poh_mongodb_change_stream_events_too_large_total", POH_COUNTER,
        "Change events over 16 MB the server could not send (BSONObjectTooLarge): skipped after "
        "their resume token, not in poh_mongodb_changes_total.",
        l_cst),
    ROW(POH_MONGODB_M_STREAM_UP, "poh_mongodb_change_stream_up", POH_GAUGE,
        "1 while the change stream's cursor is open, 0 while it is reconnecting.", l_cst),
    ROW(POH_MONGODB_M_STREAM_LAG, "poh_mongodb_change_stream_lag_seconds", POH_GAUGE,
        "Now minus the wallTime of the newest change event processed.", l_cst),
    ROW_SHARD(POH_MONGODB_M_MEMBER_STATE, "poh_mongodb_member_state", POH_GAUGE,
              "1 for the replica set member's current state, 0 for the others.", l_csms),
    ROW_SHARD(POH_MONGODB_M_MEMBER_HEALTH, "poh_mongodb_member_health", POH_GAUGE,
              "1 if the member is healthy as the replica set sees it.", l_csm),
    ROW_SHARD(POH_MONGODB_M_REPLICATION_LAG, "poh_mongodb_replication_lag_seconds", POH_GAUGE,
              "Primary optime minus the member's optime, at least 0; unhealthy members "
              "and members without an optime are left out.",
              l_csm),
    ROW_SHARD(POH_MONGODB_M_OPLOG_FIRST, "poh_mongodb_oplog_first_timestamp_seconds", POH_GAUGE,
              "Time of the oldest oplog entry.", l_cs),
    ROW_SHARD(POH_MONGODB_M_OPLOG_LAST, "poh_mongodb_oplog_last_timestamp_seconds", POH_GAUGE,
              "Time of the newest oplog entry.", l_cs),
    ROW_SHARD(POH_MONGODB_M_OPLOG_WINDOW, "poh_mongodb_oplog_window_seconds", POH_GAUGE,
              "Newest minus oldest oplog entry: how far back a change stream can resume.", l_cs),
    ROW_SHARD(POH_MONGODB_M_OPLOG_SIZE, "poh_mongodb_oplog_size_bytes", POH_GAUGE,
              "Size of the oplog's documents.", l_cs),
    ROW_SHARD(POH_MONGODB_M_OPLOG_MAX_SIZE, "poh_mongodb_oplog_max_size_bytes", POH_GAUGE,
              "Configured maximum size of the oplog.", l_cs),
    ROW(POH_MONGODB_M_OPERATIONS, "poh_mongodb_operations_total", POH_COUNTER,
        "Operations the server executed since it started, by type (opcounters).", l_cop),
    ROW(POH_MONGODB_M_OP_LATENCY_SECONDS, "poh_mongodb_operation_latency_seconds_total",
        POH_COUNTER, "Total server time spent in operations of this type (opLatencies).", l_cot),
    ROW(POH_MONGODB_M_OP_LATENCY_OPS, "poh_mongodb_operation_latency_ops_total", POH_COUNTER,
        "Operations counted in poh_mongodb_operation_latency_seconds_total.", l_cot),
    ROW(POH_MONGODB_M_TRANSACTIONS, "poh_mongodb_transactions_total", POH_COUNTER,
        "Transactions started, committed and aborted since the server started.", l_cr),
    ROW(POH_MONGODB_M_COMMAND_DURATION, "poh_mongodb_command_duration_seconds", POH_HISTOGRAM,
        "Round trip of the commands the exporter sends (libmongoc APM).", l_ccmd),
    {NULL},
};

void poh_mongodb_put(poh_registry_t *reg, int id, const char *const *lv, double v)
{
    const poh_family_desc_t *d = &poh_mongodb_metrics[id];
    poh_series_t *s = poh_family_series(poh_registry_family_desc(reg, d), lv);
    if (d->type == POH_COUNTER)
        poh_counter_add(s, v);
    else
        poh_gauge_set(s, v);
}
