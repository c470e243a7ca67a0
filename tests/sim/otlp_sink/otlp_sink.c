/* SPDX-License-Identifier: Apache-2.0 */
/* otlp_sink: an OTLP/gRPC trace receiver for tests and benchmarks.
 *
 * A gRPC C core server implementing
 * /opentelemetry.proto.collector.trace.v1.TraceService/Export. Each request is
 * decoded with protobuf-c (its own copy of the protos, not the exporter's
 * code) and recorded as JSON lines: one "request" line (status, metadata,
 * resource, scope, span count) and one "span" line per span of an accepted
 * request. The first stdout line is the bound port.
 *
 * Faults: --fail-unavailable N, --fail-code CODE [--fail-count N],
 * --retry-after-ms MS (google.rpc.RetryInfo in grpc-status-details-bin),
 * --partial-success K, --delay-ms MS, and --blackhole (a plain TCP listener
 * that accepts and reads but never answers). --discard decodes and counts
 * without writing span lines (benchmarks). SIGTERM/SIGINT stop it; a final
 * {"type":"summary"} line is written to the output. */
#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static struct {
    const char *listen;
    const char *out_path;
    long fail_unavailable;
    int fail_code;
    long fail_count; /* < 0: forever */
    long retry_after_ms;
    long partial;
    long delay_ms;
    bool blackhole;
    bool discard;
    const char *raw_dir;
    const char *tls_cert, *tls_key;
} opt = {.listen = "127.0.0.1:0", .fail_count = -1, .retry_after_ms = -1, .partial = 0};

static FILE *out;
static unsigned long long n_requests, n_spans, n_rejected;

static const char *const code_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED"};

static int code_from_name(const char *s)
{
    for (int i = 0; i < (int)(sizeof code_names / sizeof code_names[0]); i++)
        if (strcmp(s, code_names[i]) == 0)
            return i;
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= 0 && v <= 16) ? (int)v : -1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- JSON output ------------------------------------------------------------ */

static void json_str(const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void json_cstr(const char *s) { json_str(s ? s : "", s ? strlen(s) : 0); }

static void json_hex(const uint8_t *b, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", b[i]);
    fputc('"', out);
}

static void json_double(double d)
{
    if (isnan(d)) {
        fputs("\"NaN\"", out);
    } else if (isinf(d)) {
        fputs(d > 0 ? "\"+Inf\"" : "\"-Inf\"", out);
    } else {
        char buf[40];
        snprintf(buf, sizeof buf, "%.17g", d);
        fputs(buf, out);
        if (!strpbrk(buf, ".e")) /* keep it a float for the reader */
            fputs(".0", out);
    }
}

static const char *any_type(const any_t *v)
{
    switch (v ? v->value_case : 0) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return "string";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return "bool";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return "int";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return "double";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        return "bytes";
    default:
        return "empty";
    }
}

static void json_any(const any_t *v)
{
    switch (v ? v->value_case : 0) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        json_cstr(v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        fputs(v->bool_value ? "true" : "false", out);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        fprintf(out, "%lld", (long long)v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        json_double(v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        json_hex(v->bytes_value.data, v->bytes_value.len);
        break;
    default:
        fputs("null", out);
    }
}

static void json_attrs(kv_t **kv, size_t n, bool types)
{
    fputc('{', out);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        json_cstr(kv[i]->key);
        fputc(':', out);
        if (types)
            json_cstr(any_type(kv[i]->value));
        else
            json_any(kv[i]->value);
    }
    fputc('}', out);
}

static void json_metadata(const grpc_metadata_array *md)
{
    fputc('{', out);
    for (size_t i = 0; i < md->count; i++) {
        if (i)
            fputc(',', out);
        json_str((const char *)GRPC_SLICE_START_PTR(md->metadata[i].key),
                 GRPC_SLICE_LENGTH(md->metadata[i].key));
        fputc(':', out);
        json_str((const char *)GRPC_SLICE_START_PTR(md->metadata[i].value),
                 GRPC_SLICE_LENGTH(md->metadata[i].value));
    }
    fputc('}', out);
}

static size_t count_spans(const req_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++)
        for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
            n += r->resource_spans[i]->scope_spans[j]->n_spans;
    return n;
}

static void write_request(unsigned long long n, const char *status, const req_t *r,
                          size_t nspans, size_t bytes, const grpc_metadata_array *md,
                          uint64_t t)
{
    fprintf(out, "{\"type\":\"request\",\"n\":%llu,\"status\":", n);
    json_cstr(status);
    fprintf(out, ",\"spans\":%zu,\"bytes\":%zu,\"t\":%llu,\"metadata\":", nspans, bytes,
            (unsigned long long)t);
    json_metadata(md);
    fprintf(out, ",\"decoded\":%s", r ? "true" : "false");
    if (r && r->n_resource_spans) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
        fputs(",\"resource\":", out);
        if (rs->resource)
            json_attrs(rs->resource->attributes, rs->resource->n_attributes, false);
        else
            fputs("{}", out);
        if (rs->n_scope_spans && rs->scope_spans[0]->scope) {
            fputs(",\"scope\":{\"name\":", out);
            json_cstr(rs->scope_spans[0]->scope->name);
            fputs(",\"version\":", out);
            json_cstr(rs->scope_spans[0]->scope->version);
            fputc('}', out);
        }
        fprintf(out, ",\"resource_spans\":%zu", r->n_resource_spans);
    }
    fputs("}\n", out);
}

static void write_spans(unsigned long long n, const req_t *r)
{
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const Opentelemetry__Proto__Trace__V1__Span *s = ss->spans[k];
                fprintf(out, "{\"type\":\"span\",\"request\":%llu,\"trace_id\":", n);
                json_hex(s->trace_id.data, s->trace_id.len);
                fputs(",\"span_id\":", out);
                json_hex(s->span_id.data, s->span_id.len);
                fputs(",\"parent_span_id\":", out);
                json_hex(s->parent_span_id.data, s->parent_span_id.len);
                fputs(",\"name\":", out);
                json_cstr(s->name);
                fprintf(out, ",\"kind\":%d,\"flags\":%u,\"start\":%llu,\"end\":%llu,",
                        (int)s->kind, s->flags, (unsigned long long)s->start_time_unix_nano,
                        (unsigned long long)s->end_time_unix_nano);
                fputs("\"attributes\":", out);
                json_attrs(s->attributes, s->n_attributes, false);
                fputs(",\"attribute_types\":", out);
                json_attrs(s->attributes, s->n_attributes, true);
                fprintf(out, ",\"dropped_attributes_count\":%u,\"status\":{\"code\":%d,\"message\":",
                        s->dropped_attributes_count, s->status ? (int)s->status->code : 0);
                json_cstr(s->status ? s->status->message : "");
                fputs("}}\n", out);
            }
        }
    }
}

/* --- responses ----------------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* google.rpc.Status{code, message, details: [Any{RetryInfo{retry_delay}}]} */
static size_t build_status_details(uint8_t *buf, int code, const char *msg, long delay_ms)
{
    static const char url[] = "type.googleapis.com/google.rpc.RetryInfo";
    uint8_t dur[24], ri[32], any[128];
    size_t dl = 0, rl = 0, al = 0, n = 0;
    dur[dl++] = 0x08;
    dl += put_varint(dur + dl, (uint64_t)(delay_ms / 1000));
    dur[dl++] = 0x10;
    dl += put_varint(dur + dl, (uint64_t)(delay_ms % 1000) * 1000000u);
    ri[rl++] = 0x0a;
    ri[rl++] = (uint8_t)dl;
    memcpy(ri + rl, dur, dl);
    rl += dl;
    any[al++] = 0x0a;
    any[al++] = (uint8_t)(sizeof url - 1);
    memcpy(any + al, url, sizeof url - 1);
    al += sizeof url - 1;
    any[al++] = 0x12;
    any[al++] = (uint8_t)rl;
    memcpy(any + al, ri, rl);
    al += rl;
    buf[n++] = 0x08;
    n += put_varint(buf + n, (uint64_t)code);
    size_t ml = strlen(msg);
    buf[n++] = 0x12;
    buf[n++] = (uint8_t)ml;
    memcpy(buf + n, msg, ml);
    n += ml;
    buf[n++] = 0x1a;
    buf[n++] = (uint8_t)al;
    memcpy(buf + n, any, al);
    return n + al;
}

static void *const TAG_NEW = (void *)1;
static void *const TAG_DONE = (void *)2;
static void *const TAG_SHUTDOWN = (void *)3;

/* Next event for tag, polling the stop flag. false when stopping. */
static bool wait_tag(grpc_completion_queue *cq, void *tag, bool *ok)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(200, GPR_TIMESPAN)),
            NULL);
        if (ev.type == GRPC_OP_COMPLETE && ev.tag == tag) {
            *ok = ev.success;
            return true;
        }
        if (ev.type == GRPC_QUEUE_SHUTDOWN || stop_flag)
            return false;
    }
}

static void save_raw(unsigned long long n, const uint8_t *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/req-%06llu.bin", opt.raw_dir, n);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "otlp_sink: %s: %s\n", path, strerror(errno));
        return;
    }
    fwrite(buf, 1, len, f);
    fclose(f);
}

static void handle_call(grpc_call *call, grpc_metadata_array *md, grpc_byte_buffer *payload,
                        grpc_completion_queue *cq)
{
    uint64_t t = now_ns();
    unsigned long long n = ++n_requests;
    grpc_slice all = grpc_empty_slice();
    if (payload) {
        grpc_byte_buffer_reader rd;
        if (grpc_byte_buffer_reader_init(&rd, payload)) {
            all = grpc_byte_buffer_reader_readall(&rd);
            grpc_byte_buffer_reader_destroy(&rd);
        }
    }
    const uint8_t *bytes = GRPC_SLICE_START_PTR(all);
    size_t len = GRPC_SLICE_LENGTH(all);
    if (opt.raw_dir)
        save_raw(n, bytes, len);
    req_t *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, len, bytes);
    size_t nspans = r ? count_spans(r) : 0;

    if (opt.delay_ms > 0) {
        for (long waited = 0; waited < opt.delay_ms && !stop_flag; waited += 10)
            usleep(10000);
    }

    grpc_status_code code = GRPC_STATUS_OK;
    const char *details = "";
    if (!r) {
        code = GRPC_STATUS_INVALID_ARGUMENT;
        details = "undecodable ExportTraceServiceRequest";
    } else if (opt.fail_unavailable > 0) {
        opt.fail_unavailable--;
        code = GRPC_STATUS_UNAVAILABLE;
        details = "sink: injected UNAVAILABLE";
    } else if (opt.fail_code > 0 && opt.fail_count != 0) {
        if (opt.fail_count > 0)
            opt.fail_count--;
        code = (grpc_status_code)opt.fail_code;
        details = "sink: injected failure";
    }

    /* Response: partial_success when asked and the request was accepted. */
    uint8_t resp_buf[128];
    size_t resp_len = 0;
    long rejected = 0;
    if (code == GRPC_STATUS_OK && opt.partial > 0) {
        Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
        rejected = opt.partial < (long)nspans ? opt.partial : (long)nspans;
        ps.rejected_spans = rejected;
        ps.error_message = (char *)"rejected by sink";
        resp.partial_success = &ps;
        resp_len = opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(
            &resp, resp_buf);
        n_rejected += (unsigned long long)rejected;
    }

    if (code == GRPC_STATUS_OK)
        n_spans += nspans;
    if (!opt.discard) {
        write_request(n, code_names[code], r, nspans, len, md, t);
        if (code == GRPC_STATUS_OK && r)
            write_spans(n, r);
        fflush(out);
    }

    grpc_slice resp_slice = grpc_slice_from_copied_buffer((const char *)resp_buf, resp_len);
    grpc_byte_buffer *resp_bb = grpc_raw_byte_buffer_create(&resp_slice, 1);
    grpc_slice details_slice = grpc_slice_from_copied_string(details);
    uint8_t sd[256];
    grpc_metadata trailing;
    size_t ntrailing = 0;
    if (code != GRPC_STATUS_OK && opt.retry_after_ms >= 0) {
        size_t sl = build_status_details(sd, code, details, opt.retry_after_ms);
        trailing.key = grpc_slice_from_static_string("grpc-status-details-bin");
        trailing.value = grpc_slice_from_copied_buffer((const char *)sd, sl);
        ntrailing = 1;
    }
    int cancelled = 0;
    grpc_op ops[4];
    size_t nops = 0;
    memset(ops, 0, sizeof ops);
    ops[nops++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (code == GRPC_STATUS_OK) {
        ops[nops].op = GRPC_OP_SEND_MESSAGE;
        ops[nops++].data.send_message.send_message = resp_bb;
    }
    ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[nops].data.send_status_from_server.status = code;
    ops[nops].data.send_status_from_server.status_details = &details_slice;
    ops[nops].data.send_status_from_server.trailing_metadata_count = ntrailing;
    ops[nops++].data.send_status_from_server.trailing_metadata = ntrailing ? &trailing : NULL;
    ops[nops].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[nops++].data.recv_close_on_server.cancelled = &cancelled;
    bool ok;
    if (grpc_call_start_batch(call, ops, nops, TAG_DONE, NULL) == GRPC_CALL_OK)
        wait_tag(cq, TAG_DONE, &ok);

    if (ntrailing)
        grpc_slice_unref(trailing.value);
    grpc_slice_unref(details_slice);
    grpc_byte_buffer_destroy(resp_bb);
    grpc_slice_unref(resp_slice);
    grpc_slice_unref(all);
    if (r)
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "otlp_sink: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static int run_grpc(void)
{
    grpc_init();
    grpc_server *srv = grpc_server_create(NULL, NULL);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv, cq, NULL);
    void *method = grpc_server_register_method(srv, METHOD, NULL,
                                               GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    grpc_server_credentials *creds;
    if (opt.tls_cert) {
        char *cert = read_file(opt.tls_cert), *key = read_file(opt.tls_key);
        if (!cert || !key)
            return 2;
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        creds = grpc_ssl_server_credentials_create_ex(NULL, &pair, 1,
                                                      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, NULL);
        free(cert);
        free(key);
    } else {
        creds = grpc_insecure_server_credentials_create();
    }
    int port = grpc_server_add_http2_port(srv, opt.listen, creds);
    grpc_server_credentials_release(creds);
    if (port <= 0) {
        fprintf(stderr, "otlp_sink: cannot listen on %s\n", opt.listen);
        return 2;
    }
    grpc_server_start(srv);
    printf("%d\n", port);
    fflush(stdout);

    while (!stop_flag) {
        grpc_call *call = NULL;
        gpr_timespec deadline;
        grpc_metadata_array md;
        grpc_byte_buffer *payload = NULL;
        bool ok = false;
        grpc_metadata_array_init(&md);
        if (grpc_server_request_registered_call(srv, method, &call, &deadline, &md, &payload, cq,
                                                cq, TAG_NEW) != GRPC_CALL_OK)
            break;
        if (!wait_tag(cq, TAG_NEW, &ok)) {
            grpc_metadata_array_destroy(&md);
            break; /* the pending request completes during shutdown */
        }
        if (ok && call)
            handle_call(call, &md, payload, cq);
        if (payload)
            grpc_byte_buffer_destroy(payload);
        grpc_metadata_array_destroy(&md);
        if (call)
            grpc_call_unref(call);
    }

    grpc_server_shutdown_and_notify(srv, cq, TAG_SHUTDOWN);
    grpc_server_cancel_all_calls(srv);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(5, GPR_TIMESPAN)),
            NULL);
        if (ev.type != GRPC_OP_COMPLETE || ev.tag == TAG_SHUTDOWN)
            break;
    }
    grpc_server_destroy(srv);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    grpc_shutdown();
    return 0;
}

/* Accept TCP connections and read whatever comes, never answering: a
 * collector that hangs after the handshake. */
static int run_blackhole(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    const char *colon = strrchr(opt.listen, ':');
    a.sin_port = htons((uint16_t)(colon ? atoi(colon + 1) : 0));
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 64) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) < 0) {
        fprintf(stderr, "otlp_sink: blackhole listen: %s\n", strerror(errno));
        return 2;
    }
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    enum { MAXFD = 256 };
    struct pollfd fds[MAXFD];
    size_t nfds = 1;
    unsigned long long accepted = 0, bytes = 0;
    fds[0] = (struct pollfd){.fd = ls, .events = POLLIN};
    while (!stop_flag) {
        if (poll(fds, nfds, 200) <= 0)
            continue;
        for (size_t i = nfds; i-- > 0;) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (i == 0) {
                int c = accept(ls, NULL, NULL);
                if (c >= 0 && nfds < MAXFD) {
                    fds[nfds++] = (struct pollfd){.fd = c, .events = POLLIN};
                    accepted++;
                } else if (c >= 0) {
                    close(c);
                }
                continue;
            }
            char buf[4096];
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r > 0) {
                bytes += (unsigned long long)r;
            } else {
                close(fds[i].fd);
                fds[i] = fds[--nfds];
            }
        }
    }
    fprintf(out, "{\"type\":\"summary\",\"blackhole\":true,\"connections\":%llu,\"bytes\":%llu}\n",
            accepted, bytes);
    fflush(out);
    for (size_t i = 0; i < nfds; i++)
        close(fds[i].fd);
    return 0;
}

static void usage(void)
{
    fputs("usage: otlp_sink [--listen ADDR] [--out FILE] [--discard] [--raw-dir DIR]\n"
          "                 [--fail-unavailable N] [--fail-code CODE [--fail-count N]]\n"
          "                 [--retry-after-ms MS] [--partial-success K] [--delay-ms MS]\n"
          "                 [--blackhole] [--tls-cert FILE --tls-key FILE]\n",
          stderr);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
        if (ARG("--listen"))
            opt.listen = v;
        else if (ARG("--out"))
            opt.out_path = v;
        else if (ARG("--raw-dir"))
            opt.raw_dir = v;
        else if (ARG("--fail-unavailable"))
            opt.fail_unavailable = atol(v);
        else if (ARG("--fail-code")) {
            opt.fail_code = code_from_name(v);
            if (opt.fail_code <= 0) {
                fprintf(stderr, "otlp_sink: unknown status code %s\n", v);
                return 2;
            }
        } else if (ARG("--fail-count"))
            opt.fail_count = atol(v);
        else if (ARG("--retry-after-ms"))
            opt.retry_after_ms = atol(v);
        else if (ARG("--partial-success"))
            opt.partial = atol(v);
        else if (ARG("--delay-ms"))
            opt.delay_ms = atol(v);
        else if (ARG("--tls-cert"))
            opt.tls_cert = v;
        else if (ARG("--tls-key"))
            opt.tls_key = v;
        else if (strcmp(a, "--blackhole") == 0)
            opt.blackhole = true;
        else if (strcmp(a, "--discard") == 0)
            opt.discard = true;
        else {
            usage();
            return 2;
        }
#undef ARG
    }
    if (!opt.tls_cert != !opt.tls_key) {
        usage();
        return 2;
    }
    out = stdout;
    if (opt.out_path && !(out = fopen(opt.out_path, "w"))) {
        fprintf(stderr, "otlp_sink: %s: %s\n", opt.out_path, strerror(errno));
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = opt.blackhole ? run_blackhole() : run_grpc();
    if (!opt.blackhole && rc == 0) {
        fprintf(out, "{\"type\":\"summary\",\"requests\":%llu,\"spans\":%llu,\"rejected\":%llu}\n",
                n_requests, n_spans, n_rejected);
        fflush(out);
    }
    if (out != stdout)
        fclose(out);
    return rc;
}
