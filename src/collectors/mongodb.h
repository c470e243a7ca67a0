/* SPDX-License-Identifier: Apache-2.0 */
/* MongoDB collectors (issue 5): one collector "mongodb/<cluster>" per
 * configured cluster.
 *
 * - Scrape time: a fixed set of five commands per cluster (replSetGetStatus,
 *   the first and last oplog entries by $natural, collStats of the oplog,
 *   serverStatus) on a single-threaded client whose timeouts come from the
 *   scrape deadline, so a down cluster costs at most the deadline and gives
 *   poh_mongodb_up 0. Never iterates databases or collections. A URI naming
 *   a mongos: serverStatus and listShards on the router, then four of those
 *   commands on each shard's replica set, series labelled shard
 *   (mongodb_shards.c).
 * - Background: one thread per change stream with its own client from the
 *   cluster's mongoc_client_pool. Each reply batch is folded into counts and
 *   latency observations, the resume token and the new totals are saved
 *   atomically in state_dir, and only then are the counts applied to the
 *   persistent registry (exactly once across restarts, even kill -9).
 * - libmongoc APM callbacks feed poh_mongodb_command_duration_seconds.
 * The URI's password never leaves the driver: labels, logs, the landing
 * page and errors show the URI redacted. */
#ifndef POH_COLLECTOR_MONGODB_H
#define POH_COLLECTOR_MONGODB_H

#include "collectors/collector.h"

/* The kind (poh_mongodb_kind, collector.h) makes one collector per cluster. */

/* Change-stream state that must survive a reload (position and totals per
 * cluster/stream, one stream thread at a time): owned by the app, handed to
 * the collectors in poh_collector_env_t.mongodb_store, freed once no
 * collector set is alive. */
poh_mongodb_store_t *poh_mongodb_store_new(void);
void poh_mongodb_store_free(poh_mongodb_store_t *store); /* NULL is fine */

#endif
