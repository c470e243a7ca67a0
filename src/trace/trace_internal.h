/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of src/trace shared between its files and its unit tests. Nothing
 * outside src/trace and tests/unit/trace/test_trace_*.c includes this. */
#ifndef POH_TRACE_INTERNAL_H
#define POH_TRACE_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "trace/trace.h"

/* --- ids ------------------------------------------------------------------ */

/* Random non-zero ids from a per-thread xoshiro256** seeded by getrandom(2). */
void poh_trace_random_trace_id(uint8_t out[16]);
void poh_trace_random_span_id(uint8_t out[8]);

/* --- sampler -------------------------------------------------------------- */

/* Parent-based, with a trace-id ratio sampler for roots: a span with a parent
 * copies the parent's sampled flag; a root is sampled when the low 63 bits of
 * its trace id (big-endian bytes 8..15) are below ratio * 2^63. Deterministic
 * per trace id, so every component using the same ratio agrees. */
typedef struct poh_sampler {
    double ratio;
    uint64_t threshold; /* sample iff value < threshold; ratio >= 1 uses always */
    bool always;
} poh_sampler_t;

void poh_sampler_init(poh_sampler_t *s, double ratio); /* ratio clamped to [0,1] */
bool poh_sampler_should_sample(const poh_sampler_t *s, const poh_span_context_t *parent,
                               const uint8_t trace_id[16]);

/* --- span ----------------------------------------------------------------- */

enum { POH_ATTR_STR = 1, POH_ATTR_INT, POH_ATTR_DOUBLE, POH_ATTR_BOOL };

typedef struct poh_attr {
    uint32_t key;     /* offset of a NUL-terminated key in the span text */
    uint8_t type;     /* POH_ATTR_* */
    union {
        int64_t i;
        double d;
        bool b;
        uint32_t s;   /* offset of a NUL-terminated value in the span text */
    } v;
} poh_attr_t;

#define POH_SPAN_INLINE_TEXT 384

/* Strings live in one text buffer, addressed by offset so it can grow (inline
 * first, then the heap). Offset 0 is always "". */
struct poh_span {
    poh_tracer_t *tracer;
    poh_span_context_t ctx;
    uint8_t parent_span_id[8];
    bool has_parent;
    bool parent_remote;
    bool recording;
    uint8_t kind;
    uint8_t status;
    uint16_t nattrs;
    uint32_t dropped_attrs;
    uint32_t name;
    uint32_t status_message;
    uint64_t start_ns;
    uint64_t end_ns;
    uint64_t start_mono_ns;
    char *text;
    uint32_t text_len;
    uint32_t text_cap;
    poh_attr_t attrs[POH_SPAN_MAX_ATTRS];
    char inline_text[POH_SPAN_INLINE_TEXT];
};

static inline const char *poh_span_text(const poh_span_t *s, uint32_t off) { return s->text + off; }

/* Tracer hooks used by span.c. */
bool poh_tracer_should_sample(poh_tracer_t *t, const poh_span_context_t *parent,
                              const uint8_t trace_id[16]);
void poh_tracer_submit(poh_tracer_t *t, poh_span_t *s); /* takes s */

/* Free a span without exporting it. */
void poh_span_free(poh_span_t *s);
/* Build a recording span without a tracer (unit tests and benchmarks). */
poh_span_t *poh_span_new_detached(const char *name, poh_span_kind_t kind,
                                  const poh_span_context_t *parent, uint64_t start_unix_ns);
/* Set the end time of a detached span (0 = now) without submitting it. */
void poh_span_finish_detached(poh_span_t *s, uint64_t end_unix_ns);
uint64_t poh_trace_mono_ns(void);

/* --- bounded MPSC queue (Vyukov's bounded queue, single consumer) ---------- */

typedef struct poh_span_queue_cell {
    _Atomic uint64_t seq;
    poh_span_t *item;
} poh_span_queue_cell_t;

typedef struct poh_span_queue {
    poh_span_queue_cell_t *cells;
    uint64_t cap;    /* the bound */
    uint64_t ncells; /* max(cap, 2) */
    _Alignas(64) _Atomic uint64_t head; /* next position to claim (producers) */
    _Alignas(64) _Atomic uint64_t tail; /* next position to read (consumer) */
} poh_span_queue_t;

int poh_span_queue_init(poh_span_queue_t *q, size_t cap); /* 0 or -EINVAL/-ENOMEM */
void poh_span_queue_destroy(poh_span_queue_t *q);         /* frees spans left */
/* Never blocks. Returns the number of items queued before this one (>= 0), or
 * -ENOSPC when full (the caller still owns item). */
long poh_span_queue_push(poh_span_queue_t *q, poh_span_t *item);
/* Consumer only. NULL when empty. */
poh_span_t *poh_span_queue_pop(poh_span_queue_t *q);
uint64_t poh_span_queue_len(const poh_span_queue_t *q); /* approximate */

/* --- resolved configuration ------------------------------------------------ */

typedef char *(*poh_getenv_fn)(const char *name);

typedef struct poh_tracing_resolved {
    char *target;          /* gRPC target "host:port" */
    bool tls;
    char *service_name;
    poh_config_kv_t *resource; /* service.name first, then the rest; owned */
    size_t nresource;
    poh_config_kv_t *headers;  /* lowercase keys; owned */
    size_t nheaders;
} poh_tracing_resolved_t;

/* Whether tracing is on: 1, 0, or -EINVAL for an unknown enabled value. */
int poh_tracing_wanted(const poh_tracing_config_t *cfg, poh_getenv_fn getenv_fn);

/* Apply precedence config > environment > default (getenv_fn NULL = getenv).
 * Returns 0, or -EINVAL with the reason in err (never a header value). */
int poh_tracing_resolve(const poh_tracing_config_t *cfg, poh_getenv_fn getenv_fn,
                        poh_tracing_resolved_t *out, poh_strbuf_t *err);
void poh_tracing_resolved_free(poh_tracing_resolved_t *r);

/* Parse "k=v,k2=v2" (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS):
 * keys and values are trimmed and percent-decoded; a pair without '=' or with
 * an empty key is an error. Pairs are merged into *kv (a later key replaces an
 * earlier one). what names the source in err. 0, -EINVAL or -ENOMEM. */
int poh_trace_parse_kv_list(const char *s, const char *what, poh_config_kv_t **kv, size_t *n,
                            poh_strbuf_t *err);
/* Set key to value in *kv (replace or append); copies both. 0 or -ENOMEM. */
int poh_trace_kv_set(poh_config_kv_t **kv, size_t *n, const char *key, const char *value);
void poh_trace_kv_free(poh_config_kv_t *kv, size_t n);
/* Endpoint "host[:port]", "http://host[:port][/path]" or "https://..." (the
 * host:port rule of core/hostport.h; a path or userinfo only after a
 * scheme): target "host:port" without scheme, path or userinfo (port 4317
 * when none is given); *tls set for https. 0, -EINVAL or -ENOMEM. */
int poh_trace_parse_endpoint(const char *endpoint, char **target, bool *tls, poh_strbuf_t *err);

/* --- OTLP encoding --------------------------------------------------------- */

typedef struct poh_otlp_encoder poh_otlp_encoder_t;

/* resource: attributes of the Resource (copied). */
poh_otlp_encoder_t *poh_otlp_encoder_new(const poh_config_kv_t *resource, size_t nresource,
                                         const char *scope_name, const char *scope_version);
void poh_otlp_encoder_free(poh_otlp_encoder_t *e);
/* Encode one ExportTraceServiceRequest with the n spans. *out points into the
 * encoder's buffer, valid until the next call. 0 or -ENOMEM. */
int poh_otlp_encode(poh_otlp_encoder_t *e, poh_span_t *const *spans, size_t n,
                    const uint8_t **out, size_t *len);

/* Decode an ExportTraceServiceResponse: *rejected = partial_success.rejected_spans
 * (0 when absent); msg (optional) gets error_message. 0 or -EBADMSG. */
int poh_otlp_decode_response(const uint8_t *buf, size_t len, int64_t *rejected,
                             poh_strbuf_t *msg);

/* Find google.rpc.RetryInfo in a grpc-status-details-bin value (an encoded
 * google.rpc.Status). Returns 0 and the delay in seconds, -ENOENT when absent,
 * -EBADMSG when malformed. */
int poh_otlp_retry_info(const uint8_t *buf, size_t len, double *delay);

/* OTLP/gRPC retry policy: UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, CANCELLED,
 * OUT_OF_RANGE, DATA_LOSS; RESOURCE_EXHAUSTED only with RetryInfo. Codes are
 * gRPC status numbers. */
bool poh_otlp_retryable(int grpc_status, bool has_retry_info);

#endif
