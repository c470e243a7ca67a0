/* SPDX-License-Identifier: Apache-2.0 */
/* The replies a MongoDB scrape reads, turned into series: replSetGetStatus,
 * the oplog's bounds (find on local.oplog.rs) and size (collStats), and
 * serverStatus. Only the reply is read, nothing is sent: the collector runs
 * the commands (mongodb.c), tests/unit/collectors/test_mongodb_corpus.c feeds these the
 * documented reply shapes of tests/data/mongodb/. */
#ifndef POH_COLLECTOR_MONGODB_REPLIES_H
#define POH_COLLECTOR_MONGODB_REPLIES_H

#include <bson/bson.h>
#include <stdbool.h>

#include "metrics/metrics.h"

/* shard: the shard label of the series below (a shard of a sharded
 * cluster), NULL for a replica set (no shard label). */

/* poh_mongodb_member_state (one series per known state, 1 for the member's),
 * poh_mongodb_member_health and poh_mongodb_replication_lag_seconds. */
void poh_mongodb_put_replset(poh_registry_t *out, const char *cluster, const char *shard,
                             const bson_t *reply);

/* The ts of the first document of a find reply's first batch, in seconds;
 * false when there is none or it is not a Timestamp. */
bool poh_mongodb_oplog_edge_ts(const bson_t *find_reply, double *ts);

/* The oplog's first and last timestamps and the window between them; NULL:
 * not known this scrape (that series and the window are left out). */
void poh_mongodb_put_oplog_window(poh_registry_t *out, const char *cluster, const char *shard,
                                  const double *first, const double *last);

/* poh_mongodb_oplog_size_bytes and _max_size_bytes from collStats. */
void poh_mongodb_put_oplog_stats(poh_registry_t *out, const char *cluster, const char *shard,
                                 const bson_t *coll_stats);

/* serverStatus sections not read, appended to the command as "<name>: 0". */
void poh_mongodb_server_status_exclude(bson_t *cmd);

/* opcounters, opLatencies and transactions counters from serverStatus. */
void poh_mongodb_put_server_status(poh_registry_t *out, const char *cluster, const bson_t *reply);

#endif
