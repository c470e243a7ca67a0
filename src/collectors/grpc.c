/* SPDX-License-Identifier: Apache-2.0 */
/* The grpc collector: see collectors/grpc.h for the metrics it writes. */
#include "collectors/grpc.h"
#include "core/hex.h"
#include "trace/trace.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/resource.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/netmatch.h"
#include "grpc/grpc_metrics.h"
#include "grpc/grpc_probe.h"
#include "grpc/pbwire.h"

/* Failure code labels: the 17 gRPC codes, then our two. */
#define NCODES 19
#define CODE_NOT_SERVING 17
#define CODE_INVALID_RESPONSE 18
#define NREASONS 4
/* Finish this much before the scrape deadline (at most), so results of a run
 * that ends at the deadline are still handed in. */
#define MARGIN_MAX_S 0.05
/* File descriptors kept free for everything else when raising the limit. */
#define FD_HEADROOM 256
/* What one call in flight holds, for sizing the window from memory's
 * buffer_limit: gRPC's call arena (about 9.5 KiB measured with heaptrack at
 * 1,000 targets), the message buffers and our call state. */
#define CALL_BYTES (12u << 10)
#define MIN_WINDOW 16

static const char *const health_statuses[] = {"UNKNOWN", "SERVING", "NOT_SERVING",
                                              "SERVICE_UNKNOWN"};
#define NSTATUSES 4
static const char *const field_error_reasons[NREASONS] = {
    "missing_field", "wire_type_mismatch", "truncated_input", "malformed_input"};

static const char *const l_gt[] = {"group", "target"};

typedef struct method_series {
    const char *method;
    poh_series_t *requests, *ack, *latency;
    poh_series_t *failures[NCODES]; /* created on first use, by collect() only */
} method_series_t;

typedef struct field {
    poh_pb_path_t path;
    poh_pb_type_t type;
    char *metric;
    char *help;
} field_t;

typedef struct target_status {
    bool ran;
    char result[32];
    double latency;
    char error[POH_GRPC_DETAILS_MAX + 64];
} target_status_t;

typedef struct gtarget {
    char *address;
    poh_grpc_target_t *t;
    method_series_t health, state;
    poh_series_t **field_errors; /* [nfields][NREASONS], created on first use */
    target_status_t status;      /* under grpc_collector.mu */
} gtarget_t;

typedef struct grpc_collector {
    char *group;
    double timeout;
    uint8_t *health_req;
    size_t health_req_len;
    char *state_method; /* NULL: no state call */
    size_t max_reply;   /* max_reply_size */
    uint8_t *state_req;
    size_t state_req_len;
    field_t *fields;
    size_t nfields;
    poh_grpc_md_t *md;
    size_t nmd;
    bool use_tls;
    poh_grpc_tls_t tls; /* strings owned */
    /* /probe policy: the group's targets, and these (probe.allow) */
    char **allow_src;             /* the patterns' strings (globs point into them) */
    poh_netpattern_t *allow;
    size_t nallow;
    bool send_credentials;        /* probe.send_credentials */
    gtarget_t *targets;
    size_t ntargets;
    poh_family_t *f_failures, *f_field_errors;
    size_t ncalls;          /* calls per scrape: targets x (health + state) */
    size_t window;          /* most calls in flight at once (poh_grpc_run_window) */
    pthread_mutex_t mu;
} grpc_collector_t;

static char *xstrdup(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

static void collector_free(grpc_collector_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ntargets; i++) {
        poh_grpc_target_free(c->targets[i].t);
        free(c->targets[i].address);
        free(c->targets[i].field_errors);
    }
    free(c->targets);
    for (size_t i = 0; i < c->nfields; i++) {
        free(c->fields[i].metric);
        free(c->fields[i].help);
    }
    free(c->fields);
    for (size_t i = 0; i < c->nmd; i++) {
        free((char *)c->md[i].key);
        if (c->md[i].value) {
            explicit_bzero((char *)c->md[i].value, strlen(c->md[i].value));
            free((char *)c->md[i].value);
        }
    }
    free(c->md);
    poh_grpc_tls_clear(&c->tls);
    for (size_t i = 0; i < c->nallow; i++)
        free(c->allow_src[i]);
    free(c->allow_src);
    free(c->allow);
    free(c->state_method);
    free(c->state_req);
    free(c->health_req);
    free(c->group);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void grpc_destroy(void *state)
{
    collector_free(state);
}

static void method_series_init(method_series_t *ms, const char *method, const char *group,
                               const char *target, poh_family_t *req, poh_family_t *ack,
                               poh_family_t *lat)
{
    const char *lv[] = {group, target, method};
    ms->method = method;
    ms->requests = poh_family_series(req, lv);
    ms->ack = poh_family_series(ack, lv);
    ms->latency = poh_family_series(lat, lv);
}

/* The /probe policy of g (probe.allow, probe.send_credentials) into c. */
static int copy_probe_policy(grpc_collector_t *c, const poh_config_grpc_group_t *g)
{
    c->send_credentials = g->probe.send_credentials;
    if (!g->probe.allow_count)
        return 0;
    c->allow_src = calloc(g->probe.allow_count, sizeof *c->allow_src);
    c->allow = calloc(g->probe.allow_count, sizeof *c->allow);
    if (!c->allow_src || !c->allow)
        return -ENOMEM;
    for (; c->nallow < g->probe.allow_count; c->nallow++) {
        const char *why;
        size_t i = c->nallow;
        if (!(c->allow_src[i] = strdup(g->probe.allow[i])) ||
            poh_netpattern_parse(c->allow_src[i], &c->allow[i], &why) < 0) {
            free(c->allow_src[i]);
            return -ENOMEM; /* the loader checked them: only out of memory */
        }
    }
    return 0;
}

/* The metadata and the state reply's fields of g into c. */
static int copy_md_and_fields(grpc_collector_t *c, const poh_config_grpc_group_t *g,
                              bool *failed)
{
    if (g->metadata_count && !(c->md = calloc(g->metadata_count, sizeof *c->md)))
        return -ENOMEM;
    for (; c->nmd < g->metadata_count; c->nmd++) {
        c->md[c->nmd].key = xstrdup(g->metadata[c->nmd].key, failed);
        c->md[c->nmd].value = xstrdup(g->metadata[c->nmd].value, failed);
    }
    if (g->state.fields_count && !(c->fields = calloc(g->state.fields_count, sizeof *c->fields)))
        return -ENOMEM;
    for (; c->nfields < g->state.fields_count; c->nfields++) {
        const poh_config_grpc_field_t *cf = &g->state.fields[c->nfields];
        field_t *f = &c->fields[c->nfields];
        if (poh_pb_path_parse(cf->path, &f->path) < 0 || poh_pb_type_parse(cf->type, &f->type) < 0)
            return -EINVAL;
        f->metric = xstrdup(cf->metric, failed);
        if (cf->help && *cf->help) {
            f->help = xstrdup(cf->help, failed);
        } else {
            size_t n = strlen(cf->path) + strlen(g->state.method) + 32;
            if ((f->help = malloc(n)))
                snprintf(f->help, n, "Field %s of the %s reply.", cf->path, g->state.method);
            else
                *failed = true;
        }
    }
    return 0;
}

/* Everything of g but the targets into c. */
static int copy_group(grpc_collector_t *c, const poh_config_grpc_group_t *g)
{
    bool failed = false;
    c->group = xstrdup(g->name, &failed);
    c->timeout = g->timeout;
    if (poh_grpc_health_request(g->health_service, &c->health_req, &c->health_req_len) < 0)
        return -EINVAL;
    c->max_reply = g->max_reply_size;
    if (g->state.method) {
        c->state_method = xstrdup(g->state.method, &failed);
        if (poh_hex_decode(g->state.request_hex, &c->state_req, &c->state_req_len) < 0)
            return -EINVAL;
    }
    c->use_tls = g->tls.enabled;
    if (poh_grpc_tls_copy(&c->tls, &g->tls) < 0)
        failed = true;
    if (copy_probe_policy(c, g) < 0 || copy_md_and_fields(c, g, &failed) < 0)
        return -EINVAL;
    return failed ? -ENOMEM : 0;
}

/* One target of the group with its series in f_req, f_ack and f_lat. */
static int target_init(grpc_collector_t *c, gtarget_t *t, const char *address,
                       poh_family_t *f_req, poh_family_t *f_ack, poh_family_t *f_lat)
{
    t->address = strdup(address);
    t->t = poh_grpc_target_new(address, c->use_tls ? &c->tls : NULL, c->max_reply,
                               c->state_method ? 2 : 1);
    if (c->nfields)
        t->field_errors = calloc(c->nfields * NREASONS, sizeof *t->field_errors);
    if (!t->address || !t->t || (c->nfields && !t->field_errors))
        return -ENOMEM;
    method_series_init(&t->health, POH_GRPC_HEALTH_CHECK_METHOD, c->group, t->address, f_req,
                       f_ack, f_lat);
    if (c->state_method)
        method_series_init(&t->state, c->state_method, c->group, t->address, f_req, f_ack,
                           f_lat);
    if (!t->health.requests || !t->health.ack || !t->health.latency ||
        (c->state_method && (!t->state.requests || !t->state.ack || !t->state.latency)))
        return -ENOMEM;
    snprintf(t->status.result, sizeof t->status.result, "not probed yet");
    return 0;
}

static grpc_collector_t *collector_new(const poh_config_grpc_group_t *g, poh_registry_t *persist)
{
    grpc_collector_t *c = calloc(1, sizeof *c);
    if (!c || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    if (copy_group(c, g) < 0)
        goto err;

    const poh_family_desc_t *m = poh_grpc_metrics;
    poh_family_t *f_req = poh_registry_family_desc(persist, &m[POH_GRPC_M_REQUESTS]);
    poh_family_t *f_ack = poh_registry_family_desc(persist, &m[POH_GRPC_M_ACK]);
    poh_family_t *f_lat = poh_registry_family_desc(persist, &m[POH_GRPC_M_LATENCY]);
    c->f_failures = poh_registry_family_desc(persist, &m[POH_GRPC_M_FAILURES]);
    c->f_field_errors = poh_registry_family_desc(persist, &m[POH_GRPC_M_FIELD_ERRORS]);
    if (!f_req || !f_ack || !f_lat || !c->f_failures || !c->f_field_errors)
        goto err;

    c->targets = calloc(g->targets_count, sizeof *c->targets);
    c->ncalls = g->targets_count * (c->state_method ? 2 : 1);
    if (!c->targets)
        goto err;
    for (; c->ntargets < g->targets_count; c->ntargets++) {
        if (target_init(c, &c->targets[c->ntargets], g->targets[c->ntargets], f_req, f_ack,
                        f_lat) < 0) {
            c->ntargets++;
            goto err;
        }
    }
    return c;
err:
    collector_free(c);
    return NULL;
}

/* The calls of one probe of target t into calls[0..1]; returns how many. */
static size_t fill_calls(const grpc_collector_t *c, poh_grpc_target_t *t, poh_grpc_call_t *calls)
{
    calls[0] = (poh_grpc_call_t){.target = t, .method = POH_GRPC_HEALTH_CHECK_METHOD,
                                 .request = c->health_req, .request_len = c->health_req_len,
                                 .metadata = c->md, .nmetadata = c->nmd, .timeout = c->timeout,
                                 .health = true};
    if (!c->state_method)
        return 1;
    calls[1] = (poh_grpc_call_t){.target = t, .method = c->state_method, .request = c->state_req,
                                 .request_len = c->state_req_len, .metadata = c->md,
                                 .nmetadata = c->nmd, .timeout = c->timeout};
    return 2;
}

/* Index into the failure code labels, or -1 when the call is an ack. */
static int failure_code(const poh_grpc_call_t *call)
{
    if (call->code != 0)
        return call->code >= 0 && call->code < 17 ? call->code : 2; /* UNKNOWN */
    if (!call->health)
        return -1;
    if (call->serving_status == POH_GRPC_SERVING_SERVING)
        return -1;
    return call->serving_status == POH_GRPC_SERVING_INVALID ? CODE_INVALID_RESPONSE
                                                             : CODE_NOT_SERVING;
}

static const char *code_label(int code)
{
    return code == CODE_NOT_SERVING        ? "NOT_SERVING"
           : code == CODE_INVALID_RESPONSE ? "INVALID_RESPONSE"
                                           : poh_grpc_code_name(code);
}

static double run_deadline(double deadline)
{
    double margin = (deadline - poh_now_mono()) * 0.1;
    if (margin > MARGIN_MAX_S)
        margin = MARGIN_MAX_S;
    return margin > 0 ? deadline - margin : deadline;
}

/* The CLIENT span of one call: started before the run so that its
 * traceparent travels with the call, ended with the call's own latency. */
typedef struct call_span {
    poh_span_t *span;
    uint64_t t0;
    char traceparent[POH_TRACEPARENT_LEN + 1];
} call_span_t;

static void spans_start(const poh_trace_parent_t *parent, const char *address,
                        poh_grpc_call_t *calls, size_t n, call_span_t *cs)
{
    if (!cs)
        return;
    /* "host:port" or "[v6]:port" */
    const char *colon = strrchr(address, ':');
    size_t hlen = colon ? (size_t)(colon - address) : strlen(address);
    const char *host = address;
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    for (size_t i = 0; i < n; i++) {
        const char *m = calls[i].method;
        cs[i].span = poh_span_start_child(parent, m + 1, POH_SPAN_KIND_CLIENT);
        if (!cs[i].span)
            continue;
        const char *slash = strrchr(m, '/');
        char svc[256], hbuf[256];
        snprintf(svc, sizeof svc, "%.*s", slash > m ? (int)(slash - m - 1) : 0, m + 1);
        snprintf(hbuf, sizeof hbuf, "%.*s", (int)hlen, host);
        poh_span_set_str(cs[i].span, "rpc.system", "grpc");
        poh_span_set_str(cs[i].span, "rpc.service", svc);
        poh_span_set_str(cs[i].span, "rpc.method", slash ? slash + 1 : m);
        poh_span_set_str(cs[i].span, "server.address", hbuf);
        if (colon)
            poh_span_set_int(cs[i].span, "server.port", strtol(colon + 1, NULL, 10));
        if (poh_span_traceparent(cs[i].span, cs[i].traceparent, sizeof cs[i].traceparent) > 0)
            calls[i].traceparent = cs[i].traceparent;
        cs[i].t0 = poh_trace_now_unix_ns();
    }
}

static void span_end(call_span_t *cs, const poh_grpc_call_t *call)
{
    if (!cs || !cs->span)
        return;
    poh_span_set_int(cs->span, "rpc.grpc.status_code", call->code);
    int code = failure_code(call);
    if (code >= 0)
        poh_span_set_status(cs->span, POH_SPAN_STATUS_ERROR, code_label(code));
    poh_span_end_at(cs->span, cs->t0 + (uint64_t)(call->latency * 1e9));
    cs->span = NULL;
}

/* Latency with the call's span as exemplar when it is sampled. */
static void observe_latency(poh_series_t *h, double latency, const call_span_t *cs)
{
    char tid[POH_TRACE_ID_HEX_LEN + 1], sid[POH_SPAN_ID_HEX_LEN + 1];
    if (cs && cs->span && poh_span_trace_id_hex(cs->span, tid) == 0) {
        poh_hex_encode(poh_span_context(cs->span)->span_id, 8, sid);
        poh_histogram_observe_exemplar(h, latency, tid, sid, poh_now_real());
    } else {
        poh_histogram_observe(h, latency);
    }
}

/* Counters of one call (and the end of its span); returns true for an ack. */
static bool account(grpc_collector_t *c, gtarget_t *t, method_series_t *ms,
                    const poh_grpc_call_t *call, call_span_t *cs)
{
    poh_counter_inc(ms->requests);
    if (call->latency > 0)
        observe_latency(ms->latency, call->latency, cs);
    span_end(cs, call);
    int code = failure_code(call);
    if (code < 0) {
        poh_counter_inc(ms->ack);
        return true;
    }
    if (!ms->failures[code]) {
        const char *lv[] = {c->group, t->address, ms->method, code_label(code)};
        ms->failures[code] = poh_family_series(c->f_failures, lv);
    }
    poh_counter_inc(ms->failures[code]);
    return false;
}

static int reason_index(int err)
{
    switch (err) {
    case POH_PB_EMISSING: return 0;
    case POH_PB_EWIRETYPE: return 1;
    case POH_PB_ETRUNCATED: return 2;
    default: return 3;
    }
}

/* State gauges from a successful state reply. labels/values: nl of them.
 * With t, unreadable fields are counted against it. */
static void write_fields(grpc_collector_t *c, const poh_grpc_call_t *call, poh_registry_t *out,
                         size_t nl, const char *const *lnames, const char *const *lvals,
                         gtarget_t *t)
{
    for (size_t i = 0; i < c->nfields; i++) {
        const field_t *f = &c->fields[i];
        poh_pb_value_t v;
        int err = poh_pb_read(call->response, call->response_len, &f->path, f->type, &v);
        if (err == 0) {
            poh_family_t *fam =
                poh_registry_family(out, POH_GAUGE, f->metric, f->help, nl, lnames, NULL, 0);
            if (fam)
                poh_gauge_set(poh_family_series(fam, lvals), poh_pb_value_double(&v));
            continue;
        }
        if (!t)
            continue;
        int r = reason_index(err);
        poh_series_t **s = &t->field_errors[i * NREASONS + (size_t)r];
        if (!*s) {
            const char *lv[] = {c->group, t->address, f->metric, field_error_reasons[r]};
            *s = poh_family_series(c->f_field_errors, lv);
        }
        poh_counter_inc(*s);
    }
}

static void set_status(grpc_collector_t *c, gtarget_t *t, const poh_grpc_call_t *calls,
                       size_t n)
{
    target_status_t st = {.ran = true, .latency = calls[0].latency};
    snprintf(st.result, sizeof st.result, "%s", "SERVING");
    for (size_t i = 0; i < n; i++) {
        int code = failure_code(&calls[i]);
        if (code < 0)
            continue;
        snprintf(st.result, sizeof st.result, "%s", code_label(code));
        snprintf(st.error, sizeof st.error, "%s: %s", calls[i].method,
                 calls[i].details[0] ? calls[i].details
                                     : poh_grpc_serving_status_name(calls[i].serving_status));
        break;
    }
    pthread_mutex_lock(&c->mu);
    t->status = st;
    pthread_mutex_unlock(&c->mu);
}

static int grpc_collect(void *state, poh_scrape_t *sc)
{
    grpc_collector_t *c = state;
    size_t per = c->state_method ? 2 : 1;
    /* The calls live for this scrape only (about 340 bytes each: not worth
     * keeping between scrapes at 1,000 targets). */
    poh_grpc_call_t *all = calloc(c->ncalls, sizeof *all);
    if (!all)
        return -ENOMEM;
    call_span_t *cs = sc->trace.tracer ? calloc(c->ncalls, sizeof *cs) : NULL;
    for (size_t i = 0; i < c->ntargets; i++) {
        fill_calls(c, c->targets[i].t, &all[i * per]);
        spans_start(&sc->trace, c->targets[i].address, &all[i * per], per,
                    cs ? &cs[i * per] : NULL);
    }
    int rc = poh_grpc_run_window(all, c->ncalls, run_deadline(sc->deadline), c->window);
    if (rc < 0)
        goto out;

    poh_family_t *f_success =
        poh_registry_family_desc(sc->out, &poh_grpc_metrics[POH_GRPC_M_SUCCESS]);
    poh_family_t *f_health = poh_registry_family_desc(sc->out, &poh_grpc_metrics[POH_GRPC_M_HEALTH]);
    rc = -ENOMEM;
    if (!f_success || !f_health)
        goto out;
    for (size_t i = 0; i < c->ntargets; i++) {
        gtarget_t *t = &c->targets[i];
        poh_grpc_call_t *calls = &all[i * per];
        bool ok = account(c, t, &t->health, &calls[0], cs ? &cs[i * per] : NULL);
        if (c->state_method) {
            bool sok = account(c, t, &t->state, &calls[1], cs ? &cs[i * per + 1] : NULL);
            if (sok)
                write_fields(c, &calls[1], sc->out, 2, l_gt,
                             (const char *const[]){c->group, t->address}, t);
            ok = ok && sok;
        }
        const char *lv[] = {c->group, t->address};
        poh_gauge_set(poh_family_series(f_success, lv), ok ? 1 : 0);
        for (int s = 0; s < NSTATUSES; s++) {
            const char *hv[] = {c->group, t->address, health_statuses[s]};
            poh_gauge_set(poh_family_series(f_health, hv), calls[0].serving_status == s ? 1 : 0);
        }
        set_status(c, t, calls, per);
    }
    rc = 0;
out:
    for (size_t i = 0; i < c->ncalls; i++) {
        if (cs)
            span_end(&cs[i], &all[i]); /* spans not ended above (error paths) */
        poh_grpc_call_clear(&all[i]);
    }
    free(cs);
    free(all);
    return rc;
}

/* Whether /probe may reach target, a host:port not among the group's
 * targets, and where: *to gets the address to connect to. A name allowed
 * by a host-name pattern is probed as it is; any other host is resolved
 * here, once, and probed at the first of its addresses that lies in an
 * allowed network (IP:port), so the name cannot point elsewhere between
 * the check and the connection. -EACCES when nothing allows it. */
static int probe_allowed(const grpc_collector_t *c, const char *target, char *to, size_t tolen,
                         char *host, size_t hostlen, const char **by)
{
    char port[8];
    if (!poh_grpc_split_host_port(target, host, hostlen, port, sizeof port))
        return -EINVAL;
    for (size_t i = 0; i < c->nallow; i++)
        if (poh_netpattern_match_host(&c->allow[i], host)) {
            snprintf(to, tolen, "%s", target);
            *by = c->allow_src[i];
            return 0;
        }
    bool cidrs = false;
    for (size_t i = 0; i < c->nallow; i++)
        cidrs |= c->allow[i].cidr;
    if (!cidrs)
        return -EACCES;
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -EACCES; /* nothing to check it against */
    int rc = -EACCES;
    for (const struct addrinfo *a = ai; a && rc < 0; a = a->ai_next)
        for (size_t i = 0; i < c->nallow && rc < 0; i++) {
            if (!poh_netpattern_match_addr(&c->allow[i], a->ai_addr))
                continue;
            char ip[INET6_ADDRSTRLEN];
            const void *bin = a->ai_family == AF_INET6
                                  ? (const void *)&((struct sockaddr_in6 *)(void *)a->ai_addr)->sin6_addr
                                  : (const void *)&((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr;
            if (!inet_ntop(a->ai_family, bin, ip, sizeof ip))
                continue;
            snprintf(to, tolen, a->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", ip, port);
            *by = c->allow_src[i];
            rc = 0;
        }
    freeaddrinfo(ai);
    return rc;
}

/* A line of a /probe?debug=true log, logfmt as blackbox_exporter's. */
__attribute__((format(printf, 2, 3))) static void dlog(poh_scrape_t *sc, const char *fmt, ...)
{
    if (!sc->debug_log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '"')
            *p = '\'';
    double now = poh_now_real();
    time_t secs = (time_t)now;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    poh_strbuf_printf(sc->debug_log, "ts=%s.%03dZ level=info msg=\"%s\"\n", ts,
                      (int)((now - (double)secs) * 1000), msg);
}

/* The module's settings for /probe?debug=true: never a metadata value. */
static void describe_module(const grpc_collector_t *c, poh_strbuf_t *out)
{
    if (!out)
        return;
    poh_strbuf_printf(out, "prober: grpc\nmodule: %s\ntimeout: %gs\nmax_reply_size: %zu\n",
                      c->group, c->timeout, c->max_reply);
    poh_strbuf_printf(out, "state_method: %s\ntls: %s\n",
                      c->state_method ? c->state_method : "(none)", c->use_tls ? "on" : "off");
    poh_strbuf_puts(out, "metadata:");
    for (size_t i = 0; i < c->nmd; i++)
        poh_strbuf_printf(out, " %s=<secret>", c->md[i].key);
    poh_strbuf_printf(out, "\ntargets: %zu listed\nprobe.allow:", c->ntargets);
    for (size_t i = 0; i < c->nallow; i++)
        poh_strbuf_printf(out, " %s", c->allow_src[i]);
    poh_strbuf_printf(out, "\nprobe.send_credentials: %s\n",
                      c->send_credentials ? "true" : "false");
}

/* The /probe metrics of the n calls of one probe (poh_grpc_probe_metrics),
 * and the state gauges. 0 or -ENOMEM. */
static int probe_write(grpc_collector_t *c, poh_scrape_t *sc, const poh_grpc_call_t *calls,
                       size_t n, double took)
{
    const poh_family_desc_t *pm = poh_grpc_probe_metrics;
    poh_family_t *f_success = poh_registry_family_desc(sc->out, &pm[POH_GRPC_P_SUCCESS]);
    poh_family_t *f_dur = poh_registry_family_desc(sc->out, &pm[POH_GRPC_P_DURATION]);
    poh_family_t *f_code = poh_registry_family_desc(sc->out, &pm[POH_GRPC_P_CODE]);
    poh_family_t *f_health = poh_registry_family_desc(sc->out, &pm[POH_GRPC_P_HEALTH]);
    if (!f_success || !f_dur || !f_code || !f_health)
        return -ENOMEM;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        ok = ok && failure_code(&calls[i]) < 0;
        const char *mv[] = {calls[i].method};
        poh_gauge_set(poh_family_series(f_code, mv), calls[i].code);
    }
    for (int s = 0; s < NSTATUSES; s++) {
        const char *sv[] = {health_statuses[s]};
        poh_gauge_set(poh_family_series(f_health, sv), calls[0].serving_status == s ? 1 : 0);
    }
    if (n == 2 && calls[1].code == 0)
        write_fields(c, &calls[1], sc->out, 0, NULL, NULL, NULL);
    poh_gauge_set(poh_family_series(f_success, NULL), ok ? 1 : 0);
    poh_gauge_set(poh_family_series(f_dur, NULL), took);
    dlog(sc, "Probe %s in %.3f s", ok ? "succeeded" : "failed", took);
    return 0;
}

static int grpc_probe(void *state, const char *module, const char *target, poh_scrape_t *sc)
{
    grpc_collector_t *c = state;
    if (!module || strcmp(module, c->group) != 0)
        return -ENOENT;
    if (!target || poh_grpc_address_problem(target))
        return -EINVAL;
    /* A configured target reuses its channel. Any other must be allowed
     * (probe.allow) and gets a fresh channel, closed afterwards, so /probe
     * can neither be aimed at the network nor grow the kept channels; it
     * gets the group's metadata and client certificate only with
     * probe.send_credentials. */
    poh_grpc_target_t *t = NULL, *own = NULL;
    for (size_t i = 0; i < c->ntargets && !t; i++)
        if (strcmp(c->targets[i].address, target) == 0)
            t = c->targets[i].t;
    bool creds = true;
    describe_module(c, sc->debug_module);
    dlog(sc, "Beginning probe of %s with module %s, timeout %gs", target, module, c->timeout);
    if (t)
        dlog(sc, "%s is one of the group's targets: its kept connection is used", target);
    if (!t) {
        char to[300], host[256];
        const char *by = NULL;
        int rc = probe_allowed(c, target, to, sizeof to, host, sizeof host, &by);
        if (rc < 0)
            return rc;
        dlog(sc, "%s is allowed by probe.allow entry %s: connecting to %s, %s", target, by, to,
             c->send_credentials ? "with the group's metadata and client certificate"
                                 : "without the group's metadata and client certificate");
        creds = c->send_credentials;
        poh_grpc_tls_t tls = c->tls;
        if (!creds)
            tls.cert_file = tls.key_file = NULL;
        if (!tls.server_name && strcmp(to, target) != 0)
            tls.server_name = host; /* pinned to an address: verify the name asked for */
        if (!(t = own = poh_grpc_target_new(to, c->use_tls ? &tls : NULL, c->max_reply,
                                            c->state_method ? 2 : 1)))
            return -ENOMEM;
    }
    poh_grpc_call_t calls[2];
    call_span_t cs[2] = {0};
    size_t n = fill_calls(c, t, calls);
    for (size_t i = 0; i < n && !creds; i++) {
        calls[i].metadata = NULL;
        calls[i].nmetadata = 0;
    }
    spans_start(&sc->trace, target, calls, n, cs);
    double t0 = poh_now_mono();
    int rc = poh_grpc_run(calls, n, run_deadline(sc->deadline));
    double took = poh_now_mono() - t0;
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        dlog(sc, "%s: %s (%d) after %.3f ms%s%s%s%s", calls[i].method,
             poh_grpc_code_name(calls[i].code), calls[i].code, calls[i].latency * 1e3,
             calls[i].details[0] ? ": " : "", calls[i].details,
             calls[i].health && calls[i].code == 0 ? ", serving status " : "",
             calls[i].health && calls[i].code == 0
                 ? poh_grpc_serving_status_name(calls[i].serving_status)
                 : "");
    rc = probe_write(c, sc, calls, n, took);
out:
    for (size_t i = 0; i < n; i++) {
        span_end(&cs[i], &calls[i]);
        poh_grpc_call_clear(&calls[i]);
    }
    poh_grpc_target_free(own);
    return rc;
}

static void grpc_status(void *state, poh_status_rows_t *rows)
{
    grpc_collector_t *c = state;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->ntargets; i++) {
        const gtarget_t *t = &c->targets[i];
        poh_status_text_t text = {
            .kind = "grpc",
            .name = c->group,
            .target = t->address,
            .result = t->status.result,
            .error = t->status.error,
        };
        poh_status_rows_add(rows, &text,
                            t->status.ran ? POH_STATUS_LATENCY_MS : POH_STATUS_LATENCY_NONE,
                            t->status.latency);
    }
    pthread_mutex_unlock(&c->mu);
}

const poh_collector_ops_t poh_grpc_collector_ops = {
    .kind = "grpc",
    .collect = grpc_collect,
    .destroy = grpc_destroy,
    .status = grpc_status,
    .probe = grpc_probe,
    .bounded = true, /* poh_grpc_run() ends every call by its deadline */
};

/* Every target holds a connection: make room for them under RLIMIT_NOFILE. */
static void ensure_fd_room(size_t targets)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)targets + FD_HEADROOM;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        POH_INFO("grpc", "raised the open file limit from %llu to %llu for %zu targets",
                 (unsigned long long)old, (unsigned long long)rl.rlim_cur, targets);
    if (rl.rlim_cur < want)
        POH_WARN("grpc", "open file limit %llu is low for %zu targets",
                 (unsigned long long)rl.rlim_cur, targets);
}

/* Persistent series labelled group+target are kept while confs probe that
 * target in that group. */
static bool grpc_series_keep(const void *confs, size_t nconfs, const char *family,
                             const char *const *names, const char *const *values, size_t n)
{
    (void)family;
    const char *group = poh_label_value(names, values, n, "group");
    const char *target = poh_label_value(names, values, n, "target");
    if (!group || !target)
        return true;
    for (size_t i = 0; i < nconfs; i++) {
        const poh_config_grpc_group_t *g = (const poh_config_grpc_group_t *)confs + i;
        if (strcmp(g->name, group) != 0)
            continue;
        for (size_t k = 0; k < g->targets_count; k++)
            if (strcmp(g->targets[k], target) == 0)
                return true;
    }
    return false;
}

static int grpc_kind_create(const poh_config_t *cfg, const void *confs, size_t ngroups,
                            const poh_collector_env_t *env, poh_collector_list_t *list)
{
    const poh_config_grpc_group_t *groups = confs;
    size_t total = 0;
    for (size_t i = 0; i < ngroups; i++)
        total += groups[i].targets_count;
    if (total)
        ensure_fd_room(total);
    /* Half of the buffer limit is for calls in flight, shared evenly by the
     * groups (they run at the same time). */
    size_t window = ngroups ? cfg->memory.buffer_limit / 2 / CALL_BYTES / ngroups : 0;
    if (window < MIN_WINDOW)
        window = MIN_WINDOW;
    for (size_t i = 0; i < ngroups; i++) {
        const poh_config_grpc_group_t *g = &groups[i];
        grpc_collector_t *c = collector_new(g, env->persistent);
        if (!c) {
            POH_ERROR("grpc", "cannot create the collector of group %s", g->name);
            return -ENOMEM;
        }
        c->window = window;
        char name[96];
        snprintf(name, sizeof name, "grpc/%s", g->name);
        int rc = poh_collector_list_push(list, &poh_grpc_collector_ops, c, name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int poh_grpc_collectors_create(const poh_config_t *cfg, const poh_collector_env_t *env,
                               poh_collector_list_t *list)
{
    return grpc_kind_create(cfg, cfg->grpc, cfg->grpc_count, env, list);
}

/* A group's checks (grpc_schema.c, which refuses the grpc collector's own
 * names), then its state gauges' names against every other fixed metric
 * table of the exporter (mongodb's, the self collector's). */
static int validate_group(poh_cfg_ctx_t *ctx, void *obj)
{
    int rc = poh_cfg_grpc_validate(ctx, obj);
    const poh_config_grpc_group_t *g = obj;
    for (size_t i = 0; i < g->state.fields_count; i++) {
        const char *kind = NULL, *name = g->state.fields[i].metric;
        const poh_family_desc_t *d = name ? poh_collector_fixed_clash(POH_GAUGE, name, &kind) : NULL;
        if (d && strcmp(kind, "grpc")) {
            poh_cfg_error(ctx, "state", "gauge %s clashes with %s of the %s collector", name,
                          d->name, kind);
            rc = -EINVAL;
        }
    }
    return rc;
}

const poh_cfg_section_t poh_cfg_grpc_section = {sizeof(poh_config_grpc_group_t),
                                                poh_cfg_grpc_entries, validate_group, NULL};

const poh_collector_kind_t poh_grpc_kind = {
    .name = "grpc",
    .section = &poh_cfg_grpc_section,
    .conf_size = sizeof(poh_config_grpc_group_t),
    .create = grpc_kind_create,
    .keep = grpc_series_keep,
    .ops = &poh_grpc_collector_ops,
    .metrics = (const poh_collector_metrics_t[]){{"/metrics", poh_grpc_metrics},
                                                 {"/probe", poh_grpc_probe_metrics},
                                                 {NULL, NULL}},
};
