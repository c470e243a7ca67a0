/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC probe engine (gRPC C core): runs many unary calls concurrently on one
 * completion queue, each with its own deadline, over persistent channels.
 *
 * A target is one address plus its channel settings. Its channel is created
 * on first use and kept (with its connection) until poh_grpc_target_free();
 * targets are thread-safe, so several runs (a scrape and a /probe) may share
 * them. Bad addresses never fail creation: their calls fail with a gRPC code
 * (UNAVAILABLE, DEADLINE_EXCEEDED, ...), like any unreachable target.
 *
 * Knows nothing of metrics: the caller maps results to series. */
#ifndef POH_GRPC_PROBE_H
#define POH_GRPC_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc/runtime.h"
#include "grpc/tls_conf.h"

#define POH_GRPC_HEALTH_CHECK_METHOD "/grpc.health.v1.Health/Check"
#define POH_GRPC_DETAILS_MAX 256

/* grpc.health.v1.HealthCheckResponse.ServingStatus; INVALID when the reply
 * was not a decodable HealthCheckResponse (or the call did not return OK). */
enum {
    POH_GRPC_SERVING_INVALID = -1,
    POH_GRPC_SERVING_UNKNOWN = 0,
    POH_GRPC_SERVING_SERVING = 1,
    POH_GRPC_SERVING_NOT_SERVING = 2,
    POH_GRPC_SERVING_SERVICE_UNKNOWN = 3,
};


typedef struct poh_grpc_target poh_grpc_target_t;


/* Default largest reply: gRPC's own default receive limit. */
#define POH_GRPC_DEFAULT_MAX_REPLY (4u << 20)

/* address: "host:port", "[v6]:port" or any gRPC target URI ("dns:///h:p").
 * tls: NULL for plaintext; the strings are copied (files are read when the
 * channel is created). max_reply: the largest reply accepted (0 = the
 * default); a larger one fails its call with RESOURCE_EXHAUSTED. calls: how
 * many calls one probe makes to the target at once (health, state). The
 * target's connection holds at most calls * max_reply + 1 MiB of replies
 * and buffers, enforced while the bytes arrive (grpc/channel_args.h), so a
 * peer streaming a huge message costs that much and no more. Returns NULL
 * only when out of memory. */
poh_grpc_target_t *poh_grpc_target_new(const char *address, const poh_grpc_tls_t *tls,
                                       size_t max_reply, unsigned calls);
void poh_grpc_target_free(poh_grpc_target_t *t); /* NULL is fine */
const char *poh_grpc_target_address(const poh_grpc_target_t *t);

/* NULL when address is "host:port" or "[v6]:port" with a port 1..65535 (the
 * rule of core/hostport.h, the form configs and /probe accept), else a short
 * reason. The engine itself takes any gRPC target string. */
const char *poh_grpc_address_problem(const char *address);

/* A valid host:port or [v6]:port (see above) into its host, without
 * brackets, and port; false when it is not valid or either does not fit. */
bool poh_grpc_split_host_port(const char *address, char *host, size_t hostlen, char *port,
                              size_t portlen);

typedef struct poh_grpc_md {
    const char *key;   /* lowercase ASCII header name */
    const char *value; /* printable ASCII */
} poh_grpc_md_t;

typedef struct poh_grpc_call {
    /* Input: caller memory, read during poh_grpc_run() only. */
    poh_grpc_target_t *target;
    const char *method;              /* "/package.Service/Method" */
    const uint8_t *request;          /* serialized request message (may be empty) */
    size_t request_len;
    const poh_grpc_md_t *metadata;   /* sent with the call, e.g. authorization */
    size_t nmetadata;
    const char *traceparent;         /* W3C traceparent header value, or NULL */
    double timeout;                  /* seconds; capped by the run's deadline */
    bool health;                     /* decode the reply as HealthCheckResponse */

    /* Output, set by poh_grpc_run(); free with poh_grpc_call_clear(). */
    int code;                        /* grpc_status_code */
    char details[POH_GRPC_DETAILS_MAX]; /* status message, control bytes replaced */
    uint8_t *response;               /* reply message bytes (malloc), NULL if none */
    size_t response_len;
    double latency;                  /* seconds from start to completion */
    int serving_status;              /* POH_GRPC_SERVING_* (health calls) */
} poh_grpc_call_t;

/* Start every call, then wait for all of them on one completion queue. Each
 * call's deadline is min(now + timeout, deadline); deadline is CLOCK_MONOTONIC
 * seconds (0 = none). Returns 0 when every call has a result (a failed call is
 * a result), -EINVAL on bad arguments, -ENOMEM. Output of earlier runs in
 * calls[] is cleared first. */
int poh_grpc_run(poh_grpc_call_t *calls, size_t n, double deadline);
/* The same with at most window calls in flight at once (0: no limit): the
 * others begin, in order, as calls end, each with its timeout counted from
 * when it begins (still capped by deadline); one whose deadline has passed
 * by then fails with DEADLINE_EXCEEDED unsent. A call in flight holds its
 * gRPC arena (about 10 KiB), so the window bounds a run's memory. */
int poh_grpc_run_window(poh_grpc_call_t *calls, size_t n, double deadline, size_t window);
void poh_grpc_call_clear(poh_grpc_call_t *c); /* frees the response; keeps inputs */

/* Serialized grpc.health.v1.HealthCheckRequest{service}; caller frees *out. */
int poh_grpc_health_request(const char *service, uint8_t **out, size_t *len);

/* "OK", "UNAVAILABLE", "DEADLINE_EXCEEDED", ...; "UNKNOWN" for codes out of range. */
const char *poh_grpc_code_name(int code);
/* Accepts a name ("UNAVAILABLE", case-insensitive) or a number 0..16. */
int poh_grpc_code_parse(const char *s, int *code);
/* "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"; "INVALID" otherwise. */
const char *poh_grpc_serving_status_name(int status);

#endif
