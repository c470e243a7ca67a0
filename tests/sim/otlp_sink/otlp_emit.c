/* SPDX-License-Identifier: Apache-2.0 */
/* otlp_emit: drives the exporter's real tracer (pohcore's src/trace) for the
 * end-to-end tests, the way the exporter's collectors will: start spans, set
 * attributes, end them, destroy the tracer. It prints one JSON line per thing
 * it made ("made") so a test can compare with what the sink received, and a
 * final "stats" line with the tracer's counters.
 *
 * Scenarios:
 *   tree    a SERVER root "scrape" with CLIENT children: two health checks
 *           (one failing with NOT_SERVING), one MongoDB command; the first
 *           child lasts --child-ms, and the next starts --gap-ms after it
 *   join    a "storage.commit" span under --traceparent, from --start-ns to
 *           --end-ns
 *   types   one span with attributes of every type and edge values
 *   flood   --count spans from each of --threads threads, as fast as possible
 *           or --rate spans/s per thread; reports the time poh_span_end()
 *           took (p50, p99, max) */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "trace/trace.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_ctx(const char *what, const char *name, const poh_span_t *s)
{
    char tp[POH_TRACEPARENT_LEN + 1];
    if (poh_span_traceparent(s, tp, sizeof tp) < 0)
        tp[0] = '\0'; /* tracing off: no span */
    printf("{\"type\":\"made\",\"what\":\"%s\",\"name\":\"%s\",\"traceparent\":\"%s\","
           "\"sampled\":%s}\n",
           what, name, tp, poh_span_is_sampled(s) ? "true" : "false");
}

static void scenario_tree(poh_tracer_t *t, long child_ms, long gap_ms)
{
    poh_span_t *root = poh_span_start(t, "scrape", POH_SPAN_KIND_SERVER, NULL);
    poh_span_set_str(root, "http.request.method", "GET");
    poh_span_set_str(root, "url.path", "/metrics");
    print_ctx("root", "scrape", root);

    poh_span_t *c = poh_span_start(t, "grpc.health.v1.Health/Check", POH_SPAN_KIND_CLIENT,
                                   poh_span_context(root));
    poh_span_set_str(c, "rpc.system", "grpc");
    poh_span_set_str(c, "rpc.service", "grpc.health.v1.Health");
    poh_span_set_str(c, "rpc.method", "Check");
    poh_span_set_str(c, "server.address", "poh-1");
    poh_span_set_int(c, "server.port", 50051);
    poh_span_set_int(c, "rpc.grpc.status_code", 0);
    print_ctx("child", "ok", c);
    usleep((useconds_t)child_ms * 1000);
    poh_span_end(c);
    usleep((useconds_t)gap_ms * 1000);

    c = poh_span_start(t, "grpc.health.v1.Health/Check", POH_SPAN_KIND_CLIENT,
                       poh_span_context(root));
    poh_span_set_str(c, "rpc.system", "grpc");
    poh_span_set_str(c, "rpc.service", "grpc.health.v1.Health");
    poh_span_set_str(c, "rpc.method", "Check");
    poh_span_set_str(c, "server.address", "poh-2");
    poh_span_set_int(c, "server.port", 50052);
    poh_span_set_int(c, "rpc.grpc.status_code", 0);
    poh_span_set_status(c, POH_SPAN_STATUS_ERROR, "NOT_SERVING");
    print_ctx("child", "not_serving", c);
    poh_span_end(c);

    c = poh_span_start(t, "replSetGetStatus", POH_SPAN_KIND_CLIENT, poh_span_context(root));
    poh_span_set_str(c, "db.system", "mongodb");
    poh_span_set_str(c, "db.operation", "replSetGetStatus");
    poh_span_set_str(c, "db.name", "admin");
    print_ctx("child", "mongo", c);
    poh_span_end(c);

    poh_span_end(root);
}

static int scenario_join(poh_tracer_t *t, const char *traceparent, uint64_t start, uint64_t end)
{
    poh_span_context_t parent;
    if (!traceparent ||
        poh_traceparent_parse(traceparent, strlen(traceparent), &parent) < 0) {
        fprintf(stderr, "otlp_emit: join needs a valid --traceparent\n");
        return -EINVAL;
    }
    poh_span_t *s = poh_span_start_at(t, "storage.commit", POH_SPAN_KIND_INTERNAL, &parent, start);
    poh_span_set_str(s, "db.system", "mongodb");
    poh_span_set_str(s, "db.name", "dag");
    poh_span_set_str(s, "db.collection.name", "transactions");
    print_ctx("join", "storage.commit", s);
    poh_span_end_at(s, end);
    return 0;
}

static void scenario_types(poh_tracer_t *t)
{
    poh_span_t *s = poh_span_start(t, "types", POH_SPAN_KIND_PRODUCER, NULL);
    poh_span_set_str(s, "str", "h\xc3\xa9llo \xe2\x9c\x93 \"quoted\"\\");
    poh_span_set_str(s, "empty", "");
    poh_span_set_int(s, "int.max", INT64_MAX);
    poh_span_set_int(s, "int.min", INT64_MIN);
    poh_span_set_int(s, "int.zero", 0);
    poh_span_set_double(s, "double", 0.1);
    poh_span_set_double(s, "double.neg", -2.5e-300);
    poh_span_set_double(s, "double.whole", 3.0);
    poh_span_set_bool(s, "bool.true", true);
    poh_span_set_bool(s, "bool.false", false);
    poh_span_set_status(s, POH_SPAN_STATUS_OK, NULL);
    print_ctx("types", "types", s);
    poh_span_end(s);
}

typedef struct {
    poh_tracer_t *t;
    long count;
    double rate; /* spans/s for this thread; 0 = as fast as possible */
    double *took;
} flood_arg_t;

static void *flood_thread(void *p)
{
    flood_arg_t *a = p;
    double start = now_s();
    for (long i = 0; i < a->count; i++) {
        if (a->rate > 0 && i % 50 == 0) {
            double ahead = start + (double)i / a->rate - now_s();
            if (ahead > 0)
                usleep((useconds_t)(ahead * 1e6));
        }
        poh_span_t *s = poh_span_start(a->t, "flood", POH_SPAN_KIND_CLIENT, NULL);
        poh_span_set_str(s, "rpc.system", "grpc");
        poh_span_set_int(s, "i", i);
        double t0 = now_s();
        poh_span_end(s);
        a->took[i] = now_s() - t0;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int scenario_flood(poh_tracer_t *t, long count, int threads, double rate)
{
    pthread_t th[64];
    flood_arg_t args[64];
    double *took = calloc((size_t)(count * threads), sizeof *took);
    if (!took)
        return -ENOMEM;
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        args[i] = (flood_arg_t){t, count, rate, took + (size_t)i * (size_t)count};
        pthread_create(&th[i], NULL, flood_thread, &args[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double wall = now_s() - t0;
    size_t n = (size_t)(count * threads);
    qsort(took, n, sizeof *took, cmp_double);
    printf("{\"type\":\"flood\",\"spans\":%zu,\"wall_s\":%.6f,\"end_p50_s\":%.9f,"
           "\"end_p99_s\":%.9f,\"end_max_s\":%.9f}\n",
           n, wall, took[n / 2], took[n * 99 / 100], took[n - 1]);
    free(took);
    return 0;
}

/* A double-quoted YAML scalar. */
static void yaml_quote(poh_strbuf_t *y, const char *s)
{
    poh_strbuf_putc(y, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            poh_strbuf_printf(y, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            poh_strbuf_printf(y, "\\x%02x", *p);
        else
            poh_strbuf_putc(y, (char)*p);
    }
    poh_strbuf_putc(y, '"');
}

/* "k=v" as an item of a YAML flow mapping; -EINVAL without '='. */
static int yaml_kv(poh_strbuf_t *map, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return -EINVAL;
    char *k = strndup(arg, (size_t)(eq - arg));
    if (!k)
        return -ENOMEM;
    poh_strbuf_puts(map, map->len ? ", " : "{");
    yaml_quote(map, k);
    poh_strbuf_puts(map, ": ");
    yaml_quote(map, eq + 1);
    free(k);
    return 0;
}

typedef struct run {
    poh_strbuf_t yaml, tls, headers, resource; /* the tracing section, in parts */
    bool enabled_set;
    const char *scenario, *traceparent;
    long child_ms, gap_ms, count, flush_ms;
    int threads;
    double rate;
    uint64_t start_ns, end_ns;
} run_t;

enum { RAW, QUOTED, MS };

/* A tracer setting: the flag, its key in the tracing section (or its tls
 * section) and how its value is written there. */
static const struct {
    const char *flag, *key;
    int how;
    bool tls;
} settings[] = {
    {"--endpoint", "endpoint", QUOTED, false},
    {"--enabled", "enabled", RAW, false},
    {"--service-name", "service_name", QUOTED, false},
    {"--sample-ratio", "sample_ratio", RAW, false},
    {"--queue-size", "queue_size", RAW, false},
    {"--batch-size", "batch_size", RAW, false},
    {"--batch-timeout-ms", "batch_timeout", MS, false},
    {"--export-timeout-ms", "export_timeout", MS, false},
    {"--retry-initial-ms", "retry_initial_backoff", MS, false},
    {"--retry-max-ms", "retry_max_backoff", MS, false},
    {"--retry-max-elapsed-ms", "retry_max_elapsed", MS, false},
    {"--shutdown-timeout-ms", "shutdown_timeout", MS, false},
    {"--drop-log-interval-ms", "drop_log_interval", MS, false},
    {"--tls-ca", "ca_file", QUOTED, true},
    {"--tls-cert", "cert_file", QUOTED, true},
    {"--tls-key", "key_file", QUOTED, true},
    {"--tls-server-name", "server_name", QUOTED, true},
};

/* One tracer setting into r's YAML; 1 when a is not one. */
static int read_setting(run_t *r, const char *a, const char *v)
{
    for (size_t k = 0; k < sizeof settings / sizeof settings[0]; k++) {
        if (strcmp(a, settings[k].flag) != 0)
            continue;
        poh_strbuf_t *y = settings[k].tls ? &r->tls : &r->yaml;
        poh_strbuf_printf(y, "%s%s: ", settings[k].tls ? "  " : "", settings[k].key);
        if (settings[k].how == MS)
            poh_strbuf_printf(y, "%ldms", atol(v));
        else if (settings[k].how == QUOTED)
            yaml_quote(y, v);
        else
            poh_strbuf_puts(y, v);
        poh_strbuf_putc(y, '\n');
        r->enabled_set |= strcmp(a, "--enabled") == 0;
        return 0;
    }
    if (strcmp(a, "--header") == 0)
        return yaml_kv(&r->headers, v);
    if (strcmp(a, "--resource") == 0)
        return yaml_kv(&r->resource, v);
    return 1;
}

/* One scenario option; 1 when a is not one. */
static int read_option(run_t *r, const char *a, const char *v)
{
    if (strcmp(a, "--scenario") == 0)
        r->scenario = v;
    else if (strcmp(a, "--flush-timeout-ms") == 0)
        r->flush_ms = atol(v);
    else if (strcmp(a, "--child-ms") == 0)
        r->child_ms = atol(v);
    else if (strcmp(a, "--gap-ms") == 0)
        r->gap_ms = atol(v);
    else if (strcmp(a, "--traceparent") == 0)
        r->traceparent = v;
    else if (strcmp(a, "--start-ns") == 0)
        r->start_ns = strtoull(v, NULL, 10);
    else if (strcmp(a, "--end-ns") == 0)
        r->end_ns = strtoull(v, NULL, 10);
    else if (strcmp(a, "--count") == 0)
        r->count = atol(v);
    else if (strcmp(a, "--rate") == 0)
        r->rate = atof(v);
    else if (strcmp(a, "--threads") == 0)
        r->threads = atoi(v);
    else
        return 1;
    return 0;
}

/* The command line into r: scenario options, and the tracer's settings as
 * the YAML of a tracing section (read by the config engine, as the
 * exporter reads its file). 0, or 2 for a bad command line. */
static int read_args(int argc, char **argv, run_t *r)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 1;
        if (strcmp(a, "--tls-insecure") == 0) {
            poh_strbuf_puts(&r->tls, "  insecure_skip_verify: true\n");
            continue;
        }
        if (v && (rc = read_setting(r, a, v)) == 1)
            rc = read_option(r, a, v);
        if (rc != 0) {
            fprintf(stderr, "otlp_emit: unknown, incomplete or bad argument %s\n", a);
            return 2;
        }
        i++;
    }
    if (!r->enabled_set)
        poh_strbuf_puts(&r->yaml, "enabled: true\n");
    if (r->tls.len)
        poh_strbuf_printf(&r->yaml, "tls:\n%s", r->tls.data);
    if (r->headers.len)
        poh_strbuf_printf(&r->yaml, "headers: %s}\n", r->headers.data);
    if (r->resource.len)
        poh_strbuf_printf(&r->yaml, "resource_attributes: %s}\n", r->resource.data);
    return r->yaml.failed ? 2 : 0;
}

static void print_stats(poh_tracer_t *t, int flushed, double destroy_s)
{
    poh_tracer_stats_t st;
    poh_tracer_stats(t, &st);
    /* Peak RSS of this program (VmHWM): getrusage's ru_maxrss survives
     * execve and would report the parent's size. */
    long hwm_kb = -1;
    FILE *st_f = fopen("/proc/self/status", "r");
    char line[256];
    while (st_f && fgets(line, sizeof line, st_f))
        if (sscanf(line, "VmHWM: %ld kB", &hwm_kb) == 1)
            break;
    if (st_f)
        fclose(st_f);
    printf("{\"type\":\"stats\",\"flush_rc\":%d,\"exported\":%llu,\"dropped\":{\"queue_full\":%llu,"
           "\"export_failed\":%llu,\"rejected\":%llu,\"shutdown\":%llu},\"calls\":%llu,"
           "\"retries\":%llu,\"queued\":%llu,\"destroy_s\":%.3f,\"maxrss_kb\":%ld}\n",
           flushed, (unsigned long long)st.exported,
           (unsigned long long)st.dropped[POH_DROP_QUEUE_FULL],
           (unsigned long long)st.dropped[POH_DROP_EXPORT_FAILED],
           (unsigned long long)st.dropped[POH_DROP_REJECTED],
           (unsigned long long)st.dropped[POH_DROP_SHUTDOWN], (unsigned long long)st.export_calls,
           (unsigned long long)st.export_retries, (unsigned long long)st.queued, destroy_s,
           hwm_kb);
}

/* The tracing section r's command line gave, through the config engine. */
static int load_config(run_t *r, poh_tracing_config_t *cfg)
{
    poh_strbuf_t err = POH_STRBUF_INIT;
    int rc = poh_tracing_config_parse(r->yaml.data, cfg, &err);
    if (rc < 0)
        fprintf(stderr, "otlp_emit: %s", err.data ? err.data : "invalid tracing settings\n");
    poh_strbuf_free(&err);
    return rc;
}

static int run_scenario(poh_tracer_t *t, const run_t *r)
{
    if (strcmp(r->scenario, "tree") == 0)
        scenario_tree(t, r->child_ms, r->gap_ms);
    else if (strcmp(r->scenario, "join") == 0)
        return scenario_join(t, r->traceparent, r->start_ns, r->end_ns);
    else if (strcmp(r->scenario, "types") == 0)
        scenario_types(t);
    else if (strcmp(r->scenario, "flood") == 0)
        return scenario_flood(t, r->count, r->threads, r->rate);
    else {
        fprintf(stderr, "otlp_emit: unknown scenario %s\n", r->scenario);
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    run_t r = {.scenario = "tree", .child_ms = 30, .count = 1000, .flush_ms = -1, .threads = 1};
    poh_tracing_config_t cfg;

    poh_log_setup(POH_LOG_INFO, POH_LOG_LOGFMT);
    int bad = read_args(argc, argv, &r);
    if (!bad && (r.threads < 1 || r.threads > 64 || r.count < 1))
        bad = 2;
    if (!bad && load_config(&r, &cfg) < 0) {
        poh_tracing_config_release(&cfg);
        bad = 2;
    }
    poh_strbuf_free(&r.yaml);
    poh_strbuf_free(&r.tls);
    poh_strbuf_free(&r.headers);
    poh_strbuf_free(&r.resource);
    if (bad)
        return bad;

    poh_tracer_t *t = poh_tracer_create(&cfg);
    poh_tracing_config_release(&cfg); /* the tracer keeps copies */
    if (!t)
        printf("{\"type\":\"tracer\",\"enabled\":false}\n");
    int rc = run_scenario(t, &r);
    fflush(stdout);

    int flushed = 0;
    if (r.flush_ms >= 0)
        flushed = poh_tracer_flush(t, (double)r.flush_ms / 1000.0);
    double d0 = now_s();
    poh_tracer_shutdown(t);
    double destroy_s = now_s() - d0;
    print_stats(t, flushed, destroy_s);
    poh_tracer_destroy(t);
    return rc < 0 ? 1 : 0;
}
