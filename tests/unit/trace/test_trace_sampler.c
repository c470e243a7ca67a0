/* SPDX-License-Identifier: Apache-2.0 */
/* Sampler: trace-id ratio for roots, parent-based for joined spans; and the
 * span API's behaviour for sampled and unsampled spans. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace_internal.h"
#include "trace_schema_defaults.h"

static double sampled_fraction(double ratio, int n)
{
    poh_sampler_t s;
    poh_sampler_init(&s, ratio);
    int hits = 0;
    uint8_t id[16];
    for (int i = 0; i < n; i++) {
        poh_trace_random_trace_id(id);
        hits += poh_sampler_should_sample(&s, NULL, id);
    }
    return (double)hits / n;
}

static const struct {
    double ratio, lo, hi;
} ratio_cases[] = {
    {0.0, 0.0, 0.0}, {1.0, 1.0, 1.0},   {0.5, 0.48, 0.52}, {0.1, 0.09, 0.11},
    {0.01, 0.006, 0.014}, {-3, 0.0, 0.0}, {7, 1.0, 1.0},
};

START_TEST(test_ratio_table)
{
    double f = sampled_fraction(ratio_cases[_i].ratio, 100000);
    ck_assert_msg(f >= ratio_cases[_i].lo && f <= ratio_cases[_i].hi,
                  "ratio %g sampled %g", ratio_cases[_i].ratio, f);
}
END_TEST

START_TEST(test_ratio_deterministic_and_boundaries)
{
    poh_sampler_t s;
    uint8_t id[16] = {0};
    poh_sampler_init(&s, 0.5);
    /* Low 63 bits just under / at the threshold 2^62. */
    id[8] = 0x3f;
    memset(id + 9, 0xff, 7);
    ck_assert(poh_sampler_should_sample(&s, NULL, id));
    id[8] = 0x40;
    memset(id + 9, 0x00, 7);
    ck_assert(!poh_sampler_should_sample(&s, NULL, id));
    /* The top bit of byte 8 is ignored (63-bit value). */
    id[8] = 0x80 | 0x10;
    ck_assert(poh_sampler_should_sample(&s, NULL, id));
    /* Same id, same answer, every time. */
    for (int i = 0; i < 100; i++) {
        poh_trace_random_trace_id(id);
        bool a = poh_sampler_should_sample(&s, NULL, id);
        ck_assert(a == poh_sampler_should_sample(&s, NULL, id));
    }
    /* The upper 8 bytes play no part. */
    uint8_t a[16], b[16];
    poh_trace_random_trace_id(a);
    memcpy(b, a, 16);
    memset(b, 0x5a, 8);
    ck_assert(poh_sampler_should_sample(&s, NULL, a) == poh_sampler_should_sample(&s, NULL, b));
}
END_TEST

START_TEST(test_parent_based)
{
    poh_sampler_t never, always;
    poh_sampler_init(&never, 0.0);
    poh_sampler_init(&always, 1.0);
    poh_span_context_t p;
    poh_trace_random_trace_id(p.trace_id);
    poh_trace_random_span_id(p.span_id);
    p.remote = true;
    p.flags = POH_TRACE_FLAG_SAMPLED;
    ck_assert(poh_sampler_should_sample(&never, &p, p.trace_id));
    p.flags = 0x00;
    ck_assert(!poh_sampler_should_sample(&always, &p, p.trace_id));
    p.flags = 0xfe; /* other bits, sampled bit clear */
    ck_assert(!poh_sampler_should_sample(&always, &p, p.trace_id));
}
END_TEST

static poh_tracer_t *make_tracer(double ratio)
{
    poh_tracing_config_t cfg;
    poh_strbuf_t yaml = POH_STRBUF_INIT, err = POH_STRBUF_INIT;
    poh_strbuf_printf(&yaml,
                      "endpoint: 127.0.0.1:9\n" /* discard port: nothing answers */
                      "sample_ratio: %.17g\n"
                      "shutdown_timeout: 200ms\n"
                      "retry_max_elapsed: 0s\n",
                      ratio);
    ck_assert_msg(poh_tracing_config_parse(yaml.data, &cfg, &err) == 0, "%s", err.data);
    poh_tracer_t *t = poh_tracer_create(&cfg);
    ck_assert_ptr_nonnull(t);
    poh_tracing_config_release(&cfg);
    poh_strbuf_free(&yaml);
    poh_strbuf_free(&err);
    return t;
}

START_TEST(test_span_sampling_through_tracer)
{
    poh_tracer_t *off = make_tracer(0.0), *on = make_tracer(1.0);
    char tp[POH_TRACEPARENT_LEN + 1], hex[33];

    /* Unsampled root: valid context to propagate (flags 00), nothing recorded. */
    poh_span_t *r = poh_span_start(off, "root", POH_SPAN_KIND_SERVER, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert(!poh_span_is_sampled(r));
    ck_assert(poh_span_context_valid(poh_span_context(r)));
    ck_assert_int_eq(poh_span_traceparent(r, tp, sizeof tp), 55);
    ck_assert_str_eq(tp + 53, "00");
    ck_assert_int_eq(poh_span_trace_id_hex(r, hex), -EINVAL);
    poh_span_t *c = poh_span_start(on, "child", POH_SPAN_KIND_CLIENT, poh_span_context(r));
    ck_assert(!poh_span_is_sampled(c)); /* parent decides, even with ratio 1 */
    ck_assert_mem_eq(poh_span_context(c)->trace_id, poh_span_context(r)->trace_id, 16);
    poh_span_set_str(c, "k", "v"); /* no-ops on a non-recording span */
    poh_span_end(c);
    poh_span_end(r);

    /* Sampled root: child joins the trace with the parent's span id. */
    r = poh_span_start(on, "root", POH_SPAN_KIND_SERVER, NULL);
    ck_assert(poh_span_is_sampled(r));
    ck_assert_int_eq(poh_span_trace_id_hex(r, hex), 0);
    ck_assert_int_eq(strlen(hex), 32);
    ck_assert_int_eq(poh_span_traceparent(r, tp, sizeof tp), 55);
    ck_assert_str_eq(tp + 53, "01");
    c = poh_span_start(off, "child", POH_SPAN_KIND_CLIENT, poh_span_context(r));
    ck_assert(poh_span_is_sampled(c)); /* parent decides, even with ratio 0 */
    ck_assert_mem_eq(c->parent_span_id, poh_span_context(r)->span_id, 8);
    ck_assert(c->has_parent && !c->parent_remote);
    ck_assert(memcmp(poh_span_context(c)->span_id, poh_span_context(r)->span_id, 8) != 0);
    poh_span_end(c);
    poh_span_end(r);

    /* A remote parent from a traceparent string. */
    poh_span_context_t remote;
    ck_assert_int_eq(poh_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                           55, &remote), 0);
    c = poh_span_start(off, "storage.commit", POH_SPAN_KIND_INTERNAL, &remote);
    ck_assert(poh_span_is_sampled(c));
    ck_assert(c->parent_remote);
    ck_assert(!poh_span_context(c)->remote); /* the new span itself is local */
    poh_span_end(c);

    /* A parent reference by value (what a scrape gives its collectors). */
    poh_span_t *root = poh_span_start(on, "root", POH_SPAN_KIND_SERVER, NULL);
    poh_trace_parent_t ref = poh_span_parent_ref(root);
    poh_span_end(root); /* the reference outlives the root span */
    c = poh_span_start_child(&ref, "late", POH_SPAN_KIND_CLIENT);
    ck_assert_ptr_nonnull(c);
    ck_assert_mem_eq(c->parent_span_id, ref.ctx.span_id, 8);
    ck_assert_mem_eq(poh_span_context(c)->trace_id, ref.ctx.trace_id, 16);
    ck_assert(poh_span_is_sampled(c));
    poh_span_end(c);
    poh_trace_parent_t off_ref = poh_span_parent_ref(NULL);
    ck_assert_ptr_null(off_ref.tracer);
    ck_assert_ptr_null(poh_span_start_child(&off_ref, "x", POH_SPAN_KIND_CLIENT));
    ck_assert_ptr_null(poh_span_start_child(NULL, "x", POH_SPAN_KIND_CLIENT));

    /* An all-zero parent is invalid: a new root is started instead. */
    poh_span_context_t zero;
    memset(&zero, 0, sizeof zero);
    zero.flags = 1;
    c = poh_span_start(on, "x", POH_SPAN_KIND_INTERNAL, &zero);
    ck_assert(!c->has_parent);
    ck_assert(poh_span_context_valid(poh_span_context(c)));
    poh_span_end(c);

    poh_tracer_destroy(off);
    poh_tracer_destroy(on);
}
END_TEST

START_TEST(test_null_everything)
{
    char tp[64], hex[33];
    poh_span_t *s = poh_span_start(NULL, "x", POH_SPAN_KIND_CLIENT, NULL);
    ck_assert_ptr_null(s);
    poh_span_set_str(NULL, "a", "b");
    poh_span_set_int(NULL, "a", 1);
    poh_span_set_double(NULL, "a", 1.0);
    poh_span_set_bool(NULL, "a", true);
    poh_span_set_status(NULL, POH_SPAN_STATUS_ERROR, "x");
    poh_span_end(NULL);
    poh_span_end_at(NULL, 5);
    ck_assert_ptr_null(poh_span_context(NULL));
    ck_assert(!poh_span_is_sampled(NULL));
    ck_assert_int_eq(poh_span_traceparent(NULL, tp, sizeof tp), -EINVAL);
    ck_assert_int_eq(poh_span_trace_id_hex(NULL, hex), -EINVAL);
    ck_assert_int_eq(poh_tracer_flush(NULL, 1), 0);
    poh_tracer_stats_t st;
    poh_tracer_stats(NULL, &st);
    ck_assert_uint_eq(st.exported, 0);
    poh_tracer_shutdown(NULL);
    poh_tracer_destroy(NULL);
    poh_tracing_config_t cfg;
    trace_schema_defaults(&cfg);
    cfg.enabled = "false";
    ck_assert_ptr_null(poh_tracer_create(&cfg));
    ck_assert_ptr_null(poh_tracer_create(NULL));
}
END_TEST

START_TEST(test_rate_limit)
{
    poh_span_rate_limit_t rl;
    /* A burst of 5 passes at once, the 6th waits for a token. */
    poh_span_rate_limit_init(&rl, 1.0, 5);
    for (int i = 0; i < 5; i++)
        ck_assert(poh_span_rate_limit_take(&rl));
    ck_assert(!poh_span_rate_limit_take(&rl));
    ck_assert_uint_eq(rl.refused, 1);
    /* Tokens accrue with time: 2.5 s at 2/s are 5 spans (the test sets the
     * bucket's clock back instead of sleeping). */
    poh_span_rate_limit_init(&rl, 2.0, 10);
    rl.tokens = 0;
    rl.last -= 2.5;
    for (int i = 0; i < 5; i++)
        ck_assert(poh_span_rate_limit_take(&rl));
    ck_assert(!poh_span_rate_limit_take(&rl));
    /* Never more than the burst, however long the pause. */
    rl.last -= 3600;
    int passed = 0;
    for (int i = 0; i < 20; i++)
        passed += poh_span_rate_limit_take(&rl);
    ck_assert_int_eq(passed, 10);
    poh_span_rate_limit_init(&rl, 0, 10);
    ck_assert(!poh_span_rate_limit_take(&rl));
}
END_TEST

START_TEST(test_tracing_enabled)
{
    poh_tracing_config_t cfg;
    trace_schema_defaults(&cfg);
    cfg.enabled = "false";
    ck_assert(!poh_tracing_enabled(&cfg));
    cfg.enabled = "true";
    ck_assert(poh_tracing_enabled(&cfg));
    cfg.enabled = "bogus";
    ck_assert(!poh_tracing_enabled(&cfg));
    ck_assert(!poh_tracing_enabled(NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace_sampler");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_ratio_table, 0, sizeof ratio_cases / sizeof ratio_cases[0]);
    tcase_add_test(tc, test_ratio_deterministic_and_boundaries);
    tcase_add_test(tc, test_parent_based);
    tcase_add_test(tc, test_span_sampling_through_tracer);
    tcase_add_test(tc, test_null_everything);
    tcase_add_test(tc, test_rate_limit);
    tcase_add_test(tc, test_tracing_enabled);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
