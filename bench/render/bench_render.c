/* SPDX-License-Identifier: Apache-2.0 */
/* Rendering benchmark: poh_render() on registries of 10k and 100k series
 * (60% counters with 3 labels, 30% gauges with 2 labels, 10% histograms with
 * 2 labels and the 11 default buckets), in both formats, side by side with a
 * naive renderer over the same data (labels escaped at render time, every
 * number through snprintf "%.17g", the usual first implementation) and with
 * the cost of gzip (levels 1 and 6) on the text body, as the HTTP layer
 * would do it.
 *
 * "Series" counts label sets (a histogram is one series of 14 samples);
 * samples are output lines. Goal from issue 2: 100k series in under 50 ms.
 *
 * The headline is a whole scrape as the exporter does one: build the
 * registry (families, series, values; every histogram observation and one
 * counter in ten with a trace exemplar, as the stream and probe collectors
 * record them), render it as OpenMetrics (the format exemplars appear in)
 * and free it. The render-only rows below it reuse one registry built once,
 * so they show what serialising alone costs.
 *
 * Usage: bench_render [iterations-for-100k]   (10k runs 10x as many) */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "metrics/metrics.h"
#include "metrics/metrics_impl.h"

#define GOAL_MS 50.0

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rnd01(uint64_t *s) { return (double)(rnd(s) >> 11) / 9007199254740992.0; }

/* Trace and span ids for exemplars, made once: a scrape copies ids it has. */
static char trace_ids[64][33], span_ids[64][17];

static void make_ids(void)
{
    uint64_t st = 777;
    for (int i = 0; i < 64; i++) {
        snprintf(trace_ids[i], sizeof trace_ids[i], "%016llx%016llx",
                 (unsigned long long)rnd(&st), (unsigned long long)rnd(&st));
        snprintf(span_ids[i], sizeof span_ids[i], "%016llx", (unsigned long long)rnd(&st));
    }
}

static poh_registry_t *build(size_t nseries, bool exemplars)
{
    poh_registry_t *r = poh_registry_new();
    const char *const cl[] = {"group", "target", "method"};
    const char *const gl[] = {"group", "target"};
    poh_family_t *ctr[6], *gau[3], *hist;
    char name[64];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "bench_requests_%d_total", i);
        ctr[i] = poh_registry_family(r, POH_COUNTER, name, "Requests by target and method.", 3,
                                     cl, NULL, 0);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "bench_state_%d", i);
        gau[i] = poh_registry_family(r, POH_GAUGE, name, "Last observed state.", 2, gl, NULL, 0);
    }
    hist = poh_registry_family(r, POH_HISTOGRAM, "bench_latency_seconds", "Round trip.", 2, gl,
                               NULL, 0);
    uint64_t st = 12345;
    char group[16], target[48], method[48];
    for (size_t i = 0; i < nseries; i++) {
        snprintf(group, sizeof group, "group-%zu", i % 20);
        snprintf(target, sizeof target, "poh-node-%06zu.dag.example:50051", i);
        snprintf(method, sizeof method, "/poh.PoH/Method%zu", i % 7);
        size_t kind = i % 10;
        if (kind < 6) {
            poh_series_t *s = poh_family_series(ctr[kind], (const char *const[]){group, target,
                                                                                  method});
            if (i % 10 == 0 && exemplars)
                poh_counter_add_exemplar(s, rnd01(&st) * 1e5, trace_ids[i % 64],
                                         span_ids[i % 64], 1764950400.0 + (double)i);
            else if (i % 10 == 0)
                poh_counter_add(s, rnd01(&st) * 1e5); /* e.g. cpu seconds: 17 digits */
            else
                poh_counter_add(s, (double)(rnd(&st) % 1000000000));
        } else if (kind < 9) {
            poh_series_t *s = poh_family_series(gau[kind - 6], (const char *const[]){group,
                                                                                   target});
            switch (i % 3) {
            case 0: poh_gauge_set(s, rnd01(&st) * 1000); break;          /* full precision */
            case 1: poh_gauge_set(s, (double)(rnd(&st) % 10000) / 100); break; /* 12.34 */
            default: poh_gauge_set(s, (double)(rnd(&st) % 2)); break;   /* up/down */
            }
        } else {
            poh_series_t *s = poh_family_series(hist, (const char *const[]){group, target});
            for (int k = 0; k < 20; k++) {
                double v = 0.001 * pow(20000.0, rnd01(&st));
                if (exemplars)
                    poh_histogram_observe_exemplar(s, v, trace_ids[(i + k) % 64],
                                                   span_ids[(i + k) % 64],
                                                   1764950400.0 + (double)i);
                else
                    poh_histogram_observe(s, v);
            }
        }
    }
    return r;
}

/* ---- the naive baseline --------------------------------------------------------- */

static void naive_escape(poh_strbuf_t *sb, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            poh_strbuf_printf(sb, "\\%c", *v);
        else if (*v == '\n')
            poh_strbuf_puts(sb, "\\n");
        else
            poh_strbuf_putc(sb, *v);
    }
}

static int fam_cmp(const void *a, const void *b)
{
    return strcmp((*(poh_family_t *const *)a)->name, (*(poh_family_t *const *)b)->name);
}

static void naive_render(poh_strbuf_t *out, poh_registry_t *r)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    poh_family_t **fams = malloc(r->nfamilies * sizeof *fams);
    memcpy(fams, r->families, r->nfamilies * sizeof *fams);
    qsort(fams, r->nfamilies, sizeof *fams, fam_cmp);
    poh_strbuf_t labels = POH_STRBUF_INIT;
    for (size_t k = 0; k < r->nfamilies; k++) {
        poh_family_t *f = fams[k];
        poh_strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help_text, f->name,
                          types[f->type]);
        for (size_t i = 0; i < f->nseries; i++) {
            poh_series_t *s = f->series[i];
            poh_strbuf_reset(&labels);
            const char *v = s->key;
            for (size_t j = 0; j < f->nlabels; j++) {
                poh_strbuf_printf(&labels, "%s%s=\"", j ? "," : "", f->label_names[j]);
                naive_escape(&labels, v);
                poh_strbuf_putc(&labels, '"');
                v += strlen(v) + 1;
            }
            const char *lb = labels.data ? labels.data : "";
            double val = poh_series_value(s);
            if (f->type != POH_HISTOGRAM) {
                poh_strbuf_printf(out, "%s{%s} %.17g\n", f->name, lb, val);
                continue;
            }
            uint64_t cum[POH_MAX_BUCKETS + 1];
            poh_histogram_read(s, cum, POH_MAX_BUCKETS + 1);
            for (size_t b = 0; b <= f->nbuckets; b++) {
                if (b < f->nbuckets)
                    poh_strbuf_printf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", f->name, lb,
                                      f->bounds[b], (unsigned long long)cum[b]);
                else
                    poh_strbuf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", f->name, lb,
                                      (unsigned long long)cum[b]);
            }
            poh_strbuf_printf(out, "%s_sum{%s} %.17g\n%s_count{%s} %llu\n", f->name, lb, val,
                              f->name, lb, (unsigned long long)cum[f->nbuckets]);
        }
    }
    poh_strbuf_free(&labels);
    free(fams);
}

/* ---- measurement ------------------------------------------------------------------- */

typedef struct result {
    double median, min;
    size_t bytes, lines;
} result_t;

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t count_lines(const poh_strbuf_t *sb)
{
    size_t n = 0;
    for (size_t i = 0; i < sb->len; i++)
        n += sb->data[i] == '\n';
    return n;
}

/* A whole scrape, iters times: build nseries with exemplars, render
 * OpenMetrics into a fresh buffer, free both. */
static result_t measure_scrape(size_t nseries, int iters)
{
    double *t = malloc((size_t)iters * sizeof *t);
    result_t res = {0};
    for (int i = -1; i < iters; i++) {
        double t0 = now_ms();
        poh_registry_t *r = build(nseries, true);
        poh_strbuf_t out = POH_STRBUF_INIT;
        if (poh_render(&out, &r, 1, POH_FMT_OPENMETRICS) < 0) {
            fprintf(stderr, "render failed\n");
            exit(1);
        }
        res.bytes = out.len;
        poh_strbuf_free(&out);
        poh_registry_free(r);
        if (i >= 0)
            t[i] = now_ms() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, dbl_cmp);
    res.median = t[iters / 2];
    res.min = t[0];
    free(t);
    return res;
}

/* mode: 0 text, 1 OpenMetrics, 2 naive text, 3 gzip -level of the text body,
 * 4 OpenMetrics into a buffer reserved from the last body's size + 1/8, as
 * the exporter's scrape does (poh_app_scrape). */
static result_t measure(poh_registry_t *r, int mode, int iters, int level)
{
    double *t = malloc((size_t)iters * sizeof *t);
    result_t res = {0};
    poh_strbuf_t text = POH_STRBUF_INIT;
    if (mode == 3)
        poh_render(&text, &r, 1, POH_FMT_TEXT);
    for (int i = -1; i < iters; i++) { /* i = -1 warms up */
        poh_strbuf_t out = POH_STRBUF_INIT; /* fresh per scrape, as the server does */
        double t0 = now_ms();
        if (mode == 4 && res.bytes)
            poh_strbuf_reserve(&out, res.bytes + res.bytes / 8);
        if (mode == 0 || mode == 1 || mode == 4) {
            if (poh_render(&out, &r, 1, mode ? POH_FMT_OPENMETRICS : POH_FMT_TEXT) < 0) {
                fprintf(stderr, "render failed\n");
                exit(1);
            }
        } else if (mode == 2) {
            naive_render(&out, r);
        } else {
            uLongf zlen = compressBound((uLong)text.len);
            poh_strbuf_reserve(&out, zlen);
            z_stream z = {0};
            deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
            z.next_in = (Bytef *)text.data;
            z.avail_in = (uInt)text.len;
            z.next_out = (Bytef *)out.data;
            z.avail_out = (uInt)zlen;
            deflate(&z, Z_FINISH);
            out.len = z.total_out;
            deflateEnd(&z);
        }
        double dt = now_ms() - t0;
        if (i >= 0)
            t[i] = dt;
        res.bytes = out.len;
        if (i == iters - 1 && mode != 3)
            res.lines = count_lines(&out);
        poh_strbuf_free(&out);
    }
    qsort(t, (size_t)iters, sizeof *t, dbl_cmp);
    res.median = t[iters / 2];
    res.min = t[0];
    free(t);
    poh_strbuf_free(&text);
    return res;
}

int main(int argc, char **argv)
{
    int iters100k = argc > 1 ? atoi(argv[1]) : 20;
    if (iters100k < 1)
        iters100k = 1;
    const size_t sizes[] = {10000, 100000};
    printf("poh_render benchmark (median of N runs, fresh output buffer each time)\n");
    make_ids();
    bool goal_met = true;
    for (size_t k = 0; k < 2; k++) {
        size_t n = sizes[k];
        int iters = n == 10000 ? iters100k * 10 : iters100k;
        int scrape_iters = iters / 4 > 3 ? iters / 4 : 3;
        result_t scrape = measure_scrape(n, scrape_iters);
        double b0 = now_ms();
        poh_registry_t *r = build(n, true);
        double build_ms = now_ms() - b0;
        result_t text = measure(r, 0, iters, 0);
        result_t om = measure(r, 1, iters, 0);
        result_t omh = measure(r, 4, iters, 0);
        result_t naive = measure(r, 2, iters, 0);
        result_t gz1 = measure(r, 3, iters, 1);
        result_t gz = measure(r, 3, iters, 6);
        printf("\n%zuk series (%zu samples, text %.1f MB; registry built in %.0f ms), N=%d\n",
               n / 1000, text.lines, (double)text.bytes / 1e6, build_ms, iters);
        printf("  %-28s %8.2f ms/scrape (min %6.2f)  %6.2f M series/s  OpenMetrics %.1f MB, "
               "N=%d\n",
               "scrape: build+render+free", scrape.median, scrape.min,
               (double)n / scrape.median / 1e3, (double)scrape.bytes / 1e6, scrape_iters);
        printf("  %-28s %8.2f ms/render (min %6.2f)  %6.2f M series/s  %6.2f M samples/s\n",
               "poh_render text 0.0.4", text.median, text.min, (double)n / text.median / 1e3,
               (double)text.lines / text.median / 1e3);
        printf("  %-28s %8.2f ms/render (min %6.2f)  %6.2f M series/s  %6.2f M samples/s\n",
               "poh_render OpenMetrics 1.0", om.median, om.min, (double)n / om.median / 1e3,
               (double)om.lines / om.median / 1e3);
        printf("  %-28s %8.2f ms/render (min %6.2f)  %6.2f M series/s  (buffer reserved "
               "from the last size, as a scrape does)\n",
               "poh_render OpenMetrics, hint", omh.median, omh.min, (double)n / omh.median / 1e3);
        printf("  %-28s %8.2f ms/render (min %6.2f)  %6.2f M series/s   -> poh_render text is "
               "%.2fx faster\n",
               "naive snprintf text", naive.median, naive.min, (double)n / naive.median / 1e3,
               naive.median / text.median);
        printf("  %-28s %8.2f ms          (min %6.2f)  %5.1f MB           -> %.2fx the text render\n",
               "gzip -1 of the text body", gz1.median, gz1.min, (double)gz1.bytes / 1e6,
               gz1.median / text.median);
        printf("  %-28s %8.2f ms          (min %6.2f)  %5.1f MB           -> %.2fx the text render\n",
               "gzip -6 of the text body", gz.median, gz.min, (double)gz.bytes / 1e6,
               gz.median / text.median);
        if (naive.lines != text.lines) {
            fprintf(stderr, "line count mismatch: naive %zu vs poh_render %zu\n", naive.lines,
                    text.lines);
            return 1;
        }
        if (n == 100000) {
            double worst = text.median > omh.median ? text.median : omh.median;
            printf("\n  goal: 100k series rendered in < %.0f ms (buffer sized as a scrape "
                   "does): worst format %.2f ms = %.2f of the budget (%.1fx headroom) -> %s\n",
                   GOAL_MS, worst, worst / GOAL_MS, GOAL_MS / worst,
                   worst < GOAL_MS ? "MET" : "MISSED");
            printf("  a whole scrape of 100k series (registry built with exemplars, then "
                   "rendered): %.2f ms = %.2f of that budget -> %s\n",
                   scrape.median, scrape.median / GOAL_MS,
                   scrape.median < GOAL_MS ? "within it" : "over it");
            goal_met = worst < GOAL_MS;
        }
        poh_registry_free(r);
    }
    return goal_met ? 0 : 2;
}
