/* SPDX-License-Identifier: Apache-2.0 */
/* The tracer: span queue, export thread and the OTLP/gRPC Export call.
 *
 * Producers only touch the lock-free queue, a few atomics and a semaphore
 * post. One thread owns the gRPC channel: it takes a batch when batch_size
 * spans are waiting or the oldest has waited batch_timeout, encodes it once,
 * and sends it, retrying the OTLP-retryable codes with capped exponential
 * backoff for at most retry_max_elapsed. While it waits, new spans queue up
 * and, when the queue is full, are dropped and counted: a slow or dead
 * collector costs memory bounded by queue_size and never blocks a scrape. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "grpc/channel_args.h"
#include "grpc/grpc_probe.h"
#include "grpc/tls.h"
#include "grpc/unary.h"
#include "poh_version.h"
#include "trace/trace_internal.h"

#define EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define SCOPE_NAME "poh_exporter"
#define POLL_SLICE_MS 100

struct poh_tracer {
    /* settings */
    size_t batch_size;
    double batch_timeout;
    double export_timeout;
    double retry_initial_backoff;
    double retry_max_backoff;
    double retry_max_elapsed;
    double shutdown_timeout;
    double drop_log_interval;
    poh_tracing_resolved_t res;
    poh_sampler_t sampler;

    /* producers → exporter */
    poh_span_queue_t queue;
    sem_t wake;
    _Atomic bool stopping;
    double stop_deadline;    /* written before stopping is set */
    _Atomic int flushers;    /* > 0: send what is queued without waiting */
    _Atomic bool exited;     /* the export thread is gone: drop at once */
    bool shut;               /* poh_tracer_shutdown() ran */

    /* exporter → flushers */
    pthread_mutex_t lock;
    pthread_cond_t done;
    uint64_t processed;      /* queue positions exported or dropped */

    /* counters */
    _Atomic uint64_t exported;
    _Atomic uint64_t dropped[POH_DROP_REASON_COUNT];
    _Atomic uint64_t calls;
    _Atomic uint64_t retries;

    /* exporter thread only */
    pthread_t thread;
    bool thread_started;
    poh_otlp_encoder_t *enc;
    grpc_channel *channel;
    grpc_completion_queue *cq;
    grpc_metadata *md;
    size_t nmd;
    grpc_slice method;
    bool grpc_started;
    uint64_t logged[POH_DROP_REASON_COUNT];
    double last_drop_log;
    double last_error_log;
    bool failing;
    char last_error[160];
};

static const char *const drop_names[POH_DROP_REASON_COUNT] = {
    [POH_DROP_QUEUE_FULL] = "queue_full",
    [POH_DROP_EXPORT_FAILED] = "export_failed",
    [POH_DROP_REJECTED] = "rejected",
    [POH_DROP_SHUTDOWN] = "shutdown",
};

const char *poh_drop_reason_name(poh_drop_reason_t r)
{
    return (unsigned)r < POH_DROP_REASON_COUNT ? drop_names[r] : "unknown";
}

/* --- producer side ----------------------------------------------------------- */

bool poh_tracer_should_sample(poh_tracer_t *t, const poh_span_context_t *parent,
                              const uint8_t trace_id[16])
{
    return poh_sampler_should_sample(&t->sampler, parent, trace_id);
}

void poh_tracer_submit(poh_tracer_t *t, poh_span_t *s)
{
    if (atomic_load_explicit(&t->exited, memory_order_acquire)) {
        atomic_fetch_add_explicit(&t->dropped[POH_DROP_SHUTDOWN], 1, memory_order_relaxed);
        poh_span_free(s);
        return;
    }
    long before = poh_span_queue_push(&t->queue, s);
    if (before < 0) {
        atomic_fetch_add_explicit(&t->dropped[POH_DROP_QUEUE_FULL], 1, memory_order_relaxed);
        poh_span_free(s);
        return;
    }
    /* Wake the exporter when a batch starts (to time it) or fills. */
    if (before == 0 || (size_t)before + 1 == t->batch_size)
        sem_post(&t->wake);
}

void poh_tracer_stats(const poh_tracer_t *t, poh_tracer_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!t)
        return;
    out->exported = atomic_load_explicit(&t->exported, memory_order_relaxed);
    for (int i = 0; i < POH_DROP_REASON_COUNT; i++)
        out->dropped[i] = atomic_load_explicit(&t->dropped[i], memory_order_relaxed);
    out->export_calls = atomic_load_explicit(&t->calls, memory_order_relaxed);
    out->export_retries = atomic_load_explicit(&t->retries, memory_order_relaxed);
    out->queued = poh_span_queue_len(&t->queue);
}

int poh_tracer_flush(poh_tracer_t *t, double timeout)
{
    if (!t)
        return 0;
    uint64_t target = atomic_load_explicit(&t->queue.head, memory_order_acquire);
    struct timespec abs;
    double deadline = poh_now_mono() + (timeout > 0 ? timeout : 0);
    int rc = 0;

    atomic_fetch_add(&t->flushers, 1);
    sem_post(&t->wake);
    pthread_mutex_lock(&t->lock);
    while (t->processed < target) {
        double d = deadline;
        abs.tv_sec = (time_t)d;
        abs.tv_nsec = (long)((d - (double)abs.tv_sec) * 1e9);
        if (pthread_cond_timedwait(&t->done, &t->lock, &abs) == ETIMEDOUT &&
            t->processed < target) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    atomic_fetch_sub(&t->flushers, 1);
    return rc;
}

/* --- exporter thread ----------------------------------------------------------- */

static void drop(poh_tracer_t *t, poh_drop_reason_t r, uint64_t n)
{
    if (n)
        atomic_fetch_add_explicit(&t->dropped[r], n, memory_order_relaxed);
}

/* Sleep until the monotonic time `until`, or until a producer posts. */
static void wait_until(poh_tracer_t *t, double until)
{
    double now = poh_now_mono();
    if (until <= now)
        return;
    struct timespec ts;
    double d = until;
    ts.tv_sec = (time_t)d;
    ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (sem_clockwait(&t->wake, CLOCK_MONOTONIC, &ts) < 0 && errno == EINTR)
        ;
}

/* One line per interval, whatever the number of spans dropped. */
static void log_drops(poh_tracer_t *t, bool force)
{
    double now = poh_now_mono();
    if (!force && now - t->last_drop_log < t->drop_log_interval)
        return;
    uint64_t d[POH_DROP_REASON_COUNT], total = 0;
    for (int i = 0; i < POH_DROP_REASON_COUNT; i++) {
        d[i] = atomic_load_explicit(&t->dropped[i], memory_order_relaxed) - t->logged[i];
        total += d[i];
    }
    if (!total)
        return;
    POH_WARN("trace",
             "dropped %llu spans since the last report (queue_full=%llu export_failed=%llu "
             "rejected=%llu shutdown=%llu); last export error: %s",
             (unsigned long long)total, (unsigned long long)d[POH_DROP_QUEUE_FULL],
             (unsigned long long)d[POH_DROP_EXPORT_FAILED],
             (unsigned long long)d[POH_DROP_REJECTED], (unsigned long long)d[POH_DROP_SHUTDOWN],
             t->last_error[0] ? t->last_error : "none");
    for (int i = 0; i < POH_DROP_REASON_COUNT; i++)
        t->logged[i] += d[i];
    t->last_drop_log = now;
}

static void note_error(poh_tracer_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(poh_tracer_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->last_error, sizeof t->last_error, fmt, ap);
    va_end(ap);
    double now = poh_now_mono();
    /* The first failure after a success is worth a line; the rest go into
     * the periodic drop report. */
    if (!t->failing && now - t->last_error_log >= t->drop_log_interval) {
        POH_WARN("trace", "export to %s failed: %s", t->res.target, t->last_error);
        t->last_error_log = now;
    }
    t->failing = true;
}

typedef struct {
    grpc_status_code status;
    int64_t rejected;
    bool has_retry_info;
    double retry_delay;
} call_result_t;

static void slice_to_cstr(grpc_slice s, char *buf, size_t size)
{
    size_t n = GRPC_SLICE_LENGTH(s);
    if (n >= size)
        n = size - 1;
    memcpy(buf, GRPC_SLICE_START_PTR(s), n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
            buf[i] = '?';
}

/* Waits for call's completion; cancels the call when the shutdown bound
 * passes while it is in flight. */
static void wait_call(poh_tracer_t *t, grpc_call *call)
{
    bool cancelled = false;
    for (;;) {
        gpr_timespec slice = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                          gpr_time_from_millis(POLL_SLICE_MS, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(t->cq, slice, NULL);
        if (ev.type == GRPC_OP_COMPLETE && ev.tag == call)
            break;
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (!cancelled && atomic_load_explicit(&t->stopping, memory_order_acquire) &&
            poh_now_mono() >= t->stop_deadline) {
            grpc_call_cancel(call, NULL);
            cancelled = true;
        }
    }
}

/* The collector's answer in u: status details, RetryInfo, partial success. */
static void read_result(const poh_grpc_unary_t *u, call_result_t *r, char *details, size_t dsize)
{
    r->status = u->status;
    slice_to_cstr(u->details, details, dsize);
    for (size_t i = 0; i < u->trailing_md.count; i++) {
        if (grpc_slice_str_cmp(u->trailing_md.metadata[i].key, "grpc-status-details-bin") == 0) {
            grpc_slice v = u->trailing_md.metadata[i].value;
            double d;
            if (poh_otlp_retry_info(GRPC_SLICE_START_PTR(v), GRPC_SLICE_LENGTH(v), &d) == 0) {
                r->has_retry_info = true;
                r->retry_delay = d;
            }
        }
    }
    grpc_byte_buffer_reader rd;
    if (r->status != GRPC_STATUS_OK || !u->recv || !grpc_byte_buffer_reader_init(&rd, u->recv))
        return;
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    poh_strbuf_t msg = POH_STRBUF_INIT;
    if (poh_otlp_decode_response(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), &r->rejected,
                                 &msg) < 0)
        POH_DEBUG("trace", "undecodable ExportTraceServiceResponse ignored");
    else if (msg.len)
        snprintf(details, dsize, "%s", msg.data);
    poh_strbuf_free(&msg);
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&rd);
}

/* One unary Export call (grpc/unary.h); the result is in *r. Cancelled when
 * the shutdown bound passes while it is in flight. */
static void export_call(poh_tracer_t *t, grpc_slice payload, double deadline, call_result_t *r,
                        char *details, size_t dsize)
{
    memset(r, 0, sizeof *r);
    details[0] = '\0';
    double left = deadline - poh_now_mono();
    if (left < 0.001)
        left = 0.001;
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_micros((int64_t)(left * 1e6), GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(t->channel, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
                                               t->method, NULL, dl, NULL);
    poh_grpc_unary_t u;
    poh_grpc_unary_init(&u);
    atomic_fetch_add_explicit(&t->calls, 1, memory_order_relaxed);
    grpc_call_error ce = poh_grpc_unary_start(&u, call, t->md, t->nmd, payload, call);
    if (ce != GRPC_CALL_OK) {
        r->status = GRPC_STATUS_INTERNAL;
        snprintf(details, dsize, "grpc_call_start_batch: %d", (int)ce);
    } else {
        wait_call(t, call);
        read_result(&u, r, details, dsize);
    }
    poh_grpc_unary_release(&u);
    grpc_call_unref(call);
}

static double jitter(double d)
{
    /* ±20%, from the id generator's per-thread RNG. */
    uint8_t b[8];
    poh_trace_random_span_id(b);
    return d * (0.8 + 0.4 * (double)b[0] / 255.0);
}

static void export_batch(poh_tracer_t *t, poh_span_t **batch, size_t n)
{
    const uint8_t *buf;
    size_t len;
    if (poh_otlp_encode(t->enc, batch, n, &buf, &len) < 0) {
        note_error(t, "out of memory encoding %zu spans", n);
        drop(t, POH_DROP_EXPORT_FAILED, n);
        return;
    }
    grpc_slice payload = grpc_slice_from_copied_buffer((const char *)buf, len);
    double start = poh_now_mono(), backoff = t->retry_initial_backoff;
    char details[128];

    for (;;) {
        bool stopping = atomic_load_explicit(&t->stopping, memory_order_acquire);
        double deadline = poh_now_mono() + t->export_timeout;
        if (stopping && t->stop_deadline < deadline)
            deadline = t->stop_deadline;
        call_result_t r;
        export_call(t, payload, deadline, &r, details, sizeof details);

        if (r.status == GRPC_STATUS_OK) {
            uint64_t rejected = r.rejected > 0 ? (uint64_t)r.rejected : 0;
            if (rejected > n)
                rejected = n;
            atomic_fetch_add_explicit(&t->exported, n - rejected, memory_order_relaxed);
            drop(t, POH_DROP_REJECTED, rejected);
            if (rejected)
                snprintf(t->last_error, sizeof t->last_error,
                         "collector rejected %llu of %zu spans: %.100s",
                         (unsigned long long)rejected, n, details);
            if (t->failing)
                POH_INFO("trace", "export to %s works again", t->res.target);
            t->failing = false;
            break;
        }
        note_error(t, "%s: %s", poh_grpc_code_name(r.status), details);
        if (!poh_otlp_retryable(r.status, r.has_retry_info)) {
            drop(t, POH_DROP_EXPORT_FAILED, n);
            break;
        }
        double delay = r.has_retry_info ? r.retry_delay : jitter(backoff);
        double now = poh_now_mono();
        stopping = atomic_load_explicit(&t->stopping, memory_order_acquire);
        if (stopping && now + delay >= t->stop_deadline) {
            drop(t, POH_DROP_SHUTDOWN, n);
            break;
        }
        if (now + delay - start > t->retry_max_elapsed) {
            drop(t, POH_DROP_EXPORT_FAILED, n);
            break;
        }
        double until = now + delay;
        while (poh_now_mono() < until) {
            double w = until;
            if (atomic_load_explicit(&t->stopping, memory_order_acquire) && t->stop_deadline < w)
                w = t->stop_deadline;
            if (poh_now_mono() >= w)
                break;
            wait_until(t, w);
        }
        atomic_fetch_add_explicit(&t->retries, 1, memory_order_relaxed);
        POH_DEBUG("trace", "retrying export of %zu spans", n);
        backoff = fmin(backoff * 2, t->retry_max_backoff);
    }
    grpc_slice_unref(payload);
}

static void *export_main(void *arg)
{
    poh_tracer_t *t = arg;
    poh_span_t **batch = malloc(t->batch_size * sizeof *batch);
    double batch_start = 0; /* when the exporter first saw the oldest waiting span */

    for (;;) {
        bool stopping = atomic_load_explicit(&t->stopping, memory_order_acquire);
        uint64_t n = poh_span_queue_len(&t->queue);
        double now = poh_now_mono();
        log_drops(t, false);
        if (n == 0) {
            if (stopping)
                break;
            batch_start = 0;
            wait_until(t, now + 1.0);
            continue;
        }
        if (!batch_start)
            batch_start = now;
        bool flushing = atomic_load_explicit(&t->flushers, memory_order_relaxed) > 0;
        if (batch && n < t->batch_size && !stopping && !flushing &&
            now < batch_start + t->batch_timeout) {
            wait_until(t, batch_start + t->batch_timeout);
            continue;
        }
        size_t k = 0;
        poh_span_t *s;
        if (!batch) {
            /* Out of memory at start: we can only drop. */
            while ((s = poh_span_queue_pop(&t->queue))) {
                poh_span_free(s);
                drop(t, POH_DROP_EXPORT_FAILED, 1);
                k++;
            }
        } else {
            while (k < t->batch_size && (s = poh_span_queue_pop(&t->queue)))
                batch[k++] = s;
        }
        if (k == 0) {
            /* A producer claimed a slot and has not published it yet. */
            wait_until(t, now + 0.001);
            continue;
        }
        batch_start = poh_span_queue_len(&t->queue) ? now : 0;
        if (batch) {
            if (stopping && now >= t->stop_deadline)
                drop(t, POH_DROP_SHUTDOWN, k);
            else
                export_batch(t, batch, k);
            for (size_t i = 0; i < k; i++)
                poh_span_free(batch[i]);
        }
        pthread_mutex_lock(&t->lock);
        t->processed += k;
        pthread_cond_broadcast(&t->done);
        pthread_mutex_unlock(&t->lock);
    }
    free(batch);
    return NULL;
}

/* --- creation ------------------------------------------------------------------- */

static grpc_channel_credentials *make_tls_creds(const poh_grpc_tls_t *tls)
{
    poh_grpc_tls_failure_t why;
    grpc_channel_credentials *creds = poh_grpc_tls_creds(tls, &why);
    if (creds)
        return creds;
    if (why.kind == POH_GRPC_TLS_UNREADABLE)
        POH_ERROR("trace", "tracing.tls.%s: cannot read %s (%s)", why.key, why.path,
                  why.err == EINVAL ? "empty, too large or unreadable" : strerror(why.err));
    else if (why.kind == POH_GRPC_TLS_UNPAIRED)
        POH_ERROR("trace", "tracing.tls: %s", POH_GRPC_TLS_UNPAIRED_WHY);
    else
        POH_ERROR("trace", "cannot build TLS credentials for the OTLP exporter");
    return NULL;
}

static int check_settings(const poh_tracing_config_t *c)
{
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = poh_tracing_config_check(c, &why);
    if (rc < 0)
        POH_ERROR("trace", "tracing.%s", why.data ? why.data : "invalid settings");
    poh_strbuf_free(&why);
    return rc;
}

static int setup_grpc(poh_tracer_t *t, const poh_tracing_config_t *cfg)
{
    poh_grpc_runtime_init();
    grpc_init();
    t->grpc_started = true;
    grpc_channel_credentials *creds =
        t->res.tls ? make_tls_creds(&cfg->tls) : grpc_insecure_credentials_create();
    if (!creds)
        return -EINVAL;

    char agent[64];
    snprintf(agent, sizeof agent, "poh_exporter/%s", POH_VERSION);
    int max_backoff_ms = (int)fmin(fmax(t->retry_max_backoff * 1000, 1000), 120000);
    /* The collector's reply is a few bytes; whatever it streams, the
     * channel holds at most gRPC's default receive limit and 1 MiB more
     * (grpc/channel_args.h). */
    grpc_resource_quota *budget =
        poh_grpc_quota_new("otlp", poh_grpc_budget(POH_GRPC_DEFAULT_MAX_REPLY, 1));
    if (!budget) {
        grpc_channel_credentials_release(creds);
        return -ENOMEM;
    }
    grpc_arg args[6];
    size_t nargs = 0;
    args[nargs++] = poh_grpc_arg_int(GRPC_ARG_ENABLE_RETRIES, 0); /* retries are ours */
    args[nargs++] = poh_grpc_arg_int(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
    args[nargs++] = poh_grpc_arg_int(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                                     max_backoff_ms < 1000 ? max_backoff_ms : 1000);
    args[nargs++] = poh_grpc_arg_str(GRPC_ARG_PRIMARY_USER_AGENT_STRING, agent);
    args[nargs++] = poh_grpc_arg_quota(budget);
    if (t->res.tls && cfg->tls.server_name && *cfg->tls.server_name)
        args[nargs++] = poh_grpc_arg_str(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, cfg->tls.server_name);
    grpc_channel_args cargs = {nargs, args};
    t->channel = grpc_channel_create(t->res.target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    grpc_resource_quota_unref(budget); /* the channel holds its own reference */
    if (!t->channel)
        return -EINVAL;
    t->cq = grpc_completion_queue_create_for_next(NULL);
    t->method = grpc_slice_from_static_string(EXPORT_METHOD);
    if (t->res.nheaders) {
        t->md = calloc(t->res.nheaders, sizeof *t->md);
        if (!t->md)
            return -ENOMEM;
        for (size_t i = 0; i < t->res.nheaders; i++) {
            t->md[i].key = grpc_slice_from_copied_string(t->res.headers[i].key);
            t->md[i].value = grpc_slice_from_copied_string(t->res.headers[i].value);
        }
        t->nmd = t->res.nheaders;
    }
    return 0;
}

static void teardown_grpc(poh_tracer_t *t)
{
    for (size_t i = 0; i < t->nmd; i++) {
        grpc_slice_unref(t->md[i].key);
        grpc_slice_unref(t->md[i].value);
    }
    free(t->md);
    if (t->channel)
        grpc_channel_destroy(t->channel);
    if (t->cq) {
        grpc_completion_queue_shutdown(t->cq);
        while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(t->cq);
    }
    if (t->grpc_started)
        grpc_shutdown();
}

/* Whether cfg asks for a tracer and holds to the schema (said in the log
 * when not). */
static bool tracer_wanted(const poh_tracing_config_t *cfg)
{
    int wanted = poh_tracing_wanted(cfg, NULL);
    if (wanted < 0) {
        POH_ERROR("trace", "tracing.enabled must be auto, true or false");
        return false;
    }
    if (!wanted) {
        if (cfg)
            POH_INFO("trace", "tracing is off (tracing.enabled: %s)",
                     cfg->enabled ? cfg->enabled : "auto, and no endpoint is set");
        return false;
    }
    return check_settings(cfg) == 0;
}

static void copy_settings(poh_tracer_t *t, const poh_tracing_config_t *cfg)
{
    t->batch_size = cfg->batch_size;
    t->batch_timeout = cfg->batch_timeout;
    t->export_timeout = cfg->export_timeout;
    t->retry_initial_backoff = cfg->retry_initial_backoff;
    t->retry_max_backoff = cfg->retry_max_backoff;
    t->retry_max_elapsed = cfg->retry_max_elapsed;
    t->shutdown_timeout = cfg->shutdown_timeout;
    t->drop_log_interval = cfg->drop_log_interval;
    t->last_drop_log = t->last_error_log = -1e9;
    poh_sampler_init(&t->sampler, cfg->sample_ratio);
}

poh_tracer_t *poh_tracer_create(const poh_tracing_config_t *cfg)
{
    if (!tracer_wanted(cfg))
        return NULL;
    poh_tracer_t *t = calloc(1, sizeof *t);
    poh_strbuf_t err = POH_STRBUF_INIT;
    bool sem_ok = false, lock_ok = false, cond_ok = false;
    if (!t)
        goto err;
    copy_settings(t, cfg);

    if (poh_tracing_resolve(cfg, NULL, &t->res, &err) < 0) {
        POH_ERROR("trace", "tracing: %s", err.data ? err.data : "invalid configuration");
        goto err;
    }
    if (poh_span_queue_init(&t->queue, cfg->queue_size) < 0)
        goto err_oom;
    t->enc = poh_otlp_encoder_new(t->res.resource, t->res.nresource, SCOPE_NAME, POH_VERSION);
    if (!t->enc)
        goto err_oom;
    if (sem_init(&t->wake, 0, 0) < 0)
        goto err;
    sem_ok = true;
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        goto err;
    lock_ok = true;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    cond_ok = pthread_cond_init(&t->done, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cond_ok)
        goto err;
    if (setup_grpc(t, cfg) < 0)
        goto err;
    if (pthread_create(&t->thread, NULL, export_main, t) != 0) {
        POH_ERROR("trace", "cannot start the OTLP export thread");
        goto err;
    }
    t->thread_started = true;
    pthread_setname_np(t->thread, "poh-otlp");
    POH_INFO("trace",
             "exporting spans to %s over %s; service.name=%s sample_ratio=%g queue_size=%u "
             "batch_size=%zu",
             t->res.target, t->res.tls ? "TLS" : "plaintext", t->res.service_name,
             t->sampler.ratio, cfg->queue_size, t->batch_size);
    poh_strbuf_free(&err);
    return t;

err_oom:
    POH_ERROR("trace", "out of memory creating the tracer");
err:
    poh_strbuf_free(&err);
    if (t) {
        teardown_grpc(t);
        if (cond_ok)
            pthread_cond_destroy(&t->done);
        if (lock_ok)
            pthread_mutex_destroy(&t->lock);
        if (sem_ok)
            sem_destroy(&t->wake);
        poh_otlp_encoder_free(t->enc);
        poh_span_queue_destroy(&t->queue);
        poh_tracing_resolved_free(&t->res);
        free(t);
    }
    return NULL;
}

void poh_tracer_shutdown(poh_tracer_t *t)
{
    if (!t || t->shut)
        return;
    t->shut = true;
    t->stop_deadline = poh_now_mono() + t->shutdown_timeout;
    atomic_store_explicit(&t->stopping, true, memory_order_release);
    sem_post(&t->wake);
    if (t->thread_started)
        pthread_join(t->thread, NULL);
    atomic_store_explicit(&t->exited, true, memory_order_release);
    /* Spans that raced with the thread's exit. */
    poh_span_t *s;
    while ((s = poh_span_queue_pop(&t->queue))) {
        poh_span_free(s);
        drop(t, POH_DROP_SHUTDOWN, 1);
    }
    log_drops(t, true);
    poh_tracer_stats_t st;
    poh_tracer_stats(t, &st);
    uint64_t dropped = 0;
    for (int i = 0; i < POH_DROP_REASON_COUNT; i++)
        dropped += st.dropped[i];
    POH_INFO("trace", "tracer stopped: %llu spans exported, %llu dropped",
             (unsigned long long)st.exported, (unsigned long long)dropped);
}

void poh_tracer_destroy(poh_tracer_t *t)
{
    if (!t)
        return;
    poh_tracer_shutdown(t);
    teardown_grpc(t);
    pthread_cond_destroy(&t->done);
    pthread_mutex_destroy(&t->lock);
    sem_destroy(&t->wake);
    poh_otlp_encoder_free(t->enc);
    poh_span_queue_destroy(&t->queue);
    poh_tracing_resolved_free(&t->res);
    free(t);
}
