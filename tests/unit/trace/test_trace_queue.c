/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded MPSC span queue, and the tracer's never-block / drop-count rules. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "collectors/self.h"
#include "metrics/metrics.h"
#include "trace/trace_internal.h"

/* The queue never dereferences items, so tests push tagged fake pointers. */
#define FAKE(i) ((poh_span_t *)(uintptr_t)(((uintptr_t)(i) + 1) << 4))
#define UNFAKE(p) (((uintptr_t)(p) >> 4) - 1)

static const size_t caps[] = {1, 2, 3, 7, 64, 1000};

START_TEST(test_bound_is_exact)
{
    poh_span_queue_t q;
    size_t cap = caps[_i];
    ck_assert_int_eq(poh_span_queue_init(&q, cap), 0);
    for (int lap = 0; lap < 5; lap++) {
        for (size_t i = 0; i < cap; i++)
            ck_assert_int_eq(poh_span_queue_push(&q, FAKE(i)), (long)i);
        ck_assert_uint_eq(poh_span_queue_len(&q), cap);
        ck_assert_int_eq(poh_span_queue_push(&q, FAKE(999)), -ENOSPC);
        ck_assert_int_eq(poh_span_queue_push(&q, FAKE(999)), -ENOSPC);
        for (size_t i = 0; i < cap; i++)
            ck_assert_uint_eq(UNFAKE(poh_span_queue_pop(&q)), i); /* FIFO */
        ck_assert_ptr_null(poh_span_queue_pop(&q));
        ck_assert_uint_eq(poh_span_queue_len(&q), 0);
    }
    poh_span_queue_destroy(&q);
}
END_TEST

START_TEST(test_init_rejects_zero)
{
    poh_span_queue_t q;
    ck_assert_int_eq(poh_span_queue_init(&q, 0), -EINVAL);
}
END_TEST

enum { PRODUCERS = 4, PER_PRODUCER = 50000 };

typedef struct {
    poh_span_queue_t *q;
    int id;
    long full;
} prod_arg_t;

static void *producer(void *arg)
{
    prod_arg_t *a = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        uintptr_t v = (uintptr_t)a->id * PER_PRODUCER + (uintptr_t)i;
        while (poh_span_queue_push(a->q, FAKE(v)) == -ENOSPC) {
            a->full++;
            sched_yield(); /* 2 cores, 5 threads: let the consumer run */
        }
    }
    return NULL;
}

START_TEST(test_mpsc_every_item_once_in_order_per_producer)
{
    poh_span_queue_t q;
    ck_assert_int_eq(poh_span_queue_init(&q, 100), 0);
    pthread_t th[PRODUCERS];
    prod_arg_t args[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        args[i] = (prod_arg_t){&q, i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, producer, &args[i]), 0);
    }
    long next[PRODUCERS] = {0};
    long got = 0;
    time_t start = time(NULL);
    while (got < (long)PRODUCERS * PER_PRODUCER) {
        poh_span_t *p = poh_span_queue_pop(&q);
        if (!p) {
            ck_assert_msg(time(NULL) - start < 50, "consumer starved");
            sched_yield(); /* empty: let the producers run (it spun, and starved them under load) */
            continue;
        }
        uintptr_t v = UNFAKE(p);
        int prod = (int)(v / PER_PRODUCER);
        long seq = (long)(v % PER_PRODUCER);
        ck_assert_int_lt(prod, PRODUCERS);
        ck_assert_int_eq(seq, next[prod]); /* each producer's items stay in order */
        next[prod]++;
        got++;
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    ck_assert_ptr_null(poh_span_queue_pop(&q));
    poh_span_queue_destroy(&q);
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

START_TEST(test_tracer_drops_when_full_and_never_blocks)
{
    /* No collector at all: every span beyond the queue is dropped at once. */
    poh_tracing_config_t cfg;
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_int_eq(poh_tracing_config_parse("endpoint: 127.0.0.1:9\n"
                                              "queue_size: 16\n"
                                              "batch_size: 16\n"
                                              /* the exporter waits, the queue stays full */
                                              "batch_timeout: 60s\n"
                                              "shutdown_timeout: 200ms\n",
                                              &cfg, &err),
                     0);
    poh_tracer_t *t = poh_tracer_create(&cfg);
    poh_tracing_config_release(&cfg);
    poh_strbuf_free(&err);
    ck_assert_ptr_nonnull(t);
    enum { N = 10000 };
    static double took[N];
    for (int i = 0; i < 15; i++) /* below batch_size: nothing leaves the queue */
        poh_span_end(poh_span_start(t, "s", POH_SPAN_KIND_INTERNAL, NULL));
    poh_tracer_stats_t st;
    poh_tracer_stats(t, &st);
    ck_assert_uint_eq(st.queued, 15);
    ck_assert_uint_eq(st.dropped[POH_DROP_QUEUE_FULL], 0);
    /* The 16th fills the batch and wakes the exporter, which takes all 16;
     * give it no chance: fill the queue from here on as fast as we can. */
    for (int i = 0; i < N; i++) {
        poh_span_t *s = poh_span_start(t, "s", POH_SPAN_KIND_INTERNAL, NULL);
        poh_span_set_int(s, "i", i);
        double a = now_s();
        poh_span_end(s);
        took[i] = now_s() - a;
    }
    qsort(took, N, sizeof took[0], cmp_double);
    poh_tracer_stats(t, &st);
    ck_assert_uint_ge(st.dropped[POH_DROP_QUEUE_FULL], N - 2 * 16);
    ck_assert_uint_le(st.queued, 16);
    /* Waiting for the exporter would cost a connect attempt and a backoff
     * (>= 1 s) per call, hours for N calls. The bounds leave room for
     * preemption on a loaded 2-core box under ASan (time slices of several
     * ms), yet no single call may have waited for one backoff. */
    double sum = 0;
    for (int i = 0; i < N; i++)
        sum += took[i];
    ck_assert_msg(sum < 5.0, "all %d calls of poh_span_end took %.3f s", N, sum);
    ck_assert_msg(took[N * 99 / 100] < 0.05, "p99 of poh_span_end %.6f s", took[N * 99 / 100]);
    ck_assert_msg(took[N - 1] < 0.9, "slowest poh_span_end %.3f s", took[N - 1]);
    double a = now_s();
    poh_tracer_shutdown(t);
    ck_assert_msg(now_s() - a < 2.0, "shutdown is bounded by shutdown_timeout");

    /* Every span is accounted for, and published as counters. */
    poh_tracer_stats(t, &st);
    uint64_t total = st.exported;
    for (int i = 0; i < POH_DROP_REASON_COUNT; i++)
        total += st.dropped[i];
    ck_assert_uint_eq(total, 15 + N);
    ck_assert_uint_eq(st.exported, 0);
    poh_registry_t *reg = poh_registry_new();
    ck_assert_int_eq(poh_self_write_tracer(reg, t), 0);
    poh_strbuf_t text = POH_STRBUF_INIT;
    ck_assert_int_eq(poh_render(&text, &reg, 1, POH_FMT_TEXT), 0);
    char want[128];
    snprintf(want, sizeof want, "poh_exporter_spans_dropped_total{reason=\"queue_full\"} %llu\n",
             (unsigned long long)st.dropped[POH_DROP_QUEUE_FULL]);
    ck_assert_msg(strstr(text.data, want), "%s", text.data);
    snprintf(want, sizeof want, "poh_exporter_spans_dropped_total{reason=\"shutdown\"} %llu\n",
             (unsigned long long)st.dropped[POH_DROP_SHUTDOWN]);
    ck_assert_msg(strstr(text.data, want), "%s", text.data);
    ck_assert_ptr_nonnull(strstr(text.data, "poh_exporter_spans_dropped_total{reason=\"rejected\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(text.data, "poh_exporter_spans_exported_total 0\n"));
    ck_assert_ptr_nonnull(strstr(text.data, "# TYPE poh_exporter_spans_dropped_total counter"));
    poh_strbuf_free(&text);
    poh_registry_free(reg);
    poh_tracer_destroy(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace_queue");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_bound_is_exact, 0, sizeof caps / sizeof caps[0]);
    tcase_add_test(tc, test_init_rejects_zero);
    tcase_add_test(tc, test_mpsc_every_item_once_in_order_per_producer);
    tcase_add_test(tc, test_tracer_drops_when_full_and_never_blocks);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
