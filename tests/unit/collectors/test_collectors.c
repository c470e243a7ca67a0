/* SPDX-License-Identifier: Apache-2.0 */
/* Collector framework: concurrency, deadline, failure isolation, stragglers. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectors/collector.h"
#include "core/clock.h"
#include "series_lookup.h"

typedef struct fake {
    int rc;             /* what collect() returns */
    unsigned sleep_ms;  /* how long collect() takes */
    atomic_int calls;
    atomic_int *destroyed;
} fake_t;

static int fake_collect(void *state, poh_scrape_t *sc)
{
    fake_t *f = state;
    atomic_fetch_add(&f->calls, 1);
    usleep(f->sleep_ms * 1000);
    poh_family_t *fam = poh_registry_family(sc->out, POH_GAUGE, "fake_value", "A fake value.",
                                            0, NULL, NULL, 0);
    poh_gauge_set(poh_family_series(fam, NULL), 42);
    return f->rc;
}

static void fake_destroy(void *state)
{
    fake_t *f = state;
    if (f && f->destroyed)
        atomic_fetch_add(f->destroyed, 1);
    free(f);
}

static const poh_collector_ops_t fake_ops = {.kind = "fake", .collect = fake_collect,
                                             .destroy = fake_destroy};
/* Same, declared bounded: a scrape runs one such collector on its own thread. */
static const poh_collector_ops_t fake_bounded_ops = {
    .kind = "fake", .collect = fake_collect, .destroy = fake_destroy, .bounded = true};
/* Loop tests: _i = 0 worker threads only, 1 bounded collectors too. */
static const poh_collector_ops_t *const ops_by_loop[] = {&fake_ops, &fake_bounded_ops};

static fake_t *fake_new(int rc, unsigned sleep_ms, atomic_int *destroyed)
{
    fake_t *f = calloc(1, sizeof *f);
    f->rc = rc;
    f->sleep_ms = sleep_ms;
    f->destroyed = destroyed;
    return f;
}

/* The value of gauge family{collector="collector"}; fails the test if the
 * scrape did not emit it (series_lookup.h creates nothing). */
static double gauge_of(poh_registry_t *r, const char *family, const char *collector)
{
    return series_value(r, POH_GAUGE, family, 1, (const char *const[]){"collector"},
                        (const char *const[]){collector});
}

static int rendered_contains(poh_registry_t **regs, size_t n, const char *needle)
{
    poh_strbuf_t sb = POH_STRBUF_INIT;
    poh_render(&sb, regs, n, POH_FMT_TEXT);
    int found = sb.data && strstr(sb.data, needle) != NULL;
    poh_strbuf_free(&sb);
    return found;
}

START_TEST(test_success_failure_and_deadline)
{
    static atomic_int destroyed;
    atomic_store(&destroyed, 0);
    poh_collector_list_t l = {0};
    fake_t *ok = fake_new(0, 10, &destroyed), *bad = fake_new(-EIO, 10, &destroyed),
           *slow = fake_new(0, 1500, &destroyed);
    ck_assert_int_eq(poh_collector_list_push(&l, &fake_ops, ok, "fake/ok"), 0);
    ck_assert_int_eq(poh_collector_list_push(&l, &fake_ops, bad, "fake/bad"), 0);
    ck_assert_int_eq(poh_collector_list_push(&l, &fake_ops, slow, "fake/slow"), 0);
    poh_collector_set_t *set = poh_collector_set_from_list(&l);
    ck_assert_ptr_nonnull(set);
    ck_assert_uint_eq(poh_collector_set_len(set), 3);

    poh_registry_t *self = poh_registry_new();
    poh_scrape_output_t out;
    double t0 = poh_now_mono();
    ck_assert_int_eq(poh_collector_set_scrape(set, t0 + 0.3, NULL, self, &out), 0);
    double took = poh_now_mono() - t0;
    /* The slow collector costs the deadline, not its own 1.5 s. The upper
     * bound only has to tell those apart: 0.8 s flaked on a loaded 2-core
     * machine (two CPU hogs beside it: 0.3 s deadline, 0.8+ s reported). */
    ck_assert_msg(took >= 0.29 && took < 1.4, "took %.3f s", took);
    ck_assert_double_eq(gauge_of(self, "poh_exporter_collector_success", "fake/ok"), 1);
    ck_assert_double_eq(gauge_of(self, "poh_exporter_collector_success", "fake/bad"), 0);
    ck_assert_double_eq(gauge_of(self, "poh_exporter_collector_success", "fake/slow"), 0);
    double d = gauge_of(self, "poh_exporter_collector_duration_seconds", "fake/ok");
    ck_assert(d >= 0.009 && d < 0.3);
    d = gauge_of(self, "poh_exporter_collector_duration_seconds", "fake/slow");
    /* counted from the collector's own start, which a loaded machine delays
     * (0.289 s seen): it only has to be the deadline's, not 0 or 1.5 s */
    ck_assert_msg(d >= 0.15 && d < 1.4, "slow: %.3f s", d);
    /* Output of finished collectors (even failed ones) is kept; the straggler's is not. */
    ck_assert_uint_eq(out.n, 2);
    ck_assert(rendered_contains(out.regs, out.n, "fake_value 42"));
    poh_scrape_output_free(&out);

    /* The straggler is still running: the next scrape joins that run instead
     * of starting another, and reports it failed at its own deadline. */
    poh_registry_t *self2 = poh_registry_new();
    ck_assert_int_eq(poh_collector_set_scrape(set, poh_now_mono() + 0.2, NULL, self2, &out), 0);
    ck_assert_int_eq(atomic_load(&slow->calls), 1);
    ck_assert_int_eq(atomic_load(&ok->calls), 2);
    ck_assert_double_eq(gauge_of(self2, "poh_exporter_collector_success", "fake/slow"), 0);
    ck_assert_uint_eq(out.n, 2);
    poh_scrape_output_free(&out);

    /* Dropping the set while the straggler runs defers destruction until it ends. */
    poh_collector_set_unref(set);
    ck_assert_int_eq(atomic_load(&destroyed), 0);
    for (int i = 0; i < 300 && atomic_load(&destroyed) < 3; i++)
        usleep(10000);
    ck_assert_int_eq(atomic_load(&destroyed), 3);
    poh_registry_free(self);
    poh_registry_free(self2);
}
END_TEST

START_TEST(test_concurrent)
{
    /* Eight collectors of 200 ms each finish together in about 200 ms (in
     * loop 1 every other one is bounded: the last of those runs on the
     * scraping thread, the others still on their workers, all at once). */
    poh_collector_list_t l = {0};
    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof name, "fake/%d", i);
        ck_assert_int_eq(poh_collector_list_push(&l, i % 2 ? ops_by_loop[_i] : &fake_ops,
                                                 fake_new(0, 200, NULL), name),
                         0);
    }
    poh_collector_set_t *set = poh_collector_set_from_list(&l);
    poh_registry_t *self = poh_registry_new();
    poh_scrape_output_t out;
    double t0 = poh_now_mono();
    poh_collector_set_scrape(set, t0 + 5, NULL, self, &out);
    double took = poh_now_mono() - t0;
    ck_assert(took < 1.0);
    ck_assert_uint_eq(out.n, 8);
    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof name, "fake/%d", i);
        ck_assert_double_eq(gauge_of(self, "poh_exporter_collector_success", name), 1);
    }
    poh_scrape_output_free(&out);
    poh_registry_free(self);
    poh_collector_set_unref(set);
}
END_TEST

/* Two scrapes at once share one run of each collector and both see its output. */
typedef struct concurrent_scrape {
    poh_collector_set_t *set;
    poh_registry_t *self;
    poh_scrape_output_t out;
    int found;
} concurrent_scrape_t;

static void *scrape_thread(void *p)
{
    concurrent_scrape_t *cs = p;
    poh_collector_set_scrape(cs->set, poh_now_mono() + 5, NULL, cs->self, &cs->out);
    cs->found = rendered_contains(cs->out.regs, cs->out.n, "fake_value 42");
    return NULL;
}

START_TEST(test_concurrent_scrapes_share_a_run)
{
    poh_collector_list_t l = {0};
    fake_t *f = fake_new(0, 300, NULL);
    ck_assert_int_eq(poh_collector_list_push(&l, ops_by_loop[_i], f, "fake/shared"), 0);
    poh_collector_set_t *set = poh_collector_set_from_list(&l);
    concurrent_scrape_t cs[2] = {{set, poh_registry_new(), {0}, 0},
                                 {set, poh_registry_new(), {0}, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, scrape_thread, &cs[i]), 0);
        usleep(50000); /* the second scrape arrives while the run is in flight */
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(cs[i].found, 1);
        ck_assert_double_eq(gauge_of(cs[i].self, "poh_exporter_collector_success", "fake/shared"),
                            1);
        poh_scrape_output_free(&cs[i].out);
        poh_registry_free(cs[i].self);
    }
    ck_assert_int_eq(atomic_load(&f->calls), 1);
    /* Once done, the next scrape starts a fresh run. */
    poh_registry_t *self = poh_registry_new();
    poh_scrape_output_t out;
    poh_collector_set_scrape(set, poh_now_mono() + 5, NULL, self, &out);
    ck_assert_int_eq(atomic_load(&f->calls), 2);
    poh_scrape_output_free(&out);
    poh_registry_free(self);
    poh_collector_set_unref(set);
}
END_TEST

START_TEST(test_empty_set_and_html)
{
    poh_collector_list_t l = {0};
    poh_collector_set_t *set = poh_collector_set_from_list(&l);
    ck_assert_ptr_nonnull(set);
    poh_registry_t *self = poh_registry_new();
    poh_scrape_output_t out;
    ck_assert_int_eq(poh_collector_set_scrape(set, poh_now_mono() + 1, NULL, self, &out), 0);
    ck_assert_uint_eq(out.n, 0);
    poh_scrape_output_free(&out);
    poh_registry_free(self);
    poh_collector_set_unref(set);
    poh_collector_set_unref(NULL);

}
END_TEST

int main(void)
{
    Suite *s = suite_create("collectors");
    TCase *tc = tcase_create("framework");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_success_failure_and_deadline);
    tcase_add_loop_test(tc, test_concurrent, 0, 2);
    tcase_add_loop_test(tc, test_concurrent_scrapes_share_a_run, 0, 2);
    tcase_add_test(tc, test_empty_set_and_html);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
