/* SPDX-License-Identifier: Apache-2.0 */
/* Command handlers of the simulator and the dispatcher that runs them:
 * counting, fault injection, stalls, error replies and $clusterTime. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "sim.h"

#define MAX_BATCH_BYTES (16 * 1024 * 1024 - 64 * 1024) /* room for the reply envelope */
#define DEFAULT_FIRST_BATCH 101
#define AWAIT_DEFAULT_MS 1000
#define CURSOR_IDLE_MS (10 * 60 * 1000)
#define MAX_CURSORS 100000
#define MAX_WRITE_BATCH 100000
#define CMD_DROPPED 1

enum { ROLE_ANY, ROLE_READ, ROLE_WRITE };
enum { CAT_READ, CAT_WRITE, CAT_CMD };

typedef struct cmd_ctx {
    sim_t *sim;
    sim_client_t *cl;
    const sim_request_t *req;
    const char *db;
    const char *name;
    bson_t *reply;
    sim_err_t err;
    uint64_t op_time; /* 0: the latest cluster time */
} cmd_ctx_t;

typedef int (*cmd_fn)(cmd_ctx_t *x);

static const struct {
    int code;
    const char *name;
} code_names[] = {
    {2, "BadValue"}, {9, "FailedToParse"}, {13, "Unauthorized"}, {17, "ProtocolError"}, {18, "AuthenticationFailed"}, {14, "TypeMismatch"},
    {16, "InvalidLength"}, {20, "IllegalOperation"}, {23, "AlreadyInitialized"}, {26, "NamespaceNotFound"}, {40, "ConflictingUpdateOperators"},
    {43, "CursorNotFound"}, {48, "NamespaceExists"}, {50, "MaxTimeMSExpired"}, {59, "CommandNotFound"},
    {66, "ImmutableField"}, {72, "InvalidOptions"}, {73, "InvalidNamespace"}, {89, "NetworkTimeout"},
    {91, "ShutdownInProgress"}, {96, "OperationFailed"}, {136, "CappedPositionLost"}, {146, "ExceededMemoryLimit"},
    {189, "PrimarySteppedDown"}, {262, "ExceededTimeLimit"}, {286, "ChangeStreamHistoryLost"},
    {292, "CursorInUse"}, {334, "MechanismUnavailable"}, {352, "UnsupportedOpQueryCommand"}, {9001, "SocketException"},
    {10107, "NotWritablePrimary"}, {10334, "BSONObjectTooLarge"}, {11000, "DuplicateKey"},
    {11600, "InterruptedAtShutdown"}, {11602, "InterruptedDueToReplStateChange"},
    {260, "InvalidResumeToken"}, {13435, "NotPrimaryNoSecondaryOk"}, {13436, "NotPrimaryOrSecondary"},
};

/* Errors after which a driver may resume a change stream (server 4.4+ labels them). */
static const int resumable_codes[] = {6, 7, 43, 63, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600, 11602,
                                      13388, 13435, 13436};

static const char *code_name(int code)
{
    for (size_t i = 0; i < sizeof code_names / sizeof code_names[0]; i++)
        if (code_names[i].code == code)
            return code_names[i].name;
    return "SimulatedError";
}

static bool code_resumable(int code)
{
    for (size_t i = 0; i < sizeof resumable_codes / sizeof resumable_codes[0]; i++)
        if (resumable_codes[i] == code)
            return true;
    return false;
}

static int fail(cmd_ctx_t *x, int code, const char *msg)
{
    return sim_err_set(&x->err, code, "%s", msg);
}

/* ---- request field helpers ---------------------------------------------------- */

static bool get_iter(const bson_t *b, const char *k, bson_iter_t *it)
{
    return bson_iter_init_find(it, b, k);
}

static bool get_str(const bson_t *b, const char *k, const char **out)
{
    bson_iter_t it;
    if (!get_iter(b, k, &it) || !BSON_ITER_HOLDS_UTF8(&it))
        return false;
    *out = bson_iter_utf8(&it, NULL);
    return true;
}

static bool get_doc(const bson_t *b, const char *k, bson_t *out)
{
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    if (!get_iter(b, k, &it) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return false;
    bson_iter_document(&it, &len, &data);
    return bson_init_static(out, data, len);
}

/* 1: present and numeric, 0: absent, -1: present with another type. */
static int get_num(const bson_t *b, const char *k, int64_t *out)
{
    bson_iter_t it;
    if (!get_iter(b, k, &it) || BSON_ITER_HOLDS_NULL(&it))
        return 0;
    if (!BSON_ITER_HOLDS_NUMBER(&it))
        return -1;
    *out = bson_iter_as_int64(&it);
    return 1;
}

static bool get_bool(const bson_t *b, const char *k, bool dflt)
{
    bson_iter_t it;
    return get_iter(b, k, &it) ? bson_iter_as_bool(&it) : dflt;
}

static void append_ts(bson_t *b, const char *k, uint64_t ts)
{
    bson_append_timestamp(b, k, -1, SIM_TS_T(ts), SIM_TS_I(ts));
}

static void append_optime(bson_t *b, const char *k, uint64_t ts, int64_t term)
{
    bson_t o;
    bson_append_document_begin(b, k, -1, &o);
    append_ts(&o, "ts", ts);
    BSON_APPEND_INT64(&o, "t", term);
    bson_append_document_end(b, &o);
}

static void append_cluster_time(bson_t *reply, uint64_t cluster, uint64_t op)
{
    static const uint8_t zero[20];
    bson_t ct, sig;
    BSON_APPEND_DOCUMENT_BEGIN(reply, "$clusterTime", &ct);
    append_ts(&ct, "clusterTime", cluster);
    BSON_APPEND_DOCUMENT_BEGIN(&ct, "signature", &sig);
    BSON_APPEND_BINARY(&sig, "hash", BSON_SUBTYPE_BINARY, zero, 20);
    BSON_APPEND_INT64(&sig, "keyId", 0);
    bson_append_document_end(&ct, &sig);
    bson_append_document_end(reply, &ct);
    append_ts(reply, "operationTime", op);
}

static void array_key(uint32_t i, const char **key, size_t *len, char *buf)
{
    *len = bson_uint32_to_string(i, key, buf, 16);
}

/* ---- replica set ---------------------------------------------------------------- */

static void election_id(const sim_t *sim, bson_oid_t *oid)
{
    uint64_t term = (uint64_t)sim->store->term;
    memset(oid->bytes, 0, 12);
    oid->bytes[0] = 0x7f;
    oid->bytes[1] = oid->bytes[2] = oid->bytes[3] = 0xff;
    for (int i = 0; i < 8; i++)
        oid->bytes[4 + i] = (uint8_t)(term >> (56 - 8 * i));
}

static int cmd_hello(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    bson_t *r = x->reply, hosts, lw;
    bson_oid_t eid;
    bool legacy = strcmp(x->name, "hello") != 0;
    if (get_bool(&x->req->body, "helloOk", false))
        BSON_APPEND_BOOL(r, "helloOk", true);
    pthread_mutex_lock(&sim->mu);
    sim_repl_tick(sim);
    bool primary = sim_is_primary(sim);
    BSON_APPEND_BOOL(r, legacy ? "ismaster" : "isWritablePrimary", primary);
    BSON_APPEND_BOOL(r, "secondary", !primary);
    BSON_APPEND_UTF8(r, "setName", sim->cfg.set_name);
    BSON_APPEND_INT32(r, "setVersion", 1);
    BSON_APPEND_ARRAY_BEGIN(r, "hosts", &hosts);
    for (int i = 0; i < sim->nmembers; i++) {
        char kb[16];
        const char *key;
        size_t kl;
        array_key((uint32_t)i, &key, &kl, kb);
        bson_append_utf8(&hosts, key, (int)kl, sim->members[i].host, -1);
    }
    bson_append_array_end(r, &hosts);
    if (sim->primary >= 0)
        BSON_APPEND_UTF8(r, "primary", sim->members[sim->primary].host);
    BSON_APPEND_UTF8(r, "me", sim->members[0].host);
    if (primary) {
        election_id(sim, &eid);
        BSON_APPEND_OID(r, "electionId", &eid);
    }
    BSON_APPEND_DOCUMENT_BEGIN(r, "lastWrite", &lw);
    append_optime(&lw, "opTime", sim->store->last_ts, sim->store->term);
    BSON_APPEND_DATE_TIME(&lw, "lastWriteDate", sim->store->last_wall_ms / 1000 * 1000);
    append_optime(&lw, "majorityOpTime", sim->store->last_ts, sim->store->term);
    BSON_APPEND_DATE_TIME(&lw, "majorityWriteDate", sim->store->last_wall_ms / 1000 * 1000);
    bson_append_document_end(r, &lw);
    pthread_mutex_unlock(&sim->mu);
    BSON_APPEND_INT32(r, "maxBsonObjectSize", 16 * 1024 * 1024);
    BSON_APPEND_INT32(r, "maxMessageSizeBytes", SIM_MAX_MESSAGE);
    BSON_APPEND_INT32(r, "maxWriteBatchSize", MAX_WRITE_BATCH);
    BSON_APPEND_DATE_TIME(r, "localTime", sim_now_ms());
    BSON_APPEND_INT32(r, "logicalSessionTimeoutMinutes", 30);
    BSON_APPEND_INT64(r, "connectionId", (int64_t)x->cl->conn_id);
    BSON_APPEND_INT32(r, "minWireVersion", 0);
    BSON_APPEND_INT32(r, "maxWireVersion", sim_max_wire_version(x->sim));
    BSON_APPEND_BOOL(r, "readOnly", false);
    pthread_mutex_lock(&sim->mu);
    sim_append_topology_version(sim, r);
    pthread_mutex_unlock(&sim->mu);
    sim_auth_hello(&sim->auth, &x->req->body, r);
    return 0;
}

static int cmd_ping(cmd_ctx_t *x)
{
    (void)x;
    return 0;
}

static int cmd_sasl_start(cmd_ctx_t *x)
{
    if (!x->sim->auth.on)
        return sim_err_set(&x->err, 334, "Received authentication for mechanism which is not enabled");
    return sim_auth_start(&x->sim->auth, &x->cl->auth, x->db, &x->req->body, x->reply, &x->err);
}

static int cmd_sasl_continue(cmd_ctx_t *x)
{
    if (!x->sim->auth.on)
        return sim_err_set(&x->err, 17, "No SASL session state found");
    return sim_auth_continue(&x->sim->auth, &x->cl->auth, &x->req->body, x->reply, &x->err);
}

static int cmd_build_info(cmd_ctx_t *x)
{
    bson_t *r = x->reply, va, engines;
    const char *v = sim_version(x->sim);
    BSON_APPEND_UTF8(r, "version", v);
    BSON_APPEND_UTF8(r, "gitVersion", "mongo_rs_sim");
    BSON_APPEND_ARRAY_BEGIN(r, "versionArray", &va);
    BSON_APPEND_INT32(&va, "0", v[0] - '0');
    BSON_APPEND_INT32(&va, "1", 0);
    BSON_APPEND_INT32(&va, "2", 0);
    BSON_APPEND_INT32(&va, "3", 0);
    bson_append_array_end(r, &va);
    BSON_APPEND_INT32(r, "bits", 64);
    BSON_APPEND_BOOL(r, "debug", false);
    BSON_APPEND_INT32(r, "maxBsonObjectSize", 16 * 1024 * 1024);
    BSON_APPEND_ARRAY_BEGIN(r, "storageEngines", &engines);
    BSON_APPEND_UTF8(&engines, "0", "ephemeralForTest");
    bson_append_array_end(r, &engines);
    BSON_APPEND_UTF8(r, "javascriptEngine", "none");
    return 0;
}

static void append_latency(bson_t *parent, const char *k, uint64_t us, uint64_t n)
{
    bson_t d;
    BSON_APPEND_DOCUMENT_BEGIN(parent, k, &d);
    BSON_APPEND_INT64(&d, "latency", (int64_t)us);
    BSON_APPEND_INT64(&d, "ops", (int64_t)n);
    bson_append_document_end(parent, &d);
}

static int cmd_server_status(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    sim_stats_t *st = &sim->st;
    bson_t *r = x->reply, c, oc, ocr, lat, tx, repl, hosts, net, mem;
    char host[128];
    int64_t up_ms = sim_mono_ms() - sim->start_mono_ms;
    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = 0;
    BSON_APPEND_UTF8(r, "host", host);
    BSON_APPEND_UTF8(r, "version", sim_version(x->sim));
    BSON_APPEND_UTF8(r, "process", "mongod");
    BSON_APPEND_INT64(r, "pid", (int64_t)getpid());
    BSON_APPEND_DOUBLE(r, "uptime", (double)(up_ms / 1000));
    BSON_APPEND_INT64(r, "uptimeMillis", up_ms);
    BSON_APPEND_INT64(r, "uptimeEstimate", up_ms / 1000);
    BSON_APPEND_DATE_TIME(r, "localTime", sim_now_ms());
    BSON_APPEND_DOCUMENT_BEGIN(r, "connections", &c);
    BSON_APPEND_INT32(&c, "current", atomic_load(&st->conns_current));
    BSON_APPEND_INT32(&c, "available", sim->cfg.max_connections - atomic_load(&st->conns_current));
    BSON_APPEND_INT64(&c, "totalCreated", (int64_t)atomic_load(&st->conns_total));
    BSON_APPEND_INT32(&c, "active", atomic_load(&st->conns_current));
    bson_append_document_end(r, &c);
    BSON_APPEND_DOCUMENT_BEGIN(r, "opcounters", &oc);
    BSON_APPEND_INT64(&oc, "insert", (int64_t)atomic_load(&st->op_insert));
    BSON_APPEND_INT64(&oc, "query", (int64_t)atomic_load(&st->op_query));
    BSON_APPEND_INT64(&oc, "update", (int64_t)atomic_load(&st->op_update));
    BSON_APPEND_INT64(&oc, "delete", (int64_t)atomic_load(&st->op_delete));
    BSON_APPEND_INT64(&oc, "getmore", (int64_t)atomic_load(&st->op_getmore));
    BSON_APPEND_INT64(&oc, "command", (int64_t)atomic_load(&st->op_command));
    bson_append_document_end(r, &oc);
    BSON_APPEND_DOCUMENT_BEGIN(r, "opcountersRepl", &ocr);
    static const char *const repl_ops[] = {"insert", "query", "update", "delete", "getmore", "command"};
    for (size_t i = 0; i < 6; i++)
        BSON_APPEND_INT64(&ocr, repl_ops[i], 0);
    bson_append_document_end(r, &ocr);
    BSON_APPEND_DOCUMENT_BEGIN(r, "opLatencies", &lat);
    append_latency(&lat, "reads", atomic_load(&st->reads_us), atomic_load(&st->reads_n));
    append_latency(&lat, "writes", atomic_load(&st->writes_us), atomic_load(&st->writes_n));
    append_latency(&lat, "commands", atomic_load(&st->cmds_us), atomic_load(&st->cmds_n));
    append_latency(&lat, "transactions", 0, 0);
    bson_append_document_end(r, &lat);
    BSON_APPEND_DOCUMENT_BEGIN(r, "transactions", &tx);
    static const char *const tx_fields[] = {"retriedCommandsCount", "retriedStatementsCount",
                                            "transactionsCollectionWriteCount", "currentActive",
                                            "currentInactive", "currentOpen", "totalAborted",
                                            "totalCommitted", "totalStarted", "totalPrepared",
                                            "totalPreparedThenCommitted", "totalPreparedThenAborted",
                                            "currentPrepared"};
    for (size_t i = 0; i < sizeof tx_fields / sizeof tx_fields[0]; i++)
        BSON_APPEND_INT64(&tx, tx_fields[i], 0);
    bson_append_document_end(r, &tx);
    pthread_mutex_lock(&sim->mu);
    sim_repl_tick(sim);
    BSON_APPEND_DOCUMENT_BEGIN(r, "repl", &repl);
    BSON_APPEND_UTF8(&repl, "setName", sim->cfg.set_name);
    BSON_APPEND_INT32(&repl, "setVersion", 1);
    BSON_APPEND_BOOL(&repl, "isWritablePrimary", sim_is_primary(sim));
    BSON_APPEND_BOOL(&repl, "secondary", !sim_is_primary(sim));
    if (sim->primary >= 0)
        BSON_APPEND_UTF8(&repl, "primary", sim->members[sim->primary].host);
    BSON_APPEND_UTF8(&repl, "me", sim->members[0].host);
    BSON_APPEND_ARRAY_BEGIN(&repl, "hosts", &hosts);
    for (int i = 0; i < sim->nmembers; i++) {
        char kb[16];
        const char *key;
        size_t kl;
        array_key((uint32_t)i, &key, &kl, kb);
        bson_append_utf8(&hosts, key, (int)kl, sim->members[i].host, -1);
    }
    bson_append_array_end(&repl, &hosts);
    BSON_APPEND_INT64(&repl, "rbid", 1);
    bson_append_document_end(r, &repl);
    pthread_mutex_unlock(&sim->mu);
    BSON_APPEND_DOCUMENT_BEGIN(r, "network", &net);
    BSON_APPEND_INT64(&net, "bytesIn", (int64_t)atomic_load(&st->bytes_in));
    BSON_APPEND_INT64(&net, "bytesOut", (int64_t)atomic_load(&st->bytes_out));
    BSON_APPEND_INT64(&net, "numRequests", (int64_t)atomic_load(&st->requests));
    bson_append_document_end(r, &net);
    BSON_APPEND_DOCUMENT_BEGIN(r, "mem", &mem);
    BSON_APPEND_INT32(&mem, "bits", 64);
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            pages = resident = 0;
        fclose(f);
    }
    long pg = sysconf(_SC_PAGESIZE);
    BSON_APPEND_INT64(&mem, "resident", (int64_t)resident * pg / (1024 * 1024));
    BSON_APPEND_INT64(&mem, "virtual", (int64_t)pages * pg / (1024 * 1024));
    bson_append_document_end(r, &mem);
    return 0;
}

static void append_member(sim_t *sim, bson_t *arr, int i, int64_t now_ms)
{
    const sim_member_t *m = &sim->members[i];
    const sim_store_t *s = sim->store;
    char kb[16];
    const char *key;
    size_t kl;
    bson_t d;
    bool is_primary = sim->primary == i;
    int state = m->unhealthy ? 8 : is_primary ? 1 : 2;
    const char *state_str = m->unhealthy ? "(not reachable/healthy)" : is_primary ? "PRIMARY" : "SECONDARY";
    uint64_t ts = 0;
    int64_t term = -1, wall = 0;
    if (!m->unhealthy && !m->zero_optime) {
        /* The primary has every write; a lagging member is exactly lag_s behind. */
        int lag = is_primary ? 0 : m->lag_s;
        uint32_t t = SIM_TS_T(s->last_ts);
        ts = SIM_TS(t > (uint32_t)lag ? t - (uint32_t)lag : 0, SIM_TS_I(s->last_ts));
        wall = s->last_wall_ms - (int64_t)lag * 1000;
        term = s->term;
    }
    array_key((uint32_t)i, &key, &kl, kb);
    bson_append_document_begin(arr, key, (int)kl, &d);
    BSON_APPEND_INT32(&d, "_id", i);
    BSON_APPEND_UTF8(&d, "name", m->host);
    BSON_APPEND_DOUBLE(&d, "health", m->unhealthy ? 0.0 : 1.0);
    BSON_APPEND_INT32(&d, "state", state);
    BSON_APPEND_UTF8(&d, "stateStr", state_str);
    BSON_APPEND_INT64(&d, "uptime", m->unhealthy ? 0 : (sim_mono_ms() - sim->start_mono_ms) / 1000);
    append_optime(&d, "optime", ts, term);
    append_optime(&d, "optimeDurable", ts, term);
    BSON_APPEND_DATE_TIME(&d, "optimeDate", wall);
    BSON_APPEND_DATE_TIME(&d, "optimeDurableDate", wall);
    BSON_APPEND_DATE_TIME(&d, "lastAppliedWallTime", wall);
    BSON_APPEND_DATE_TIME(&d, "lastDurableWallTime", wall);
    if (i != 0) {
        BSON_APPEND_DATE_TIME(&d, "lastHeartbeat", now_ms);
        BSON_APPEND_DATE_TIME(&d, "lastHeartbeatRecv", now_ms);
        BSON_APPEND_INT64(&d, "pingMs", 0);
        BSON_APPEND_UTF8(&d, "lastHeartbeatMessage", m->unhealthy ? "Error connecting to member (simulated)" : "");
    }
    BSON_APPEND_UTF8(&d, "syncSourceHost", is_primary || m->unhealthy ? "" : sim->primary >= 0 ? sim->members[sim->primary].host : "");
    BSON_APPEND_INT32(&d, "syncSourceId", is_primary || m->unhealthy || sim->primary < 0 ? -1 : sim->primary);
    BSON_APPEND_UTF8(&d, "infoMessage", "");
    if (is_primary) {
        BSON_APPEND_TIMESTAMP(&d, "electionTime", (uint32_t)(sim->election_wall_ms / 1000), 1);
        BSON_APPEND_DATE_TIME(&d, "electionDate", sim->election_wall_ms / 1000 * 1000);
    }
    BSON_APPEND_INT32(&d, "configVersion", 1);
    BSON_APPEND_INT64(&d, "configTerm", s->term);
    if (i == 0)
        BSON_APPEND_BOOL(&d, "self", true);
    bson_append_document_end(arr, &d);
}

static int cmd_repl_status(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    bson_t *r = x->reply, opt, members;
    if (strcmp(x->db, "admin") != 0)
        return fail(x, 13, "replSetGetStatus may only be run against the admin database.");
    int64_t now = sim_now_ms();
    pthread_mutex_lock(&sim->mu);
    sim_repl_tick(sim);
    const sim_store_t *s = sim->store;
    int voting = sim->nmembers;
    BSON_APPEND_UTF8(r, "set", sim->cfg.set_name);
    BSON_APPEND_DATE_TIME(r, "date", now);
    BSON_APPEND_INT32(r, "myState", sim_is_primary(sim) ? 1 : 2);
    BSON_APPEND_INT64(r, "term", s->term);
    BSON_APPEND_INT32(r, "heartbeatIntervalMillis", 2000);
    BSON_APPEND_INT32(r, "majorityVoteCount", voting / 2 + 1);
    BSON_APPEND_INT32(r, "writeMajorityCount", voting / 2 + 1);
    BSON_APPEND_INT32(r, "votingMembersCount", voting);
    BSON_APPEND_INT32(r, "writableVotingMembersCount", voting);
    BSON_APPEND_DOCUMENT_BEGIN(r, "optimes", &opt);
    append_optime(&opt, "lastCommittedOpTime", s->last_ts, s->term);
    BSON_APPEND_DATE_TIME(&opt, "lastCommittedWallTime", s->last_wall_ms);
    append_optime(&opt, "readConcernMajorityOpTime", s->last_ts, s->term);
    append_optime(&opt, "appliedOpTime", s->last_ts, s->term);
    append_optime(&opt, "durableOpTime", s->last_ts, s->term);
    BSON_APPEND_DATE_TIME(&opt, "lastAppliedWallTime", s->last_wall_ms);
    BSON_APPEND_DATE_TIME(&opt, "lastDurableWallTime", s->last_wall_ms);
    bson_append_document_end(r, &opt);
    BSON_APPEND_ARRAY_BEGIN(r, "members", &members);
    for (int i = 0; i < sim->nmembers; i++)
        append_member(sim, &members, i, now);
    bson_append_array_end(r, &members);
    pthread_mutex_unlock(&sim->mu);
    return 0;
}

/* ---- writes ----------------------------------------------------------------------- */

/* Statements of a write command: a kind-1 sequence or an array in the body. */
typedef struct stmt_iter {
    const sim_seq_t *seq;
    uint32_t off;
    bson_iter_t arr;
    bool use_arr;
} stmt_iter_t;

static int stmts_init(cmd_ctx_t *x, const char *field, stmt_iter_t *si, uint32_t *count)
{
    bson_iter_t it;
    memset(si, 0, sizeof *si);
    si->seq = sim_request_seq(x->req, field);
    if (si->seq) {
        *count = si->seq->ndocs;
    } else if (get_iter(&x->req->body, field, &it) && BSON_ITER_HOLDS_ARRAY(&it)) {
        bson_iter_t tmp;
        bson_iter_recurse(&it, &si->arr);
        bson_iter_recurse(&it, &tmp);
        si->use_arr = true;
        *count = 0;
        while (bson_iter_next(&tmp)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&tmp))
                return sim_err_set(&x->err, 14, "%s entries must be documents", field);
            (*count)++;
        }
    } else {
        return sim_err_set(&x->err, 9, "BSON field '%s.%s' is missing but a required field", x->name, field);
    }
    if (*count == 0 || *count > MAX_WRITE_BATCH)
        return sim_err_set(&x->err, 16, "Write batch sizes must be between 1 and %d. Got %u operations.",
                           MAX_WRITE_BATCH, *count);
    return 0;
}

static bool stmts_next(stmt_iter_t *si, bson_t *doc)
{
    if (si->seq)
        return sim_seq_next(si->seq, &si->off, doc);
    if (!bson_iter_next(&si->arr))
        return false;
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&si->arr, &len, &data);
    return bson_init_static(doc, data, len);
}

static void write_error(bson_t *errs, uint32_t *nerr, uint32_t index, const sim_err_t *e)
{
    char kb[16];
    const char *key;
    size_t kl;
    bson_t d;
    array_key((*nerr)++, &key, &kl, kb);
    bson_append_document_begin(errs, key, (int)kl, &d);
    BSON_APPEND_INT32(&d, "index", (int32_t)index);
    BSON_APPEND_INT32(&d, "code", e->code);
    BSON_APPEND_UTF8(&d, "errmsg", e->msg);
    bson_append_document_end(errs, &d);
}

static int write_target(cmd_ctx_t *x, const char **coll)
{
    if (!get_str(&x->req->body, x->name, coll))
        return sim_err_set(&x->err, 73, "collection name for %s must be a string", x->name);
    if (!sim_ns_writable(x->db, *coll, &x->err))
        return -1;
    return 0;
}

static int cmd_insert(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    const char *coll;
    stmt_iter_t si;
    uint32_t count, n = 0, nerr = 0, i = 0;
    bson_t doc, errs = BSON_INITIALIZER;
    if (write_target(x, &coll) < 0 || stmts_init(x, "documents", &si, &count) < 0)
        return -1;
    bool ordered = get_bool(&x->req->body, "ordered", true);
    pthread_mutex_lock(&sim->mu);
    sim_coll_t *c = sim_store_coll(sim->store, x->db, coll, true);
    if (!c) {
        pthread_mutex_unlock(&sim->mu);
        bson_destroy(&errs);
        return fail(x, 146, "out of memory creating the collection");
    }
    for (; stmts_next(&si, &doc); i++) {
        sim_err_t e = {0};
        if (sim_store_insert(sim->store, c, &doc, &e) < 0) {
            write_error(&errs, &nerr, i, &e);
            if (ordered)
                break;
            continue;
        }
        n++;
    }
    if (n)
        pthread_cond_broadcast(&sim->wake);
    pthread_mutex_unlock(&sim->mu);
    atomic_fetch_add(&sim->st.op_insert, count);
    BSON_APPEND_INT32(x->reply, "n", (int32_t)n);
    if (nerr)
        BSON_APPEND_ARRAY(x->reply, "writeErrors", &errs);
    bson_destroy(&errs);
    return 0;
}

static int cmd_update(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    const char *coll;
    stmt_iter_t si;
    uint32_t count, n = 0, modified = 0, nerr = 0, nups = 0, i = 0;
    bson_t st, errs = BSON_INITIALIZER, ups = BSON_INITIALIZER;
    if (write_target(x, &coll) < 0 || stmts_init(x, "updates", &si, &count) < 0)
        return -1;
    bool ordered = get_bool(&x->req->body, "ordered", true);
    pthread_mutex_lock(&sim->mu);
    for (; stmts_next(&si, &st); i++) {
        sim_err_t e = {0};
        sim_update_result_t r = {0};
        bson_t q, u;
        char msg[160];
        bool upsert = get_bool(&st, "upsert", false);
        if (!get_doc(&st, "q", &q) || !get_doc(&st, "u", &u)) {
            sim_err_set(&e, 9, "update statements need a 'q' document and a 'u' document (pipelines are not supported)");
        } else if (!sim_filter_check(&q, msg, sizeof msg)) {
            sim_err_set(&e, 2, "%s", msg);
        } else {
            sim_coll_t *c = sim_store_coll(sim->store, x->db, coll, upsert);
            if (upsert && !c)
                sim_err_set(&e, 146, "out of memory creating the collection");
            else
                sim_store_update(sim->store, c, &q, &u, upsert, get_bool(&st, "multi", false), &r, &e);
        }
        if (e.code) {
            write_error(&errs, &nerr, i, &e);
            if (ordered)
                break;
            continue;
        }
        n += r.n;
        modified += r.modified;
        if (r.upserted) {
            char kb[16];
            const char *key;
            size_t kl;
            bson_t d;
            array_key(nups++, &key, &kl, kb);
            bson_append_document_begin(&ups, key, (int)kl, &d);
            BSON_APPEND_INT32(&d, "index", (int32_t)i);
            BSON_APPEND_VALUE(&d, "_id", &r.upserted_id);
            bson_append_document_end(&ups, &d);
            bson_value_destroy(&r.upserted_id);
        }
    }
    pthread_cond_broadcast(&sim->wake);
    pthread_mutex_unlock(&sim->mu);
    atomic_fetch_add(&sim->st.op_update, count);
    BSON_APPEND_INT32(x->reply, "n", (int32_t)n);
    BSON_APPEND_INT32(x->reply, "nModified", (int32_t)modified);
    if (nups)
        BSON_APPEND_ARRAY(x->reply, "upserted", &ups);
    if (nerr)
        BSON_APPEND_ARRAY(x->reply, "writeErrors", &errs);
    bson_destroy(&ups);
    bson_destroy(&errs);
    return 0;
}

static int cmd_delete(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    const char *coll;
    stmt_iter_t si;
    uint32_t count, n = 0, nerr = 0, i = 0;
    bson_t st, errs = BSON_INITIALIZER;
    if (write_target(x, &coll) < 0 || stmts_init(x, "deletes", &si, &count) < 0)
        return -1;
    bool ordered = get_bool(&x->req->body, "ordered", true);
    pthread_mutex_lock(&sim->mu);
    for (; stmts_next(&si, &st); i++) {
        sim_err_t e = {0};
        bson_t q;
        int64_t limit = 0;
        char msg[160];
        uint32_t k = 0;
        if (!get_doc(&st, "q", &q) || get_num(&st, "limit", &limit) < 0 || (limit != 0 && limit != 1))
            sim_err_set(&e, 9, "delete statements need a 'q' document and 'limit' 0 or 1");
        else if (!sim_filter_check(&q, msg, sizeof msg))
            sim_err_set(&e, 2, "%s", msg);
        else
            sim_store_delete(sim->store, sim_store_coll(sim->store, x->db, coll, false), &q, limit == 0, &k, &e);
        if (e.code) {
            write_error(&errs, &nerr, i, &e);
            if (ordered)
                break;
            continue;
        }
        n += k;
    }
    pthread_cond_broadcast(&sim->wake);
    pthread_mutex_unlock(&sim->mu);
    atomic_fetch_add(&sim->st.op_delete, count);
    BSON_APPEND_INT32(x->reply, "n", (int32_t)n);
    if (nerr)
        BSON_APPEND_ARRAY(x->reply, "writeErrors", &errs);
    bson_destroy(&errs);
    return 0;
}

static int cmd_create(cmd_ctx_t *x)
{
    const char *coll = NULL;
    int rc = 0;
    if (write_target(x, &coll) < 0)
        return -1;
    pthread_mutex_lock(&x->sim->mu);
    if (sim_store_coll(x->sim->store, x->db, coll, false))
        rc = sim_err_set(&x->err, 48, "Collection %.64s.%.128s already exists.", x->db, coll);
    else if (!sim_store_coll(x->sim->store, x->db, coll, true))
        rc = fail(x, 146, "out of memory creating the collection");
    pthread_mutex_unlock(&x->sim->mu);
    return rc;
}

/* ---- DDL: drop, renameCollection, dropDatabase ---------------------------------------- */

static int cmd_drop(cmd_ctx_t *x)
{
    const char *coll = NULL;
    char ns[400];
    if (write_target(x, &coll) < 0)
        return -1;
    pthread_mutex_lock(&x->sim->mu);
    int rc = sim_store_drop(x->sim->store, sim_store_coll(x->sim->store, x->db, coll, false), &x->err);
    pthread_cond_broadcast(&x->sim->wake);
    pthread_mutex_unlock(&x->sim->mu);
    if (rc < 0)
        return -1;
    snprintf(ns, sizeof ns, "%s.%s", x->db, coll);
    BSON_APPEND_INT32(x->reply, "nIndexesWas", 1);
    BSON_APPEND_UTF8(x->reply, "ns", ns);
    return 0;
}

/* "db.coll" split at the first dot into a writable namespace. */
static int split_ns(cmd_ctx_t *x, const char *field, const char *full, char *db, size_t dblen, const char **coll)
{
    const char *dot = full ? strchr(full, '.') : NULL;
    if (!dot || (size_t)(dot - full) >= dblen)
        return sim_err_set(&x->err, 73, "Invalid %s namespace: '%.200s'", field, full ? full : "");
    memcpy(db, full, (size_t)(dot - full));
    db[dot - full] = '\0';
    *coll = dot + 1;
    return sim_ns_writable(db, *coll, &x->err) ? 0 : -1;
}

static int cmd_rename(cmd_ctx_t *x)
{
    const char *from = NULL, *to = NULL, *from_coll = NULL, *to_coll = NULL;
    char from_db[128], to_db[128];
    if (strcmp(x->db, "admin"))
        return fail(x, 13, "renameCollection may only be run against the admin database.");
    if (!get_str(&x->req->body, "renameCollection", &from) || !get_str(&x->req->body, "to", &to))
        return fail(x, 2, "renameCollection and to must be strings 'db.collection'");
    if (split_ns(x, "source", from, from_db, sizeof from_db, &from_coll) < 0 ||
        split_ns(x, "target", to, to_db, sizeof to_db, &to_coll) < 0)
        return -1;
    pthread_mutex_lock(&x->sim->mu);
    sim_store_t *s = x->sim->store;
    int rc = sim_store_rename(s, sim_store_coll(s, from_db, from_coll, false), to_db, to_coll,
                              get_bool(&x->req->body, "dropTarget", false), &x->err);
    pthread_cond_broadcast(&x->sim->wake);
    pthread_mutex_unlock(&x->sim->mu);
    return rc;
}

static int cmd_drop_database(cmd_ctx_t *x)
{
    uint32_t n;
    if (!sim_ns_writable(x->db, "x", &x->err))
        return -1;
    pthread_mutex_lock(&x->sim->mu);
    int rc = sim_store_drop_db(x->sim->store, x->db, &n, &x->err);
    pthread_cond_broadcast(&x->sim->wake);
    pthread_mutex_unlock(&x->sim->mu);
    if (rc < 0)
        return -1;
    BSON_APPEND_UTF8(x->reply, "dropped", x->db);
    return 0;
}

/* ---- cursors and queries --------------------------------------------------------- */

typedef struct doc_vec {
    sim_doc_t **v;
    size_t n, cap;
} doc_vec_t;

static int vec_push(doc_vec_t *dv, sim_doc_t *d)
{
    if (dv->n == dv->cap) {
        size_t ncap = dv->cap ? dv->cap * 2 : 64;
        sim_doc_t **nv = realloc(dv->v, ncap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        dv->v = nv;
        dv->cap = ncap;
    }
    dv->v[dv->n++] = d;
    return 0;
}

static void vec_free(doc_vec_t *dv, size_t from)
{
    for (size_t i = from; i < dv->n; i++)
        sim_doc_unref(dv->v[i]);
    free(dv->v);
}

static int sort_cmp(const void *a, const void *b, void *arg)
{
    bson_t x, y;
    sim_doc_view(*(sim_doc_t *const *)a, &x);
    sim_doc_view(*(sim_doc_t *const *)b, &y);
    return sim_sort_cmp(&x, &y, arg);
}

void sim_fill_docs(bson_t *arr, sim_doc_t **docs, size_t ndocs, size_t *pos, int64_t max, const sim_proj_t *proj)
{
    uint32_t idx = 0;
    while (*pos < ndocs && (max < 0 || idx < (uint64_t)max)) {
        bson_t v;
        char kb[16];
        const char *key;
        size_t kl;
        sim_doc_view(docs[*pos], &v);
        if (idx > 0 && (size_t)arr->len + v.len + 16 > MAX_BATCH_BYTES)
            break;
        array_key(idx++, &key, &kl, kb);
        sim_proj_append(arr, key, kl, &v, proj);
        (*pos)++;
    }
}

/* Oplog entries [lo, hi) that a top-level ts filter allows. */
static void oplog_range(const sim_store_t *s, const bson_t *filter, uint64_t *lo, uint64_t *hi)
{
    bson_iter_t it, ops;
    *lo = s->first_seq;
    *hi = s->end_seq;
    if (!bson_iter_init_find(&it, filter, "ts"))
        return;
    if (BSON_ITER_HOLDS_TIMESTAMP(&it)) {
        uint32_t t, i;
        bson_iter_timestamp(&it, &t, &i);
        uint64_t v = SIM_TS(t, i);
        *lo = v ? sim_oplog_seq_after(s, v - 1) : s->first_seq;
        *hi = sim_oplog_seq_after(s, v);
        return;
    }
    if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &ops))
        return;
    while (bson_iter_next(&ops)) {
        if (!BSON_ITER_HOLDS_TIMESTAMP(&ops))
            continue;
        uint32_t t, i;
        bson_iter_timestamp(&ops, &t, &i);
        uint64_t v = SIM_TS(t, i);
        /* first seq with ts > v, and first seq with ts >= v */
        uint64_t above = sim_oplog_seq_after(s, v);
        uint64_t from = v ? sim_oplog_seq_after(s, v - 1) : s->first_seq;
        const char *op = bson_iter_key(&ops);
        if (!strcmp(op, "$gt") && above > *lo)
            *lo = above;
        else if (!strcmp(op, "$gte") && from > *lo)
            *lo = from;
        else if (!strcmp(op, "$lt") && from < *hi)
            *hi = from;
        else if (!strcmp(op, "$lte") && above < *hi)
            *hi = above;
    }
}

static int collect_oplog(sim_t *sim, const bson_t *filter, int dir, size_t want, doc_vec_t *out, bson_t *scratch)
{
    sim_store_t *s = sim->store;
    uint64_t lo, hi;
    oplog_range(s, filter, &lo, &hi);
    for (uint64_t k = 0; lo + k < hi && (want == 0 || out->n < want); k++) {
        uint64_t seq = dir > 0 ? lo + k : hi - 1 - k;
        bson_reinit(scratch);
        sim_entry_render(sim_oplog_at(s, seq), scratch);
        if (!sim_match(scratch, filter))
            continue;
        sim_doc_t *d = sim_doc_new_raw(scratch);
        if (!d || vec_push(out, d) < 0) {
            sim_doc_unref(d);
            return -ENOMEM;
        }
    }
    return 0;
}

static int collect_coll(const sim_coll_t *c, const bson_t *filter, int dir, size_t want, doc_vec_t *out)
{
    bson_iter_t id;
    if (!c)
        return 0;
    if (sim_filter_is_id_eq(filter, &id)) {
        sim_doc_t *d = sim_coll_find_iter(c, &id);
        if (!d)
            return 0;
        if (vec_push(out, d) < 0)
            return -ENOMEM;
        d->refs++;
        return 0;
    }
    for (sim_doc_t *d = dir > 0 ? c->head : c->tail; d && (want == 0 || out->n < want);
         d = dir > 0 ? d->next : d->prev) {
        bson_t v;
        sim_doc_view(d, &v);
        if (!sim_match(&v, filter))
            continue;
        if (vec_push(out, d) < 0)
            return -ENOMEM;
        d->refs++;
    }
    return 0;
}

/* Free cursors idle for 10 minutes, at most once a minute. Caller holds mu. */
static void reap_idle_cursors(sim_t *sim)
{
    int64_t now = sim_mono_ms();
    if (now - sim->store->last_reap_ms < 60000 && sim->store->kcount < MAX_CURSORS)
        return;
    sim->store->last_reap_ms = now;
    sim_cursor_reap(sim->store, now, CURSOR_IDLE_MS);
}

/* Reply {cursor: {firstBatch, id, ns}} for materialised results; a cursor
 * keeps what does not fit. Caller holds mu; takes over dv. */
static int reply_results(cmd_ctx_t *x, const char *ns, doc_vec_t *dv, int64_t batch, bool single,
                         const bson_t *proj_spec, const sim_proj_t *proj)
{
    bson_t cd, arr;
    size_t pos = 0;
    int64_t id = 0;
    BSON_APPEND_DOCUMENT_BEGIN(x->reply, "cursor", &cd);
    BSON_APPEND_ARRAY_BEGIN(&cd, "firstBatch", &arr);
    sim_fill_docs(&arr, dv->v, dv->n, &pos, batch, proj);
    bson_append_array_end(&cd, &arr);
    if (pos < dv->n && !single) {
        reap_idle_cursors(x->sim);
        sim_cursor_t *cur = x->sim->store->kcount < MAX_CURSORS ? sim_cursor_new(x->sim->store, SIM_CUR_FIND, ns) : NULL;
        if (cur && proj_spec && !(cur->proj_spec = bson_copy(proj_spec))) {
            sim_cursor_free(x->sim->store, cur);
            cur = NULL;
        }
        if (cur) {
            cur->docs = dv->v;
            cur->ndocs = dv->n;
            cur->pos = pos;
            cur->proj = *proj;
            cur->proj.spec = cur->proj_spec;
            dv->v = NULL;
            id = cur->id;
        }
    }
    BSON_APPEND_INT64(&cd, "id", id);
    BSON_APPEND_UTF8(&cd, "ns", ns);
    bson_append_document_end(x->reply, &cd);
    if (dv->v)
        vec_free(dv, 0);
    return 0;
}

static int cmd_find(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    const bson_t *b = &x->req->body;
    const char *coll;
    bson_t filter = BSON_INITIALIZER, sort_spec, proj_spec;
    sim_sort_t sort;
    sim_proj_t proj;
    char msg[200], ns[400];
    int64_t skip = 0, limit = 0, batch = DEFAULT_FIRST_BATCH;
    doc_vec_t dv = {0};
    int rc;
    if (!get_str(b, "find", &coll))
        return fail(x, 73, "collection name for find must be a string");
    get_doc(b, "filter", &filter);
    bool has_sort = get_doc(b, "sort", &sort_spec);
    bool has_proj = get_doc(b, "projection", &proj_spec);
    int has_batch = get_num(b, "batchSize", &batch);
    if (get_num(b, "skip", &skip) < 0 || get_num(b, "limit", &limit) < 0 || has_batch < 0 || skip < 0 || batch < 0)
        return fail(x, 14, "skip, limit and batchSize must be non-negative numbers");
    if (!sim_filter_check(&filter, msg, sizeof msg) || !sim_sort_parse(has_sort ? &sort_spec : NULL, &sort, msg, sizeof msg) ||
        !sim_proj_parse(has_proj ? &proj_spec : NULL, &proj, msg, sizeof msg))
        return fail(x, 2, msg);
    bool single = get_bool(b, "singleBatch", false) || limit < 0;
    if (limit < 0)
        limit = -limit;
    /* Without batchSize a limited find returns everything in the first batch. */
    if (limit && (!has_batch || batch > limit))
        batch = limit;
    snprintf(ns, sizeof ns, "%s.%s", x->db, coll);
    bool oplog = !strcmp(x->db, "local") && !strcmp(coll, "oplog.rs");
    int dir = sort.natural < 0 ? -1 : 1;
    if (oplog && sort.n) {
        if (sort.n != 1 || strcmp(sort.keys[0], "ts"))
            return fail(x, 2, "the simulator sorts local.oplog.rs by $natural or ts only");
        dir = sort.dir[0];
        sort.n = 0;
    }
    /* Natural order lets the scan stop once skip + limit documents matched. */
    size_t want = sort.n || !limit ? 0 : (size_t)(skip + limit);
    pthread_mutex_lock(&sim->mu);
    if (oplog)
        rc = collect_oplog(sim, &filter, dir, want, &dv, &x->cl->scratch);
    else
        rc = collect_coll(sim_store_coll(sim->store, x->db, coll, false), &filter, dir, want, &dv);
    if (rc < 0) {
        pthread_mutex_unlock(&sim->mu);
        vec_free(&dv, 0);
        return fail(x, 146, "out of memory running the query");
    }
    if (sort.n && dv.n > 1)
        qsort_r(dv.v, dv.n, sizeof *dv.v, sort_cmp, &sort);
    size_t first = (size_t)skip < dv.n ? (size_t)skip : dv.n;
    if (first) {
        for (size_t i = 0; i < first; i++)
            sim_doc_unref(dv.v[i]);
        memmove(dv.v, dv.v + first, (dv.n - first) * sizeof *dv.v);
        dv.n -= first;
    }
    if (limit && dv.n > (size_t)limit) {
        for (size_t i = (size_t)limit; i < dv.n; i++)
            sim_doc_unref(dv.v[i]);
        dv.n = (size_t)limit;
    }
    rc = reply_results(x, ns, &dv, batch, single, has_proj ? &proj_spec : NULL, &proj);
    pthread_mutex_unlock(&sim->mu);
    atomic_fetch_add(&sim->st.op_query, 1);
    return rc;
}

static int cmd_count(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    const char *coll;
    bson_t q = BSON_INITIALIZER;
    char msg[200];
    int64_t n = 0;
    if (!get_str(&x->req->body, "count", &coll))
        return fail(x, 73, "collection name for count must be a string");
    get_doc(&x->req->body, "query", &q);
    if (!sim_filter_check(&q, msg, sizeof msg))
        return fail(x, 2, msg);
    pthread_mutex_lock(&sim->mu);
    if (!strcmp(x->db, "local") && !strcmp(coll, "oplog.rs")) {
        uint64_t lo, hi;
        oplog_range(sim->store, &q, &lo, &hi);
        for (uint64_t seq = lo; seq < hi; seq++) {
            bson_reinit(&x->cl->scratch);
            sim_entry_render(sim_oplog_at(sim->store, seq), &x->cl->scratch);
            n += sim_match(&x->cl->scratch, &q);
        }
    } else {
        const sim_coll_t *c = sim_store_coll(sim->store, x->db, coll, false);
        if (c && bson_empty(&q)) {
            n = (int64_t)c->count;
        } else if (c) {
            for (const sim_doc_t *d = c->head; d; d = d->next) {
                bson_t v;
                sim_doc_view(d, &v);
                n += sim_match(&v, &q);
            }
        }
    }
    pthread_mutex_unlock(&sim->mu);
    BSON_APPEND_INT64(x->reply, "n", n);
    return 0;
}

static int cmd_list_collections(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    bson_t filter = BSON_INITIALIZER, cur_opts, info = BSON_INITIALIZER;
    char msg[200], ns[200];
    int64_t batch = DEFAULT_FIRST_BATCH;
    doc_vec_t dv = {0};
    get_doc(&x->req->body, "filter", &filter);
    if (get_doc(&x->req->body, "cursor", &cur_opts) && get_num(&cur_opts, "batchSize", &batch) < 0)
        return fail(x, 14, "cursor.batchSize must be a number");
    if (!sim_filter_check(&filter, msg, sizeof msg))
        return fail(x, 2, msg);
    bool name_only = get_bool(&x->req->body, "nameOnly", false);
    snprintf(ns, sizeof ns, "%s.$cmd.listCollections", x->db);
    pthread_mutex_lock(&sim->mu);
    sim_store_t *s = sim->store;
    bool is_local = !strcmp(x->db, "local");
    for (size_t i = 0; i < s->ccount + (is_local ? 1 : 0); i++) {
        const char *name;
        bool capped = false;
        if (i == s->ccount) {
            name = "oplog.rs";
            capped = true;
        } else if (!s->clist[i]->dropped && !strcmp(s->clist[i]->db, x->db)) {
            name = s->clist[i]->name;
        } else {
            continue;
        }
        bson_reinit(&info);
        BSON_APPEND_UTF8(&info, "name", name);
        BSON_APPEND_UTF8(&info, "type", "collection");
        if (!name_only) {
            bson_t o, in;
            BSON_APPEND_DOCUMENT_BEGIN(&info, "options", &o);
            if (capped) {
                BSON_APPEND_BOOL(&o, "capped", true);
                BSON_APPEND_INT64(&o, "size", (int64_t)s->oplog_max_bytes);
            }
            bson_append_document_end(&info, &o);
            BSON_APPEND_DOCUMENT_BEGIN(&info, "info", &in);
            BSON_APPEND_BOOL(&in, "readOnly", false);
            bson_append_document_end(&info, &in);
        }
        if (!sim_match(&info, &filter))
            continue;
        sim_doc_t *d = sim_doc_new_raw(&info);
        if (!d || vec_push(&dv, d) < 0) {
            sim_doc_unref(d);
            pthread_mutex_unlock(&sim->mu);
            vec_free(&dv, 0);
            bson_destroy(&info);
            return fail(x, 146, "out of memory listing collections");
        }
    }
    sim_proj_t proj = {0};
    int rc = reply_results(x, ns, &dv, batch, false, NULL, &proj);
    pthread_mutex_unlock(&sim->mu);
    bson_destroy(&info);
    return rc;
}

static int cmd_list_databases(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    bson_t arr;
    uint32_t idx = 0;
    int64_t total = 0;
    bool name_only = get_bool(&x->req->body, "nameOnly", false);
    if (strcmp(x->db, "admin") != 0)
        return fail(x, 13, "listDatabases may only be run against the admin database.");
    BSON_APPEND_ARRAY_BEGIN(x->reply, "databases", &arr);
    pthread_mutex_lock(&sim->mu);
    sim_store_t *s = sim->store;
    const char **dbs = malloc((3 + s->ccount) * sizeof *dbs);
    size_t ndbs = 0;
    if (dbs) {
        dbs[ndbs++] = "admin";
        dbs[ndbs++] = "config";
        dbs[ndbs++] = "local";
        for (size_t i = 0; i < s->ccount; i++) {
            size_t j = 0;
            if (s->clist[i]->dropped)
                continue;
            while (j < ndbs && strcmp(dbs[j], s->clist[i]->db))
                j++;
            if (j == ndbs)
                dbs[ndbs++] = s->clist[i]->db;
        }
    }
    for (size_t i = 0; i < ndbs; i++) {
        int64_t size = !strcmp(dbs[i], "local") ? (int64_t)s->oplog_bytes : 0;
        for (size_t j = 0; j < s->ccount; j++)
            if (!strcmp(s->clist[j]->db, dbs[i]))
                size += (int64_t)s->clist[j]->bytes;
        char kb[16];
        const char *key;
        size_t kl;
        bson_t d;
        array_key(idx++, &key, &kl, kb);
        bson_append_document_begin(&arr, key, (int)kl, &d);
        BSON_APPEND_UTF8(&d, "name", dbs[i]);
        if (!name_only) {
            BSON_APPEND_INT64(&d, "sizeOnDisk", size);
            BSON_APPEND_BOOL(&d, "empty", size == 0);
        }
        bson_append_document_end(&arr, &d);
        total += size;
    }
    pthread_mutex_unlock(&sim->mu);
    bson_append_array_end(x->reply, &arr);
    if (!dbs) {
        bson_reinit(x->reply);
        return fail(x, 146, "out of memory listing databases");
    }
    free(dbs);
    if (!name_only)
        BSON_APPEND_INT64(x->reply, "totalSize", total);
    return 0;
}

static int cmd_coll_stats(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    bson_t *r = x->reply;
    const char *coll;
    char ns[400];
    int rc = 0;
    if (!get_str(&x->req->body, "collStats", &coll))
        return fail(x, 73, "collection name for collStats must be a string");
    snprintf(ns, sizeof ns, "%s.%s", x->db, coll);
    pthread_mutex_lock(&sim->mu);
    const sim_store_t *s = sim->store;
    if (!strcmp(x->db, "local") && !strcmp(coll, "oplog.rs")) {
        int64_t count = (int64_t)sim_oplog_count(s), size = (int64_t)s->oplog_bytes;
        BSON_APPEND_UTF8(r, "ns", ns);
        BSON_APPEND_INT64(r, "size", size);
        BSON_APPEND_INT64(r, "count", count);
        BSON_APPEND_INT64(r, "avgObjSize", count ? size / count : 0);
        BSON_APPEND_INT64(r, "storageSize", size);
        BSON_APPEND_BOOL(r, "capped", true);
        BSON_APPEND_INT64(r, "max", 0);
        BSON_APPEND_INT64(r, "maxSize", (int64_t)s->oplog_max_bytes);
        BSON_APPEND_INT32(r, "nindexes", 0);
        BSON_APPEND_INT64(r, "totalIndexSize", 0);
    } else {
        const sim_coll_t *c = sim_store_coll(sim->store, x->db, coll, false);
        if (!c) {
            rc = sim_err_set(&x->err, 26, "Collection [%.300s] not found.", ns);
        } else {
            bson_t ix;
            BSON_APPEND_UTF8(r, "ns", ns);
            BSON_APPEND_INT64(r, "size", (int64_t)c->bytes);
            BSON_APPEND_INT64(r, "count", (int64_t)c->count);
            BSON_APPEND_INT64(r, "avgObjSize", c->count ? (int64_t)(c->bytes / c->count) : 0);
            BSON_APPEND_INT64(r, "storageSize", (int64_t)c->bytes);
            BSON_APPEND_BOOL(r, "capped", false);
            BSON_APPEND_INT32(r, "nindexes", 1);
            BSON_APPEND_INT64(r, "totalIndexSize", (int64_t)c->count * 16);
            BSON_APPEND_DOCUMENT_BEGIN(r, "indexSizes", &ix);
            BSON_APPEND_INT64(&ix, "_id_", (int64_t)c->count * 16);
            bson_append_document_end(r, &ix);
        }
    }
    pthread_mutex_unlock(&sim->mu);
    return rc;
}

/* ---- change streams ---------------------------------------------------------------- */

/* Where a stream starts: START_NOW, or after a token (sub: a position
 * inside its event), or at an operation time (after = that time - 1). */
enum { START_NOW, START_RESUME_AFTER, START_START_AFTER, START_AT_TIME };
typedef struct cs_start {
    int kind;
    uint64_t after;
    uint32_t sub;
} cs_start_t;

static int parse_cs_stage(cmd_ctx_t *x, const bson_t *spec, sim_cursor_t *cur, cs_start_t *st)
{
    bson_iter_t it;
    bson_iter_init(&it, spec);
    bool has_start_, *has_start = &has_start_;
    uint64_t *after = &st->after;
    *has_start = false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "resumeAfter") || !strcmp(k, "startAfter")) {
            uint32_t len;
            const uint8_t *data;
            bson_t tok;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it))
                return sim_err_set(&x->err, 14, "%s must be a resume token document", k);
            bson_iter_document(&it, &len, &data);
            if (*has_start)
                return fail(x, 40674, "Only one of resumeAfter, startAfter or startAtOperationTime may be given");
            if (!bson_init_static(&tok, data, len) || !sim_token_parse_sub(&tok, after, &st->sub))
                return sim_err_set(&x->err, 9, "invalid %s: not a resume token issued by this server", k);
            *has_start = true;
            st->kind = k[0] == 'r' ? START_RESUME_AFTER : START_START_AFTER;
        } else if (!strcmp(k, "startAtOperationTime")) {
            uint32_t t, i;
            if (!BSON_ITER_HOLDS_TIMESTAMP(&it))
                return fail(x, 14, "startAtOperationTime must be a Timestamp");
            if (*has_start)
                return fail(x, 40674, "Only one of resumeAfter, startAfter or startAtOperationTime may be given");
            bson_iter_timestamp(&it, &t, &i);
            uint64_t ts = SIM_TS(t, i);
            *after = ts ? ts - 1 : 0;
            *has_start = true;
            st->kind = START_AT_TIME;
        } else if (!strcmp(k, "fullDocument")) {
            const char *v = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            if (!strcmp(v, "updateLookup"))
                cur->lookup = true;
            else if (strcmp(v, "default"))
                return sim_err_set(&x->err, 2, "unsupported fullDocument '%.64s': the simulator supports default and updateLookup", v);
        } else if (!strcmp(k, "fullDocumentBeforeChange")) {
            const char *v = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            if (strcmp(v, "off"))
                return fail(x, 2, "pre-images are not supported by the simulator (fullDocumentBeforeChange must be off)");
        } else if (!strcmp(k, "showExpandedEvents")) {
            cur->expanded = bson_iter_as_bool(&it);
        } else if (strcmp(k, "allChangesForCluster")) {
            return sim_err_set(&x->err, 40415, "BSON field '$changeStream.%.64s' is an unknown field.", k);
        }
    }
    return 0;
}

/* $changeStreamSplitLargeEvent: known from 7.0 (and 6.0.9; --server-version
 * 5.0 and 6.0 are earlier), only as the last stage, with an empty spec. */
static int parse_split_stage(cmd_ctx_t *x, const bson_t *stage, const bson_iter_t *stages, sim_cursor_t *cur)
{
    bson_t spec;
    bson_iter_t next = *stages;
    if (!sim_knows_split_stage(x->sim))
        return fail(x, 40324, "Unrecognized pipeline stage name: '$changeStreamSplitLargeEvent'");
    if (!get_doc(stage, "$changeStreamSplitLargeEvent", &spec) || !bson_empty(&spec))
        return fail(x, 7182800, "$changeStreamSplitLargeEvent must be specified as an empty object");
    if (cur->split || bson_iter_next(&next))
        return fail(x, 7182802, "$changeStreamSplitLargeEvent can only appear once, as the last stage of the pipeline");
    cur->split = true;
    return 0;
}

/* Combine $match stages after $changeStream into one filter; the last stage
 * may be $changeStreamSplitLargeEvent. */
static int parse_cs_pipeline(cmd_ctx_t *x, bson_iter_t *stages, sim_cursor_t *cur)
{
    bson_t all = BSON_INITIALIZER, and;
    uint32_t n = 0;
    char msg[200];
    BSON_APPEND_ARRAY_BEGIN(&all, "$and", &and);
    while (bson_iter_next(stages)) {
        bson_t stage, m;
        uint32_t len;
        const uint8_t *data;
        bson_iter_t si;
        if (!BSON_ITER_HOLDS_DOCUMENT(stages))
            goto bad;
        bson_iter_document(stages, &len, &data);
        if (!bson_init_static(&stage, data, len) || !bson_iter_init(&si, &stage) || !bson_iter_next(&si))
            goto bad;
        if (!strcmp(bson_iter_key(&si), "$changeStreamSplitLargeEvent")) {
            if (parse_split_stage(x, &stage, stages, cur) == 0)
                continue;
            bson_append_array_end(&all, &and);
            bson_destroy(&all);
            return -1;
        }
        if (strcmp(bson_iter_key(&si), "$match") || !get_doc(&stage, "$match", &m))
            goto bad;
        if (!sim_filter_check(&m, msg, sizeof msg)) {
            bson_append_array_end(&all, &and);
            bson_destroy(&all);
            return fail(x, 2, msg);
        }
        char kb[16];
        const char *key;
        size_t kl;
        array_key(n++, &key, &kl, kb);
        bson_append_document(&and, key, (int)kl, &m);
    }
    bson_append_array_end(&all, &and);
    if (n)
        cur->match = bson_copy(&all);
    bson_destroy(&all);
    return 0;
bad:
    bson_append_array_end(&all, &and);
    bson_destroy(&all);
    return fail(x, 40324, "Unrecognized pipeline stage: the simulator supports $changeStream followed by $match stages "
                          "(and $changeStreamSplitLargeEvent last) only");
}

static bool read_pref_allows_secondary(const bson_t *body)
{
    bson_t rp;
    const char *mode;
    return get_doc(body, "$readPreference", &rp) && get_str(&rp, "mode", &mode) && strcmp(mode, "primary") != 0;
}

/* The stream's scope (SIM_SCOPE_*) and cursor namespace, or -1 with x->err set.
 * *coll: the collection of a collection stream, else NULL. */
static int cs_scope(cmd_ctx_t *x, const bson_t *cs_spec, const char **coll, char *ns, size_t nslen)
{
    const bson_t *b = &x->req->body;
    bson_iter_t it;
    int scope;
    if (get_str(b, "aggregate", coll)) {
        if (!strcmp(x->db, "admin") || !strcmp(x->db, "local") || !strcmp(x->db, "config"))
            return sim_err_set(&x->err, 73, "$changeStream may not be opened on the internal %s database", x->db);
        snprintf(ns, nslen, "%s.%s", x->db, *coll);
        return SIM_SCOPE_COLL;
    }
    *coll = NULL;
    if (!get_iter(b, "aggregate", &it) || !BSON_ITER_HOLDS_NUMBER(&it) || bson_iter_as_int64(&it) != 1)
        return fail(x, 14, "aggregate must name a collection or be 1");
    if (!strcmp(x->db, "admin")) {
        if (!get_bool(cs_spec, "allChangesForCluster", false))
            return fail(x, 73, "$changeStream on the admin database requires allChangesForCluster: true");
        scope = SIM_SCOPE_CLUSTER;
    } else if (!strcmp(x->db, "local") || !strcmp(x->db, "config")) {
        return sim_err_set(&x->err, 73, "$changeStream may not be opened on the internal %s database", x->db);
    } else {
        scope = SIM_SCOPE_DB;
    }
    snprintf(ns, nslen, "%s.$cmd.aggregate", x->db);
    return scope;
}

/* Position a new stream. A stream without a start point begins after the
 * current cluster time; reporting that + 1 makes startAtOperationTime
 * resumes exact. Holds sim->mu. */
static int cs_start(cmd_ctx_t *x, sim_cursor_t *cur, cs_start_t *start)
{
    sim_store_t *s = x->sim->store;
    if (start->kind == START_NOW)
        start->after = s->last_ts;
    x->op_time = start->kind != START_NOW ? 0 : start->after + 1;
    if (start->kind == START_RESUME_AFTER || start->kind == START_START_AFTER)
        return sim_cs_resume(s, cur, start->after, start->sub, start->kind == START_START_AFTER, &x->err);
    return sim_cs_position(s, cur, start->after, &x->err);
}

static int cmd_aggregate(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    const bson_t *b = &x->req->body;
    bson_iter_t it, stages, first;
    bson_t cs_spec, cur_opts, cd, arr;
    sim_cursor_t *cur = NULL;
    int64_t batch = DEFAULT_FIRST_BATCH;
    cs_start_t start = {START_NOW, 0, 0};
    char ns[400];
    int scope;
    const char *coll = NULL;

    if (!get_iter(b, "pipeline", &it) || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &stages))
        return fail(x, 14, "'pipeline' option must be specified as an array");
    if (!get_doc(b, "cursor", &cur_opts))
        return fail(x, 9, "The 'cursor' option is required, except for aggregate with the explain argument");
    if (get_num(&cur_opts, "batchSize", &batch) < 0 || batch < 0)
        return fail(x, 14, "cursor.batchSize must be a non-negative number");
    first = stages;
    if (!bson_iter_next(&first) || !BSON_ITER_HOLDS_DOCUMENT(&first)) {
        return fail(x, 40324, "the simulator runs aggregate only for $changeStream pipelines");
    } else {
        uint32_t len;
        const uint8_t *data;
        bson_t stage;
        bson_iter_document(&first, &len, &data);
        if (!bson_init_static(&stage, data, len) || !get_doc(&stage, "$changeStream", &cs_spec))
            return fail(x, 40324, "the simulator runs aggregate only for $changeStream pipelines");
    }
    bson_iter_next(&stages);
    if ((scope = cs_scope(x, &cs_spec, &coll, ns, sizeof ns)) < 0)
        return -1;
    pthread_mutex_lock(&sim->mu);
    sim_repl_tick(sim);
    if (!sim_is_primary(sim) && !read_pref_allows_secondary(b)) {
        pthread_mutex_unlock(&sim->mu);
        x->err.label = "ResumableChangeStreamError";
        return fail(x, 13435, "not primary and secondaryOk=false");
    }
    reap_idle_cursors(sim);
    cur = sim->store->kcount < MAX_CURSORS ? sim_cursor_new(sim->store, SIM_CUR_CHANGE, ns) : NULL;
    if (!cur) {
        pthread_mutex_unlock(&sim->mu);
        return fail(x, 146, "too many open cursors");
    }
    cur->scope = scope;
    cur->db = strdup(x->db);
    cur->coll_name = coll ? strdup(coll) : NULL;
    if (!cur->db || (coll && !cur->coll_name)) {
        fail(x, 146, "out of memory");
        goto err;
    }
    if (parse_cs_stage(x, &cs_spec, cur, &start) < 0 || parse_cs_pipeline(x, &stages, cur) < 0)
        goto err;
    if (cs_start(x, cur, &start) < 0)
        goto err;
    BSON_APPEND_DOCUMENT_BEGIN(x->reply, "cursor", &cd);
    BSON_APPEND_ARRAY_BEGIN(&cd, "firstBatch", &arr);
    uint32_t idx = 0;
    long n = batch ? sim_cs_fill(sim->store, cur, &arr, &idx, (size_t)batch, MAX_BATCH_BYTES, &x->cl->scratch, &x->err) : 0;
    bson_append_array_end(&cd, &arr);
    sim_cs_append_pbrt(cur, &cd);
    /* An invalidate closes the cursor. */
    BSON_APPEND_INT64(&cd, "id", cur->invalidated ? 0 : cur->id);
    BSON_APPEND_UTF8(&cd, "ns", ns);
    bson_append_document_end(x->reply, &cd);
    if (n < 0 || cur->invalidated) {
        sim_cursor_free(sim->store, cur);
        pthread_mutex_unlock(&sim->mu);
        return n < 0 ? -1 : 0;
    }
    cur->last_used_ms = sim_mono_ms();
    pthread_mutex_unlock(&sim->mu);
    return 0;
err:
    sim_cursor_free(sim->store, cur);
    pthread_mutex_unlock(&sim->mu);
    return -1;
}

/* Wait on sim->wake until the monotonic time until_ms at most. Holds sim->mu. */
static void wake_wait_until(sim_t *sim, int64_t until_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t wait = until_ms - sim_mono_ms();
    if (wait <= 0)
        return;
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&sim->wake, &sim->mu, &ts);
}

/* The client closed its end (killed, or gone): as mongod, send it nothing more. */
static bool peer_closed(const sim_client_t *cl)
{
    struct pollfd p = {.fd = cl->fd, .events = POLLRDHUP};
    return cl->has_fd && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* A change-stream getMore: events as soon as there are any, else wait for a
 * write until maxTimeMS. Returns 0, or -1 with x->err set; *dropped when the
 * connection was dropped (or the simulator stops) meanwhile. Holds sim->mu. */
static int cs_await(cmd_ctx_t *x, sim_cursor_t *cur, bson_t *arr, int64_t batch, int64_t max_time, bool *dropped)
{
    sim_t *sim = x->sim;
    int64_t deadline = sim_mono_ms() + (max_time >= 0 ? max_time : AWAIT_DEFAULT_MS);
    uint32_t idx = 0;
    for (;;) {
        long n = sim_cs_fill(sim->store, cur, arr, &idx, batch ? (size_t)batch : SIZE_MAX, MAX_BATCH_BYTES,
                             &x->cl->scratch, &x->err);
        if (n < 0) {
            if (x->err.code == 286)
                x->err.label = "NonResumableChangeStreamError";
            return -1;
        }
        if (n > 0 || cur->killed)
            return 0;
        if (atomic_load(&x->cl->dropped) || atomic_load(&sim->stopping)) {
            *dropped = true;
            return 0;
        }
        if (sim_mono_ms() >= deadline)
            return 0;
        wake_wait_until(sim, deadline);
        if (peer_closed(x->cl)) { /* woken for events a killed client must not get */
            *dropped = true;
            return 0;
        }
    }
}

static int cmd_get_more(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    const bson_t *b = &x->req->body;
    int64_t id, batch = 0, max_time = -1;
    const char *coll;
    bson_t cd, arr;
    int rc = 0;
    bool dropped = false, done = false;
    if (get_num(b, "getMore", &id) != 1)
        return fail(x, 14, "getMore must be a cursor id number");
    if (!get_str(b, "collection", &coll))
        return fail(x, 9, "BSON field 'getMore.collection' is missing but a required field");
    if (get_num(b, "batchSize", &batch) < 0 || batch < 0 || get_num(b, "maxTimeMS", &max_time) < 0)
        return fail(x, 14, "batchSize and maxTimeMS must be non-negative numbers");
    atomic_fetch_add(&sim->st.op_getmore, 1);
    pthread_mutex_lock(&sim->mu);
    sim_cursor_t *cur = sim_cursor_get(sim->store, id);
    if (!cur || cur->killed) {
        pthread_mutex_unlock(&sim->mu);
        return sim_err_set(&x->err, 43, "cursor id %lld not found", (long long)id);
    }
    if (cur->in_use) {
        pthread_mutex_unlock(&sim->mu);
        return sim_err_set(&x->err, 292, "cursor id %lld is already in use", (long long)id);
    }
    cur->in_use = true;
    BSON_APPEND_DOCUMENT_BEGIN(x->reply, "cursor", &cd);
    BSON_APPEND_ARRAY_BEGIN(&cd, "nextBatch", &arr);
    if (cur->kind == SIM_CUR_FIND) {
        sim_fill_docs(&arr, cur->docs, cur->ndocs, &cur->pos, batch ? batch : -1, &cur->proj);
        done = cur->pos == cur->ndocs;
    } else {
        rc = cs_await(x, cur, &arr, batch, max_time, &dropped);
        done = cur->invalidated; /* an invalidate closes the cursor */
    }
    bson_append_array_end(&cd, &arr);
    if (cur->kind == SIM_CUR_CHANGE)
        sim_cs_append_pbrt(cur, &cd);
    BSON_APPEND_INT64(&cd, "id", done ? 0 : cur->id);
    BSON_APPEND_UTF8(&cd, "ns", cur->ns);
    bson_append_document_end(x->reply, &cd);
    cur->in_use = false;
    cur->last_used_ms = sim_mono_ms();
    if (done || cur->killed || rc < 0)
        sim_cursor_free(sim->store, cur);
    pthread_mutex_unlock(&sim->mu);
    return dropped ? CMD_DROPPED : rc;
}

/* An injected getMore failure: labelled like mongod labels change-stream errors. */
static int get_more_injected(cmd_ctx_t *x, int code)
{
    int64_t id;
    bool cs = false;
    if (get_num(&x->req->body, "getMore", &id) == 1) {
        pthread_mutex_lock(&x->sim->mu);
        sim_cursor_t *cur = sim_cursor_get(x->sim->store, id);
        if (cur && cur->kind == SIM_CUR_CHANGE) {
            cs = true;
            /* The failed cursor is gone, as after a real server-side error. */
            if (cur->in_use)
                cur->killed = true;
            else
                sim_cursor_free(x->sim->store, cur);
        }
        pthread_mutex_unlock(&x->sim->mu);
    }
    if (cs)
        x->err.label = code_resumable(code) ? "ResumableChangeStreamError"
                                            : code == 286 ? "NonResumableChangeStreamError" : NULL;
    return sim_err_set(&x->err, code, "simulated %s failure (control channel FAIL_GETMORE)", code_name(code));
}

static int cmd_kill_cursors(cmd_ctx_t *x)
{
    sim_t *sim = x->sim;
    bson_iter_t it, ids;
    bson_t killed = BSON_INITIALIZER, missing = BSON_INITIALIZER, empty = BSON_INITIALIZER;
    uint32_t nk = 0, nm = 0;
    if (!get_iter(&x->req->body, "cursors", &it) || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &ids))
        return fail(x, 9, "BSON field 'killCursors.cursors' is missing but a required field");
    pthread_mutex_lock(&sim->mu);
    while (bson_iter_next(&ids)) {
        char kb[16];
        const char *key;
        size_t kl;
        if (!BSON_ITER_HOLDS_NUMBER(&ids))
            continue;
        int64_t id = bson_iter_as_int64(&ids);
        sim_cursor_t *cur = sim_cursor_get(sim->store, id);
        if (cur && !cur->killed) {
            /* An in-use cursor is freed by the getMore that holds it. */
            if (cur->in_use)
                cur->killed = true;
            else
                sim_cursor_free(sim->store, cur);
            array_key(nk++, &key, &kl, kb);
            bson_append_int64(&killed, key, (int)kl, id);
        } else {
            array_key(nm++, &key, &kl, kb);
            bson_append_int64(&missing, key, (int)kl, id);
        }
    }
    pthread_cond_broadcast(&sim->wake);
    pthread_mutex_unlock(&sim->mu);
    BSON_APPEND_ARRAY(x->reply, "cursorsKilled", &killed);
    BSON_APPEND_ARRAY(x->reply, "cursorsNotFound", &missing);
    BSON_APPEND_ARRAY(x->reply, "cursorsAlive", &empty);
    BSON_APPEND_ARRAY(x->reply, "cursorsUnknown", &empty);
    bson_destroy(&killed);
    bson_destroy(&missing);
    return 0;
}

/* The simulated set is initiated at start, as mongod answers a second initiate. */
static int cmd_repl_initiate(cmd_ctx_t *x)
{
    return fail(x, 23, "already initialized");
}

static int cmd_end_sessions(cmd_ctx_t *x)
{
    (void)x;
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------ */

typedef struct cmd_def {
    const char *name;
    cmd_fn fn;
    int role;
    int cat;
} cmd_def_t;

static const cmd_def_t commands[] = {
    {"aggregate", cmd_aggregate, ROLE_ANY, CAT_READ},
    {"buildInfo", cmd_build_info, ROLE_ANY, CAT_CMD},
    {"buildinfo", cmd_build_info, ROLE_ANY, CAT_CMD},
    {"collStats", cmd_coll_stats, ROLE_ANY, CAT_CMD},
    {"count", cmd_count, ROLE_READ, CAT_READ},
    {"create", cmd_create, ROLE_WRITE, CAT_CMD},
    {"delete", cmd_delete, ROLE_WRITE, CAT_WRITE},
    {"drop", cmd_drop, ROLE_WRITE, CAT_CMD},
    {"dropDatabase", cmd_drop_database, ROLE_WRITE, CAT_CMD},
    {"endSessions", cmd_end_sessions, ROLE_ANY, CAT_CMD},
    {"find", cmd_find, ROLE_READ, CAT_READ},
    {"getMore", cmd_get_more, ROLE_ANY, CAT_READ},
    {"hello", cmd_hello, ROLE_ANY, CAT_CMD},
    {"insert", cmd_insert, ROLE_WRITE, CAT_WRITE},
    {"isMaster", cmd_hello, ROLE_ANY, CAT_CMD},
    {"ismaster", cmd_hello, ROLE_ANY, CAT_CMD},
    {"killCursors", cmd_kill_cursors, ROLE_ANY, CAT_CMD},
    {"listCollections", cmd_list_collections, ROLE_READ, CAT_CMD},
    {"listDatabases", cmd_list_databases, ROLE_READ, CAT_CMD},
    {"ping", cmd_ping, ROLE_ANY, CAT_CMD},
    {"renameCollection", cmd_rename, ROLE_WRITE, CAT_CMD},
    {"replSetGetStatus", cmd_repl_status, ROLE_ANY, CAT_CMD},
    {"replSetInitiate", cmd_repl_initiate, ROLE_ANY, CAT_CMD},
    {"saslContinue", cmd_sasl_continue, ROLE_ANY, CAT_CMD},
    {"saslStart", cmd_sasl_start, ROLE_ANY, CAT_CMD},
    {"serverStatus", cmd_server_status, ROLE_ANY, CAT_CMD},
    {"update", cmd_update, ROLE_WRITE, CAT_WRITE},
};

static const cmd_def_t *find_command(const char *name)
{
    size_t lo = 0, hi = sizeof commands / sizeof commands[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, commands[mid].name);
        if (c == 0)
            return &commands[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool is_hello(const cmd_def_t *d)
{
    return d && d->fn == cmd_hello;
}

/* What mongod answers before a login: the handshake, ping and the login itself. */
static bool needs_no_login(const cmd_def_t *d)
{
    return is_hello(d) || d->fn == cmd_ping || d->fn == cmd_sasl_start || d->fn == cmd_sasl_continue;
}

void sim_sleep_interruptible(sim_t *sim, sim_client_t *cl, int ms)
{
    int64_t end = sim_mono_ms() + ms;
    for (int i = 0; i < 1000000; i++) {
        int64_t left = end - sim_mono_ms();
        if (left <= 0 || (cl && atomic_load(&cl->dropped)) || atomic_load(&sim->stopping))
            return;
        struct timespec ts = {0, (left > 20 ? 20 : left) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* {processId, counter} of a topologyVersion field of doc. */
static bool topology_version_of(const bson_t *doc, bson_oid_t *pid, int64_t *counter)
{
    bson_iter_t it, tv;
    if (!bson_iter_init_find(&it, doc, "topologyVersion") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &tv))
        return false;
    bool have_pid = false, have_counter = false;
    while (bson_iter_next(&tv)) {
        if (!strcmp(bson_iter_key(&tv), "processId") && BSON_ITER_HOLDS_OID(&tv)) {
            bson_oid_copy(bson_iter_oid(&tv), pid);
            have_pid = true;
        } else if (!strcmp(bson_iter_key(&tv), "counter") && BSON_ITER_HOLDS_NUMBER(&tv)) {
            *counter = bson_iter_as_int64(&tv);
            have_counter = true;
        }
    }
    return have_pid && have_counter;
}

/* The REPLY document of cmd, if one is set. Caller holds sim->mu. */
static const bson_t *canned_locked(const sim_t *sim, const char *cmd)
{
    for (int i = 0; i < sim->ncanned; i++)
        if (!strcmp(sim->canned[i].cmd, cmd))
            return sim->canned[i].doc;
    return NULL;
}

void sim_append_topology_version(const sim_t *sim, bson_t *reply)
{
    bson_t tv;
    BSON_APPEND_DOCUMENT_BEGIN(reply, "topologyVersion", &tv);
    BSON_APPEND_OID(&tv, "processId", &sim->process_id);
    BSON_APPEND_INT64(&tv, "counter", sim->topology_counter);
    bson_append_document_end(reply, &tv);
}

/* The topologyVersion hello would answer now. Caller holds sim->mu. */
static bool current_topology_version(const sim_t *sim, bson_oid_t *pid, int64_t *counter)
{
    const bson_t *canned = canned_locked(sim, "hello");
    if (canned)
        return topology_version_of(canned, pid, counter);
    bson_oid_copy(&sim->process_id, pid);
    *counter = sim->topology_counter;
    return true;
}

void sim_hello_await(sim_t *sim, sim_client_t *cl, const bson_t *body)
{
    enum { MAX_AWAIT_MS = 600 * 1000 };
    bson_oid_t want_pid, pid;
    int64_t want_counter, counter, max_await = 0;
    if (!topology_version_of(body, &want_pid, &want_counter) || get_num(body, "maxAwaitTimeMS", &max_await) != 1 ||
        max_await <= 0)
        return;
    pthread_mutex_lock(&sim->mu);
    int64_t end = sim_mono_ms() + (max_await < MAX_AWAIT_MS ? max_await : MAX_AWAIT_MS);
    for (int i = 0; i < 10000000; i++) {
        sim_repl_tick(sim); /* a timed step-down ends while a client waits */
        if (!current_topology_version(sim, &pid, &counter) || !bson_oid_equal(&pid, &want_pid) ||
            counter != want_counter || atomic_load(&cl->dropped) || atomic_load(&sim->stopping) ||
            sim_mono_ms() >= end)
            break;
        int64_t until = end;
        if (sim->stepdown_until_ms && sim->stepdown_until_ms + 1 < until)
            until = sim->stepdown_until_ms + 1;
        wake_wait_until(sim, until);
        if (peer_closed(cl))
            break;
    }
    pthread_mutex_unlock(&sim->mu);
}

/* REPLY hello answers hello, isMaster and ismaster alike; to the legacy
 * names with ismaster for isWritablePrimary, as mongod answers them. */
static bool canned_hello(sim_t *sim, const char *name, bson_t *reply)
{
    bson_t doc = BSON_INITIALIZER;
    bson_iter_t it;
    bool found = sim_canned_reply(sim, "hello", &doc);
    bool legacy = strcmp(name, "hello") != 0;
    if (found && bson_iter_init(&it, &doc))
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);
            bson_append_iter(reply, legacy && !strcmp(k, "isWritablePrimary") ? "ismaster" : k, -1, &it);
        }
    bson_destroy(&doc);
    return found;
}

/* Take an injected failure for this command, if one is armed. Caller holds mu. */
int sim_take_fault(sim_t *sim, const char *name)
{
    for (int i = 0; i < sim->nfaults; i++) {
        sim_fault_t *f = &sim->faults[i];
        if (strcmp(f->cmd, name) != 0 || f->remaining == 0)
            continue;
        int code = f->code;
        if (--f->remaining == 0) {
            sim->faults[i] = sim->faults[--sim->nfaults];
        }
        return code;
    }
    return 0;
}

static void error_reply(bson_t *reply, const sim_err_t *e)
{
    bson_reinit(reply);
    BSON_APPEND_DOUBLE(reply, "ok", 0.0);
    BSON_APPEND_UTF8(reply, "errmsg", e->msg);
    BSON_APPEND_INT32(reply, "code", e->code);
    BSON_APPEND_UTF8(reply, "codeName", code_name(e->code));
    if (e->label) {
        bson_t labels;
        BSON_APPEND_ARRAY_BEGIN(reply, "errorLabels", &labels);
        BSON_APPEND_UTF8(&labels, "0", e->label);
        bson_append_array_end(reply, &labels);
    }
}

int sim_dispatch(sim_t *sim, sim_client_t *cl, const sim_request_t *req, bson_t *reply)
{
    bson_iter_t it;
    cmd_ctx_t x = {.sim = sim, .cl = cl, .req = req, .reply = reply};
    char name[64] = "";
    int rc, stall = 0, inject;
    bool primary;
    struct timespec c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &c0);
    if (bson_iter_init(&it, &req->body) && bson_iter_next(&it))
        snprintf(name, sizeof name, "%s", bson_iter_key(&it));
    x.name = name;
    sim_count_command(sim, name[0] ? name : "<empty>");
    const cmd_def_t *def = find_command(name);
    atomic_fetch_add(&sim->st.requests, 1);
    /* mongod's opcounters.command counts what is not a CRUD op or a getMore. */
    if (!def || (def->cat != CAT_WRITE && def->fn != cmd_find && def->fn != cmd_get_more))
        atomic_fetch_add(&sim->st.op_command, 1);

    x.db = req->db;
    if (!x.db && !get_str(&req->body, "$db", &x.db)) {
        rc = sim_err_set(&x.err, 40571, "OP_MSG requests require a $db argument");
        goto done;
    }
    if (!def) {
        rc = sim_err_set(&x.err, 59, "no such command: '%.60s' (the simulator implements: hello, isMaster, ping, "
                                     "buildInfo, serverStatus, replSetGetStatus, replSetInitiate, insert, update, delete, find, "
                                     "aggregate, getMore, killCursors, endSessions, collStats, count, create, drop, "
                                     "renameCollection, dropDatabase, "
                                     "listCollections, listDatabases, saslStart, saslContinue)",
                         name);
        goto done;
    }
    if (req->opcode == SIM_OP_QUERY && !is_hello(def)) {
        rc = sim_err_set(&x.err, 352, "Unsupported OP_QUERY command: %s. The client driver may require an upgrade.",
                         name);
        goto done;
    }
    if (sim->auth.on && !cl->auth.authenticated && !needs_no_login(def)) {
        rc = sim_err_set(&x.err, 13, "command %s requires authentication", name);
        goto done;
    }

    if (is_hello(def))
        sim_hello_await(sim, cl, &req->body);
    pthread_mutex_lock(&sim->mu);
    inject = sim_take_fault(sim, name);
    if (sim->stall_ms > 0 && (!sim->stall_cmd[0] || !strcmp(sim->stall_cmd, name)))
        stall = sim->stall_ms;
    sim_repl_tick(sim);
    primary = sim_is_primary(sim);
    pthread_mutex_unlock(&sim->mu);
    if (stall)
        sim_sleep_interruptible(sim, cl, stall);
    if (atomic_load(&cl->dropped))
        return SIM_CLOSE;

    if (inject) {
        rc = def->fn == cmd_get_more ? get_more_injected(&x, inject)
                                     : sim_err_set(&x.err, inject, "simulated %s failure (control channel FAIL_COMMAND)",
                                                   code_name(inject));
    } else if (is_hello(def) ? canned_hello(sim, name, reply) : sim_canned_reply(sim, name, reply)) {
        rc = 0; /* REPLY: the corpus document, whatever the member's state */
    } else if (!primary && def->role == ROLE_WRITE) {
        x.err.label = "RetryableWriteError";
        rc = sim_err_set(&x.err, 10107, "not primary");
    } else if (!primary && def->role == ROLE_READ && !read_pref_allows_secondary(&req->body)) {
        rc = sim_err_set(&x.err, 13435, "not primary and secondaryOk=false");
    } else {
        rc = def->fn(&x);
    }
done:
    if (rc == CMD_DROPPED)
        return SIM_CLOSE;
    if (rc < 0)
        error_reply(reply, &x.err);
    else
        BSON_APPEND_DOUBLE(reply, "ok", 1.0);
    pthread_mutex_lock(&sim->mu);
    uint64_t cluster = sim->store->last_ts;
    pthread_mutex_unlock(&sim->mu);
    uint64_t op = x.op_time ? x.op_time : cluster;
    append_cluster_time(reply, cluster > op ? cluster : op, op);

    clock_gettime(CLOCK_MONOTONIC, &c1);
    uint64_t us = (uint64_t)((c1.tv_sec - c0.tv_sec) * 1000000 + (c1.tv_nsec - c0.tv_nsec) / 1000);
    int cat = def ? def->cat : CAT_CMD;
    if (cat == CAT_READ) {
        atomic_fetch_add(&sim->st.reads_us, us);
        atomic_fetch_add(&sim->st.reads_n, 1);
    } else if (cat == CAT_WRITE) {
        atomic_fetch_add(&sim->st.writes_us, us);
        atomic_fetch_add(&sim->st.writes_n, 1);
    } else {
        atomic_fetch_add(&sim->st.cmds_us, us);
        atomic_fetch_add(&sim->st.cmds_n, 1);
    }
    return req->more_to_come ? SIM_NO_REPLY : SIM_REPLY;
}
