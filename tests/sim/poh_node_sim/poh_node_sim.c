/* SPDX-License-Identifier: Apache-2.0 */
/* poh_node_sim: a PoH / Presence node for tests and benchmarks.
 *
 * Serves grpc.health.v1.Health/Check and /poh.PoH/GetState with gRPC C core on
 * one or more listeners, each with its own fault mode, plus a line-oriented
 * control port for exact per-method call counts and runtime changes.
 * See README.md for the command line and the control protocol.
 *
 * Threads: the main thread drives every gRPC server from one completion
 * queue; a second thread polls the control port and the plain-TCP listeners
 * (blackhole, close). Shared listener state is guarded by g_mu. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "poh/poh.pb-c.h"

#define MAX_LISTENERS 64
#define MAX_PORTS_PER_LISTENER 4096
#define MAX_SERVICES 32
#define MAX_METHODS 16           /* distinct method names counted per listener */
#define MAX_PEERS 256           /* distinct client addresses remembered per listener */
#define MAX_MD 16                /* metadata entries remembered from the last call */
#define MD_VALUE_MAX 512
#define REQUEST_SLOTS 64         /* outstanding grpc_server_request_call per server */
#define MAX_REQUEST_BYTES 65536  /* larger requests are refused by gRPC */
#define MAX_HELD_PER_LISTENER 1024 /* blackholed connections kept open */
#define MAX_CONTROL_CLIENTS 16
#define CONTROL_LINE_MAX 1024
#define TICKS_PER_SLOT 64

typedef enum {
    MODE_OK = 0,
    MODE_SLOW,
    MODE_NOT_SERVING,
    MODE_UNIMPLEMENTED,
    MODE_ABORT,
    MODE_BLACKHOLE,
    MODE_CLOSE,
} sim_mode_t;

typedef struct mode_cfg {
    sim_mode_t mode;
    int delay_ms;
    int abort_code;
    char abort_msg[128];
} mode_cfg_t;

typedef struct service {
    char name[128];
    int status; /* ServingStatus */
} service_t;

typedef struct method_count {
    char name[128];
    uint64_t count;
} method_count_t;

typedef struct listener {
    int idx;
    char addr[128];
    int nports;
    int ports[MAX_PORTS_PER_LISTENER];
    mode_cfg_t m;
    service_t services[MAX_SERVICES];
    int nservices;
    uint64_t tick_base;
    double tick_rate;
    double hashes_per_second;
    char leader_id[64];
    int64_t leader_offset;
    char version[64];
    const char *tls_cert, *tls_key, *tls_client_ca;
    char require_key[64], require_value[MD_VALUE_MAX];
    /* gRPC listeners */
    grpc_server *server;
    /* TCP listeners */
    int lfds[MAX_PORTS_PER_LISTENER];
    int held[MAX_HELD_PER_LISTENER];
    int nheld, held_next;
    /* statistics, under g_mu */
    method_count_t methods[MAX_METHODS + 1]; /* last slot is "(other)" */
    int nmethods;
    char peers[MAX_PEERS][64];
    int npeers;
    uint64_t peers_overflow;
    char md_key[MAX_MD][64];
    char md_val[MAX_MD][MD_VALUE_MAX];
    int nmd;
} listener_t;

typedef enum { TAG_NEW_CALL, TAG_RECEIVED, TAG_SENT, TAG_SHUTDOWN } tag_kind_t;

typedef struct sim_call {
    tag_kind_t kind;
    listener_t *l;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    grpc_byte_buffer *request;
    grpc_byte_buffer *response;
    int cancelled;
    bool active;            /* arrived and not yet freed (g_active) */
    grpc_status_code code;
    char msg[160];
    double due;
    struct sim_call *dnext; /* delayed list, sorted by due */
    struct sim_call *next;  /* live list: every call we own, for shutdown */
    struct sim_call *prev;
} sim_call_t;

typedef struct shutdown_tag {
    tag_kind_t kind;
} shutdown_tag_t;

static listener_t *g_listeners[MAX_LISTENERS];
static int g_nlisteners;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t g_stop;
static double g_start;
static grpc_completion_queue *g_cq;
static sim_call_t *g_delayed; /* sorted by due */
static sim_call_t *g_live;    /* every call we own, for shutdown */
static long g_live_count;
/* Calls in progress (arrived, not yet finished), and the most at once since
 * start or RESET: a client's concurrency, as the server saw it. */
static long g_active;
static long g_active_max; /* under g_mu */
static int g_wake_pipe[2] = {-1, -1};

static const char *const code_names[] = {
    "OK",                 "CANCELLED",           "UNKNOWN",       "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",  "NOT_FOUND",           "ALREADY_EXISTS", "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",       "OUT_OF_RANGE",
    "UNIMPLEMENTED",      "INTERNAL",            "UNAVAILABLE",   "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *const status_names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static gpr_timespec gpr_at(double mono)
{
    double rel = mono - now_mono();
    if (rel < 0)
        rel = 0;
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_micros((int64_t)(rel * 1e6), GPR_TIMESPAN));
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("poh_node_sim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (!p)
        die("out of memory");
    return p;
}

static int parse_code(const char *s, int *code)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end && v >= 0 && v <= 16) {
        *code = (int)v;
        return 0;
    }
    for (int i = 0; i <= 16; i++) {
        if (strcasecmp(s, code_names[i]) == 0) {
            *code = i;
            return 0;
        }
    }
    return -1;
}

static int parse_status(const char *s, int *st)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, status_names[i]) == 0) {
            *st = i;
            return 0;
        }
    }
    return -1;
}

/* "ok", "slow:MS", "not_serving", "unimplemented", "abort:CODE[:MSG]",
 * "blackhole", "close". */
static int parse_mode(const char *s, mode_cfg_t *m)
{
    memset(m, 0, sizeof *m);
    if (strcmp(s, "ok") == 0) {
        m->mode = MODE_OK;
    } else if (strncmp(s, "slow:", 5) == 0) {
        char *end;
        long ms = strtol(s + 5, &end, 10);
        if (*end || ms < 0 || ms > 3600000 || end == s + 5)
            return -1;
        m->mode = MODE_SLOW;
        m->delay_ms = (int)ms;
    } else if (strcmp(s, "not_serving") == 0) {
        m->mode = MODE_NOT_SERVING;
    } else if (strcmp(s, "unimplemented") == 0) {
        m->mode = MODE_UNIMPLEMENTED;
    } else if (strncmp(s, "abort:", 6) == 0) {
        char code[32];
        const char *colon = strchr(s + 6, ':');
        size_t n = colon ? (size_t)(colon - (s + 6)) : strlen(s + 6);
        if (n == 0 || n >= sizeof code)
            return -1;
        memcpy(code, s + 6, n);
        code[n] = '\0';
        if (parse_code(code, &m->abort_code) < 0 || m->abort_code == 0)
            return -1;
        m->mode = MODE_ABORT;
        snprintf(m->abort_msg, sizeof m->abort_msg, "%s",
                 colon ? colon + 1 : "aborted by poh_node_sim");
    } else if (strcmp(s, "blackhole") == 0) {
        m->mode = MODE_BLACKHOLE;
    } else if (strcmp(s, "close") == 0) {
        m->mode = MODE_CLOSE;
    } else {
        return -1;
    }
    return 0;
}

static bool is_tcp_mode(sim_mode_t m)
{
    return m == MODE_BLACKHOLE || m == MODE_CLOSE;
}

static void set_service(listener_t *l, const char *name, int status)
{
    for (int i = 0; i < l->nservices; i++) {
        if (strcmp(l->services[i].name, name) == 0) {
            l->services[i].status = status;
            return;
        }
    }
    if (l->nservices == MAX_SERVICES || strlen(name) >= sizeof l->services[0].name)
        return;
    snprintf(l->services[l->nservices].name, sizeof l->services[0].name, "%s", name);
    l->services[l->nservices++].status = status;
}

/* ---- statistics (callers hold g_mu) ---- */

static void count_method(listener_t *l, const char *name, size_t len)
{
    for (int i = 0; i < l->nmethods; i++) {
        if (strlen(l->methods[i].name) == len && memcmp(l->methods[i].name, name, len) == 0) {
            l->methods[i].count++;
            return;
        }
    }
    /* Hostile clients may send any path: keep a bounded table. */
    if (l->nmethods < MAX_METHODS && len < sizeof l->methods[0].name) {
        method_count_t *m = &l->methods[l->nmethods++];
        memcpy(m->name, name, len);
        m->name[len] = '\0';
        for (size_t i = 0; i < len; i++) /* one token on a control line */
            if ((unsigned char)m->name[i] <= 0x20 || m->name[i] == 0x7f)
                m->name[i] = '?';
        m->count = 1;
        return;
    }
    snprintf(l->methods[MAX_METHODS].name, sizeof l->methods[0].name, "(other)");
    l->methods[MAX_METHODS].count++;
}

static void copy_slice(char *dst, size_t cap, const grpc_slice *s)
{
    size_t n = GRPC_SLICE_LENGTH(*s);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, GRPC_SLICE_START_PTR(*s), n);
    dst[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
            dst[i] = '?';
}

static void record_metadata(listener_t *l, const grpc_metadata_array *md)
{
    l->nmd = 0;
    for (size_t i = 0; i < md->count && l->nmd < MAX_MD; i++) {
        copy_slice(l->md_key[l->nmd], sizeof l->md_key[0], &md->metadata[i].key);
        copy_slice(l->md_val[l->nmd], sizeof l->md_val[0], &md->metadata[i].value);
        l->nmd++;
    }
}

/* Distinct peers show whether a client reuses its connection. */
static void record_peer(listener_t *l, const char *peer)
{
    for (int i = 0; i < l->npeers; i++)
        if (strcmp(l->peers[i], peer) == 0)
            return;
    if (l->npeers == MAX_PEERS || strlen(peer) >= sizeof l->peers[0]) {
        l->peers_overflow++;
        return;
    }
    snprintf(l->peers[l->npeers++], sizeof l->peers[0], "%s", peer);
}

static bool has_required_md(const listener_t *l, const grpc_metadata_array *md)
{
    if (!l->require_key[0])
        return true;
    size_t klen = strlen(l->require_key), vlen = strlen(l->require_value);
    for (size_t i = 0; i < md->count; i++) {
        grpc_slice k = md->metadata[i].key, v = md->metadata[i].value;
        if (GRPC_SLICE_LENGTH(k) == klen && memcmp(GRPC_SLICE_START_PTR(k), l->require_key, klen) == 0 &&
            GRPC_SLICE_LENGTH(v) == vlen && memcmp(GRPC_SLICE_START_PTR(v), l->require_value, vlen) == 0)
            return true;
    }
    return false;
}

/* ---- gRPC call handling (main thread only) ---- */

static void live_add(sim_call_t *c)
{
    c->prev = NULL;
    c->next = g_live;
    if (g_live)
        g_live->prev = c;
    g_live = c;
    g_live_count++;
}

static void live_remove(sim_call_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        g_live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g_live_count--;
}

static void call_free(sim_call_t *c)
{
    live_remove(c);
    if (c->active)
        g_active--;
    if (c->call)
        grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->request_md);
    if (c->request)
        grpc_byte_buffer_destroy(c->request);
    if (c->response)
        grpc_byte_buffer_destroy(c->response);
    free(c);
}

static void request_new_call(listener_t *l)
{
    sim_call_t *c = xcalloc(1, sizeof *c);
    c->kind = TAG_NEW_CALL;
    c->l = l;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->request_md);
    live_add(c);
    if (grpc_server_request_call(l->server, &c->call, &c->details, &c->request_md, g_cq, g_cq,
                                 c) != GRPC_CALL_OK)
        call_free(c);
}

static bool slice_is(grpc_slice s, const char *str)
{
    size_t n = strlen(str);
    return GRPC_SLICE_LENGTH(s) == n && memcmp(GRPC_SLICE_START_PTR(s), str, n) == 0;
}

/* Request bytes as one contiguous buffer (caller frees); NULL if none. */
static uint8_t *request_bytes(grpc_byte_buffer *bb, size_t *len)
{
    grpc_byte_buffer_reader r;
    if (!bb || !grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    *len = GRPC_SLICE_LENGTH(s);
    uint8_t *buf = xcalloc(1, *len + 1);
    memcpy(buf, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    grpc_byte_buffer_reader_destroy(&r);
    return buf;
}

static void set_response(sim_call_t *c, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = xcalloc(1, n + 1);
    protobuf_c_message_pack(msg, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, n);
    c->response = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    free(buf);
}

static void fail(sim_call_t *c, grpc_status_code code, const char *msg)
{
    c->code = code;
    snprintf(c->msg, sizeof c->msg, "%s", msg);
}

static void answer_health(sim_call_t *c, const mode_cfg_t *m)
{
    size_t len = 0;
    uint8_t *bytes = request_bytes(c->request, &len);
    Grpc__Health__V1__HealthCheckRequest *req =
        bytes ? grpc__health__v1__health_check_request__unpack(NULL, len, bytes) : NULL;
    free(bytes);
    if (!req) {
        fail(c, GRPC_STATUS_INVALID_ARGUMENT, "cannot parse HealthCheckRequest");
        return;
    }
    int status = -1;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < c->l->nservices; i++)
        if (strcmp(c->l->services[i].name, req->service) == 0)
            status = c->l->services[i].status;
    pthread_mutex_unlock(&g_mu);
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
    if (status < 0) {
        fail(c, GRPC_STATUS_NOT_FOUND, "unknown service");
        return;
    }
    if (m->mode == MODE_NOT_SERVING)
        status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    set_response(c, &resp.base);
    c->code = GRPC_STATUS_OK;
}

static void answer_state(sim_call_t *c)
{
    const listener_t *l = c->l;
    double up = now_mono() - g_start;
    Poh__NodeState st = POH__NODE_STATE__INIT;
    Poh__NodeState__Leader leader = POH__NODE_STATE__LEADER__INIT;
    pthread_mutex_lock(&g_mu);
    st.tick_height = l->tick_base + (uint64_t)floor(up * l->tick_rate);
    st.slot = st.tick_height / TICKS_PER_SLOT;
    st.hashes_per_second = l->hashes_per_second;
    st.version = (char *)l->version;
    leader.id = (char *)l->leader_id;
    leader.offset = l->leader_offset;
    st.leader = &leader;
    st.uptime_seconds = (float)up;
    set_response(c, &st.base);
    pthread_mutex_unlock(&g_mu);
    c->code = GRPC_STATUS_OK;
}

static void send_reply(sim_call_t *c)
{
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (c->response) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->response;
    }
    grpc_slice details = grpc_slice_from_static_string(c->msg);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = c->code;
    ops[n++].data.send_status_from_server.status_details = c->code ? &details : NULL;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    c->kind = TAG_SENT;
    if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK)
        call_free(c);
}

static void schedule(sim_call_t *c, double due)
{
    c->due = due;
    sim_call_t **pp = &g_delayed;
    while (*pp && (*pp)->due <= due)
        pp = &(*pp)->dnext;
    c->dnext = *pp;
    *pp = c;
}

static void on_received(sim_call_t *c)
{
    mode_cfg_t m;
    pthread_mutex_lock(&g_mu);
    m = c->l->m;
    bool authorized = has_required_md(c->l, &c->request_md);
    pthread_mutex_unlock(&g_mu);

    if (!authorized)
        fail(c, GRPC_STATUS_UNAUTHENTICATED, "missing or wrong credentials");
    else if (m.mode == MODE_UNIMPLEMENTED)
        fail(c, GRPC_STATUS_UNIMPLEMENTED, "unimplemented (poh_node_sim fault mode)");
    else if (m.mode == MODE_ABORT)
        fail(c, (grpc_status_code)m.abort_code, m.abort_msg);
    else if (slice_is(c->details.method, "/grpc.health.v1.Health/Check"))
        answer_health(c, &m);
    else if (slice_is(c->details.method, "/poh.PoH/GetState"))
        answer_state(c);
    else
        fail(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method");

    if (m.mode == MODE_SLOW && m.delay_ms > 0)
        schedule(c, now_mono() + m.delay_ms / 1000.0);
    else
        send_reply(c);
}

static void on_new_call(sim_call_t *c, bool ok)
{
    if (!ok) { /* server shutting down */
        call_free(c);
        return;
    }
    listener_t *l = c->l;
    request_new_call(l);
    c->active = true;
    g_active++;
    char *peer = grpc_call_get_peer(c->call);
    pthread_mutex_lock(&g_mu);
    if (g_active > g_active_max)
        g_active_max = g_active;
    if (peer)
        record_peer(l, peer);
    count_method(l, (const char *)GRPC_SLICE_START_PTR(c->details.method),
                 GRPC_SLICE_LENGTH(c->details.method));
    record_metadata(l, &c->request_md);
    pthread_mutex_unlock(&g_mu);
    gpr_free(peer);

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->request;
    c->kind = TAG_RECEIVED;
    if (grpc_call_start_batch(c->call, &op, 1, c, NULL) != GRPC_CALL_OK)
        call_free(c);
}

static void run_due(double now)
{
    while (g_delayed && (g_delayed->due <= now || g_stop)) {
        sim_call_t *c = g_delayed;
        g_delayed = c->dnext;
        send_reply(c);
    }
}

/* ---- plain TCP: control port, blackhole, close (poll thread) ---- */

static int tcp_listen(const char *addr, int *port_out)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *h = host;
    if (h[0] == '[') {
        h++;
        char *rb = strchr(h, ']');
        if (!rb)
            return -1;
        *rb = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(h, colon + 1, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

typedef struct control_client {
    int fd;
    char buf[CONTROL_LINE_MAX];
    size_t len;
} control_client_t;

static int g_control_fd = -1;
static int g_control_port;
static control_client_t g_clients[MAX_CONTROL_CLIENTS];

static void client_write(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                if (poll(&p, 1, 1000) > 0)
                    continue;
            }
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int fd, const char *fmt, ...)
{
    char line[CONTROL_LINE_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    client_write(fd, line, (size_t)n);
}

static listener_t *listener_arg(const char *s)
{
    char *end;
    long i = strtol(s ? s : "", &end, 10);
    if (!s || !*s || *end || i < 0 || i >= g_nlisteners)
        return NULL;
    return g_listeners[i];
}

/* One control command; every reply ends with "OK", "END" or "ERR <why>". */
static void control_command(int fd, char *line)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r", &save);
    if (!cmd) {
        reply(fd, "ERR empty command\n");
        return;
    }
    if (strcasecmp(cmd, "PING") == 0) {
        reply(fd, "OK\n");
    } else if (strcasecmp(cmd, "COUNTS") == 0) {
        pthread_mutex_lock(&g_mu);
        for (int i = 0; i < g_nlisteners; i++) {
            listener_t *l = g_listeners[i];
            for (int j = 0; j <= MAX_METHODS; j++)
                if (l->methods[j].count)
                    reply(fd, "%d %s %llu\n", i, l->methods[j].name,
                          (unsigned long long)l->methods[j].count);
        }
        pthread_mutex_unlock(&g_mu);
        reply(fd, "END\n");
    } else if (strcasecmp(cmd, "MAXACTIVE") == 0) {
        pthread_mutex_lock(&g_mu);
        long v = g_active_max;
        pthread_mutex_unlock(&g_mu);
        reply(fd, "VALUE %ld\n", v);
    } else if (strcasecmp(cmd, "RESET") == 0) {
        pthread_mutex_lock(&g_mu);
        g_active_max = 0;
        for (int i = 0; i < g_nlisteners; i++) {
            memset(g_listeners[i]->methods, 0, sizeof g_listeners[i]->methods);
            g_listeners[i]->nmethods = 0;
            g_listeners[i]->nmd = 0;
            g_listeners[i]->npeers = 0;
            g_listeners[i]->peers_overflow = 0;
        }
        pthread_mutex_unlock(&g_mu);
        reply(fd, "OK\n");
    } else if (strcasecmp(cmd, "MODE") == 0) {
        listener_t *l = listener_arg(strtok_r(NULL, " \t\r", &save));
        const char *ms = strtok_r(NULL, "\r", &save);
        mode_cfg_t m;
        if (!l || !ms || parse_mode(ms, &m) < 0)
            reply(fd, "ERR usage: MODE <listener> <mode>\n");
        else if (is_tcp_mode(m.mode) || is_tcp_mode(l->m.mode))
            reply(fd, "ERR blackhole/close are fixed at start\n");
        else {
            pthread_mutex_lock(&g_mu);
            l->m = m;
            pthread_mutex_unlock(&g_mu);
            reply(fd, "OK\n");
        }
    } else if (strcasecmp(cmd, "HEALTH") == 0) {
        listener_t *l = listener_arg(strtok_r(NULL, " \t\r", &save));
        const char *st = strtok_r(NULL, " \t\r", &save);
        const char *svc = strtok_r(NULL, " \t\r", &save);
        int status;
        if (!l || !st || parse_status(st, &status) < 0) {
            reply(fd, "ERR usage: HEALTH <listener> <status> [service]\n");
        } else {
            pthread_mutex_lock(&g_mu);
            set_service(l, svc ? svc : "", status);
            pthread_mutex_unlock(&g_mu);
            reply(fd, "OK\n");
        }
    } else if (strcasecmp(cmd, "PEERS") == 0) {
        listener_t *l = listener_arg(strtok_r(NULL, " \t\r", &save));
        if (!l) {
            reply(fd, "ERR usage: PEERS <listener>\n");
            return;
        }
        pthread_mutex_lock(&g_mu);
        for (int i = 0; i < l->npeers; i++)
            reply(fd, "PEER %s\n", l->peers[i]);
        if (l->peers_overflow)
            reply(fd, "OVERFLOW %llu\n", (unsigned long long)l->peers_overflow);
        pthread_mutex_unlock(&g_mu);
        reply(fd, "END\n");
    } else if (strcasecmp(cmd, "LASTMD") == 0) {
        listener_t *l = listener_arg(strtok_r(NULL, " \t\r", &save));
        const char *key = strtok_r(NULL, " \t\r", &save);
        if (!l || !key) {
            reply(fd, "ERR usage: LASTMD <listener> <key>\n");
            return;
        }
        pthread_mutex_lock(&g_mu);
        int found = -1;
        for (int i = 0; i < l->nmd; i++)
            if (strcmp(l->md_key[i], key) == 0)
                found = i;
        if (found >= 0)
            reply(fd, "VALUE %s\n", l->md_val[found]);
        else
            reply(fd, "NONE\n");
        pthread_mutex_unlock(&g_mu);
    } else {
        reply(fd, "ERR unknown command\n");
    }
}

static void control_read(control_client_t *cl)
{
    ssize_t r = recv(cl->fd, cl->buf + cl->len, sizeof cl->buf - 1 - cl->len, 0);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        close(cl->fd);
        cl->fd = -1;
        return;
    }
    cl->len += (size_t)r;
    char *start = cl->buf, *nl;
    while ((nl = memchr(start, '\n', cl->len - (size_t)(start - cl->buf)))) {
        *nl = '\0';
        control_command(cl->fd, start);
        start = nl + 1;
    }
    cl->len -= (size_t)(start - cl->buf);
    memmove(cl->buf, start, cl->len);
    if (cl->len == sizeof cl->buf - 1) { /* overlong line */
        reply(cl->fd, "ERR line too long\n");
        close(cl->fd);
        cl->fd = -1;
    }
}

static void tcp_accept(listener_t *l, int lfd)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return;
        pthread_mutex_lock(&g_mu);
        count_method(l, "tcp_accept", strlen("tcp_accept"));
        pthread_mutex_unlock(&g_mu);
        if (l->m.mode == MODE_CLOSE) {
            close(fd);
            continue;
        }
        /* Blackhole: keep it open, never read or write. */
        if (l->nheld == MAX_HELD_PER_LISTENER) {
            close(l->held[l->held_next]);
            l->held[l->held_next] = fd;
            l->held_next = (l->held_next + 1) % MAX_HELD_PER_LISTENER;
        } else {
            l->held[l->nheld++] = fd;
        }
    }
}

static void *tcp_thread(void *arg)
{
    (void)arg;
    enum { MAXFDS = 1 + 1 + MAX_CONTROL_CLIENTS + MAX_LISTENERS * 4 };
    struct pollfd *pfds = xcalloc(MAXFDS + (size_t)g_nlisteners * MAX_PORTS_PER_LISTENER,
                                  sizeof *pfds);
    while (!g_stop) {
        size_t n = 0;
        pfds[n++] = (struct pollfd){.fd = g_wake_pipe[0], .events = POLLIN};
        pfds[n++] = (struct pollfd){.fd = g_control_fd, .events = POLLIN};
        for (int i = 0; i < MAX_CONTROL_CLIENTS; i++)
            pfds[n++] = (struct pollfd){.fd = g_clients[i].fd, .events = POLLIN};
        for (int i = 0; i < g_nlisteners; i++) {
            listener_t *l = g_listeners[i];
            if (is_tcp_mode(l->m.mode))
                for (int p = 0; p < l->nports; p++)
                    pfds[n++] = (struct pollfd){.fd = l->lfds[p], .events = POLLIN};
        }
        if (poll(pfds, n, 1000) <= 0)
            continue;
        if (pfds[1].revents & POLLIN) {
            int fd = accept4(g_control_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0) {
                int slot = -1;
                for (int i = 0; i < MAX_CONTROL_CLIENTS && slot < 0; i++)
                    if (g_clients[i].fd < 0)
                        slot = i;
                if (slot < 0) {
                    close(fd);
                } else {
                    g_clients[slot].fd = fd;
                    g_clients[slot].len = 0;
                }
            }
        }
        for (int i = 0; i < MAX_CONTROL_CLIENTS; i++)
            if (g_clients[i].fd >= 0 && (pfds[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
                control_read(&g_clients[i]);
        size_t k = 2 + MAX_CONTROL_CLIENTS;
        for (int i = 0; i < g_nlisteners; i++) {
            listener_t *l = g_listeners[i];
            if (!is_tcp_mode(l->m.mode))
                continue;
            for (int p = 0; p < l->nports; p++, k++)
                if (pfds[k].revents & POLLIN)
                    tcp_accept(l, l->lfds[p]);
        }
    }
    free(pfds);
    return NULL;
}

/* ---- setup ---- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1 << 20))
        die("%s: bad size", path);
    char *buf = xcalloc(1, (size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        die("cannot read %s", path);
    fclose(f);
    return buf;
}

static grpc_server_credentials *server_creds(const listener_t *l)
{
    if (!l->tls_cert)
        return grpc_insecure_server_credentials_create();
    if (!l->tls_key)
        die("listener %d: --tls-cert needs --tls-key", l->idx);
    char *cert = read_file(l->tls_cert), *key = read_file(l->tls_key);
    char *ca = l->tls_client_ca ? read_file(l->tls_client_ca) : NULL;
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    grpc_server_credentials *c = grpc_ssl_server_credentials_create_ex(
        ca, &pair, 1,
        ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
           : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
    free(cert);
    free(key);
    free(ca);
    if (!c)
        die("listener %d: TLS credentials rejected", l->idx);
    return c;
}

static void start_grpc_listener(listener_t *l)
{
    grpc_arg args[2];
    args[0] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH};
    args[0].value.integer = MAX_REQUEST_BYTES;
    args[1] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ALLOW_REUSEPORT};
    args[1].value.integer = 0;
    grpc_channel_args cargs = {2, args};
    l->server = grpc_server_create(&cargs, NULL);
    grpc_server_register_completion_queue(l->server, g_cq, NULL);
    for (int p = 0; p < l->nports; p++) {
        grpc_server_credentials *creds = server_creds(l);
        l->ports[p] = grpc_server_add_http2_port(l->server, l->addr, creds);
        grpc_server_credentials_release(creds);
        if (l->ports[p] <= 0)
            die("listener %d: cannot bind %s", l->idx, l->addr);
    }
    grpc_server_start(l->server);
    for (int i = 0; i < REQUEST_SLOTS; i++)
        request_new_call(l);
}

static void start_tcp_listener(listener_t *l)
{
    for (int p = 0; p < l->nports; p++) {
        l->lfds[p] = tcp_listen(l->addr, &l->ports[p]);
        if (l->lfds[p] < 0)
            die("listener %d: cannot bind %s: %s", l->idx, l->addr, strerror(errno));
    }
}

static void usage(FILE *f)
{
    fputs("usage: poh_node_sim [--control ADDR] --listen ADDR [listener options] [--listen ...]\n"
          "  --control ADDR            control port (default 127.0.0.1:0)\n"
          "listener options (apply to the preceding --listen):\n"
          "  --mode MODE               ok | slow:MS | not_serving | unimplemented |\n"
          "                            abort:CODE[:MESSAGE] | blackhole | close\n"
          "  --ports N                 bind N ports with this behaviour (ADDR port must be 0)\n"
          "  --service NAME=STATUS     health of NAME (\"\" = whole server); STATUS is\n"
          "                            SERVING|NOT_SERVING|UNKNOWN|SERVICE_UNKNOWN\n"
          "  --tick-height N           tick height at start (default 0)\n"
          "  --tick-rate R             ticks per second (default 160; 0 freezes)\n"
          "  --hashes-per-second X     reported hash rate (default 2000000)\n"
          "  --leader-id ID            leader.id (default node-<listener>)\n"
          "  --leader-offset N         leader.offset (default -2)\n"
          "  --require-metadata K=V    answer UNAUTHENTICATED unless header K is V\n"
          "  --tls-cert FILE --tls-key FILE [--tls-client-ca FILE]\n"
          "first stdout line: ports=P1,P2,... control=PORT\n",
          f);
}

static listener_t *new_listener(const char *addr)
{
    if (g_nlisteners == MAX_LISTENERS)
        die("too many listeners (max %d)", MAX_LISTENERS);
    listener_t *l = xcalloc(1, sizeof *l);
    l->idx = g_nlisteners;
    if (strlen(addr) >= sizeof l->addr)
        die("address too long: %s", addr);
    snprintf(l->addr, sizeof l->addr, "%s", addr);
    l->nports = 1;
    l->tick_rate = 160;
    l->hashes_per_second = 2e6;
    l->leader_offset = -2;
    snprintf(l->leader_id, sizeof l->leader_id, "node-%d", l->idx);
    snprintf(l->version, sizeof l->version, "poh-node-sim/1.0");
    set_service(l, "", GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    set_service(l, "poh.PoH", GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    g_listeners[g_nlisteners++] = l;
    return l;
}

static double num_arg(const char *opt, const char *v, double lo, double hi)
{
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= lo && d <= hi))
        die("%s: bad number '%s'", opt, v);
    return d;
}

static void parse_args(int argc, char **argv, const char **control)
{
    listener_t *l = NULL;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc)
            die("%s needs a value (see --help)", o);
        const char *v = argv[++i];
        if (strcmp(o, "--control") == 0) {
            *control = v;
            continue;
        }
        if (strcmp(o, "--listen") == 0) {
            l = new_listener(v);
            continue;
        }
        if (!l)
            die("%s must follow a --listen", o);
        if (strcmp(o, "--mode") == 0) {
            if (parse_mode(v, &l->m) < 0)
                die("--mode: bad mode '%s'", v);
        } else if (strcmp(o, "--ports") == 0) {
            l->nports = (int)num_arg(o, v, 1, MAX_PORTS_PER_LISTENER);
        } else if (strcmp(o, "--service") == 0) {
            const char *eq = strrchr(v, '=');
            int st;
            char name[128];
            if (!eq || (size_t)(eq - v) >= sizeof name || parse_status(eq + 1, &st) < 0)
                die("--service: expected NAME=STATUS, got '%s'", v);
            memcpy(name, v, (size_t)(eq - v));
            name[eq - v] = '\0';
            set_service(l, name, st);
        } else if (strcmp(o, "--tick-height") == 0) {
            l->tick_base = (uint64_t)num_arg(o, v, 0, 9e15);
        } else if (strcmp(o, "--tick-rate") == 0) {
            l->tick_rate = num_arg(o, v, 0, 1e9);
        } else if (strcmp(o, "--hashes-per-second") == 0) {
            l->hashes_per_second = num_arg(o, v, 0, 1e18);
        } else if (strcmp(o, "--leader-id") == 0) {
            snprintf(l->leader_id, sizeof l->leader_id, "%s", v);
        } else if (strcmp(o, "--leader-offset") == 0) {
            l->leader_offset = (int64_t)num_arg(o, v, -9e15, 9e15);
        } else if (strcmp(o, "--require-metadata") == 0) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || (size_t)(eq - v) >= sizeof l->require_key ||
                strlen(eq + 1) >= sizeof l->require_value)
                die("--require-metadata: expected KEY=VALUE");
            memcpy(l->require_key, v, (size_t)(eq - v));
            l->require_key[eq - v] = '\0';
            snprintf(l->require_value, sizeof l->require_value, "%s", eq + 1);
        } else if (strcmp(o, "--tls-cert") == 0) {
            l->tls_cert = v;
        } else if (strcmp(o, "--tls-key") == 0) {
            l->tls_key = v;
        } else if (strcmp(o, "--tls-client-ca") == 0) {
            l->tls_client_ca = v;
        } else {
            die("unknown option %s (see --help)", o);
        }
    }
    if (g_nlisteners == 0) {
        usage(stderr);
        exit(2);
    }
    for (int i = 0; i < g_nlisteners; i++) {
        l = g_listeners[i];
        const char *colon = strrchr(l->addr, ':');
        if (l->nports > 1 && (!colon || strcmp(colon + 1, "0") != 0))
            die("listener %d: --ports needs port 0 in %s", i, l->addr);
    }
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_wake_pipe[1] >= 0) {
        ssize_t r = write(g_wake_pipe[1], "x", 1);
        (void)r;
    }
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void shutdown_all(void)
{
    static shutdown_tag_t tag = {TAG_SHUTDOWN};
    int waiting = 0;
    for (int i = 0; i < g_nlisteners; i++) {
        if (g_listeners[i]->server) {
            grpc_server_shutdown_and_notify(g_listeners[i]->server, g_cq, &tag);
            grpc_server_cancel_all_calls(g_listeners[i]->server);
            waiting++;
        }
    }
    run_due(now_mono());
    double until = now_mono() + 10;
    while ((waiting > 0 || g_live_count > 0) && now_mono() < until) {
        grpc_event ev = grpc_completion_queue_next(g_cq, gpr_at(now_mono() + 0.2), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        tag_kind_t *k = ev.tag;
        if (*k == TAG_SHUTDOWN)
            waiting--;
        else
            call_free((sim_call_t *)ev.tag);
    }
    for (int i = 0; i < g_nlisteners; i++)
        if (g_listeners[i]->server)
            grpc_server_destroy(g_listeners[i]->server);
    grpc_completion_queue_shutdown(g_cq);
    for (int i = 0; i < 100; i++) {
        grpc_event ev = grpc_completion_queue_next(g_cq, gpr_at(now_mono() + 0.2), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
    }
    grpc_completion_queue_destroy(g_cq);
}

int main(int argc, char **argv)
{
    const char *control = "127.0.0.1:0";
    parse_args(argc, argv, &control);
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    if (pipe(g_wake_pipe) < 0)
        die("pipe: %s", strerror(errno));
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    for (int i = 0; i < MAX_CONTROL_CLIENTS; i++)
        g_clients[i].fd = -1;
    g_control_fd = tcp_listen(control, &g_control_port);
    if (g_control_fd < 0)
        die("cannot bind control address %s", control);

    g_start = now_mono();
    grpc_init();
    g_cq = grpc_completion_queue_create_for_next(NULL);
    for (int i = 0; i < g_nlisteners; i++) {
        if (is_tcp_mode(g_listeners[i]->m.mode))
            start_tcp_listener(g_listeners[i]);
        else
            start_grpc_listener(g_listeners[i]);
    }

    /* Readiness: every port is bound and serving once this line is out. */
    printf("ports=");
    for (int i = 0; i < g_nlisteners; i++)
        for (int p = 0; p < g_listeners[i]->nports; p++)
            printf("%s%d", i || p ? "," : "", g_listeners[i]->ports[p]);
    printf(" control=%d\n", g_control_port);
    fflush(stdout);

    pthread_t tcp;
    if (pthread_create(&tcp, NULL, tcp_thread, NULL) != 0)
        die("cannot start thread");

    while (!g_stop) {
        double wake = now_mono() + 0.2;
        if (g_delayed && g_delayed->due < wake)
            wake = g_delayed->due;
        grpc_event ev = grpc_completion_queue_next(g_cq, gpr_at(wake), NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            sim_call_t *c = ev.tag;
            switch (*(tag_kind_t *)ev.tag) {
            case TAG_NEW_CALL:
                on_new_call(c, ev.success);
                break;
            case TAG_RECEIVED:
                if (ev.success)
                    on_received(c);
                else
                    call_free(c);
                break;
            case TAG_SENT:
                call_free(c);
                break;
            case TAG_SHUTDOWN:
                break;
            }
        }
        run_due(now_mono());
    }

    shutdown_all();
    pthread_join(tcp, NULL);
    for (int i = 0; i < g_nlisteners; i++) {
        listener_t *l = g_listeners[i];
        if (is_tcp_mode(l->m.mode))
            for (int p = 0; p < l->nports; p++)
                close(l->lfds[p]);
        for (int h = 0; h < l->nheld; h++)
            close(l->held[h]);
        free(l);
    }
    for (int i = 0; i < MAX_CONTROL_CLIENTS; i++)
        if (g_clients[i].fd >= 0)
            close(g_clients[i].fd);
    close(g_control_fd);
    close(g_wake_pipe[0]);
    close(g_wake_pipe[1]);
    grpc_shutdown();
    return 0;
}
