/* SPDX-License-Identifier: Apache-2.0 */
/* Private structures shared by mongodb.c (cluster, scrape-time status) and
 * mongodb_stream.c (change stream threads). */
#ifndef POH_COLLECTOR_MONGODB_INTERNAL_H
#define POH_COLLECTOR_MONGODB_INTERNAL_H

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "collectors/mongodb.h"
#include "mongo/mongo_event.h"

typedef struct mongo_stream mongo_stream_t;
typedef struct mongo_shards mongo_shards_t;

typedef struct mongo_cluster {
    char *name;
    char *uri_redacted;
    char *password;               /* only for scrubbing messages; wiped on free */
    char *state_dir;
    mongoc_uri_t *uri;            /* password applied; base of every client */
    mongoc_client_pool_t *pool;   /* change streams; NULL without streams */
    poh_registry_t *persistent;
    poh_tracer_t *tracer;         /* NULL: tracing off */
    poh_mongodb_store_t *store;   /* streams' state across reloads (the app's) */
    bool own_store;               /* no store in the env: this cluster's own */
    poh_family_t *cmd_duration;   /* poh_mongodb_command_duration_seconds */
    mongo_stream_t **streams;
    size_t nstreams;
    size_t stream_batch_bytes;    /* each stream's share of memory.buffer_limit */

    mongoc_client_t *status;      /* scrape-time client; collect() only */
    int status_timeout_ms;        /* timeouts it was created with */
    mongo_shards_t *shards;       /* a mongos URI: the shards' clients (mongodb_shards.c) */
    struct mongo_cluster_level *level; /* a mongos URI: routers, migrations (mongodb_cluster.c) */

    pthread_mutex_t mu;           /* guards the last_* fields (landing page) */
    bool ran, last_up;
    double last_duration;
    char last_error[256];
} mongo_cluster_t;

/* Copy a driver message into buf with URIs and the cluster's password
 * hidden. */
void mongo_cluster_scrub(const mongo_cluster_t *cl, const char *msg, char *buf, size_t size);

/* APM callbacks reporting into cl->cmd_duration (context = cluster). */
mongoc_apm_callbacks_t *mongo_apm_callbacks_new(void);

/* Destroy a client on a detached thread (ending its sessions can wait for a
 * whole socket timeout on a stalled server; a scrape must not). */
void mongo_client_retire(mongoc_client_t *c);

/* Client timeouts. libmongoc fixes a client's connect, server-selection and
 * socket timeout when the client is made, and remaking one costs a new
 * connection and a SCRAM login per member. budget_ms is the time one server
 * selection plus one stalled command must fit in. A new client gets just
 * under half of it, rounded down to 25 ms x 2^k so that nearby budgets make
 * the same client (0 when that is under 5 ms: do not ask). A kept client is
 * still right while its timeout is at most half the budget (it fits) and at
 * least a quarter of what a new one would get (not needlessly short): a
 * scrape timeout that drifts or alternates between two values, or shards'
 * shares that shift, reuse it. */
int mongo_timeout_pick(int budget_ms);
bool mongo_timeout_fits(int have_ms, int budget_ms);

/* One scrape's status commands on one replica set (the cluster's, or one
 * shard's) or router, with one single-threaded client. */
typedef struct mongo_status_run {
    mongo_cluster_t *cl;
    mongoc_client_t *client;  /* this run's: a cached one, or its own */
    int timeout_ms;           /* the client's connect/selection/socket timeout */
    poh_registry_t *out;
    double deadline;          /* no command starts that could end after it */
    uint32_t server_id;
    const char *shard;        /* the series' shard label; NULL: not a shard */
    bool answered;            /* the server replied to at least one command */
    bool gone;                /* a network error: skip the remaining commands */
    poh_trace_parent_t trace; /* the scrape's span: one CLIENT span per command */
    char error[256];          /* first error of this scrape */
} mongo_status_run_t;

/* Run one command on r->server_id within r->deadline: true with *reply on
 * success; reply is always initialised; the first error goes to r->error. */
bool mongo_status_cmd(mongo_status_run_t *r, const char *db, const bson_t *cmd, const char *what,
                      bson_t *reply);
/* The same for a command the server may refuse when the caller has another
 * way to the answer: a refusal is not kept as the scrape's error (a network
 * error still is, and still ends the run). */
bool mongo_status_try(mongo_status_run_t *r, const char *db, const bson_t *cmd, const char *what,
                      bson_t *reply);
/* replSetGetStatus, the oplog's bounds and collStats (four commands): the
 * member, lag and oplog series, labelled r->shard when it is set. */
void mongo_status_replset(mongo_status_run_t *r);

/* mongodb_shards.c: the URI names a mongos (r runs on the router). listShards,
 * then every shard's replica set within what is left of r->deadline:
 * poh_mongodb_shards, and per shard poh_mongodb_up and the replica-set series
 * labelled shard. False with r->error set when listShards failed. */
mongo_shards_t *mongo_shards_new(void);
void mongo_shards_free(mongo_shards_t *s); /* NULL is fine */
bool mongo_shards_collect(mongo_status_run_t *r);
/* A URI for host ("set/h1,h2" or "h:p") with base's credentials, TLS and
 * every other option but the topology's; timeouts capped at ms. */
mongoc_uri_t *mongo_shards_uri(const mongoc_uri_t *base, const char *host, int ms);

/* mongodb_cluster.c: cluster-level series of a mongos entry (routers of the
 * URI up, balancer, chunks per shard and collection, jumbo chunks, migrations
 * from config.changelog counted once across restarts). A fixed number of
 * commands per scrape whatever the chunk count. */
typedef struct mongo_cluster_level mongo_cluster_level_t;
mongo_cluster_level_t *mongo_cluster_level_new(void);
void mongo_cluster_level_free(mongo_cluster_level_t *cv); /* NULL is fine */
void mongo_cluster_level_collect(mongo_status_run_t *r); /* r runs on the router */

/* mongodb_stream.c */
mongo_stream_t *mongo_stream_new(mongo_cluster_t *cl, const poh_config_mongo_stream_t *cfg);
int mongo_stream_start(mongo_stream_t *s);
void mongo_stream_request_stop(mongo_stream_t *s); /* NULL is fine */
void mongo_stream_destroy(mongo_stream_t *s);      /* joins; NULL is fine */
/* Scrape-time series: lag and whether the stream's cursor is open. */
void mongo_stream_collect(mongo_stream_t *s, poh_registry_t *out);
void mongo_stream_status(mongo_stream_t *s, poh_status_rows_t *rows);

#endif
