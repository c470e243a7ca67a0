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

static int add_kv(poh_config_kv_t **kv, size_t *n, const char *arg)
{
    const char *eq = strchr(arg, '=');
    poh_config_kv_t *g = realloc(*kv, (*n + 1) * sizeof **kv);
    if (!eq || !g)
        return -EINVAL;
    *kv = g;
    g[*n].key = strndup(arg, (size_t)(eq - arg));
    g[*n].value = strdup(eq + 1);
    (*n)++;
    return 0;
}

int main(int argc, char **argv)
{
    poh_tracing_config_t cfg;
    const char *scenario = "tree", *traceparent = NULL;
    long child_ms = 30, gap_ms = 0, count = 1000, flush_ms = -1;
    int threads = 1;
    double rate = 0;
    uint64_t start_ns = 0, end_ns = 0;

    poh_log_setup(POH_LOG_INFO, POH_LOG_LOGFMT);
    poh_tracing_config_defaults(&cfg);
    cfg.enabled = "true";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
#define MS(x) (atof(x) / 1000.0)
        if (ARG("--scenario"))
            scenario = v;
        else if (ARG("--endpoint"))
            cfg.endpoint = (char *)v;
        else if (ARG("--enabled"))
            cfg.enabled = (char *)v;
        else if (ARG("--service-name"))
            cfg.service_name = (char *)v;
        else if (ARG("--sample-ratio"))
            cfg.sample_ratio = atof(v);
        else if (ARG("--queue-size"))
            cfg.queue_size = (unsigned)atol(v);
        else if (ARG("--batch-size"))
            cfg.batch_size = (unsigned)atol(v);
        else if (ARG("--batch-timeout-ms"))
            cfg.batch_timeout = MS(v);
        else if (ARG("--export-timeout-ms"))
            cfg.export_timeout = MS(v);
        else if (ARG("--retry-initial-ms"))
            cfg.retry_initial_backoff = MS(v);
        else if (ARG("--retry-max-ms"))
            cfg.retry_max_backoff = MS(v);
        else if (ARG("--retry-max-elapsed-ms"))
            cfg.retry_max_elapsed = MS(v);
        else if (ARG("--shutdown-timeout-ms"))
            cfg.shutdown_timeout = MS(v);
        else if (ARG("--drop-log-interval-ms"))
            cfg.drop_log_interval = MS(v);
        else if (ARG("--flush-timeout-ms"))
            flush_ms = atol(v);
        else if (ARG("--header")) {
            if (add_kv(&cfg.headers, &cfg.headers_count, v) < 0)
                return 2;
        } else if (ARG("--resource")) {
            if (add_kv(&cfg.resource_attributes, &cfg.resource_attributes_count, v) < 0)
                return 2;
        } else if (ARG("--tls-ca"))
            cfg.tls.ca_file = (char *)v;
        else if (ARG("--tls-cert"))
            cfg.tls.cert_file = (char *)v;
        else if (ARG("--tls-key"))
            cfg.tls.key_file = (char *)v;
        else if (ARG("--tls-server-name"))
            cfg.tls.server_name = (char *)v;
        else if (strcmp(a, "--tls-insecure") == 0)
            cfg.tls.insecure_skip_verify = true;
        else if (ARG("--child-ms"))
            child_ms = atol(v);
        else if (ARG("--gap-ms"))
            gap_ms = atol(v);
        else if (ARG("--traceparent"))
            traceparent = v;
        else if (ARG("--start-ns"))
            start_ns = strtoull(v, NULL, 10);
        else if (ARG("--end-ns"))
            end_ns = strtoull(v, NULL, 10);
        else if (ARG("--count"))
            count = atol(v);
        else if (ARG("--rate"))
            rate = atof(v);
        else if (ARG("--threads"))
            threads = atoi(v);
        else {
            fprintf(stderr, "otlp_emit: unknown or incomplete argument %s\n", a);
            return 2;
        }
#undef ARG
#undef MS
    }
    if (threads < 1 || threads > 64 || count < 1)
        return 2;

    poh_tracer_t *t = poh_tracer_create(&cfg);
    int rc = 0;
    if (!t)
        printf("{\"type\":\"tracer\",\"enabled\":false}\n");
    if (strcmp(scenario, "tree") == 0)
        scenario_tree(t, child_ms, gap_ms);
    else if (strcmp(scenario, "join") == 0)
        rc = scenario_join(t, traceparent, start_ns, end_ns);
    else if (strcmp(scenario, "types") == 0)
        scenario_types(t);
    else if (strcmp(scenario, "flood") == 0)
        rc = scenario_flood(t, count, threads, rate);
    else {
        fprintf(stderr, "otlp_emit: unknown scenario %s\n", scenario);
        rc = -EINVAL;
    }
    fflush(stdout);

    int flushed = 0;
    if (flush_ms >= 0)
        flushed = poh_tracer_flush(t, (double)flush_ms / 1000.0);
    double d0 = now_s();
    poh_tracer_shutdown(t);
    double destroy_s = now_s() - d0;
    poh_tracer_stats_t st;
    poh_tracer_stats(t, &st);
    poh_tracer_destroy(t);
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
    for (size_t i = 0; i < cfg.headers_count; i++) {
        free(cfg.headers[i].key);
        free(cfg.headers[i].value);
    }
    free(cfg.headers);
    for (size_t i = 0; i < cfg.resource_attributes_count; i++) {
        free(cfg.resource_attributes[i].key);
        free(cfg.resource_attributes[i].value);
    }
    free(cfg.resource_attributes);
    return rc < 0 ? 1 : 0;
}
