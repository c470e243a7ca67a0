/* SPDX-License-Identifier: Apache-2.0 */
/* Sharded cluster mode of the simulator (--shards N, issue 17): N shard
 * replica sets, each a full sim_t with its own store, oplog and listener, a
 * config database (shards, chunks by hashed _id, settings, changelog) and the
 * mongos front that routes writes and merges reads and change streams.
 *
 * Locks, always taken in this order: front sim->mu (the generator), cluster
 * mu (shard list, chunk map, config data), one shard's sim->mu, clock mu.
 * Every write takes its cluster time from the one shared clock while it
 * holds its shard's mu, so a reader that read the clock at W and then locks
 * a shard sees every event of that shard with a cluster time <= W. */
#ifndef MONGO_SIM_SHARD_H
#define MONGO_SIM_SHARD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "sim.h"

#define SIM_MAX_SHARDS 32
#define SIM_MAX_CHANGELOG 10000

typedef struct sim_clock {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; broadcast on every tick */
    uint64_t last_ts;
    int64_t last_wall_ms;
} sim_clock_t;

/* A chunk of a collection sharded on {_id: "hashed"}: hashes in [min, max);
 * the first chunk starts at MinKey, the last ends at MaxKey. */
typedef struct sim_chunk {
    bson_oid_t id;
    int64_t min, max;
    bool min_key, max_key;
    int shard;
    bool jumbo;
    uint32_t major;
    uint64_t valid_after; /* cluster time of the last move */
} sim_chunk_t;

typedef struct sim_shcoll {
    char ns[256];
    uint8_t uuid[16];
    bson_oid_t epoch;
    uint64_t created_ts;
    int64_t created_ms;
    sim_chunk_t *chunks; /* sorted by min */
    size_t nchunks;
    uint32_t major;
} sim_shcoll_t;

typedef struct sim_shard {
    char name[32];
    sim_t *sim;
    bool removed;
} sim_shard_t;

typedef struct sim_cluster {
    sim_t *front;
    sim_clock_t clock;
    pthread_mutex_t mu;
    sim_shard_t shards[SIM_MAX_SHARDS]; /* never shrinks: removed shards stay, marked */
    int nshards;
    sim_shcoll_t **colls;
    size_t ncolls, ccap;
    bson_t **changelog; /* ring of the newest SIM_MAX_CHANGELOG entries */
    size_t nlog;
    uint64_t log_seq;
    bool balancer_on, in_round;
    int64_t rounds;
    uint64_t migrations_ok, migrations_failed;
    uint64_t start_floor; /* resume points before the cluster started are lost */
    pthread_t balancer;
    pthread_cond_t bal_cv; /* CLOCK_MONOTONIC, with mu */
    bool stop;
} sim_cluster_t;

/* Start n shards (listening on ephemeral ports of front's --bind), the
 * config data and the balancer. NULL on failure (logged). */
sim_cluster_t *sim_cluster_start(sim_t *front, int n);
void sim_cluster_stop(sim_cluster_t *cl);

/* Lock the cluster and the shard owning _id in db.coll (sharding the
 * collection on first use) and return that shard; NULL when out of memory
 * (nothing locked). sim_cluster_unlock wakes the shard's waiters. */
sim_t *sim_cluster_lock_id(sim_cluster_t *cl, const char *db, const char *coll, const bson_value_t *id);
sim_t *sim_cluster_lock_oid(sim_cluster_t *cl, const char *db, const char *coll, const bson_oid_t *oid);
void sim_cluster_unlock(sim_cluster_t *cl, sim_t *shard);

/* Control commands of the cluster; -ENOENT when argv[0] is not one of them. */
int sim_cluster_control(sim_t *front, int argc, char **argv, poh_strbuf_t *out);

/* The mongos front's command dispatcher (same contract as sim_dispatch). */
int sim_mongos_dispatch(sim_t *front, sim_client_t *cl, const sim_request_t *req, bson_t *reply);

/* Config database documents of collection name (shards, chunks, collections,
 * settings, changelog, mongos, databases), as new documents; caller holds
 * cl->mu. Returns the count, or -1 for an unknown collection / no memory. */
long sim_config_docs(sim_cluster_t *cl, const char *name, sim_doc_t ***out);

/* Hash of an _id value: the key the chunks are ranges of. */
int64_t sim_shard_hash(const bson_value_t *v);

#endif
