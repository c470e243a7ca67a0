/* SPDX-License-Identifier: Apache-2.0 */
/* OTLP encoding round trip through protobuf-c, span attribute rules,
 * partial_success and RetryInfo decoding, the retry policy table. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "trace/trace_internal.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;
typedef Opentelemetry__Proto__Trace__V1__Span pbspan_t;

static req_t *round_trip(poh_span_t **spans, size_t n, const poh_config_kv_t *res, size_t nres)
{
    poh_otlp_encoder_t *e = poh_otlp_encoder_new(res, nres, "poh_exporter", "1.2.3");
    ck_assert_ptr_nonnull(e);
    const uint8_t *buf;
    size_t len;
    ck_assert_int_eq(poh_otlp_encode(e, spans, n, &buf, &len), 0);
    req_t *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, len, buf);
    ck_assert_ptr_nonnull(r);
    poh_otlp_encoder_free(e);
    return r;
}

static const Opentelemetry__Proto__Common__V1__AnyValue *attr(const pbspan_t *s, const char *k)
{
    for (size_t i = 0; i < s->n_attributes; i++)
        if (strcmp(s->attributes[i]->key, k) == 0)
            return s->attributes[i]->value;
    return NULL;
}

START_TEST(test_round_trip_all_fields)
{
    poh_span_context_t parent;
    ck_assert_int_eq(poh_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                           55, &parent), 0);
    poh_span_t *a = poh_span_new_detached("grpc.health.v1.Health/Check", POH_SPAN_KIND_CLIENT,
                                          &parent, 1700000000000000000ull);
    poh_span_set_str(a, "rpc.system", "grpc");
    poh_span_set_int(a, "server.port", 50051);
    poh_span_set_int(a, "big", INT64_MIN);
    poh_span_set_double(a, "ratio", 0.25);
    poh_span_set_bool(a, "ok", false);
    poh_span_set_status(a, POH_SPAN_STATUS_ERROR, "NOT_SERVING");
    poh_span_finish_detached(a, 1700000000250000000ull);

    poh_span_t *b = poh_span_new_detached("scrape", POH_SPAN_KIND_SERVER, NULL, 0);
    poh_span_set_status(b, POH_SPAN_STATUS_OK, "ignored for OK");
    poh_span_finish_detached(b, 0);

    poh_config_kv_t res[] = {{"service.name", "poh-exporter"}, {"host.name", "h1"}};
    poh_span_t *spans[] = {a, b};
    req_t *r = round_trip(spans, 2, res, 2);

    ck_assert_uint_eq(r->n_resource_spans, 1);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
    ck_assert_uint_eq(rs->resource->n_attributes, 2);
    ck_assert_str_eq(rs->resource->attributes[0]->key, "service.name");
    ck_assert_str_eq(rs->resource->attributes[0]->value->string_value, "poh-exporter");
    ck_assert_str_eq(rs->resource->attributes[1]->value->string_value, "h1");
    ck_assert_uint_eq(rs->n_scope_spans, 1);
    ck_assert_str_eq(rs->scope_spans[0]->scope->name, "poh_exporter");
    ck_assert_str_eq(rs->scope_spans[0]->scope->version, "1.2.3");
    ck_assert_uint_eq(rs->scope_spans[0]->n_spans, 2);

    const pbspan_t *s = rs->scope_spans[0]->spans[0];
    ck_assert_str_eq(s->name, "grpc.health.v1.Health/Check");
    ck_assert_int_eq(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
    ck_assert_uint_eq(s->trace_id.len, 16);
    ck_assert_mem_eq(s->trace_id.data, parent.trace_id, 16);
    ck_assert_uint_eq(s->span_id.len, 8);
    ck_assert_mem_eq(s->span_id.data, a->ctx.span_id, 8);
    ck_assert_uint_eq(s->parent_span_id.len, 8);
    ck_assert_mem_eq(s->parent_span_id.data, parent.span_id, 8);
    ck_assert_uint_eq(s->flags, 0x01 | 0x100 | 0x200); /* sampled, parent known remote */
    ck_assert_uint_eq(s->start_time_unix_nano, 1700000000000000000ull);
    ck_assert_uint_eq(s->end_time_unix_nano, 1700000000250000000ull);
    ck_assert_uint_eq(s->n_attributes, 5);
    ck_assert_str_eq(attr(s, "rpc.system")->string_value, "grpc");
    ck_assert_int_eq(attr(s, "server.port")->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    ck_assert_int_eq(attr(s, "server.port")->int_value, 50051);
    ck_assert_int_eq(attr(s, "big")->int_value, INT64_MIN);
    ck_assert(attr(s, "ratio")->double_value == 0.25);
    ck_assert_int_eq(attr(s, "ok")->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    ck_assert(!attr(s, "ok")->bool_value);
    ck_assert_ptr_nonnull(s->status);
    ck_assert_int_eq(s->status->code, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    ck_assert_str_eq(s->status->message, "NOT_SERVING");

    const pbspan_t *root = rs->scope_spans[0]->spans[1];
    ck_assert_uint_eq(root->parent_span_id.len, 0); /* a root has none */
    ck_assert_uint_eq(root->flags, 0x01 | 0x100);
    ck_assert_int_eq(root->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    ck_assert_int_eq(root->status->code, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK);
    ck_assert_str_eq(root->status->message, "");
    ck_assert_uint_ge(root->end_time_unix_nano, root->start_time_unix_nano);

    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
    poh_span_free(a);
    poh_span_free(b);
}
END_TEST

START_TEST(test_attribute_rules)
{
    poh_span_t *s = poh_span_new_detached("n", POH_SPAN_KIND_INTERNAL, NULL, 1);
    char key[32], big[3 * POH_SPAN_MAX_VALUE];
    /* Replacing keeps one entry with the last value and type. */
    poh_span_set_str(s, "k", "first");
    poh_span_set_int(s, "k", 42);
    ck_assert_uint_eq(s->nattrs, 1);
    /* Over the limit: counted, not stored. */
    for (int i = 1; i < POH_SPAN_MAX_ATTRS + 5; i++) {
        snprintf(key, sizeof key, "a%d", i);
        poh_span_set_bool(s, key, true);
    }
    ck_assert_uint_eq(s->nattrs, POH_SPAN_MAX_ATTRS);
    ck_assert_uint_eq(s->dropped_attrs, 5);
    /* Empty or NULL keys are refused. */
    poh_span_set_int(s, "", 1);
    poh_span_set_int(s, NULL, 1);
    /* Invalid UTF-8 is repaired, long values are cut on a character boundary. */
    poh_span_t *u = poh_span_new_detached("bad\xff\xfe name", POH_SPAN_KIND_INTERNAL, NULL, 1);
    poh_span_set_str(u, "bad", "a\xc3(b\xed\xa0\x80z");
    /* "z" then 2-byte characters: the 1024-byte limit falls inside one. */
    size_t bl = 0;
    big[bl++] = 'z';
    while (bl + 3 < sizeof big) {
        big[bl++] = (char)0xc3;
        big[bl++] = (char)0xa9; /* U+00E9 */
    }
    big[bl] = '\0';
    poh_span_set_str(u, "long", big);
    poh_span_set_str(u, "null", NULL);
    poh_span_finish_detached(s, 2);
    poh_span_finish_detached(u, 2);

    poh_span_t *spans[] = {s, u};
    req_t *r = round_trip(spans, 2, NULL, 0);
    const pbspan_t *ps = r->resource_spans[0]->scope_spans[0]->spans[0];
    ck_assert_uint_eq(ps->n_attributes, POH_SPAN_MAX_ATTRS);
    ck_assert_uint_eq(ps->dropped_attributes_count, 5 + 2);
    ck_assert_int_eq(attr(ps, "k")->int_value, 42);
    const pbspan_t *pu = r->resource_spans[0]->scope_spans[0]->spans[1];
    ck_assert_str_eq(pu->name, "bad?? name");
    ck_assert_str_eq(attr(pu, "bad")->string_value, "a?(b???z");
    const char *lv = attr(pu, "long")->string_value;
    ck_assert_uint_eq(strlen(lv), POH_SPAN_MAX_VALUE - 1);
    ck_assert_int_eq((unsigned char)lv[POH_SPAN_MAX_VALUE - 2], 0xa9);
    ck_assert_int_eq(lv[0], 'z');
    ck_assert_str_eq(attr(pu, "null")->string_value, "");
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
    poh_span_free(s);
    poh_span_free(u);
}
END_TEST

START_TEST(test_text_budget_bounded)
{
    poh_span_t *s = poh_span_new_detached("n", POH_SPAN_KIND_INTERNAL, NULL, 1);
    char v[POH_SPAN_MAX_VALUE + 1];
    memset(v, 'v', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    /* Re-setting one key with big values spends the text budget; past it the
     * old value stays and the failures are counted. */
    for (int i = 0; i < 20; i++)
        poh_span_set_str(s, "k", v);
    ck_assert_uint_le(s->text_cap, POH_SPAN_MAX_TEXT);
    ck_assert_uint_eq(s->nattrs, 1);
    ck_assert_uint_gt(s->dropped_attrs, 0);
    ck_assert_int_eq(strlen(poh_span_text(s, s->attrs[0].v.s)), POH_SPAN_MAX_VALUE);
    poh_span_free(s);
}
END_TEST

START_TEST(test_end_before_start_clamped)
{
    poh_span_t *s = poh_span_new_detached("n", POH_SPAN_KIND_INTERNAL, NULL, 5000);
    poh_span_finish_detached(s, 10);
    ck_assert_uint_eq(s->end_ns, 5000);
    poh_span_free(s);
}
END_TEST

START_TEST(test_encoder_reuse_many_batches)
{
    poh_otlp_encoder_t *e = poh_otlp_encoder_new(NULL, 0, "s", "v");
    for (size_t n = 1; n <= 700; n += 233) {
        poh_span_t **spans = calloc(n, sizeof *spans);
        for (size_t i = 0; i < n; i++) {
            spans[i] = poh_span_new_detached("x", POH_SPAN_KIND_INTERNAL, NULL, 1);
            poh_span_set_int(spans[i], "i", (int64_t)i);
            poh_span_finish_detached(spans[i], 2);
        }
        const uint8_t *buf;
        size_t len;
        ck_assert_int_eq(poh_otlp_encode(e, spans, n, &buf, &len), 0);
        req_t *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len, buf);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(r->resource_spans[0]->scope_spans[0]->n_spans, n);
        ck_assert_int_eq(attr(r->resource_spans[0]->scope_spans[0]->spans[n - 1], "i")->int_value,
                         (int64_t)(n - 1));
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
        for (size_t i = 0; i < n; i++)
            poh_span_free(spans[i]);
        free(spans);
    }
    poh_otlp_encoder_free(e);
    poh_otlp_encoder_free(NULL);
}
END_TEST

START_TEST(test_decode_response)
{
    int64_t rej = -1;
    poh_strbuf_t msg = POH_STRBUF_INIT;
    /* Empty response = full success. */
    ck_assert_int_eq(poh_otlp_decode_response((const uint8_t *)"", 0, &rej, &msg), 0);
    ck_assert_int_eq(rej, 0);
    /* partial_success {rejected_spans: 3, error_message: "no"} */
    const uint8_t ps[] = {0x0a, 0x06, 0x08, 0x03, 0x12, 0x02, 'n', 'o'};
    ck_assert_int_eq(poh_otlp_decode_response(ps, sizeof ps, &rej, &msg), 0);
    ck_assert_int_eq(rej, 3);
    ck_assert_str_eq(msg.data, "no");
    const uint8_t bad[] = {0x0a, 0x09, 0x08};
    ck_assert_int_eq(poh_otlp_decode_response(bad, sizeof bad, &rej, NULL), -EBADMSG);
    poh_strbuf_free(&msg);
}
END_TEST

/* google.rpc.Status{code=8, details=[Any{type_url, RetryInfo{retry_delay{s, ns}}}]} */
static size_t build_status(uint8_t *out, const char *type_url, int secs, int nanos)
{
    uint8_t dur[16], ri[20], any[128];
    size_t dl = 0, rl = 0, al = 0, n = 0;
    dur[dl++] = 0x08;
    dur[dl++] = (uint8_t)secs;
    if (nanos) {
        dur[dl++] = 0x10;
        /* varint of nanos (< 2^28) */
        uint32_t v = (uint32_t)nanos;
        while (v >= 0x80) {
            dur[dl++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        dur[dl++] = (uint8_t)v;
    }
    ri[rl++] = 0x0a;
    ri[rl++] = (uint8_t)dl;
    memcpy(ri + rl, dur, dl);
    rl += dl;
    size_t tl = strlen(type_url);
    any[al++] = 0x0a;
    any[al++] = (uint8_t)tl;
    memcpy(any + al, type_url, tl);
    al += tl;
    any[al++] = 0x12;
    any[al++] = (uint8_t)rl;
    memcpy(any + al, ri, rl);
    al += rl;
    out[n++] = 0x08;
    out[n++] = 8;
    out[n++] = 0x12; /* message "slow down" */
    out[n++] = 9;
    memcpy(out + n, "slow down", 9);
    n += 9;
    out[n++] = 0x1a;
    out[n++] = (uint8_t)al;
    memcpy(out + n, any, al);
    return n + al;
}

START_TEST(test_retry_info)
{
    uint8_t buf[256];
    double d = -1;
    size_t n = build_status(buf, "type.googleapis.com/google.rpc.RetryInfo", 2, 500000000);
    ck_assert_int_eq(poh_otlp_retry_info(buf, n, &d), 0);
    ck_assert(fabs(d - 2.5) < 1e-9);
    n = build_status(buf, "type.googleapis.com/google.rpc.DebugInfo", 2, 0);
    ck_assert_int_eq(poh_otlp_retry_info(buf, n, &d), -ENOENT);
    ck_assert_int_eq(poh_otlp_retry_info(buf, 0, &d), -ENOENT);
    n = build_status(buf, "type.googleapis.com/google.rpc.RetryInfo", 1, 0);
    ck_assert_int_eq(poh_otlp_retry_info(buf, n - 1, &d), -EBADMSG); /* truncated */
    const uint8_t junk[] = {0xff, 0xff, 0xff};
    ck_assert_int_eq(poh_otlp_retry_info(junk, sizeof junk, &d), -EBADMSG);
}
END_TEST

static const struct {
    int code;
    bool info;
    bool retry;
} retry_cases[] = {
    {0, false, false},  {1, false, true},   {2, false, false},  {3, false, false},
    {4, false, true},   {5, false, false},  {6, false, false},  {7, false, false},
    {8, false, false},  {8, true, true},    {9, false, false},  {10, false, true},
    {11, false, true},  {12, false, false}, {13, false, false}, {14, false, true},
    {15, false, true},  {16, false, false}, {3, true, false},
};

START_TEST(test_retryable_table)
{
    ck_assert_msg(poh_otlp_retryable(retry_cases[_i].code, retry_cases[_i].info) ==
                      retry_cases[_i].retry,
                  "code %d info %d", retry_cases[_i].code, retry_cases[_i].info);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace_encode");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_round_trip_all_fields);
    tcase_add_test(tc, test_attribute_rules);
    tcase_add_test(tc, test_text_budget_bounded);
    tcase_add_test(tc, test_end_before_start_clamped);
    tcase_add_test(tc, test_encoder_reuse_many_batches);
    tcase_add_test(tc, test_decode_response);
    tcase_add_test(tc, test_retry_info);
    tcase_add_loop_test(tc, test_retryable_table, 0, sizeof retry_cases / sizeof retry_cases[0]);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
