/* SPDX-License-Identifier: Apache-2.0 */
/* Tracing: spans exported as OpenTelemetry OTLP over gRPC.
 *
 *   poh_tracer_t *t = poh_tracer_create(&cfg);          // main.c, once
 *   poh_span_t *root = poh_span_start(t, "scrape", POH_SPAN_KIND_SERVER, NULL);
 *   poh_span_t *s = poh_span_start(t, "grpc.health.v1.Health/Check",
 *                                  POH_SPAN_KIND_CLIENT, poh_span_context(root));
 *   poh_span_set_str(s, "rpc.system", "grpc");
 *   poh_span_traceparent(s, tp, sizeof tp);             // outgoing metadata
 *   poh_span_set_status(s, POH_SPAN_STATUS_ERROR, "NOT_SERVING");
 *   poh_span_end(s);                                    // s is gone now
 *   poh_span_end(root);
 *   poh_tracer_destroy(t);                              // flushes, bounded
 *
 * Never in the way: poh_span_end() puts the span on a bounded lock-free queue
 * and returns; it never waits for the exporter, the network or a lock held by
 * another thread. When the queue is full the span is dropped and counted.
 * A background thread batches spans by size and time and sends them with
 * /opentelemetry.proto.collector.trace.v1.TraceService/Export, retrying the
 * codes OTLP calls retryable with capped exponential backoff.
 *
 * NULL is a valid tracer and a valid span: every function accepts it and does
 * nothing (poh_span_start(NULL, ...) returns NULL), so callers need no
 * "if tracing enabled" branches.
 *
 * Threads: the tracer is thread-safe. A span belongs to one thread at a time
 * (start, set, end from the same thread, or hand it over with a barrier).
 * Ownership: poh_span_end() takes the span; do not touch it afterwards. Every
 * span must be ended before poh_tracer_destroy(). */
#ifndef POH_TRACE_H
#define POH_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- configuration ------------------------------------------------------- */

/* The tracing section of the configuration (trace/trace_conf.h,
 * poh_config_tracing_t): endpoint, service_name, resource_attributes,
 * headers, tls, sample_ratio, queue and batch sizes, timeouts. Strings may be
 * NULL (= not set); the tracer copies what it needs.
 *   enabled        "true", "false", or NULL/"auto": on when an endpoint is set
 *                  in the config or the environment
 *   endpoint       "host:port", "http://host:port" (plaintext) or
 *                  "https://host:port" (TLS); NULL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
 *                  OTEL_EXPORTER_OTLP_ENDPOINT, OTLP_GRPC_ENDPOINT, localhost:4317.
 *                  Without a scheme TLS is used when any tls key is set.
 *   service_name   NULL: OTEL_SERVICE_NAME, then "poh-exporter"
 *   resource_attributes  merged over OTEL_RESOURCE_ATTRIBUTES (config wins)
 *   headers        gRPC metadata of every Export, merged over
 *                  OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TRACES_HEADERS
 *                  (config wins); values are secrets, never logged */
#include "trace/trace_conf.h"
#include "core/strbuf.h"

typedef poh_config_tracing_t poh_tracing_config_t;

/* A `tracing` section read from YAML text through the config engine, with
 * the schema's defaults and checks (trace_schema.c), for tools and tests
 * that have no configuration file: 0, or -EINVAL with one error per line in
 * err. cfg owns memory either way: poh_tracing_config_release() it. */
int poh_tracing_config_parse(const char *yaml, poh_tracing_config_t *cfg, poh_strbuf_t *err);
void poh_tracing_config_release(poh_tracing_config_t *cfg);

/* cfg's numbers held to the schema's bounds and rules between keys (for a
 * struct not read by the engine): 0, or -EINVAL with "key: reason" in why. */
int poh_tracing_config_check(const poh_tracing_config_t *cfg, poh_strbuf_t *why);

/* Checks used by the configuration schema: 0, or -EINVAL with the reason
 * appended to why (never a header value). */
int poh_tracing_check_endpoint(const char *endpoint, poh_strbuf_t *why);
int poh_tracing_check_header(const char *key, const char *value, poh_strbuf_t *why);

/* --- span context and W3C traceparent ------------------------------------ */

#define POH_TRACE_FLAG_SAMPLED 0x01
#define POH_TRACEPARENT_LEN 55 /* "00-<32 hex>-<16 hex>-<2 hex>" */
#define POH_TRACE_ID_HEX_LEN 32
#define POH_SPAN_ID_HEX_LEN 16

typedef struct poh_span_context {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;             /* W3C trace-flags */
    bool remote;               /* parsed from a traceparent, not made here */
} poh_span_context_t;

/* Parse a W3C traceparent (https://www.w3.org/TR/trace-context/): version 00
 * must be exactly 55 characters; a later version (not ff) must be at least 55
 * and continue with '-'. Hex must be lowercase, trace-id and parent-id not all
 * zero. On success fills *out (remote = true) and returns 0, else -EINVAL and
 * leaves *out alone. */
int poh_traceparent_parse(const char *s, size_t len, poh_span_context_t *out);
/* Write "00-..." and a NUL; buf needs POH_TRACEPARENT_LEN + 1 bytes. Returns
 * POH_TRACEPARENT_LEN, -EINVAL for an invalid context, -ENOSPC if too small. */
int poh_traceparent_format(const poh_span_context_t *ctx, char *buf, size_t size);
/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void poh_hex_encode(const uint8_t *bytes, size_t n, char *out);
bool poh_span_context_valid(const poh_span_context_t *ctx);

/* --- tracer --------------------------------------------------------------- */

typedef struct poh_tracer poh_tracer_t;
typedef struct poh_span poh_span_t;

/* Whether cfg asks for tracing (enabled true, or auto with an endpoint in the
 * config or the environment). Lets main.c tell "off" from "unusable" when
 * poh_tracer_create() returns NULL. */
bool poh_tracing_enabled(const poh_tracing_config_t *cfg);

/* Resolve configuration and environment, build the resource, start the export
 * thread. The collector need not be reachable. Returns NULL when tracing is
 * off (enabled false, or auto without an endpoint; logged at info) and when
 * the configuration is unusable (bad endpoint, unreadable TLS file, invalid
 * header, ...; logged as an error). */
poh_tracer_t *poh_tracer_create(const poh_tracing_config_t *cfg);
/* Export what is queued within shutdown_timeout (the rest is dropped with
 * reason "shutdown") and stop the thread. Afterwards spans are dropped at
 * once (reason "shutdown") and the counters stay readable. Idempotent; NULL
 * is fine. */
void poh_tracer_shutdown(poh_tracer_t *t);
/* poh_tracer_shutdown() if not done yet, then free. NULL is fine. */
void poh_tracer_destroy(poh_tracer_t *t);
/* Wait until every span ended before this call has been exported or dropped,
 * at most timeout seconds. 0, or -ETIMEDOUT. */
int poh_tracer_flush(poh_tracer_t *t, double timeout);

typedef enum {
    POH_DROP_QUEUE_FULL = 0, /* queue full at poh_span_end() */
    POH_DROP_EXPORT_FAILED,  /* non-retryable error, or retries exhausted */
    POH_DROP_REJECTED,       /* the collector's partial_success.rejected_spans */
    POH_DROP_SHUTDOWN,       /* still queued when the shutdown bound expired */
    POH_DROP_REASON_COUNT
} poh_drop_reason_t;

/* "queue_full", "export_failed", "rejected", "shutdown". */
const char *poh_drop_reason_name(poh_drop_reason_t r);

typedef struct poh_tracer_stats {
    uint64_t exported;                       /* accepted by the collector */
    uint64_t dropped[POH_DROP_REASON_COUNT];
    uint64_t export_calls;                   /* Export attempts, retries included */
    uint64_t export_retries;
    uint64_t queued;                         /* waiting now (approximate) */
} poh_tracer_stats_t;

/* Monotonic counters for poh_exporter_spans_exported_total and
 * poh_exporter_spans_dropped_total{reason}. Lock-free; all zero for NULL. */
void poh_tracer_stats(const poh_tracer_t *t, poh_tracer_stats_t *out);

/* --- spans ----------------------------------------------------------------- */

typedef enum {
    POH_SPAN_KIND_INTERNAL = 1, /* values are OTLP's SpanKind */
    POH_SPAN_KIND_SERVER = 2,
    POH_SPAN_KIND_CLIENT = 3,
    POH_SPAN_KIND_PRODUCER = 4,
    POH_SPAN_KIND_CONSUMER = 5,
} poh_span_kind_t;

typedef enum {
    POH_SPAN_STATUS_UNSET = 0, /* values are OTLP's StatusCode */
    POH_SPAN_STATUS_OK = 1,
    POH_SPAN_STATUS_ERROR = 2,
} poh_span_status_t;

/* Limits: attributes beyond POH_SPAN_MAX_ATTRS, or beyond POH_SPAN_MAX_TEXT
 * bytes of names, keys and values together, are dropped and counted in
 * dropped_attributes_count; a string value longer than POH_SPAN_MAX_VALUE is
 * cut at a UTF-8 boundary. */
#define POH_SPAN_MAX_ATTRS 16
#define POH_SPAN_MAX_VALUE 1024
#define POH_SPAN_MAX_TEXT 8192

/* Start a span now. parent NULL starts a new trace (sampled by sample_ratio);
 * otherwise the span joins parent's trace and follows its sampled flag. An
 * unsampled span still has a valid context to propagate but records nothing
 * and is never exported. Returns NULL if t is NULL or out of memory. */
poh_span_t *poh_span_start(poh_tracer_t *t, const char *name, poh_span_kind_t kind,
                           const poh_span_context_t *parent);
/* Same with an explicit start time (unix ns, e.g. a document timestamp; 0 =
 * now). A span started at an explicit time that ends "now" ends at the wall
 * clock, not start + monotonic elapsed time. */
poh_span_t *poh_span_start_at(poh_tracer_t *t, const char *name, poh_span_kind_t kind,
                              const poh_span_context_t *parent, uint64_t start_unix_ns);

/* Set an attribute; setting a key again replaces its value. */
void poh_span_set_str(poh_span_t *s, const char *key, const char *value);
void poh_span_set_int(poh_span_t *s, const char *key, int64_t value);
void poh_span_set_double(poh_span_t *s, const char *key, double value);
void poh_span_set_bool(poh_span_t *s, const char *key, bool value);
/* message is kept only with POH_SPAN_STATUS_ERROR (OTLP semantics). */
void poh_span_set_status(poh_span_t *s, poh_span_status_t code, const char *message);

/* End now (measured on the monotonic clock from the start) and hand the span
 * to the exporter; the span is invalid afterwards. */
void poh_span_end(poh_span_t *s);
/* End at an explicit time (unix ns; clamped to the start time). */
void poh_span_end_at(poh_span_t *s, uint64_t end_unix_ns);

/* The span's context, valid until poh_span_end(). NULL for a NULL span. */
const poh_span_context_t *poh_span_context(const poh_span_t *s);
bool poh_span_is_sampled(const poh_span_t *s);
/* traceparent of this span for outgoing metadata (see poh_traceparent_format).
 * -EINVAL for a NULL span. */
int poh_span_traceparent(const poh_span_t *s, char *buf, size_t size);
/* 32 lowercase hex chars + NUL (33 bytes) of the trace id, for exemplars.
 * Returns 0, or -EINVAL for a NULL or unsampled span (an exemplar should not
 * point at a trace that is never exported). */
int poh_span_trace_id_hex(const poh_span_t *s, char out[POH_TRACE_ID_HEX_LEN + 1]);

/* What a scrape hands its collectors: the tracer and the root span's
 * context, by value. A collector that outlives its scrape (past the
 * deadline) then never touches the root span, which the scrape has ended. */
typedef struct poh_trace_parent {
    poh_tracer_t *tracer;      /* NULL: tracing off */
    poh_span_context_t ctx;
} poh_trace_parent_t;

/* The parent reference of span s ({NULL} for a NULL span). */
poh_trace_parent_t poh_span_parent_ref(const poh_span_t *s);
/* Start a child of p now; NULL when p is NULL or tracing is off. */
poh_span_t *poh_span_start_child(const poh_trace_parent_t *p, const char *name,
                                 poh_span_kind_t kind);

/* A token bucket for spans made from external events (storage.commit per
 * change-stream document): at most `rate` per second on average, bursts up
 * to `burst`. Not thread-safe: one per producing thread (e.g. per stream).
 * rate <= 0 lets nothing through. */
typedef struct poh_span_rate_limit {
    double rate, burst, tokens, last; /* last: CLOCK_MONOTONIC seconds */
    uint64_t refused;                 /* events refused so far */
} poh_span_rate_limit_t;

void poh_span_rate_limit_init(poh_span_rate_limit_t *rl, double rate, double burst);
/* true: make the span (a token is taken); false: skip it (counted). */
bool poh_span_rate_limit_take(poh_span_rate_limit_t *rl);

/* Nanoseconds since the unix epoch (CLOCK_REALTIME). */
uint64_t poh_trace_now_unix_ns(void);

#endif
