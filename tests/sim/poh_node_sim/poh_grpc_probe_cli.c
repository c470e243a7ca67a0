/* SPDX-License-Identifier: Apache-2.0 */
/* poh_grpc_probe_cli: drives the exporter's probe engine (src/grpc) from the
 * command line, so end-to-end tests can compare it with an independent client
 * (python3-grpcio) against the same servers. One line per call:
 *   round=R target=T method=M code=NAME serving=STATUS latency=S bytes=N
 *   details="..." [field.PATH=VALUE|field.PATH=error:REASON_WORDS]...
 * then "wall=SECONDS" per round. Exit status 0 unless the arguments are bad. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/grpc_probe.h"
#include "grpc/pbwire.h"
#include "core/hex.h"

#define MAX_MD 8
#define MAX_FIELDS 16

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fputs("usage: poh_grpc_probe_cli [options] TARGET...\n"
          "  --timeout S            per-call timeout (default 1)\n"
          "  --deadline S           run deadline, relative (default none)\n"
          "  --service NAME         health service (default \"\")\n"
          "  --method PATH          unary call instead of a health check\n"
          "  --request-hex HEX      request bytes for --method (default empty)\n"
          "  --field PATH[:TYPE]    decode a reply field with pbwire (repeatable)\n"
          "  --md KEY=VALUE         metadata (repeatable)\n"
          "  --md-file KEY=FILE     metadata value read from FILE, trailing newline cut\n"
          "  --traceparent VALUE\n"
          "  --tls --ca F --cert F --key F --server-name N --insecure-skip-verify\n"
          "  --rounds N             run N times over the same channels (default 1)\n",
          stderr);
    return 2;
}

static char *read_value_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return strdup(buf);
}

typedef struct field {
    const char *spec;
    poh_pb_path_t path;
    poh_pb_type_t type;
} field_t;

int main(int argc, char **argv)
{
    double timeout = 1, deadline_rel = 0;
    const char *service = "", *method = NULL, *request_hex = "", *traceparent = NULL;
    poh_grpc_tls_t tls = {0};
    bool use_tls = false;
    poh_grpc_md_t md[MAX_MD];
    char *md_owned[MAX_MD] = {0};
    size_t nmd = 0, nfields = 0;
    field_t fields[MAX_FIELDS];
    long rounds = 1;
    int first_target = argc;

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strncmp(o, "--", 2) != 0) {
            first_target = i;
            break;
        }
        if (strcmp(o, "--tls") == 0) {
            use_tls = true;
            continue;
        }
        if (strcmp(o, "--insecure-skip-verify") == 0) {
            tls.insecure_skip_verify = true;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        if (strcmp(o, "--timeout") == 0) {
            timeout = atof(v);
        } else if (strcmp(o, "--deadline") == 0) {
            deadline_rel = atof(v);
        } else if (strcmp(o, "--service") == 0) {
            service = v;
        } else if (strcmp(o, "--method") == 0) {
            method = v;
        } else if (strcmp(o, "--request-hex") == 0) {
            request_hex = v;
        } else if (strcmp(o, "--traceparent") == 0) {
            traceparent = v;
        } else if (strcmp(o, "--rounds") == 0) {
            rounds = atol(v);
        } else if (strcmp(o, "--ca") == 0) {
            tls.ca_file = argv[i]; /* the target copies them */
        } else if (strcmp(o, "--cert") == 0) {
            tls.cert_file = argv[i]; /* the target copies them */
        } else if (strcmp(o, "--key") == 0) {
            tls.key_file = argv[i]; /* the target copies them */
        } else if (strcmp(o, "--server-name") == 0) {
            tls.server_name = argv[i]; /* the target copies them */
        } else if (strcmp(o, "--field") == 0) {
            if (nfields == MAX_FIELDS)
                return usage();
            field_t *f = &fields[nfields++];
            char buf[128];
            snprintf(buf, sizeof buf, "%s", v);
            char *colon = strchr(buf, ':');
            if (colon)
                *colon = '\0';
            f->spec = v;
            if (poh_pb_path_parse(buf, &f->path) < 0 ||
                poh_pb_type_parse(colon ? colon + 1 : NULL, &f->type) < 0) {
                fprintf(stderr, "bad --field %s\n", v);
                return 2;
            }
        } else if (strcmp(o, "--md") == 0 || strcmp(o, "--md-file") == 0) {
            char *eq = strchr(v, '=');
            if (!eq || nmd == MAX_MD)
                return usage();
            char *key = strndup(v, (size_t)(eq - v));
            char *val = strcmp(o, "--md") == 0 ? strdup(eq + 1) : read_value_file(eq + 1);
            if (!key || !val) {
                fprintf(stderr, "cannot use %s\n", v);
                return 2;
            }
            md[nmd].key = key;
            md[nmd].value = val;
            md_owned[nmd++] = key;
        } else {
            return usage();
        }
    }
    if (first_target >= argc || rounds < 1 || timeout <= 0)
        return usage();

    uint8_t *request = NULL;
    size_t request_len = 0;
    int rc = method ? poh_hex_decode(request_hex, &request, &request_len)
                    : poh_grpc_health_request(service, &request, &request_len);
    if (rc < 0) {
        fprintf(stderr, "bad request: %s\n", strerror(-rc));
        return 2;
    }
    size_t n = (size_t)(argc - first_target);
    poh_grpc_target_t **targets = calloc(n, sizeof *targets);
    poh_grpc_call_t *calls = calloc(n, sizeof *calls);
    if (!targets || !calls)
        return 1;
    for (size_t i = 0; i < n; i++) {
        targets[i] = poh_grpc_target_new(argv[first_target + (int)i], use_tls ? &tls : NULL, 0, 2);
        if (!targets[i])
            return 1;
        calls[i] = (poh_grpc_call_t){
            .target = targets[i],
            .method = method ? method : POH_GRPC_HEALTH_CHECK_METHOD,
            .request = request,
            .request_len = request_len,
            .metadata = md,
            .nmetadata = nmd,
            .traceparent = traceparent,
            .timeout = timeout,
            .health = method == NULL,
        };
    }
    for (long r = 0; r < rounds; r++) {
        double t0 = now_mono();
        rc = poh_grpc_run(calls, n, deadline_rel > 0 ? t0 + deadline_rel : 0);
        double wall = now_mono() - t0;
        if (rc < 0) {
            fprintf(stderr, "run failed: %s\n", strerror(-rc));
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            const poh_grpc_call_t *c = &calls[i];
            printf("round=%ld target=%s method=%s code=%s serving=%s latency=%.6f bytes=%zu "
                   "details=\"%s\"",
                   r, poh_grpc_target_address(c->target), c->method, poh_grpc_code_name(c->code),
                   poh_grpc_serving_status_name(c->serving_status), c->latency, c->response_len,
                   c->details);
            for (size_t f = 0; f < nfields; f++) {
                poh_pb_value_t v;
                int e = poh_pb_read(c->response, c->response_len, &fields[f].path,
                                    fields[f].type, &v);
                if (e < 0) {
                    printf(" field.%s=error:", fields[f].spec);
                    for (const char *m = poh_pb_strerror(e); *m; m++)
                        putchar(*m == ' ' ? '_' : *m);
                }
                else
                    printf(" field.%s=%.17g", fields[f].spec, poh_pb_value_double(&v));
            }
            putchar('\n');
        }
        printf("wall=%.6f\n", wall);
        fflush(stdout);
    }
    for (size_t i = 0; i < n; i++) {
        poh_grpc_call_clear(&calls[i]);
        poh_grpc_target_free(targets[i]);
    }
    for (size_t i = 0; i < nmd; i++) {
        free(md_owned[i]);
        free((char *)md[i].value);
    }
    free(calls);
    free(targets);
    free(request);
    return 0;
}
