/* SPDX-License-Identifier: Apache-2.0 */
/* OTLP messages: ExportTraceServiceRequest encoding with protobuf-c, the
 * response's partial_success, and RetryInfo from gRPC status details. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "trace/trace_internal.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any_t;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span_t;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status_t;

/* Span.flags bits (SpanFlags in trace.proto). */
#define FLAG_HAS_IS_REMOTE 0x100u
#define FLAG_IS_REMOTE 0x200u

struct poh_otlp_encoder {
    /* Fixed part: resource and scope, built once. */
    poh_config_kv_t *res;
    size_t nres;
    pb_kv_t *res_kv;
    pb_any_t *res_av;
    pb_kv_t **res_kvp;
    char *scope_name;
    char *scope_version;
    Opentelemetry__Proto__Resource__V1__Resource resource;
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope;
    Opentelemetry__Proto__Trace__V1__ScopeSpans scope_spans;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *scope_spans_p;
    Opentelemetry__Proto__Trace__V1__ResourceSpans resource_spans;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *resource_spans_p;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
    /* Per-batch scratch, grown on demand and reused. */
    pb_span_t *spans;
    pb_span_t **spans_p;
    pb_status_t *status;
    size_t span_cap;
    pb_kv_t *kv;
    pb_kv_t **kv_p;
    pb_any_t *av;
    size_t kv_cap;
    uint8_t *buf;
    size_t buf_cap;
};

void poh_otlp_encoder_free(poh_otlp_encoder_t *e)
{
    if (!e)
        return;
    poh_trace_kv_free(e->res, e->nres);
    free(e->res_kv);
    free(e->res_av);
    free(e->res_kvp);
    free(e->scope_name);
    free(e->scope_version);
    free(e->spans);
    free(e->spans_p);
    free(e->status);
    free(e->kv);
    free(e->kv_p);
    free(e->av);
    free(e->buf);
    free(e);
}

poh_otlp_encoder_t *poh_otlp_encoder_new(const poh_config_kv_t *resource, size_t nresource,
                                         const char *scope_name, const char *scope_version)
{
    poh_otlp_encoder_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    for (size_t i = 0; i < nresource; i++)
        if (poh_trace_kv_set(&e->res, &e->nres, resource[i].key, resource[i].value) < 0)
            goto err;
    e->scope_name = strdup(scope_name ? scope_name : "");
    e->scope_version = strdup(scope_version ? scope_version : "");
    if (!e->scope_name || !e->scope_version)
        goto err;
    if (e->nres) {
        e->res_kv = calloc(e->nres, sizeof *e->res_kv);
        e->res_av = calloc(e->nres, sizeof *e->res_av);
        e->res_kvp = calloc(e->nres, sizeof *e->res_kvp);
        if (!e->res_kv || !e->res_av || !e->res_kvp)
            goto err;
    }
    for (size_t i = 0; i < e->nres; i++) {
        opentelemetry__proto__common__v1__key_value__init(&e->res_kv[i]);
        opentelemetry__proto__common__v1__any_value__init(&e->res_av[i]);
        e->res_av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        e->res_av[i].string_value = e->res[i].value;
        e->res_kv[i].key = e->res[i].key;
        e->res_kv[i].value = &e->res_av[i];
        e->res_kvp[i] = &e->res_kv[i];
    }
    opentelemetry__proto__resource__v1__resource__init(&e->resource);
    e->resource.n_attributes = e->nres;
    e->resource.attributes = e->res_kvp;
    opentelemetry__proto__common__v1__instrumentation_scope__init(&e->scope);
    e->scope.name = e->scope_name;
    e->scope.version = e->scope_version;
    opentelemetry__proto__trace__v1__scope_spans__init(&e->scope_spans);
    e->scope_spans.scope = &e->scope;
    e->scope_spans_p = &e->scope_spans;
    opentelemetry__proto__trace__v1__resource_spans__init(&e->resource_spans);
    e->resource_spans.resource = &e->resource;
    e->resource_spans.n_scope_spans = 1;
    e->resource_spans.scope_spans = &e->scope_spans_p;
    e->resource_spans_p = &e->resource_spans;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&e->req);
    e->req.n_resource_spans = 1;
    e->req.resource_spans = &e->resource_spans_p;
    return e;
err:
    poh_otlp_encoder_free(e);
    return NULL;
}

static int grow(void **p, size_t elem, size_t n)
{
    void *q = realloc(*p, elem * n);
    if (!q)
        return -ENOMEM;
    *p = q;
    return 0;
}

static int reserve(poh_otlp_encoder_t *e, size_t nspans, size_t nattrs)
{
    if (nspans > e->span_cap) {
        size_t cap = nspans < 64 ? 64 : nspans;
        if (grow((void **)&e->spans, sizeof *e->spans, cap) < 0 ||
            grow((void **)&e->spans_p, sizeof *e->spans_p, cap) < 0 ||
            grow((void **)&e->status, sizeof *e->status, cap) < 0)
            return -ENOMEM;
        e->span_cap = cap;
    }
    if (nattrs > e->kv_cap) {
        size_t cap = nattrs < 256 ? 256 : nattrs;
        if (grow((void **)&e->kv, sizeof *e->kv, cap) < 0 ||
            grow((void **)&e->kv_p, sizeof *e->kv_p, cap) < 0 ||
            grow((void **)&e->av, sizeof *e->av, cap) < 0)
            return -ENOMEM;
        e->kv_cap = cap;
    }
    return 0;
}

static void fill_attr(const poh_span_t *s, const poh_attr_t *a, pb_kv_t *kv, pb_any_t *av)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    kv->key = (char *)poh_span_text(s, a->key);
    kv->value = av;
    switch (a->type) {
    case POH_ATTR_STR:
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        av->string_value = (char *)poh_span_text(s, a->v.s);
        break;
    case POH_ATTR_INT:
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        av->int_value = a->v.i;
        break;
    case POH_ATTR_DOUBLE:
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        av->double_value = a->v.d;
        break;
    case POH_ATTR_BOOL:
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        av->bool_value = a->v.b;
        break;
    default:
        break; /* empty AnyValue */
    }
}

int poh_otlp_encode(poh_otlp_encoder_t *e, poh_span_t *const *spans, size_t n,
                    const uint8_t **out, size_t *len)
{
    size_t nattrs = 0;
    for (size_t i = 0; i < n; i++)
        nattrs += spans[i]->nattrs;
    if (reserve(e, n, nattrs) < 0)
        return -ENOMEM;

    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        poh_span_t *s = spans[i];
        pb_span_t *p = &e->spans[i];
        opentelemetry__proto__trace__v1__span__init(p);
        p->trace_id.len = 16;
        p->trace_id.data = s->ctx.trace_id;
        p->span_id.len = 8;
        p->span_id.data = s->ctx.span_id;
        if (s->has_parent) {
            p->parent_span_id.len = 8;
            p->parent_span_id.data = s->parent_span_id;
        }
        p->flags = (uint32_t)s->ctx.flags | FLAG_HAS_IS_REMOTE |
                   (s->has_parent && s->parent_remote ? FLAG_IS_REMOTE : 0);
        p->name = (char *)poh_span_text(s, s->name);
        p->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
        p->start_time_unix_nano = s->start_ns;
        p->end_time_unix_nano = s->end_ns;
        p->n_attributes = s->nattrs;
        p->attributes = &e->kv_p[k];
        p->dropped_attributes_count = s->dropped_attrs;
        for (uint16_t j = 0; j < s->nattrs; j++, k++) {
            fill_attr(s, &s->attrs[j], &e->kv[k], &e->av[k]);
            e->kv_p[k] = &e->kv[k];
        }
        if (s->status != POH_SPAN_STATUS_UNSET) {
            pb_status_t *st = &e->status[i];
            opentelemetry__proto__trace__v1__status__init(st);
            st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
            st->message = (char *)poh_span_text(s, s->status_message);
            p->status = st;
        }
        e->spans_p[i] = p;
    }
    e->scope_spans.n_spans = n;
    e->scope_spans.spans = e->spans_p;

    size_t size = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&e->req);
    if (size > e->buf_cap) {
        size_t cap = e->buf_cap ? e->buf_cap : 4096;
        while (cap < size)
            cap *= 2;
        if (grow((void **)&e->buf, 1, cap) < 0)
            return -ENOMEM;
        e->buf_cap = cap;
    }
    *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&e->req, e->buf);
    *out = e->buf;
    /* The scratch points into the spans; forget it so nothing dangles. */
    e->scope_spans.n_spans = 0;
    e->scope_spans.spans = NULL;
    return 0;
}

int poh_otlp_decode_response(const uint8_t *buf, size_t len, int64_t *rejected,
                             poh_strbuf_t *msg)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, len, buf);
    *rejected = 0;
    if (!r)
        return -EBADMSG;
    if (r->partial_success) {
        *rejected = r->partial_success->rejected_spans;
        if (msg && r->partial_success->error_message)
            poh_strbuf_puts(msg, r->partial_success->error_message);
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r, NULL);
    return 0;
}

/* Minimal protobuf wire reading for the three tiny google.rpc messages. */
typedef struct {
    const uint8_t *p, *end;
} rd_t;

static int rd_varint(rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -EBADMSG;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -EBADMSG;
}

/* Next field: number, wire type, and for LEN fields the payload. */
static int rd_field(rd_t *r, uint32_t *num, int *wt, rd_t *payload, uint64_t *val)
{
    uint64_t tag;
    if (rd_varint(r, &tag) < 0)
        return -EBADMSG;
    *num = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    if (*num == 0)
        return -EBADMSG;
    switch (*wt) {
    case 0:
        return rd_varint(r, val);
    case 1:
    case 5: {
        size_t n = *wt == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return -EBADMSG;
        r->p += n;
        return 0;
    }
    case 2: {
        uint64_t n;
        if (rd_varint(r, &n) < 0 || n > (uint64_t)(r->end - r->p))
            return -EBADMSG;
        payload->p = r->p;
        payload->end = r->p + n;
        r->p += n;
        return 0;
    }
    default:
        return -EBADMSG; /* groups do not occur in these messages */
    }
}

static int parse_duration(rd_t d, double *out)
{
    int64_t secs = 0, nanos = 0;
    while (d.p < d.end) {
        uint32_t num;
        int wt;
        rd_t pl;
        uint64_t v = 0;
        if (rd_field(&d, &num, &wt, &pl, &v) < 0)
            return -EBADMSG;
        if (num == 1 && wt == 0)
            secs = (int64_t)v;
        else if (num == 2 && wt == 0)
            nanos = (int32_t)(uint32_t)v;
    }
    double s = (double)secs + (double)nanos / 1e9;
    *out = s < 0 ? 0 : s;
    return 0;
}

int poh_otlp_retry_info(const uint8_t *buf, size_t len, double *delay)
{
    static const char suffix[] = "/google.rpc.RetryInfo";
    rd_t st = {buf, buf + len};
    int found = -ENOENT;

    while (st.p < st.end) {
        uint32_t num;
        int wt;
        rd_t any = {NULL, NULL};
        uint64_t v;
        if (rd_field(&st, &num, &wt, &any, &v) < 0)
            return -EBADMSG;
        if (num != 3 || wt != 2) /* google.rpc.Status.details */
            continue;
        rd_t type_url = {NULL, NULL}, value = {NULL, NULL};
        while (any.p < any.end) {
            rd_t pl = {NULL, NULL};
            if (rd_field(&any, &num, &wt, &pl, &v) < 0)
                return -EBADMSG;
            if (num == 1 && wt == 2)
                type_url = pl;
            else if (num == 2 && wt == 2)
                value = pl;
        }
        size_t tl = type_url.p ? (size_t)(type_url.end - type_url.p) : 0;
        if (tl < sizeof suffix - 1 ||
            memcmp(type_url.end - (sizeof suffix - 1), suffix, sizeof suffix - 1) != 0)
            continue;
        double d = 0;
        while (value.p && value.p < value.end) {
            rd_t pl = {NULL, NULL};
            if (rd_field(&value, &num, &wt, &pl, &v) < 0)
                return -EBADMSG;
            if (num == 1 && wt == 2 && parse_duration(pl, &d) < 0) /* retry_delay */
                return -EBADMSG;
        }
        *delay = d;
        found = 0;
    }
    return found;
}

bool poh_otlp_retryable(int code, bool has_retry_info)
{
    switch (code) {
    case 1:  /* CANCELLED */
    case 4:  /* DEADLINE_EXCEEDED */
    case 10: /* ABORTED */
    case 11: /* OUT_OF_RANGE */
    case 14: /* UNAVAILABLE */
    case 15: /* DATA_LOSS */
        return true;
    case 8: /* RESOURCE_EXHAUSTED: only when the server says when to come back */
        return has_retry_info;
    default:
        return false;
    }
}
