/* SPDX-License-Identifier: Apache-2.0 */
#include "grpc/grpc_probe.h"

#include <malloc.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "core/clock.h"
#include "core/hostport.h"
#include "core/log.h"
#include "grpc/channel_args.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/tls.h"
#include "grpc/unary.h"
#include "poh_version.h"

/* After every call has been cancelled at its deadline, how long gRPC gets to
 * report them before we give up on the queue (never seen; bounded). */
#define CANCEL_GRACE_S 10.0
/* Largest read buffer of a probe connection: gRPC's default receive limit. */
#define MAX_READ_CHUNK_BYTES (4u << 20)
/* Read buffer sizes of a probe connection (common_args). */
#define READ_CHUNK_BYTES 1024
#define MIN_READ_CHUNK_BYTES 256

struct poh_grpc_target {
    char *address;
    size_t max_reply;            /* largest reply accepted, bytes */
    grpc_resource_quota *budget; /* memory of the target's channels (channel_args.h) */
    bool use_tls;
    poh_grpc_tls_t tls; /* a copy (poh_grpc_tls_copy) */
    /* Plaintext: the engine resolves the name (when it is one) and opens the
     * TCP connection itself, then hands it to a direct channel
     * (grpc_channel_create_from_fd), which skips gRPC's resolver, load
     * balancer and subchannel layers: about 30% less CPU per call. TLS
     * targets keep gRPC's client channel. */
    bool direct;
    bool literal; /* the host is an IP address: sa is it, no lookup */
    struct sockaddr_storage sa;
    socklen_t salen;
    pthread_mutex_t mu;
    /* under mu */
    grpc_channel *channel; /* created on first use */
    /* direct: the channel's socket (gRPC's), known by descriptor and inode
     * so that a number gRPC closed and the kernel reused is not mistaken for
     * it. A direct channel never reconnects by itself; when the socket is
     * gone or shows a hangup (the peer closed it, or gRPC shut its transport
     * down), the next run opens a new one. */
    int live_fd;
    dev_t live_dev;
    ino_t live_ino;
    bool connecting;       /* direct: a run is connecting it (conn_run, conn_index) */
    const void *conn_run;
    size_t conn_index;
};

typedef struct call_state {
    grpc_call *call;
    grpc_metadata *md;
    size_t nmd;
    poh_grpc_unary_t u;
    double start;
    double deadline;      /* absolute, CLOCK_MONOTONIC seconds */
    bool pending;         /* batch started, completion not yet seen */
    bool expired;         /* cancelled by us at its deadline */
    bool waiting;         /* waiting for a connection this run opens */
    size_t next_waiter;   /* next call waiting on the same connection, or NONE */
} call_state_t;

#define NONE ((size_t)-1)

typedef struct resolve resolve_t;

/* A TCP connection being opened by one run for a direct target. Shared: the
 * channel goes to the target when connected; private: a second run met the
 * target mid-connect, so it uses its own connection, closed after the run. */
typedef struct conn {
    poh_grpc_target_t *t;
    int fd;               /* connecting socket, or -1 */
    int err;              /* a failure to report at the next progress check */
    bool shared;
    bool open;            /* resolve or connect in flight */
    double deadline;
    size_t first_waiter;
    resolve_t *res;       /* name lookup in flight */
    struct addrinfo *ai, *ai_next; /* addresses to try, in order */
    char why[160];        /* the failure, for the calls' details */
    grpc_channel *ch;     /* private channel, destroyed after the run */
} conn_t;

/* Name lookups (getaddrinfo blocks) run on a small pool of threads, so a
 * slow or hostile DNS costs at most RESOLVE_THREADS threads however many
 * targets and scrapes ask: the rest wait in a bounded queue, each within its
 * own call's deadline. The run looks at done without waiting, and whichever
 * of the run and the pool lets go last frees the lookup; a lookup its run
 * gave up on before a thread took it is dropped unasked, so a stalled DNS
 * does not leave a backlog behind it. */
#define RESOLVE_THREADS 8
#define RESOLVE_QUEUE_MAX 4096
struct resolve {
    atomic_int refs;
    atomic_bool done;
    int rc;
    struct addrinfo *res;
    resolve_t *next; /* queue link, under resolver.mu */
    char host[256];
    char port[8];
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    resolve_t *head, *tail;
    size_t queued;
    int threads, idle;
} resolver = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0};

static void resolve_release(resolve_t *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->res)
        freeaddrinfo(r->res);
    free(r);
}

static void *resolve_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&resolver.mu);
        while (!resolver.head) {
            resolver.idle++;
            pthread_cond_wait(&resolver.cv, &resolver.mu);
            resolver.idle--;
        }
        resolve_t *r = resolver.head;
        resolver.head = r->next;
        if (!resolver.head)
            resolver.tail = NULL;
        resolver.queued--;
        pthread_mutex_unlock(&resolver.mu);
        if (atomic_load(&r->refs) > 1) {
            struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
            r->rc = getaddrinfo(r->host, r->port, &hints, &r->res);
        } else {
            r->rc = EAI_AGAIN; /* its run has gone: nobody to ask for */
        }
        atomic_store(&r->done, true);
        resolve_release(r);
    }
    return NULL;
}

/* Queue r for the pool, starting a thread when none is idle and the pool
 * is not full. Returns 0, or an errno (queue full, no thread at all). */
static int resolve_enqueue(resolve_t *r)
{
    int e = 0;
    pthread_mutex_lock(&resolver.mu);
    if (resolver.queued >= RESOLVE_QUEUE_MAX) {
        e = EAGAIN;
        goto out;
    }
    if (resolver.idle <= (int)resolver.queued && resolver.threads < RESOLVE_THREADS) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t th;
        e = pthread_create(&th, &attr, resolve_main, NULL);
        pthread_attr_destroy(&attr);
        if (e == 0)
            resolver.threads++;
        else if (resolver.threads > 0)
            e = 0; /* the threads there are will get to it */
        if (e)
            goto out;
    }
    r->next = NULL;
    if (resolver.tail)
        resolver.tail->next = r;
    else
        resolver.head = r;
    resolver.tail = r;
    resolver.queued++;
    pthread_cond_signal(&resolver.cv);
out:
    pthread_mutex_unlock(&resolver.mu);
    return e;
}

bool poh_grpc_split_host_port(const char *address, char *host, size_t hostlen, char *port,
                              size_t portlen)
{
    poh_hostport_t hp;
    if (poh_hostport_parse(address, 0, &hp) != POH_HOSTPORT_OK)
        return false;
    if (strlen(hp.host) >= hostlen || strlen(hp.port) >= portlen)
        return false;
    memcpy(host, hp.host, strlen(hp.host) + 1);
    memcpy(port, hp.port, strlen(hp.port) + 1);
    return true;
}

/* Starts looking up address's host; NULL (with why) when it cannot. */
static resolve_t *resolve_start(const char *address, char *why, size_t whylen)
{
    resolve_t *r = calloc(1, sizeof *r);
    if (!r || !poh_grpc_split_host_port(address, r->host, sizeof r->host, r->port, sizeof r->port)) {
        free(r);
        snprintf(why, whylen, "cannot resolve %s", address);
        return NULL;
    }
    atomic_init(&r->refs, 2);
    atomic_init(&r->done, false);
    int e = resolve_enqueue(r);
    if (e) {
        free(r);
        snprintf(why, whylen, "cannot start a name lookup: %s",
                 e == EAGAIN ? "too many lookups waiting" : strerror(e));
        return NULL;
    }
    return r;
}

static gpr_timespec gpr_in(double seconds)
{
    if (seconds < 0)
        seconds = 0;
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_micros((int64_t)(seconds * 1e6), GPR_TIMESPAN));
}

/* host:port or [v6]:port with a numeric host into sa (no name lookup). */
static bool parse_ip_literal(const char *address, struct sockaddr_storage *sa, socklen_t *salen)
{
    char host[64], port[8];
    if (!poh_grpc_split_host_port(address, host, sizeof host, port, sizeof port))
        return false;
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return false;
    bool ok = ai->ai_addrlen <= sizeof *sa;
    if (ok) {
        memcpy(sa, ai->ai_addr, ai->ai_addrlen);
        *salen = (socklen_t)ai->ai_addrlen;
    }
    freeaddrinfo(ai);
    return ok;
}

poh_grpc_target_t *poh_grpc_target_new(const char *address, const poh_grpc_tls_t *tls,
                                       size_t max_reply, unsigned calls)
{
    if (!address)
        return NULL;
    poh_grpc_target_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    bool failed = false;
    t->address = strdup(address);
    if (!t->address)
        failed = true;
    if (tls) {
        t->use_tls = true;
        if (poh_grpc_tls_copy(&t->tls, tls) < 0)
            failed = true;
    }
    t->live_fd = -1;
    if (!tls) {
        t->literal = parse_ip_literal(address, &t->sa, &t->salen);
        t->direct = t->literal || !poh_grpc_address_problem(address);
    }
    t->max_reply = max_reply ? max_reply : POH_GRPC_DEFAULT_MAX_REPLY;
    if (failed || pthread_mutex_init(&t->mu, NULL) != 0)
        goto err;
    poh_grpc_runtime_init();
    grpc_init();
    /* One budget per target, whatever channel it has at the time: a
     * hostile target exhausts its own and no other target's. */
    t->budget = poh_grpc_quota_new(address, poh_grpc_budget(t->max_reply, calls));
    if (!t->budget) {
        pthread_mutex_destroy(&t->mu);
        grpc_shutdown();
        goto err;
    }
    return t;
err:
    free(t->address);
    poh_grpc_tls_clear(&t->tls);
    free(t);
    return NULL;
}

void poh_grpc_target_free(poh_grpc_target_t *t)
{
    if (!t)
        return;
    if (t->channel)
        grpc_channel_destroy(t->channel);
    grpc_resource_quota_unref(t->budget);
    pthread_mutex_destroy(&t->mu);
    free(t->address);
    poh_grpc_tls_clear(&t->tls);
    free(t);
    grpc_shutdown();
}

const char *poh_grpc_target_address(const poh_grpc_target_t *t)
{
    return t ? t->address : NULL;
}

const char *poh_grpc_address_problem(const char *v)
{
    poh_hostport_t hp;
    switch (poh_hostport_parse(v, 0, &hp)) {
    case POH_HOSTPORT_OK:
        return NULL;
    case POH_HOSTPORT_NO_CLOSE_BRACKET:
    case POH_HOSTPORT_BAD_IPV6:
    case POH_HOSTPORT_AFTER_BRACKET:
    case POH_HOSTPORT_UNBRACKETED_IPV6:
        return "an IPv6 host must be written [addr]:port";
    case POH_HOSTPORT_BAD_CHAR:
        return "the host contains a character not allowed in a host name";
    case POH_HOSTPORT_HOST_TOO_LONG:
        return "the host name is longer than 253 characters";
    case POH_HOSTPORT_BAD_IPV4:
        return "the host is not a valid IPv4 address";
    case POH_HOSTPORT_BAD_PORT:
    case POH_HOSTPORT_PORT_RANGE:
        return "the port must be a number from 1 to 65535";
    case POH_HOSTPORT_BAD_SCHEME:
    case POH_HOSTPORT_NO_HOST:
    case POH_HOSTPORT_NO_PORT:
        break;
    }
    return "must be host:port or [v6]:port";
}

/* Credentials for t; NULL with a reason in err (no secrets, key names only). */
static grpc_channel_credentials *make_creds(const poh_grpc_target_t *t, char *err, size_t errlen)
{
    if (!t->use_tls)
        return grpc_insecure_credentials_create();
    poh_grpc_tls_failure_t why;
    grpc_channel_credentials *creds = poh_grpc_tls_creds(&t->tls, &why);
    if (creds)
        return creds;
    if (why.kind == POH_GRPC_TLS_UNREADABLE)
        snprintf(err, errlen, "tls: cannot read %s", why.key);
    else if (why.kind == POH_GRPC_TLS_UNPAIRED)
        snprintf(err, errlen, "tls: %s", POH_GRPC_TLS_UNPAIRED_WHY);
    else
        snprintf(err, errlen, "tls: credentials rejected by gRPC");
    return NULL;
}

/* Arguments common to both kinds of channel of t; returns how many. */
static size_t common_args(const poh_grpc_target_t *t, grpc_arg *args)
{
    size_t n = 0;
    /* gRPC's minimal filter stack: a probe call goes through about a fifth
     * less code. It leaves out the client deadline filter and the
     * message-size filter, so poh_grpc_run() cancels each call at its
     * deadline and finish_call() bounds the reply size itself; the deadline
     * still reaches the server (grpc-timeout). */
    args[n++] = poh_grpc_arg_int(GRPC_ARG_MINIMAL_STACK, 1);
    /* Our own bandwidth-estimation pings are no use for one small call per
     * scrape; the server's are still acknowledged. */
    args[n++] = poh_grpc_arg_int(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    /* Per-call bookkeeping nobody reads here (~3% of a probe). */
    args[n++] = poh_grpc_arg_int(GRPC_ARG_ENABLE_CHANNELZ, 0);
    args[n++] = poh_grpc_arg_str(GRPC_ARG_PRIMARY_USER_AGENT_STRING, "poh_exporter/" POH_VERSION);
    /* An idle connection keeps one read buffer posted: gRPC's default is
     * 8 KiB, 8 MiB for 1,000 kept connections, for replies of a few dozen
     * bytes. Start small; gRPC doubles it while reads fill it, up to the
     * largest reply we accept. */
    args[n++] = poh_grpc_arg_int(GRPC_ARG_TCP_READ_CHUNK_SIZE, READ_CHUNK_BYTES);
    args[n++] = poh_grpc_arg_int(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, MIN_READ_CHUNK_BYTES);
    args[n++] = poh_grpc_arg_int(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE,
                                 (int)(t->max_reply < MAX_READ_CHUNK_BYTES ? t->max_reply
                                                                           : MAX_READ_CHUNK_BYTES));
    /* Replies bounded while they arrive, not only once whole. */
    args[n++] = poh_grpc_arg_quota(t->budget);
    return n;
}

static grpc_channel *get_channel(poh_grpc_target_t *t, char *err, size_t errlen)
{
    pthread_mutex_lock(&t->mu);
    if (!t->channel) {
        grpc_channel_credentials *creds = make_creds(t, err, errlen);
        if (creds) {
            grpc_arg args[16];
            size_t n = common_args(t, args);
            /* Probes must see a recovered target at the next scrape, not
             * after gRPC's default 2 minute backoff cap. */
            args[n++] = poh_grpc_arg_int(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1000);
            args[n++] = poh_grpc_arg_int(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 10000);
            /* One connection per target, not shared by equal addresses:
             * the probe measures this target's own channel. */
            args[n++] = poh_grpc_arg_int(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
            /* A probe reports what happened; it must not be retried. */
            args[n++] = poh_grpc_arg_int(GRPC_ARG_ENABLE_RETRIES, 0);
            if (t->use_tls && t->tls.server_name)
                args[n++] =
                    poh_grpc_arg_str(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, t->tls.server_name);
            grpc_channel_args cargs = {n, args};
            t->channel = grpc_channel_create(t->address, creds, &cargs);
            grpc_channel_credentials_release(creds);
            if (!t->channel)
                snprintf(err, errlen, "cannot create channel");
        }
    }
    grpc_channel *ch = t->channel;
    pthread_mutex_unlock(&t->mu);
    return ch;
}

/* A direct channel over the connected socket fd, which gRPC then owns. */
static grpc_channel *direct_channel(const poh_grpc_target_t *t, int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    grpc_arg args[12];
    size_t n = common_args(t, args);
    /* :authority, as a client channel would send it (gRPC's default for
     * channels from a descriptor is a placeholder). */
    args[n++] = poh_grpc_arg_str(GRPC_ARG_DEFAULT_AUTHORITY, t->address);
    grpc_channel_args cargs = {n, args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create_from_fd(t->address, fd, creds, &cargs);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* True while t's direct channel still has its socket, without a hangup.
 * Read-only on a descriptor gRPC owns. */
static bool socket_alive(const poh_grpc_target_t *t)
{
    struct stat sb;
    if (t->live_fd < 0 || fstat(t->live_fd, &sb) != 0 || sb.st_dev != t->live_dev ||
        sb.st_ino != t->live_ino)
        return false;
    struct pollfd p = {.fd = t->live_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 0;
}

static void set_details(poh_grpc_call_t *c, const char *s, size_t n)
{
    if (n >= sizeof c->details)
        n = sizeof c->details - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        c->details[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    c->details[n] = '\0';
}

static void fail_call(poh_grpc_call_t *c, int code, const char *msg)
{
    c->code = code;
    set_details(c, msg, strlen(msg));
}

void poh_grpc_call_clear(poh_grpc_call_t *c)
{
    if (!c)
        return;
    free(c->response);
    c->response = NULL;
    c->response_len = 0;
    c->code = GRPC_STATUS_UNKNOWN;
    c->details[0] = '\0';
    c->latency = 0;
    c->serving_status = POH_GRPC_SERVING_INVALID;
}

static int decode_health(const uint8_t *buf, size_t len)
{
    Grpc__Health__V1__HealthCheckResponse *r =
        grpc__health__v1__health_check_response__unpack(NULL, len, buf);
    if (!r)
        return POH_GRPC_SERVING_INVALID;
    int s = (int)r->status;
    grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    return s >= POH_GRPC_SERVING_UNKNOWN && s <= POH_GRPC_SERVING_SERVICE_UNKNOWN
               ? s
               : POH_GRPC_SERVING_INVALID;
}

/* Create c's call on ch (under the target's lock for direct channels, which
 * a reconnect may replace). */
static void create_call(poh_grpc_call_t *c, call_state_t *st, grpc_completion_queue *cq,
                        grpc_channel *ch)
{
    grpc_slice method = grpc_slice_from_static_string(c->method);
    st->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                        gpr_in(st->deadline - poh_now_mono()), NULL);
}

/* Start the batch of c's created call; on failure the call has its result. */
static void start_batch(poh_grpc_call_t *c, call_state_t *st)
{
    if (!st->call) {
        fail_call(c, GRPC_STATUS_INTERNAL, "cannot create call");
        return;
    }
    for (size_t i = 0; i < c->nmetadata; i++) {
        st->md[i].key = grpc_slice_from_static_string(c->metadata[i].key);
        st->md[i].value = grpc_slice_from_static_string(c->metadata[i].value);
    }
    st->nmd = c->nmetadata;
    if (c->traceparent) {
        st->md[st->nmd].key = grpc_slice_from_static_string("traceparent");
        st->md[st->nmd].value = grpc_slice_from_static_string(c->traceparent);
        st->nmd++;
    }
    grpc_slice payload = grpc_slice_from_copied_buffer((const char *)c->request, c->request_len);
    grpc_call_error e = poh_grpc_unary_start(&st->u, st->call, st->md, st->nmd, payload, st);
    grpc_slice_unref(payload);
    if (e != GRPC_CALL_OK) {
        fail_call(c, GRPC_STATUS_INTERNAL,
                  e == GRPC_CALL_ERROR_INVALID_METADATA ? "invalid metadata" : "cannot start call");
        return;
    }
    st->pending = true;
}

static void finish_call(poh_grpc_call_t *c, call_state_t *st, double now)
{
    c->latency = now - st->start;
    c->code = (int)st->u.status;
    size_t dlen = GRPC_SLICE_LENGTH(st->u.details);
    if (dlen)
        set_details(c, (const char *)GRPC_SLICE_START_PTR(st->u.details), dlen);
    if (c->code == GRPC_STATUS_RESOURCE_EXHAUSTED && dlen == 12 &&
        !memcmp(GRPC_SLICE_START_PTR(st->u.details), "Buffers full", 12)) {
        /* gRPC's words when the target's budget stopped a reply mid-way. */
        snprintf(c->details, sizeof c->details,
                 "reply exceeded the connection's memory budget (max_reply_size %zu bytes)",
                 c->target->max_reply);
    }
    if (st->u.recv && grpc_byte_buffer_length(st->u.recv) > c->target->max_reply) {
        char msg[96];
        snprintf(msg, sizeof msg, "received message larger than max (%zu vs. %zu)",
                 grpc_byte_buffer_length(st->u.recv), c->target->max_reply);
        fail_call(c, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
    } else if (st->u.recv) {
        grpc_byte_buffer_reader reader;
        if (grpc_byte_buffer_reader_init(&reader, st->u.recv)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
            size_t n = GRPC_SLICE_LENGTH(all);
            c->response = malloc(n ? n : 1);
            if (c->response) {
                memcpy(c->response, GRPC_SLICE_START_PTR(all), n);
                c->response_len = n;
            }
            grpc_slice_unref(all);
            grpc_byte_buffer_reader_destroy(&reader);
        }
    }
    if (c->health && c->code == GRPC_STATUS_OK && c->response)
        c->serving_status = decode_health(c->response, c->response_len);
}

/* Frees what gRPC gave the call (its arena goes with the call): as soon as
 * the call has ended, so that a run holds only its window's calls. May be
 * called again: the state is left empty. */
static void release_state(call_state_t *st)
{
    if (st->call)
        grpc_call_unref(st->call);
    st->call = NULL;
    poh_grpc_unary_release(&st->u);
}

/* Calls in flight, by deadline: a binary min-heap, so that the run loop
 * finds the next call to expire in O(log n) as calls start at any time. */
typedef struct dheap {
    call_state_t **v;
    size_t n;
} dheap_t;

static void dheap_push(dheap_t *h, call_state_t *s)
{
    size_t i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2]->deadline > s->deadline) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = s;
}

static void dheap_pop(dheap_t *h)
{
    call_state_t *last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->deadline < h->v[c]->deadline)
            c++;
        if (h->v[c]->deadline >= last->deadline)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
}

typedef struct run {
    poh_grpc_call_t *calls;
    size_t n;
    call_state_t *st;
    grpc_completion_queue *cq;
    conn_t *conns;
    size_t nconns, nopen;
    struct pollfd *pfds;
    size_t pending;       /* calls started or waiting for a connection */
    size_t next;          /* the next call not yet begun */
    size_t window;        /* most calls pending at once */
    double deadline;      /* the run's, 0 = none */
    dheap_t byd;          /* pending calls by deadline */
} run_t;

static void fail_with_latency(run_t *r, size_t i, int code, const char *msg, double now)
{
    fail_call(&r->calls[i], code, msg);
    r->calls[i].latency = now - r->st[i].start;
}

/* Starts a non-blocking connect of cn to sa; a failure is left in cn->err. */
static void conn_try(conn_t *cn, const struct sockaddr *sa, socklen_t salen)
{
    cn->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (cn->fd < 0) {
        cn->err = errno;
        return;
    }
    if (connect(cn->fd, sa, salen) != 0 && errno != EINPROGRESS) {
        cn->err = errno;
        close(cn->fd);
        cn->fd = -1;
    }
}

/* Route call i to a channel: start it now, or queue it behind a connection
 * this run opens. Direct channels are only used under the target's lock. */
static void begin_call(run_t *r, size_t i)
{
    poh_grpc_call_t *c = &r->calls[i];
    call_state_t *st = &r->st[i];
    poh_grpc_target_t *t = c->target;
    char err[160] = "";
    if (!t->direct) {
        grpc_channel *ch = get_channel(t, err, sizeof err);
        if (!ch) {
            fail_call(c, GRPC_STATUS_FAILED_PRECONDITION, err);
            return;
        }
        create_call(c, st, r->cq, ch);
        start_batch(c, st);
        return;
    }
    pthread_mutex_lock(&t->mu);
    if (t->channel && !t->connecting && socket_alive(t)) {
        create_call(c, st, r->cq, t->channel);
        pthread_mutex_unlock(&t->mu);
        start_batch(c, st);
        return;
    }
    size_t k;
    if (t->connecting && t->conn_run == r) {
        k = t->conn_index;
    } else {
        k = r->nconns++;
        conn_t *cn = &r->conns[k];
        *cn = (conn_t){.t = t, .fd = -1, .open = true,
                       .deadline = st->deadline, .first_waiter = NONE};
        if (!t->connecting) {
            /* Ours to replace: calls still on the old channel keep it alive
             * inside gRPC until they end. */
            if (t->channel)
                grpc_channel_destroy(t->channel);
            t->channel = NULL;
            t->live_fd = -1;
            t->connecting = true;
            t->conn_run = r;
            t->conn_index = k;
            cn->shared = true;
        }
        if (t->literal)
            conn_try(cn, (const struct sockaddr *)&t->sa, t->salen);
        else if (!(cn->res = resolve_start(t->address, cn->why, sizeof cn->why)))
            cn->err = EAI_FAIL;
        r->nopen++;
    }
    pthread_mutex_unlock(&t->mu);
    conn_t *cn = &r->conns[k];
    if (st->deadline > cn->deadline)
        cn->deadline = st->deadline;
    st->waiting = true;
    st->next_waiter = cn->first_waiter;
    cn->first_waiter = i;
}

/* Connection k is over: hand it to its waiting calls, or fail them. */
static void conn_done(run_t *r, size_t k, int err, double now)
{
    conn_t *cn = &r->conns[k];
    poh_grpc_target_t *t = cn->t;
    cn->open = false;
    r->nopen--;
    grpc_channel *ch = NULL;
    int live = cn->fd;
    struct stat sb = {0};
    bool resolving = cn->res && !atomic_load(&cn->res->done);
    if (!err) {
        if (fstat(cn->fd, &sb) != 0)
            live = -1;
        ch = direct_channel(t, cn->fd); /* owns fd now, even on failure */
        if (!ch)
            err = ENOMEM;
    } else if (cn->fd >= 0) {
        close(cn->fd);
    }
    cn->fd = -1;
    if (cn->shared) {
        pthread_mutex_lock(&t->mu);
        t->connecting = false;
        t->conn_run = NULL;
        t->channel = ch;
        t->live_fd = ch ? live : -1;
        t->live_dev = sb.st_dev;
        t->live_ino = sb.st_ino;
    } else {
        cn->ch = ch;
    }
    char msg[200];
    if (err == ETIMEDOUT)
        snprintf(msg, sizeof msg, "Deadline Exceeded (%s %s)",
                 resolving ? "resolving" : "connecting to", t->address);
    else if (cn->why[0])
        snprintf(msg, sizeof msg, "%s", cn->why);
    else if (err)
        snprintf(msg, sizeof msg, "failed to connect to %s: %s", t->address, strerror(err));
    if (cn->res) {
        resolve_release(cn->res);
        cn->res = NULL;
    }
    if (cn->ai) {
        freeaddrinfo(cn->ai);
        cn->ai = NULL;
    }
    for (size_t i = cn->first_waiter; i != NONE; i = r->st[i].next_waiter) {
        call_state_t *st = &r->st[i];
        if (!st->waiting)
            continue; /* already failed at its own deadline */
        st->waiting = false;
        if (!ch) {
            fail_with_latency(r, i, err == ETIMEDOUT ? GRPC_STATUS_DEADLINE_EXCEEDED
                                                     : GRPC_STATUS_UNAVAILABLE,
                              msg, now);
            r->pending--;
            continue;
        }
        create_call(&r->calls[i], st, r->cq, ch);
        start_batch(&r->calls[i], st);
        if (!st->pending)
            r->pending--;
    }
    if (cn->shared)
        pthread_mutex_unlock(&t->mu);
}

/* After a failed attempt: the next resolved address, if any is left. */
static bool conn_next_address(conn_t *cn)
{
    while (cn->ai_next) {
        struct addrinfo *a = cn->ai_next;
        cn->ai_next = a->ai_next;
        cn->err = 0;
        conn_try(cn, a->ai_addr, a->ai_addrlen);
        if (cn->fd >= 0)
            return true;
    }
    return false;
}

/* Look at every open lookup and connection once, without waiting. */
static void progress_conns(run_t *r, double now)
{
    size_t np = 0;
    for (size_t k = 0; k < r->nconns; k++) {
        conn_t *cn = &r->conns[k];
        if (!cn->open)
            continue;
        if (cn->res && cn->fd < 0 && !cn->err) {
            if (!atomic_load(&cn->res->done)) {
                if (now >= cn->deadline)
                    conn_done(r, k, ETIMEDOUT, now);
                continue;
            }
            if (cn->res->rc != 0 || !cn->res->res) {
                snprintf(cn->why, sizeof cn->why, "DNS resolution failed for %s: %s",
                         cn->t->address, gai_strerror(cn->res->rc));
                conn_done(r, k, EAI_FAIL, now);
                continue;
            }
            cn->ai = cn->res->res; /* ours now */
            cn->res->res = NULL;
            cn->ai_next = cn->ai;
            if (!conn_next_address(cn)) {
                if (!cn->err)
                    snprintf(cn->why, sizeof cn->why, "no address for %s", cn->t->address);
                conn_done(r, k, cn->err ? cn->err : EAI_FAIL, now);
                continue;
            }
        }
        if (cn->fd < 0) {
            conn_done(r, k, cn->err ? cn->err : EAI_FAIL, now);
            continue;
        }
        r->pfds[np++] = (struct pollfd){.fd = cn->fd, .events = POLLOUT};
    }
    if (np && poll(r->pfds, np, 0) < 0)
        return;
    np = 0;
    for (size_t k = 0; k < r->nconns; k++) {
        conn_t *cn = &r->conns[k];
        if (!cn->open || cn->fd < 0 || r->pfds[np].fd != cn->fd)
            continue;
        short ev = r->pfds[np++].revents;
        if (ev) {
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
                soerr = errno;
            if (!soerr && (ev & (POLLERR | POLLHUP)))
                soerr = ECONNRESET;
            if (soerr) {
                close(cn->fd);
                cn->fd = -1;
                cn->err = soerr;
                /* Like gRPC's pick_first: the next address, if any. */
                if (now < cn->deadline && conn_next_address(cn))
                    continue;
            }
            conn_done(r, k, soerr, now);
        } else if (now >= cn->deadline) {
            conn_done(r, k, ETIMEDOUT, now);
        }
    }
}

/* Cancel, with DEADLINE_EXCEEDED, every call whose deadline is past (a call
 * still waiting for its connection fails at once). Returns the earliest
 * deadline still ahead, or 0 when none is. */
static double expire_due(run_t *r, double now)
{
    while (r->byd.n) {
        call_state_t *s = r->byd.v[0];
        if ((s->pending && !s->expired) || s->waiting) {
            if (s->deadline > now)
                return s->deadline;
            if (s->waiting) {
                s->waiting = false;
                r->pending--;
                fail_with_latency(r, (size_t)(s - r->st), GRPC_STATUS_DEADLINE_EXCEEDED,
                                  "Deadline Exceeded (connecting)", now);
            } else {
                grpc_call_cancel_with_status(s->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                             "Deadline Exceeded", NULL);
                s->expired = true;
            }
        }
        dheap_pop(&r->byd);
    }
    return 0;
}

/* Begin calls in order until the window is full or none is left. A call's
 * timeout counts from when it begins, capped by the run's deadline; one
 * whose deadline has passed by then fails without being sent. */
static void begin_more(run_t *r)
{
    while (r->next < r->n && r->pending < r->window) {
        size_t i = r->next++;
        poh_grpc_call_t *c = &r->calls[i];
        call_state_t *st = &r->st[i];
        st->start = poh_now_mono();
        st->deadline = st->start + c->timeout;
        if (r->deadline > 0 && r->deadline < st->deadline)
            st->deadline = r->deadline;
        if (st->deadline <= st->start) {
            fail_call(c, GRPC_STATUS_DEADLINE_EXCEEDED,
                      "deadline passed before the call started");
            continue;
        }
        begin_call(r, i);
        if (st->pending || st->waiting) {
            r->pending++;
            dheap_push(&r->byd, st);
        }
    }
}

static void run_free(run_t *r)
{
    for (size_t k = 0; k < r->nconns; k++) {
        conn_t *cn = &r->conns[k];
        if (cn->open)
            conn_done(r, k, ETIMEDOUT, poh_now_mono()); /* only on the give-up path */
    }
    free(r->st);
    free(r->conns);
    free(r->pfds);
    free(r->byd.v);
}

int poh_grpc_run(poh_grpc_call_t *calls, size_t n, double deadline)
{
    return poh_grpc_run_window(calls, n, deadline, 0);
}

/* Allocates r's arrays and the calls' metadata slots (returned, or NULL),
 * and readies each call's state. */
static grpc_metadata *run_setup(run_t *r, size_t total_md)
{
    size_t n = r->n;
    r->st = calloc(n, sizeof *r->st);
    r->conns = calloc(n, sizeof *r->conns);
    r->pfds = calloc(n, sizeof *r->pfds);
    r->byd.v = calloc(n, sizeof *r->byd.v);
    grpc_metadata *md = calloc(total_md, sizeof *md);
    if (!r->st || !r->conns || !r->pfds || !r->byd.v || !md)
        goto nomem;
    r->cq = grpc_completion_queue_create_for_next(NULL);
    if (!r->cq)
        goto nomem;
    size_t mdpos = 0;
    for (size_t i = 0; i < n; i++) {
        call_state_t *st = &r->st[i];
        poh_grpc_call_clear(&r->calls[i]);
        st->md = md + mdpos;
        mdpos += r->calls[i].nmetadata + 1;
        poh_grpc_unary_init(&st->u);
        st->next_waiter = NONE;
    }
    return md;
nomem:
    run_free(r);
    free(md);
    return NULL;
}

/* The minimal stack has no deadline filter: this loop wakes at each
 * deadline and cancels what is due. Connections being opened are looked
 * at every millisecond (gRPC's queue cannot wait on them). Each call that
 * ends makes room in the window for the next. Once every call is
 * cancelled, gRPC gets CANCEL_GRACE_S to hand them back; past that, give
 * up (-ETIMEDOUT). */
static int run_loop(run_t *r)
{
    double give_up = 0;
    while (r->pending > 0) {
        double now = poh_now_mono();
        if (r->nopen)
            progress_conns(r, now);
        double wake = expire_due(r, now);
        if (r->pending < r->window && r->next < r->n) {
            begin_more(r);
            continue;
        }
        if (r->pending == 0)
            break;
        if (wake == 0 && r->nopen == 0) {
            if (give_up == 0)
                give_up = now + CANCEL_GRACE_S;
            else if (now >= give_up) {
                /* gRPC may still write into st: leaking the queue, the
                 * calls and their state is the only safe move left. */
                POH_ERROR("grpc", "%zu calls did not complete after cancel", r->pending);
                return -ETIMEDOUT;
            }
            wake = give_up;
        }
        if (r->nopen && (wake == 0 || wake > now + 0.001))
            wake = now + 0.001;
        grpc_event ev = grpc_completion_queue_next(r->cq, gpr_in(wake - now), NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            call_state_t *s = ev.tag;
            s->pending = false;
            r->pending--;
            finish_call(&r->calls[s - r->st], s, poh_now_mono());
            release_state(s);
        }
    }
    return 0;
}

/* After every call has ended: the channels, the queue, r's arrays. */
static void run_teardown(run_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        release_state(&r->st[i]);
    for (size_t k = 0; k < r->nconns; k++)
        if (r->conns[k].ch)
            grpc_channel_destroy(r->conns[k].ch);
    grpc_completion_queue_shutdown(r->cq);
    for (int i = 0; i < 1000; i++) {
        grpc_event ev = grpc_completion_queue_next(r->cq, gpr_in(1.0), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
    }
    grpc_completion_queue_destroy(r->cq);
    run_free(r);
    /* A reply stopped at its budget leaves up to that budget freed in
     * gRPC's threads' malloc arenas; give it back to the system. Only
     * after such a reply (a hostile or broken peer), never per scrape. */
    for (size_t i = 0; i < r->n; i++)
        if (r->calls[i].code == GRPC_STATUS_RESOURCE_EXHAUSTED) {
            malloc_trim(0);
            break;
        }
}

int poh_grpc_run_window(poh_grpc_call_t *calls, size_t n, double deadline, size_t window)
{
    if (n == 0)
        return 0;
    if (!calls)
        return -EINVAL;
    size_t total_md = 0;
    for (size_t i = 0; i < n; i++) {
        if (!calls[i].target || !calls[i].method || (!calls[i].request && calls[i].request_len) ||
            (!calls[i].metadata && calls[i].nmetadata))
            return -EINVAL;
        total_md += calls[i].nmetadata + 1;
    }
    run_t r = {.calls = calls, .n = n, .window = window ? window : n, .deadline = deadline};
    grpc_metadata *md = run_setup(&r, total_md);
    if (!md)
        return -ENOMEM;
    begin_more(&r);
    if (run_loop(&r) < 0)
        return -ETIMEDOUT;
    run_teardown(&r);
    free(md);
    return 0;
}

int poh_grpc_health_request(const char *service, uint8_t **out, size_t *len)
{
    if (!out || !len)
        return -EINVAL;
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)(service ? service : "");
    size_t n = grpc__health__v1__health_check_request__get_packed_size(&req);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    *len = grpc__health__v1__health_check_request__pack(&req, buf);
    *out = buf;
    return 0;
}
