/* SPDX-License-Identifier: Apache-2.0 */
/* OTLP span pipeline benchmark.
 *
 *   encode    spans already ended, encoded into ExportTraceServiceRequest
 *             batches (protobuf-c): spans/s and CPU ns per span on one thread
 *   pipeline  the real tracer: a producer thread starts, fills and ends
 *             scrape-shaped spans (6 attributes) as fast as the queue takes
 *             them; the export thread batches, encodes and ships them with
 *             gRPC to otlp_sink. Spans/s delivered and process CPU per span
 *             (producer, exporter and gRPC threads together).
 *
 * Output: one "key=value" line per measurement, read by run.sh. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/log.h"
#include "trace/trace_internal.h"

static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double process_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The shape of a gRPC probe span: what the exporter makes most of. */
static void fill(poh_span_t *s, long i)
{
    poh_span_set_str(s, "rpc.system", "grpc");
    poh_span_set_str(s, "rpc.service", "grpc.health.v1.Health");
    poh_span_set_str(s, "rpc.method", "Check");
    poh_span_set_str(s, "server.address", "poh-node-1.example");
    poh_span_set_int(s, "server.port", 50051);
    poh_span_set_int(s, "rpc.grpc.status_code", i % 7 ? 0 : 14);
}

static int bench_encode(long total, size_t batch)
{
    poh_config_kv_t res[] = {{"service.name", "poh-exporter"},
                             {"service.version", "0.1.0"},
                             {"host.name", "bench"}};
    poh_otlp_encoder_t *e = poh_otlp_encoder_new(res, 3, "poh_exporter", "0.1.0");
    poh_span_t **spans = calloc(batch, sizeof *spans);
    poh_span_context_t parent;
    if (!e || !spans)
        return -ENOMEM;
    poh_trace_random_trace_id(parent.trace_id);
    poh_trace_random_span_id(parent.span_id);
    parent.flags = 1;
    parent.remote = false;
    for (size_t i = 0; i < batch; i++) {
        spans[i] = poh_span_new_detached("grpc.health.v1.Health/Check", POH_SPAN_KIND_CLIENT,
                                         &parent, 0);
        fill(spans[i], (long)i);
        poh_span_finish_detached(spans[i], 0);
    }
    size_t bytes = 0;
    long done = 0;
    double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
    while (done < total) {
        const uint8_t *buf;
        size_t len;
        if (poh_otlp_encode(e, spans, batch, &buf, &len) < 0)
            return -ENOMEM;
        bytes += len;
        done += (long)batch;
    }
    double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0, wall = clock_s(CLOCK_MONOTONIC) - w0;
    printf("encode spans=%ld batch=%zu cpu_s=%.4f wall_s=%.4f spans_per_cpu_s=%.0f "
           "ns_per_span=%.1f bytes_per_span=%.1f\n",
           done, batch, cpu, wall, (double)done / cpu, cpu * 1e9 / (double)done,
           (double)bytes / (double)done);
    for (size_t i = 0; i < batch; i++)
        poh_span_free(spans[i]);
    free(spans);
    poh_otlp_encoder_free(e);
    return 0;
}

/* tuned: the queue, batch size and a 50 ms batch timeout given; otherwise
 * only the endpoint, everything else the schema's defaults (what an
 * operator gets from "tracing: {endpoint: ...}"). */
static int bench_pipeline(const char *endpoint, long total, bool tuned, unsigned batch,
                          unsigned queue)
{
    /* The exporter's own configuration path: the engine, the schema's
     * defaults and checks. */
    poh_tracing_config_t cfg;
    poh_strbuf_t yaml = POH_STRBUF_INIT, err = POH_STRBUF_INIT;
    poh_strbuf_printf(&yaml, "enabled: true\nendpoint: \"%s\"\n", endpoint);
    if (tuned)
        poh_strbuf_printf(&yaml, "queue_size: %u\nbatch_size: %u\nbatch_timeout: 50ms\n", queue,
                          batch);
    poh_tracer_t *t = NULL;
    double batch_timeout = 0;
    if (poh_tracing_config_parse(yaml.data, &cfg, &err) == 0) {
        t = poh_tracer_create(&cfg);
        queue = cfg.queue_size;
        batch = cfg.batch_size;
        batch_timeout = cfg.batch_timeout;
    } else
        fprintf(stderr, "bench_otlp: %s", err.data ? err.data : "invalid tracing settings\n");
    poh_tracing_config_release(&cfg);
    poh_strbuf_free(&yaml);
    poh_strbuf_free(&err);
    if (!t)
        return -EINVAL;

    double c0 = process_cpu_s(), w0 = clock_s(CLOCK_MONOTONIC);
    double pc0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    long made = 0;
    poh_tracer_stats_t st;
    while (made < total) {
        /* Never lose a span to the benchmark itself: keep the queue below
         * 90% after the next burst of 256 (the tracer would drop, not wait;
         * with the default queue of 2048 a burst is more than the 10%). */
        poh_tracer_stats(t, &st);
        if (st.queued + 256 > (uint64_t)queue * 9 / 10) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
            continue;
        }
        for (int k = 0; k < 256 && made < total; k++, made++) {
            poh_span_t *s = poh_span_start(t, "grpc.health.v1.Health/Check", POH_SPAN_KIND_CLIENT,
                                           NULL);
            fill(s, made);
            poh_span_end(s);
        }
    }
    double producer_cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - pc0;
    int frc = poh_tracer_flush(t, 60);
    double wall = clock_s(CLOCK_MONOTONIC) - w0, cpu = process_cpu_s() - c0;
    poh_tracer_stats(t, &st);
    uint64_t dropped = 0;
    for (int i = 0; i < POH_DROP_REASON_COUNT; i++)
        dropped += st.dropped[i];
    printf("pipeline settings=%s queue_size=%u batch_size=%u batch_timeout_s=%g spans=%ld "
           "exported=%llu dropped=%llu flush_rc=%d calls=%llu wall_s=%.4f "
           "cpu_s=%.4f producer_cpu_s=%.4f spans_per_s=%.0f spans_per_cpu_s=%.0f "
           "cpu_ns_per_span=%.1f\n",
           tuned ? "tuned" : "defaults", queue, batch, batch_timeout, made, (unsigned long long)st.exported, (unsigned long long)dropped, frc,
           (unsigned long long)st.export_calls, wall, cpu, producer_cpu,
           (double)st.exported / wall, (double)st.exported / cpu,
           cpu * 1e9 / (double)(st.exported ? st.exported : 1));
    poh_tracer_destroy(t);
    return st.exported == (uint64_t)total ? 0 : -EIO;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL;
    long encode_spans = 2000000, pipeline_spans = 1000000;
    unsigned batch = 512, queue = 8192;
    bool tuned = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--defaults") == 0) {
            tuned = false;
            continue;
        }
        if (v && strcmp(a, "--endpoint") == 0)
            endpoint = v;
        else if (v && strcmp(a, "--encode-spans") == 0)
            encode_spans = atol(v);
        else if (v && strcmp(a, "--pipeline-spans") == 0)
            pipeline_spans = atol(v);
        else if (v && strcmp(a, "--batch") == 0)
            batch = (unsigned)atol(v);
        else if (v && strcmp(a, "--queue") == 0)
            queue = (unsigned)atol(v);
        else {
            fprintf(stderr, "usage: bench_otlp [--endpoint HOST:PORT] [--encode-spans N] "
                            "[--pipeline-spans N] [--batch N] [--queue N] [--defaults]\n");
            return 2;
        }
        i++;
    }
    poh_log_setup(POH_LOG_WARN, POH_LOG_LOGFMT);
    if (encode_spans > 0 && bench_encode(encode_spans, batch) < 0)
        return 1;
    if (endpoint && bench_pipeline(endpoint, pipeline_spans, tuned, batch, queue) < 0)
        return 1;
    return 0;
}
