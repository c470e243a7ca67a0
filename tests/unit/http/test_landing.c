/* SPDX-License-Identifier: Apache-2.0 */
/* The landing page's history (http/landing.c) fed by hand-made registries:
 * per-stream latency quantiles when streams share some latency names, the
 * target cells' figures, a reload that changes a stream's latencies, and
 * the page before any scrape. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appconfig/app_config.h"
#include "http/landing.h"
#include "metrics/metrics.h"

static const char yaml[] =
    "state_dir: /tmp\n"
    "grpc:\n  - name: poh\n    timeout: 2s\n    targets: [\"n1:1\", \"n2:1\"]\n"
    "mongodb:\n  - name: main\n    uri: mongodb://127.0.0.1/\n    change_streams:\n"
    "      - name: a\n        database: d\n        collection: c\n        latencies:\n"
    "          - {name: storage, from_field: x, to: commit}\n"
    "          - {name: approval, from_field: x, to_field: y}\n"
    "      - name: b\n        database: d\n        collection: c2\n        latencies:\n"
    "          - {name: approval, from_field: x, to_field: y}\n";

typedef struct fixture {
    poh_registry_t *reg;
    poh_series_t *success[2], *req[2], *ack[2], *inserts[2], *storage_a, *approval[2];
} fixture_t;

static void fixture_init(fixture_t *f)
{
    f->reg = poh_registry_new();
    const char *const gt[] = {"group", "target"}, *const gtm[] = {"group", "target", "method"},
                      *const cs[] = {"cluster", "stream"},
                      *const cso[] = {"cluster", "stream", "operation"};
    poh_family_t *fs = poh_registry_family(f->reg, POH_GAUGE, "poh_probe_success", "", 2, gt,
                                           NULL, 0),
                 *fr = poh_registry_family(f->reg, POH_COUNTER, "poh_requests_total", "", 3, gtm,
                                           NULL, 0),
                 *fa = poh_registry_family(f->reg, POH_COUNTER, "poh_ack_total", "", 3, gtm,
                                           NULL, 0),
                 *fc = poh_registry_family(f->reg, POH_COUNTER, "poh_mongodb_changes_total", "", 3,
                                           cso, NULL, 0),
                 *fst = poh_registry_family(f->reg, POH_HISTOGRAM, "poh_storage_latency_seconds",
                                            "", 2, cs, NULL, 0),
                 *fap = poh_registry_family(f->reg, POH_HISTOGRAM,
                                            "poh_approval_latency_seconds", "", 2, cs, NULL, 0);
    const char *targets[] = {"n1:1", "n2:1"}, *streams[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        f->success[i] = poh_family_series(fs, (const char *const[]){"poh", targets[i]});
        f->req[i] = poh_family_series(fr, (const char *const[]){"poh", targets[i], "/h"});
        f->ack[i] = poh_family_series(fa, (const char *const[]){"poh", targets[i], "/h"});
        f->inserts[i] = poh_family_series(fc, (const char *const[]){"main", streams[i], "insert"});
        f->approval[i] = poh_family_series(fap, (const char *const[]){"main", streams[i]});
    }
    f->storage_a = poh_family_series(fst, (const char *const[]){"main", "a"});
}

/* One scrape's worth: every target probed once (n2 fails), 100 inserts per
 * stream; stream a approves in 50 ms, stream b in 300 ms; storage 10 ms. */
static void one_scrape(fixture_t *f)
{
    for (int i = 0; i < 2; i++) {
        poh_gauge_set(f->success[i], i == 0);
        poh_counter_inc(f->req[i]);
        if (i == 0)
            poh_counter_inc(f->ack[i]);
        poh_counter_add(f->inserts[i], 100);
    }
    for (int n = 0; n < 100; n++) {
        poh_histogram_observe(f->approval[0], 0.05);
        poh_histogram_observe(f->approval[1], 0.3);
        poh_histogram_observe(f->storage_a, 0.01);
    }
}

static char *render(poh_landing_t *l, const poh_config_t *cfg)
{
    poh_strbuf_t h = POH_STRBUF_INIT;
    poh_landing_render(l, cfg, "exporter:8000", &h);
    return poh_strbuf_steal(&h);
}

START_TEST(test_history)
{
    poh_config_t *cfg = NULL;
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_msg(poh_config_load_string("t.yml", yaml, strlen(yaml), &cfg, &err) == 0, "%s",
                  err.data);
    poh_landing_t *l = poh_landing_new();
    char *page = render(l, cfg);
    ck_assert_ptr_nonnull(strstr(page, "Nothing has scraped this exporter yet"));
    ck_assert_ptr_nonnull(strstr(page, "targets: [\"exporter:8000\"]"));
    free(page);

    fixture_t f;
    fixture_init(&f);
    double t0 = 1796400000;
    for (int k = 0; k < 4; k++) { /* four scrapes, 11 s apart */
        one_scrape(&f);
        poh_landing_observe(l, &f.reg, 1, cfg, t0 + 11 * k);
    }
    page = render(l, cfg);
    /* target cells: the last scrape's figures */
    ck_assert_ptr_nonnull(strstr(page, "data-t=\"n1:1\" data-success=\"1\" data-requests=\"4\" "
                                       "data-acks=\"4\""));
    ck_assert_ptr_nonnull(strstr(page, "data-t=\"n2:1\" data-success=\"0\" data-requests=\"4\" "
                                       "data-acks=\"0\""));
    ck_assert_ptr_nonnull(strstr(page, "data-up=\"1\" data-slow=\"0\" data-down=\"1\""));
    /* the hour so far: 3 of 6 calls after the first scrape acked */
    ck_assert_ptr_nonnull(strstr(page, "50.00% of 6 calls acked"));
    /* each stream its own quantiles, though both have an approval latency:
     * 50 ms in (25, 50] ms -> p50 37.5 ms; 300 ms in (250, 500] -> 375 ms */
    char *a = strstr(page, "data-stream=\"a\""), *b = strstr(page, "data-stream=\"b\"");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert(a < b);
    char *a_appr = strstr(a, "approval latency p50: <b>37.5 ms</b>");
    ck_assert_msg(a_appr && a_appr < b, "%s", a);
    ck_assert_ptr_nonnull(strstr(b, "approval latency p50: <b>375 ms</b>"));
    ck_assert_ptr_null(strstr(b, "storage latency"));
    ck_assert_ptr_nonnull(strstr(a, "storage latency p50: <b>7.5 ms</b>"));
    /* Tx/s: 100 inserts every 11 s */
    ck_assert_ptr_nonnull(strstr(a, "Tx/s (inserts): <b>9.09 /s</b>"));
    free(page);

    /* a reload gives stream b a storage latency too: its history starts over */
    static const char yaml2_tail[] = "          - {name: storage, from_field: x, to: commit}\n";
    size_t n = strlen(yaml) + strlen(yaml2_tail) + 1;
    char *yaml2 = malloc(n);
    snprintf(yaml2, n, "%s%s", yaml, yaml2_tail);
    poh_config_t *cfg2 = NULL;
    ck_assert_int_eq(poh_config_load_string("t2.yml", yaml2, strlen(yaml2), &cfg2, &err), 0);
    one_scrape(&f);
    poh_landing_observe(l, &f.reg, 1, cfg2, t0 + 44);
    page = render(l, cfg2);
    b = strstr(page, "data-stream=\"b\"");
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(strstr(b, "storage latency p50"));
    free(page);

    free(yaml2);
    poh_config_free(cfg2);
    poh_config_free(cfg);
    poh_strbuf_free(&err);
    poh_landing_free(l);
    poh_registry_free(f.reg);
}
END_TEST

/* Targets of many name lengths: a lookup compares whole keys only (an
 * earlier version read past a shorter key, which the ASan build reported in
 * CI). Every target keeps its own cell. */
START_TEST(test_many_targets)
{
    static const char yaml1[] = "state_dir: /tmp\n";
    poh_config_t *cfg = NULL;
    ck_assert_int_eq(poh_config_load_string("t.yml", yaml1, strlen(yaml1), &cfg, NULL), 0);
    poh_registry_t *reg = poh_registry_new();
    const char *const gt[] = {"group", "target"};
    poh_family_t *fs = poh_registry_family(reg, POH_GAUGE, "poh_probe_success", "", 2, gt, NULL, 0);
    char name[64];
    for (int i = 0; i < 700; i++) {
        snprintf(name, sizeof name, "%.*s%d:1", i % 23, "abcdefghijklmnopqrstuvw", i);
        poh_gauge_set(poh_family_series(fs, (const char *const[]){"g", name}), i % 2);
    }
    poh_landing_t *l = poh_landing_new();
    for (int k = 0; k < 3; k++)
        poh_landing_observe(l, &reg, 1, cfg, 1796400000 + k);
    poh_strbuf_t h = POH_STRBUF_INIT;
    poh_landing_render(l, cfg, NULL, &h);
    ck_assert_ptr_nonnull(h.data); /* no grpc groups configured: no grid, no crash */
    poh_strbuf_free(&h);
    poh_landing_free(l);
    poh_registry_free(reg);
    poh_config_free(cfg);
}
END_TEST

/* The collectors report status rows as data; the landing page renders them
 * as the rows the collectors used to write themselves. */
START_TEST(test_status_rows)
{
    poh_strbuf_t sb = POH_STRBUF_INIT;
    poh_html_escape(&sb, "<a href=\"x\">&'</a>");
    ck_assert_str_eq(sb.data, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    poh_strbuf_free(&sb);

    poh_status_rows_t rows = POH_STATUS_ROWS_INIT;
    poh_landing_status_rows(&rows, &sb);
    ck_assert_str_eq(sb.data, "<tr><td colspan=\"5\">No collectors configured.</td></tr>\n");
    poh_strbuf_free(&sb);

    poh_status_text_t c = {.name = "grpc/a<b", .target = "(collector)", .result = "failed",
                           .error = "missed the scrape deadline"};
    poh_status_rows_add(&rows, &c, POH_STATUS_LATENCY_S, 1.5);
    poh_status_text_t g = {.kind = "grpc", .name = "a<b", .target = "h:1", .result = "SERVING"};
    poh_status_rows_add(&rows, &g, POH_STATUS_LATENCY_MS, 0.0125);
    poh_status_text_t m = {.kind = "mongodb", .name = "main/s", .target_prefix = "change stream ",
                           .target = "db.c", .result = "running", .error = "e&"};
    poh_status_rows_add(&rows, &m, POH_STATUS_LATENCY_LAG, 2);
    poh_status_text_t n = {.kind = "mongodb", .name = "main", .target = "mongodb://h",
                           .result = "not scraped yet"};
    poh_status_rows_add(&rows, &n, POH_STATUS_LATENCY_NONE, 0);
    ck_assert(!rows.failed);
    poh_landing_status_rows(&rows, &sb);
    ck_assert_str_eq(sb.data,
                     "<tr><td>grpc/a&lt;b</td><td>(collector)</td><td>failed</td>"
                     "<td>1.500 s</td><td>missed the scrape deadline</td></tr>\n"
                     "<tr><td>grpc/a&lt;b</td><td>h:1</td><td>SERVING</td>"
                     "<td>12.500 ms</td><td></td></tr>\n"
                     "<tr><td>mongodb/main/s</td><td>change stream db.c</td><td>running</td>"
                     "<td>lag 2.000 s</td><td>e&amp;</td></tr>\n"
                     "<tr><td>mongodb/main</td><td>mongodb://h</td><td>not scraped yet</td>"
                     "<td></td><td></td></tr>\n");
    poh_strbuf_free(&sb);
    poh_status_rows_free(&rows);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("landing");
    TCase *tc = tcase_create("landing");
    tcase_add_test(tc, test_history);
    tcase_add_test(tc, test_many_targets);
    tcase_add_test(tc, test_status_rows);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
