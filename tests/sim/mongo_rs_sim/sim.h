/* SPDX-License-Identifier: Apache-2.0 */
/* mongo_rs_sim: shared state of the MongoDB replica-set simulator.
 *
 * One mutex (mu) guards the store, the replica-set view, cursors and fault
 * settings; wake is broadcast on every write batch, connection drop and
 * shutdown so awaiting getMores re-check without polling. */
#ifndef MONGO_SIM_SIM_H
#define MONGO_SIM_SIM_H

#include <bson/bson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "store.h"
#include "wire.h"

#define SIM_MAX_MEMBERS 8
#define SIM_MAX_FAULTS 16
#define SIM_MAX_CMD_NAMES 1024
#define SIM_LOG "mongo_sim"

typedef struct sim_member {
    char host[96];
    int fd;          /* reserved port: bound, never listening, so connects are refused */
    int lag_s;
    bool unhealthy;
    bool zero_optime;
} sim_member_t;

typedef struct sim_config {
    char bind[64];
    int port;
    int control_port;
    char set_name[64];
    int secondaries;
    double rate;
    int approve_after_ms;
    int commit_delay_ms;
    uint64_t oplog_max_bytes;
    size_t max_docs;
    long collections;
    char collections_db[64];
    int max_connections;
    char server_version[8];       /* --server-version: "" (7.0's change streams, reported as 6.0.0 as
                                   * before), "5.0", "6.0" or "7.0" */
    char auth_user[128];          /* --auth-user: SCRAM-SHA-256 required when set */
    char auth_password_file[512]; /* --auth-password-file */
    int shards;                   /* --shards: a mongos front over this many shards (shard.h) */
} sim_config_t;

typedef struct sim_fault {
    char cmd[64];
    int code;
    long remaining;
} sim_fault_t;

/* REPLY <command> <file>: that command is answered with a document read
 * from a file (the corpus of tests/data/mongodb/) instead of running it. */
typedef struct sim_canned {
    char cmd[64];
    bson_t *doc; /* without ok, $clusterTime and operationTime: the reply adds its own */
} sim_canned_t;

typedef struct sim_cmd_count {
    char name[64];
    uint64_t n;
} sim_cmd_count_t;

typedef struct sim_stats {
    atomic_uint_fast64_t op_insert, op_query, op_update, op_delete, op_getmore, op_command;
    atomic_uint_fast64_t reads_us, reads_n, writes_us, writes_n, cmds_us, cmds_n;
    atomic_uint_fast64_t bytes_in, bytes_out, requests;
    atomic_uint_fast64_t conns_total;
    atomic_int conns_current;
    atomic_uint reply_ids;
} sim_stats_t;

struct sim_server;
struct sim_gen;

typedef struct sim {
    sim_config_t cfg;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    sim_store_t *store;

    /* replica set (under mu) */
    int nmembers;
    sim_member_t members[SIM_MAX_MEMBERS];
    int primary;                 /* member index, -1 while there is none */
    int64_t stepdown_until_ms;   /* monotonic; 0 = not stepped down */
    int64_t election_wall_ms;
    /* hello's topologyVersion: processId made at start, counter raised by
     * every election or step-down (what mongod's changes with). An awaitable
     * hello (topologyVersion + maxAwaitTimeMS, the streaming protocol of
     * 4.4+) waits for the counter to move or for maxAwaitTimeMS. */
    bson_oid_t process_id;
    int64_t topology_counter;

    /* faults (under mu) */
    int stall_ms;
    char stall_cmd[64];          /* empty: every command */
    sim_fault_t faults[SIM_MAX_FAULTS];
    int nfaults;
    sim_canned_t canned[SIM_MAX_FAULTS];
    int ncanned;

    /* received commands by name */
    pthread_mutex_t cmd_mu;
    sim_cmd_count_t *cmds;
    size_t ncmds;

    sim_stats_t st;
    atomic_bool stopping;
    int64_t start_mono_ms;
    int port, control_port;
    pthread_t main_thread;

    struct sim_server *server;
    struct sim_server *control;
    struct sim_gen *gen;
    sim_auth_t auth; /* auth.on: commands need a login (set before the servers start) */
    struct sim_cluster *cluster; /* --shards: this sim_t is the mongos front */
} sim_t;

/* Per-connection state handed to command handlers. */
typedef struct sim_client {
    sim_t *sim;
    uint64_t conn_id;
    atomic_bool dropped;
    bool has_fd;   /* fd is the connection's socket (not in unit tests) */
    int fd;
    bson_t scratch;
    char peer[64];
    sim_auth_conv_t auth;
} sim_client_t;

sim_t *sim_new(const sim_config_t *cfg);
void sim_destroy(sim_t *sim);
/* What --server-version makes the simulator: the version it reports
 * ("6.0.0" without the option, as before), its maxWireVersion, and whether
 * it knows $changeStreamSplitLargeEvent (7.0 and 6.0.9; not 5.0 or 6.0.0). */
const char *sim_version(const sim_t *sim);
int sim_max_wire_version(const sim_t *sim);
bool sim_knows_split_stage(const sim_t *sim);
/* Forget every REPLY answer (caller holds mu, or no thread runs). */
void sim_canned_clear(sim_t *sim);
/* A copy of the REPLY answer for cmd into reply; false if none. Takes mu. */
bool sim_canned_reply(sim_t *sim, const char *cmd, bson_t *reply);

/* Replica-set view; caller holds mu. Ends an expired step-down. */
void sim_repl_tick(sim_t *sim);
bool sim_is_primary(const sim_t *sim);
int sim_member_find(const sim_t *sim, const char *spec);
/* Step down for seconds (0 = until STEPUP); the first healthy simulated
 * secondary becomes primary. Caller holds mu. */
void sim_step_down(sim_t *sim, int seconds);
void sim_step_up(sim_t *sim);

/* Count one received command. */
void sim_count_command(sim_t *sim, const char *name);
/* The error code a FAIL_COMMAND armed for command name (one use taken), or
 * 0. Caller holds sim->mu. */
int sim_take_fault(sim_t *sim, const char *name);

enum { SIM_REPLY = 0, SIM_CLOSE = 1, SIM_NO_REPLY = 2 };
/* Run one request; fill reply. Returns SIM_REPLY, SIM_NO_REPLY (moreToCome)
 * or SIM_CLOSE (the connection was dropped while the command waited). */
int sim_dispatch(sim_t *sim, sim_client_t *cl, const sim_request_t *req, bson_t *reply);
/* A find batch (commands.c): docs[*pos..] appended to arr, projected, until
 * max documents (max < 0: no limit) or the batch's byte limit. */
struct sim_doc;
struct sim_proj;
void sim_fill_docs(bson_t *arr, struct sim_doc **docs, size_t ndocs, size_t *pos, int64_t max,
                   const struct sim_proj *proj);

/* Sleep ms unless the client is dropped or the simulator stops. */
void sim_sleep_interruptible(sim_t *sim, sim_client_t *cl, int ms);
/* An awaitable hello (body with topologyVersion and maxAwaitTimeMS) returns
 * when the server's topologyVersion (a REPLY hello document's, or sim's own)
 * is no longer the one the client sent, after maxAwaitTimeMS, or when the
 * client goes or the simulator stops. Any other hello returns at once. */
void sim_hello_await(sim_t *sim, sim_client_t *cl, const bson_t *body);
/* topologyVersion: {processId, counter} of sim. Caller holds sim->mu. */
void sim_append_topology_version(const sim_t *sim, bson_t *reply);

#endif
